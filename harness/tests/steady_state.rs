//! The steady-state hypothesis on the real app: a system that is not steady (a fault left on
//! purpose) gets no fault injected and the run is an error (exit 3) naming the deviating
//! probe; after a pool-exhaustion window the recovery time is measured and matches what the
//! per-second series show, and `recovery_time` is a threshold.

mod common;

use common::faults::*;
use common::*;
use target_app::test_support::TestApp;
use target_app::Preset;

/// Orders at `rate`/s on products 1–10 (half on product 1) for `secs`, with `extra` TOML.
fn orders(app: &TestApp, rate: u32, secs: u32, extra: &str) -> String {
    format!(
        r#"
name = "steady"
[target]
url = "{url}"
timeout = "20s"
[executor]
type = "arrival-rate"
start_rate = {rate}
max_in_flight = 2000
stages = [ {{ duration = "{secs}s", target = {rate} }} ]
[generators]
user_id = {{ type = "sequence", start = 1 }}
product = {{ type = "hot-key", min = 2, max = 10, hot = 1, share = 0.5 }}
[[requests]]
name = "create_order"
method = "POST"
path = "/api/orders"
body = '{{"user_id": {{{{user_id}}}}, "product_id": {{{{product}}}}, "quantity": 1}}'
[probes.prometheus]
url = "{{target}}/metrics"
series = ["db_pool_pending"]
[actuators]
app_faults = "{{target}}/admin/faults"
{extra}
"#,
        url = app.url
    )
}

/// A fault left on purpose (the app's hold knob set before the run) exhausts the pool, so the
/// hypothesis fails before the first fault: the fault plugin's lock is never taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsteady_system_gets_no_fault_and_the_run_names_the_deviating_probe() {
    let app = TestApp::start(Preset::Incident, |_| {}).await;
    let (status, _) = app
        .post("/admin/faults", r#"{"order_hold_ms": 1500}"#)
        .await;
    assert_eq!(status, 200);
    let extra = format!(
        "[hypothesis]\nprobes = [\"db_pool_pending <= 2\"]\n[[faults]]\nplugin = \"{}\"\n\
         config = {{ at_s = 4, duration_s = 3, hold_ms = 500 }}\n",
        built_plugin("lock-contention.wasm")
    );
    let (_dir, out, o) = run_in_temp("unsteady", &orders(&app, 40, 10, &extra)).await;
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    let sum = summary(&out);
    let reason = sum["reason"].as_str().unwrap();
    assert!(
        reason.contains("does not hold before the first fault"),
        "{reason}"
    );
    assert!(
        reason.contains("db_pool_pending <= 2 (observed"),
        "{reason}"
    );
    assert_eq!(
        sum["faults"].as_array().unwrap().len(),
        0,
        "a fault was injected"
    );
    let st = &sum["steady_state"];
    assert_eq!(st["before_faults"].as_array().unwrap().len(), 1, "{st}");
    let (_, faults) = app.post("/admin/faults", r#"{"order_hold_ms": 0}"#).await;
    assert_eq!(faults["order_hold_ms"], 0);
    app.stop().await;
}

/// lock-contention exhausts the pool for 5 s; the recovery time the run reports is within 2 s
/// of the one read off the per-second pending series, and `recovery_time` judges it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recovery_time_after_a_pool_exhaustion_window_matches_the_per_second_series() {
    let app = TestApp::start(Preset::Incident, |_| {}).await;
    let extra = format!(
        "[hypothesis]\nprobes = [\"db_pool_pending <= 1\"]\ntimeout = \"30s\"\n\
         [thresholds]\nrecovery_time = [\"max<30\"]\n\
         [[faults]]\nplugin = \"{}\"\nconfig = {{ at_s = 3, duration_s = 5, hold_ms = 1200 }}\n",
        built_plugin("lock-contention.wasm")
    );
    let (_dir, out, o) = run_in_temp("recovery", &orders(&app, 40, 16, &extra)).await;
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let sum = summary(&out);
    let rec = &sum["steady_state"]["recoveries"][0];
    let end = rec["fault_end_s"].as_f64().unwrap();
    let took = rec["recovery_time_s"].as_f64().expect("recovered");
    let pending = column(&run_dir(&out), "db_pool_pending");
    let start = rec["fault_start_s"].as_f64().unwrap() as usize;
    assert!(
        pending[start..end as usize + 1].iter().any(|p| *p > 5.0),
        "the window did not exhaust the pool: {pending:?}"
    );
    let first_steady = (end.floor() as usize..pending.len())
        .find(|s| pending[*s] <= 1.0)
        .expect("the series shows a steady second");
    let from_series = (first_steady + 1) as f64 - end;
    assert!(
        (took - from_series).abs() <= 2.0,
        "reported {took} s, series show {from_series} s: {pending:?}"
    );
    let v = sum["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["metric"] == "recovery_time")
        .unwrap()
        .clone();
    assert_eq!(v["passed"], true, "{v}");
    assert!((v["observed"].as_f64().unwrap() - took).abs() < 1e-6, "{v}");
    let md = std::fs::read_to_string(run_dir(&out).join("report.md")).unwrap();
    assert!(
        md.contains("| fault window | steady again | recovery time |"),
        "{md}"
    );
    app.stop().await;
}
