//! HTTP faults through real runs: an HTTP toxic answers 503 for a share of one route only, as
//! the run's own failure rate shows; and a latency toxic on the app's external dependency (a
//! real HTTP call inside the order transaction) holds every connection longer, until the
//! incident preset's pool of 20 runs dry.

mod common;

use common::faults::*;
use common::*;
use harness::faults::ToxiproxyClient;
use target_app::test_support::{stack_env, TestApp, TestStub};
use target_app::Preset;

/// A proxy of the test's own on the stack's relay (`http`: HTTP-aware); its listen address.
async fn proxy(relay: &ToxiproxyClient, name: &str, upstream: &str, http: bool) -> String {
    let up = upstream.trim_start_matches("http://");
    let up = up.split('/').next().unwrap();
    let view = match http {
        true => relay.create_http_proxy(name, "127.0.0.1:0", up).await,
        false => relay.create_proxy(name, "127.0.0.1:0", up).await,
    };
    view.unwrap()
}

fn failed_share(sum: &serde_json::Value, request: &str) -> f64 {
    let r = sum["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == request)
        .unwrap_or_else(|| panic!("no request {request}"));
    r["failed"].as_f64().unwrap() / r["count"].as_f64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_toxic_fails_its_share_of_one_route_and_leaves_the_others_untouched() {
    let server = TestServer::start().await;
    let api = stack_env("HARNESS_PROXY_API");
    let relay = ToxiproxyClient::new(&api);
    let name = format!("http-share-{}", std::process::id());
    let listen = proxy(&relay, &name, &server.url, true).await;
    let text = format!(
        r#"
name = "http-toxic"
[target]
url = "http://{listen}"
[executor]
type = "arrival-rate"
start_rate = 200
max_in_flight = 500
# ~1,800 orders: the toxicity's binomial spread (σ ≈ 0.007) keeps 0.10 ± 0.02 a 3σ band.
stages = [ {{ duration = "20s", target = 200 }} ]
[[requests]]
name = "order"
method = "POST"
path = "/api/orders"
body = '{{}}'
[[requests]]
name = "product"
path = "/api/products/1"
[actuators]
toxiproxy = "{api}"
[[faults]]
plugin = "{plugin}"
[[faults.config.steps]]
action = "http-toxic"
proxy = "{name}"
kind = "status"
status = 503
route = "POST /api/orders"
toxicity = 0.1
"#,
        plugin = built_plugin("chaos-schedule.wasm"),
    );
    let (_dir, out, o) = run_in_temp("http-share", &text).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let sum = summary(&out);
    // The share from the second the toxic was in force on (it goes in at the first tick).
    let run = run_dir(&out);
    let on = sum["faults"][0]["applied_s"].as_f64().unwrap().ceil() as usize;
    let sent: f64 = column(&run, "requests:order")[on..]
        .iter()
        .filter(|v| !v.is_nan())
        .sum();
    let failed: f64 = column(&run, "failed:order")[on..]
        .iter()
        .filter(|v| !v.is_nan())
        .sum();
    let orders = failed / sent;
    assert!(
        sent > 1000.0 && (0.08..=0.12).contains(&orders),
        "orders failed {failed} of {sent}"
    );
    assert_eq!(
        failed_share(&sum, "product"),
        0.0,
        "another route was hit: {} {}",
        sum["requests"],
        sum["http"]
    );
    let statuses = &sum["requests"].as_array().unwrap()[0]["statuses"];
    assert!(statuses.to_string().contains("503"), "{statuses}");
    assert!(
        relay.proxy(&name).await.unwrap().toxics.is_empty(),
        "toxic left behind"
    );
    relay.delete_proxy(&name).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_latency_toxic_on_the_external_dependency_exhausts_the_pool_on_the_incident_preset() {
    let stub = TestStub::start(0, 200).await;
    let api = stack_env("HARNESS_PROXY_API");
    let relay = ToxiproxyClient::new(&api);
    let name = format!("dependency-{}", std::process::id());
    let listen = proxy(&relay, &name, &stub.url, true).await;
    let url = format!("http://{listen}/orders");
    let app = TestApp::start(Preset::Incident, |c| c.external_url = Some(url)).await;
    let text = format!(
        r#"
name = "dependency-latency"
[target]
url = "{app}"
timeout = "20s"
[executor]
type = "arrival-rate"
start_rate = 30
max_in_flight = 2000
stages = [ {{ duration = "14s", target = 30 }} ]
[generators]
user_id = {{ type = "sequence", start = 1 }}
product_id = {{ type = "uniform", min = 1, max = 10 }}
[[requests]]
name = "create_order"
method = "POST"
path = "/api/orders"
body = '{{"user_id": {{{{user_id}}}}, "product_id": {{{{product_id}}}}, "quantity": 1}}'
[probes.prometheus]
url = "{{target}}/metrics"
series = ["db_pool_pending", "db_pool_acquire_timeouts_total", "external_calls_total"]
[actuators]
toxiproxy = "{api}"
[[faults]]
plugin = "{plugin}"
[[faults.config.steps]]
action = "toxic"
proxy = "{name}"
kind = "latency"
direction = "downstream"
attributes = {{ latency = 1500 }}
at_s = 3
"#,
        app = app.url,
        plugin = built_plugin("chaos-schedule.wasm"),
    );
    let (_dir, out, o) = run_in_temp("dep-latency", &text).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let sum = summary(&out);
    let peaks = &sum["series_peaks"];
    assert!(
        peaks["external_calls_total"].as_f64().unwrap() > 30.0,
        "{peaks}"
    );
    assert!(
        peaks["db_pool_pending"].as_f64().unwrap() >= 10.0,
        "{peaks} {} {}",
        sum["faults"],
        sum["requests"]
    );
    assert!(
        peaks["db_pool_acquire_timeouts_total"].as_f64().unwrap() >= 1.0,
        "the pool never ran dry: {peaks}"
    );
    assert!(failed_share(&sum, "create_order") > 0.0);
    assert!(relay.proxy(&name).await.unwrap().toxics.is_empty());
    relay.delete_proxy(&name).await.unwrap();
    app.stop().await;
    stub.stop().await;
}
