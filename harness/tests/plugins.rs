//! Wasm plugins and faults end to end: the shipped plugins judge and inject on a real app,
//! misbehaving plugins are stopped by their limits and named, and every fault is rolled back
//! whatever ends the run (plugin error, SIGINT). Needs `make plugins` (run by `make test`).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use harness::plugins::{Limits, ThresholdPlugin};
use target_app::test_support::{stack_env, TestApp};
use target_app::Preset;

fn s(p: &std::path::Path) -> String {
    p.display().to_string()
}

/// A built plugin; fails (never skips) with how to build it.
fn plugin(rel: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/build")
        .join(rel);
    assert!(
        p.is_file(),
        "{} is missing: build the plugins with `make plugins` (make test does)",
        p.display()
    );
    p.canonicalize().unwrap().display().to_string()
}

/// Orders (and optionally coupons) at `rate`/s for `secs` against `app`, plus `extra` TOML.
fn app_scenario(app: &TestApp, rate: u32, secs: u32, coupons: bool, extra: &str) -> String {
    let coupon = if coupons {
        r#"
[[requests]]
name = "issue_coupon"
method = "POST"
path = "/api/coupons/1/issue"
body = '{"user_id": {{user_id}}}'
expect_status = [202]
"#
    } else {
        ""
    };
    let weight = if coupons { 0 } else { 1 };
    format!(
        r#"
name = "plugin-e2e"
[target]
url = "{url}"
timeout = "15s"
[executor]
type = "arrival-rate"
start_rate = {rate}
max_in_flight = 2000
stages = [ {{ duration = "{secs}s", target = {rate} }} ]
[generators]
user_id = {{ type = "sequence", start = 1 }}
product_id = {{ type = "uniform", min = 1, max = 10 }}
[[requests]]
name = "create_order"
method = "POST"
path = "/api/orders"
body = '{{"user_id": {{{{user_id}}}}, "product_id": {{{{product_id}}}}, "quantity": 1}}'
weight = {weight}
expect_status = [201]
{coupon}
[probes.prometheus]
url = "{{target}}/metrics"
series = ["db_pool_pending", "db_pool_acquire_timeouts_total", "coupon_consumer_lag"]
[probes.kafka]
bootstrap = "{kafka}"
group = "{group}"
topic = "{topic}"
[actuators]
app_faults = "{{target}}/admin/faults"
{extra}
"#,
        url = app.url,
        kafka = stack_env("HARNESS_KAFKA"),
        group = app.config.consumer_group,
        topic = app.config.coupon_topic,
    )
}

