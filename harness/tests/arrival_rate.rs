//! The open-model executor's in-flight bound (k6's `maxVUs`) against a tiny in-test server
//! that records how many requests it holds at once: the bound is never exceeded, what it
//! refuses is counted as dropped, and a bound above what the rate needs drops nothing.

mod common;

use std::sync::atomic::Ordering::Relaxed;

use common::*;

fn constant(url: &str, rate: u32, secs: u32, max_vus: u32) -> String {
    format!(
        r#"name = "bound"
[target]
url = "{url}"
timeout = "5s"
[scenarios.open]
executor = "constant-arrival-rate"
rate = {rate}
duration = "{secs}s"
maxVUs = {max_vus}
[[scenarios.open.requests]]
name = "a"
path = "/a"
"#
    )
}

/// Runs `rate`/s for `secs` with `max_vus` against `server`, each answer taking `delay_ms`;
/// returns the summary. No thresholds: the run passes, drops or not.
async fn run_against(
    server: &TestServer,
    delay_ms: u64,
    rate: u32,
    secs: u32,
    max_vus: u32,
) -> serde_json::Value {
    server.state.delay_ms.store(delay_ms, Relaxed);
    let (_dir, out, o) = run_in_temp("bound", &constant(&server.url, rate, secs, max_vus)).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    summary(&out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_flight_bound_is_never_exceeded_and_every_arrival_it_refuses_is_dropped() {
    let server = TestServer::start().await;
    // Each answer takes 200 ms, so 10 in flight carry 50/s of the 200/s offered.
    let sum = run_against(&server, 200, 200, 2, 10).await;
    let sent = sum["totals"]["http_reqs"].as_u64().unwrap();
    let dropped = sum["totals"]["dropped_iterations"].as_u64().unwrap();
    let peak = server.state.peak_in_flight.load(Relaxed);
    assert_eq!(peak, 10, "the server held {peak} at once with maxVUs = 10");
    assert_eq!(sent, server.total(), "every request sent was answered");
    assert_eq!(
        sent + dropped,
        400,
        "sent {sent} + dropped {dropped}: 200/s for 2 s"
    );
    // 10 slots freed every 200 ms for 2 s, refilled by the next arrival (5 ms apart).
    assert!((90..=110).contains(&sent), "sent {sent}: about 100");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_above_what_the_rate_needs_drops_nothing() {
    let server = TestServer::start().await;
    // 1,000/s at 20 ms each keeps about 20 in flight; the bound is 200 (room for a slow
    // debug build on a busy CI machine).
    let sum = run_against(&server, 20, 1_000, 3, 200).await;
    assert_eq!(
        sum["totals"]["dropped_iterations"].as_u64(),
        Some(0),
        "{sum}"
    );
    assert_eq!(sum["totals"]["http_reqs"].as_u64(), Some(3_000));
    assert_eq!(server.total(), 3_000);
    let peak = server.state.peak_in_flight.load(Relaxed);
    assert!(peak < 200, "peak {peak} in flight");
}
