//! The closed-model executor's `vus` gauge against a tiny in-test server: it counts the VUs
//! that are sending, and `vus` VUs start together rather than one after another.

mod common;

use common::*;

/// (requests, vus) per second of a run's timeseries.csv.
fn per_second(out: &std::path::Path) -> Vec<(f64, f64)> {
    let csv = std::fs::read_to_string(run_dir(out).join("timeseries.csv")).unwrap();
    let mut lines = csv.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| head.iter().position(|h| *h == name).unwrap();
    let (req, vus) = (col("requests"), col("vus"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let num = |i: usize| f[i].parse::<f64>().unwrap_or(0.0);
            (num(req), num(vus))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vus_gauge_counts_the_vus_that_are_sending_from_the_first_second() {
    let server = TestServer::start().await;
    let text = format!(
        r#"name = "vus"
[target]
url = "{}"
[scenarios.together]
executor = "constant-vus"
vus = 500
duration = "4s"
think_time = "1s"
[[scenarios.together.requests]]
name = "a"
path = "/a"
"#,
        server.url
    );
    let (_dir, out, o) = run_in_temp("vus", &text).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let rows = per_second(&out);
    assert!(rows.len() >= 4, "{rows:?}");
    // Every VU sends about once a second (1 s think, a fast server), so in each whole second of
    // the run the requests answered are the VUs running; goose used to build a client per VU
    // before any started (10 s of silence at 5,000) while the gauge already read the plan.
    for (s, &(requests, vus)) in rows.iter().enumerate().take(4) {
        assert_eq!(vus, 500.0, "second {s}: {rows:?}");
        let low = if s == 0 { 0.3 } else { 0.8 };
        assert!(
            requests >= low * vus && requests <= 1.1 * vus,
            "second {s}: {requests} requests from {vus} VUs: {rows:?}"
        );
    }
    assert_eq!(rows.last().unwrap().1, 0.0, "no VU runs after the end");
}