async fn app_faults(app: &TestApp) -> serde_json::Value {
    app.http
        .get(format!("{}/admin/faults", app.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn proxy_toxics(proxy: &str) -> Vec<serde_json::Value> {
    let api = stack_env("HARNESS_PROXY_API");
    reqwest::get(format!("{api}/proxies/{proxy}/toxics"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn assert_all_rolled_back(sum: &serde_json::Value, at_least: usize) {
    let faults = sum["faults"].as_array().unwrap();
    assert!(
        faults.len() >= at_least,
        "expected ≥{at_least} journaled faults: {faults:?}"
    );
    for f in faults {
        assert!(
            f["rolled_back_at"].is_string() && f["rollback_error"].is_null(),
            "not rolled back: {f}"
        );
        assert!(f["rolled_back_s"].as_f64().unwrap() >= f["applied_s"].as_f64().unwrap());
    }
}

/// The default evaluator is the k6-thresholds plugin, and it judges exactly like the rules
/// compiled into the harness on the same summary.
#[test]
fn k6_plugin_agrees_with_the_native_rules() {
    let defs: Vec<k6_rules::ThresholdDef> = [
        ("http_req_failed", "rate<0.05"),
        ("http_req_duration", "p(95)<2000"),
        ("http_req_duration{name:order}", "p(99.9)<=2500"),
        ("http_req_duration", "avg<100"),
        ("http_reqs", "count>=100"),
        ("coupon_issue_success", "rate>0.97"),
        ("kafka_consumer_lag", "max<5000"),
        ("db_pool_pending", "value<1"),
        ("nothing", "max<1"),
    ]
    .iter()
    .map(|(m, t)| k6_rules::ThresholdDef {
        metric: (*m).into(),
        threshold: (*t).into(),
        abort_on_fail: false,
        delay_abort_eval_s: 0.0,
    })
    .collect();
    let req = |name: &str, n: u64| k6_rules::RequestStats {
        name: name.into(),
        count: n,
        failed: n / 20,
        latency_ms: (1..=n).map(|i| (i as f64 * 7.3, 1)).collect(),
        statuses: vec![(201, n - n / 20), (503, n / 20)],
    };
    let sum = k6_rules::Summary {
        elapsed_s: 30.0,
        requests: vec![req("(all)", 400), req("order", 300)],
        dropped_iterations: 0,
        rates: vec![k6_rules::RateMetric {
            name: "coupon_issue_success".into(),
            good: 960,
            total: 1000,
        }],
        series: vec![
            k6_rules::Series {
                name: "kafka_consumer_lag".into(),
                points: vec![(1.0, 10.0), (2.0, 6850.0)],
            },
            k6_rules::Series {
                name: "db_pool_pending".into(),
                points: vec![(1.0, 346.0), (2.0, 0.0)],
            },
        ],
    };
    let config = serde_json::json!({ "thresholds": defs.iter().map(|d| serde_json::json!({"metric": d.metric, "threshold": d.threshold})).collect::<Vec<_>>() });
    let mut p = ThresholdPlugin::start(
        std::path::Path::new(&plugin("k6-thresholds.wasm")),
        &config.to_string(),
        Limits::default(),
    )
    .unwrap();
    let from_plugin = p.evaluate(&sum).unwrap();
    let native = k6_rules::evaluate(&defs, &sum);
    assert_eq!(from_plugin, native);
    // 20 of 400 failed is 5%, not < 5%; p95 is rank 380 → 2774 ms; p(99.9) of order is 2190 ms.
    assert_eq!(
        native.iter().map(|v| v.passed).collect::<Vec<_>>(),
        vec![false, false, true, false, true, false, false, true, false]
    );
    // A config the rules reject is a configure error naming the plugin.
    let bad = ThresholdPlugin::start(
        std::path::Path::new(&plugin("k6-thresholds.wasm")),
        r#"{"thresholds":[{"metric":"x","threshold":"p95<1"}]}"#,
        Limits::default(),
    );
    let e = bad.err().unwrap().to_string();
    assert!(
        e.contains("k6-thresholds") && e.contains("configure") && e.contains("p95"),
        "{e}"
    );
}

/// Each misbehaving threshold plugin ends the run with exit 3 and a message naming it and
/// what it did, while a fault plugin's fault is active — and that fault is rolled back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_plugins_exit_3_by_name_and_faults_are_rolled_back() {
    let app = TestApp::start(Preset::Incident, |_| {}).await;
    let cases = [
        ("trap.wasm", "hit `unreachable`"),
        ("spin.wasm", "ran out of fuel"),
        ("hog.wasm", "memory"),
        ("malformed.wasm", "malformed output"),
        ("abi2.wasm", "harness:plugin@2.0.0"),
    ];
    for (fixture, expect) in cases {
        let extra = format!(
            "[[threshold_plugins]]\nplugin = \"{}\"\n[[faults]]\nplugin = \"{}\"\nconfig = {{ hold_ms = 120 }}\n",
            plugin(&format!("fixtures/{fixture}")),
            plugin("lock-contention.wasm")
        );
        let started = std::time::Instant::now();
        let (_dir, out, o) =
            run_in_temp("badplugin", &app_scenario(&app, 20, 20, false, &extra)).await;
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(3), "{fixture}: {stderr}");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{fixture} took {:?}",
            started.elapsed()
        );
        let sum = summary(&out);
        let reason = sum["reason"].as_str().unwrap();
        let name = fixture.trim_end_matches(".wasm");
        assert!(
            reason.contains(&format!("plugin {name}")) && reason.contains(expect),
            "{fixture}: {reason}"
        );
        assert_eq!(sum["status"], "error");
        if fixture != "abi2.wasm" {
            assert_all_rolled_back(&sum, 1);
        }
        assert_eq!(
            app_faults(&app).await["order_hold_ms"],
            0,
            "{fixture} left the fault on"
        );
        assert!(run_dir(&out).join("report.html").is_file());
    }
    // Not a component at all.
    let dir = temp_dir("notwasm");
    let junk = dir.join("junk.wasm");
    std::fs::write(&junk, b"definitely not wasm").unwrap();
    let file = scenario(
        &dir,
        "s.toml",
        &app_scenario(
            &app,
            10,
            5,
            false,
            &format!("[[threshold_plugins]]\nplugin = \"{}\"\n", s(&junk)),
        ),
    );
    let o = harness(args(&[
        "run",
        &s(&file),
        "--out",
        &s(&dir.join("out")),
        "--quiet",
    ]))
    .await;
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("plugin junk: not a WebAssembly component"));
    app.stop().await;
}

/// A fault plugin that traps after applying an app fault and a relay toxic: both are undone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_plugin_trap_rolls_back_app_fault_and_toxic() {
    let app = TestApp::start(Preset::Incident, |_| {}).await;
    let extra = format!(
        "[[faults]]\nplugin = \"{}\"\nconfig = {{ proxy = \"mariadb\" }}\n",
        plugin("fixtures/fault-trap.wasm")
    );
    let (_dir, out, o) = run_in_temp("faulttrap", &app_scenario(&app, 20, 20, false, &extra)).await;
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let sum = summary(&out);
    assert!(
        sum["reason"]
            .as_str()
            .unwrap()
            .contains("plugin fault-trap: on-tick trapped"),
        "{}",
        sum["reason"]
    );
    assert_all_rolled_back(&sum, 2);
    let kinds: Vec<&str> = sum["faults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["app", "toxic"]);
    assert_eq!(app_faults(&app).await["order_hold_ms"], 0);
    assert!(proxy_toxics("mariadb").await.is_empty());
    app.stop().await;
}

/// SIGINT while faults are active: exit 130, faults gone (app API and relay API), a partial
/// report listing them as rolled back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_with_faults_active_rolls_back_and_exits_130() {
    let app = TestApp::start(Preset::Incident, |_| {}).await;
    let dir = temp_dir("sigintfaults");
    let extra = format!(
        "[[faults]]\nplugin = \"{}\"\nconfig = {{ hold_ms = 50 }}\n[[faults]]\nplugin = \"{}\"\nconfig = {{ insert_delay_ms = 20, db_latency_ms = 5 }}\n",
        plugin("lock-contention.wasm"),
        plugin("slow-inserts.wasm")
    );
    let file = scenario(&dir, "s.toml", &app_scenario(&app, 20, 60, true, &extra));
    let out = dir.join("out");
    let o = run_then_interrupt(&file, &out, Duration::from_secs(4)).await;
    assert_eq!(
        o.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let sum = summary(&out);
    assert_eq!(sum["status"], "interrupted");
    assert_all_rolled_back(&sum, 3);
    let f = app_faults(&app).await;
    assert_eq!(
        (
            f["order_hold_ms"].as_u64(),
            f["consumer_insert_delay_ms"].as_u64()
        ),
        (Some(0), Some(0)),
        "{f}"
    );
    assert!(proxy_toxics("mariadb").await.is_empty());
    let md = std::fs::read_to_string(run_dir(&out).join("report.md")).unwrap();
    assert!(
        md.contains("order_hold_ms") && md.contains("rolled back"),
        "{md}"
    );
    app.stop().await;
}

/// lock-contention on the incident preset: pool pending and acquire timeouts rise during the
/// fault window, visibly in the probe series, and are flat before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_contention_raises_pool_pending_and_timeouts() {
    let app = TestApp::start(Preset::Incident, |_| {}).await;
    let extra = format!(
        "[[faults]]\nplugin = \"{}\"\nconfig = {{ at_s = 3, duration_s = 9, hold_ms = 1000 }}\n",
        plugin("lock-contention.wasm")
    );
    let (_dir, out, o) = run_in_temp("lockcont", &app_scenario(&app, 60, 14, false, &extra)).await;
    assert!(
        matches!(o.status.code(), Some(0) | Some(99)),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let sum = summary(&out);
    assert_all_rolled_back(&sum, 1);
    let peaks = &sum["series_peaks"];
    assert!(
        peaks["db_pool_pending"].as_f64().unwrap() >= 50.0,
        "{peaks}"
    );
    assert!(
        peaks["db_pool_acquire_timeouts_total"].as_f64().unwrap() >= 1.0,
        "{peaks}"
    );
    let csv = std::fs::read_to_string(run_dir(&out).join("timeseries.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = header
        .iter()
        .position(|h| *h == "db_pool_pending")
        .expect("pending column");
    let before: f64 = csv
        .lines()
        .skip(1)
        .take(2)
        .filter_map(|l| l.split(',').nth(col)?.parse::<f64>().ok())
        .fold(0.0, f64::max);
    assert!(before <= 5.0, "pending before the fault: {before}");
    assert_eq!(app_faults(&app).await["order_hold_ms"], 0);
    app.stop().await;
}

/// slow-inserts: the consumer falls behind while each insert is slowed, and the lag rises.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_inserts_raise_consumer_lag() {
    let app = TestApp::start(Preset::Incident, |_| {}).await;
    let extra = format!(
        "[[faults]]\nplugin = \"{}\"\nconfig = {{ at_s = 1, insert_delay_ms = 200 }}\n",
        plugin("slow-inserts.wasm")
    );
    let (_dir, out, o) = run_in_temp("slowins", &app_scenario(&app, 60, 10, true, &extra)).await;
    assert!(
        matches!(o.status.code(), Some(0) | Some(99)),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let sum = summary(&out);
    assert_all_rolled_back(&sum, 1);
    assert_eq!(
        sum["faults"][0]["target"]
            .as_str()
            .unwrap()
            .split(' ')
            .next(),
        Some("consumer_insert_delay_ms")
    );
    // 3 partitions × 5 inserts/s = 15/s against 60/s offered.
    let lag = sum["series_peaks"]["kafka_consumer_lag"].as_f64().unwrap();
    assert!(lag >= 200.0, "lag peak {lag}");
    assert_eq!(app_faults(&app).await["consumer_insert_delay_ms"], 0);
    app.stop().await;
}

/// SIGTERM (what CI runners and orchestrators send) ends a run like Ctrl-C: the load-side fault
/// (hot-key share) is rolled back, a partial report is written, exit 130.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_rolls_back_a_load_side_fault_and_exits_130() {
    let server = TestServer::start().await;
    let dir = temp_dir("sigterm");
    let text = hot_product_with_fault(
        &server.url,
        40,
        60,
        r#"http_req_failed = ["rate<0.05"]"#,
        std::path::Path::new(&plugin("lock-contention.wasm")),
        "hot_share = 1.0, at_s = 1",
    );
    let file = scenario(&dir, "s.toml", &text);
    let out = dir.join("out");
    let o = run_then_signal(&file, &out, Duration::from_secs(4), libc::SIGTERM).await;
    assert_eq!(
        o.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let sum = summary(&out);
    assert_eq!(sum["status"], "interrupted");
    assert_all_rolled_back(&sum, 1);
    assert_eq!(sum["faults"][0]["kind"], "hot-share");
    assert!(
        server.count("/b/1") > 10,
        "the skew was live before the signal"
    );
}

/// The harness knows no application's fault API: a fault plugin that would set an app fault in
/// a scenario without `[actuators].app_faults` is a scenario error (exit 2) naming the plugin,
/// the field and where the plugin is declared, from `validate` and `run` alike — and nothing
/// is sent, no report written.
#[tokio::test]
async fn a_fault_plugin_without_its_actuator_is_refused_before_any_load() {
    let server = TestServer::start().await;
    let fault = format!(
        "[[faults]]\nplugin = \"{}\"\nconfig = {{ at_s = 3, duration_s = 2, hold_ms = 100 }}\n",
        plugin("lock-contention.wasm")
    );
    let text = format!("{}{fault}", basic(&server.url, 20, 6, ""));
    let line = text
        .lines()
        .position(|l| l.starts_with("plugin = "))
        .unwrap()
        + 1;
    let (dir, out, o) = run_in_temp("no-actuator", &text).await;
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    let expected = format!("s.toml:{line}:10: actuators.app_faults: fault plugin lock-contention sets app fault `order_hold_ms`");
    assert!(
        stderr.contains(&expected),
        "wanted `{expected}` in: {stderr}"
    );
    let v = harness(args(&[
        "validate",
        &dir.join("s.toml").display().to_string(),
    ]))
    .await;
    let v_err = String::from_utf8_lossy(&v.stderr);
    assert_eq!(v.status.code(), Some(2), "{v_err}");
    assert!(v_err.contains(&expected), "{v_err}");
    assert_eq!(server.total(), 0, "nothing may be sent");
    assert!(
        !out.exists() || std::fs::read_dir(&out).unwrap().next().is_none(),
        "no report"
    );
}

/// A plugin problem names where the plugin is declared: a config value of the wrong type is
/// the file's mistake (exit 2, file:line:column and the key), a missing plugin file the world's
/// (exit 3, with the same place); nothing is sent either way.
#[tokio::test]
async fn plugin_errors_name_the_scenario_entry_and_config_errors_exit_2() {
    let server = TestServer::start().await;
    let entry = |path: &str, config: &str| {
        format!("[[faults]]\nplugin = \"{path}\"\nconfig = {{ {config} }}\n")
    };
    let bad_config = format!(
        "{}[actuators]\napp_faults = \"{{target}}/faults\"\n{}",
        basic(&server.url, 20, 2, ""),
        entry(&plugin("lock-contention.wasm"), "hold_ms = \"lots\"")
    );
    let line = bad_config
        .lines()
        .position(|l| l.starts_with("plugin = "))
        .unwrap()
        + 1;
    let (_d, _out, o) = run_in_temp("bad-config", &bad_config).await;
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let expected = format!("s.toml:{line}:10: faults.plugin: plugin lock-contention: configure rejected its config: config `hold_ms` must be a number");
    assert!(err.contains(&expected), "wanted `{expected}` in: {err}");

    let missing = format!(
        "{}{}",
        basic(&server.url, 20, 2, ""),
        entry("/nonexistent/x.wasm", "at_s = 1")
    );
    let line = missing
        .lines()
        .position(|l| l.starts_with("plugin = "))
        .unwrap()
        + 1;
    let (_d, _out, o) = run_in_temp("missing-plugin", &missing).await;
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    let expected =
        format!("s.toml:{line}:10: faults.plugin: plugin x: cannot read /nonexistent/x.wasm");
    assert!(err.contains(&expected), "wanted `{expected}` in: {err}");
    assert_eq!(server.total(), 0);
}
