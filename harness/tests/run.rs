//! `harness run` end to end against a tiny in-test server: exact counts, verdicts and exit
//! codes, bad input, a dead or dying target, unreachable probes, abort-on-fail, Ctrl-C.

mod common;

use std::process::Command;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use common::*;

fn s(p: &std::path::Path) -> String {
    p.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_counts_equal_server_counts_and_thresholds_pass() {
    let server = TestServer::start().await;
    let dir = temp_dir("counts");
    let file = scenario(
        &dir,
        "s.toml",
        &basic(
            &server.url,
            200,
            2,
            r#"http_req_failed = ["rate<0.01"]
http_reqs = ["count==400"]
"http_req_duration{name:a}" = ["p(95)<500"]"#,
        ),
    );
    let out = dir.join("out");
    let o = harness(args(&["run", &s(&file), "--out", &s(&out), "--quiet"])).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let sum = summary(&out);
    assert_eq!(sum["totals"]["http_reqs"], 400);
    assert_eq!(
        sum["totals"]["http_reqs"].as_u64().unwrap(),
        server.total(),
        "client and server counts differ"
    );
    let a: u64 = (1..=400).map(|i| server.count(&format!("/a/{i}"))).sum();
    let row = |n: &str| {
        sum["requests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(row("a")["count"].as_u64().unwrap(), a);
    assert_eq!(row("b")["count"].as_u64().unwrap(), server.count("/b"));
    assert_eq!(a, 300, "weights 3:1 over 400 iterations");
    assert_eq!(sum["status"], "passed");
    let junit = std::fs::read_to_string(run_dir(&out).join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase").count(), 3);
    assert!(!junit.contains("<failure"));
    let csv = std::fs::read_to_string(run_dir(&out).join("timeseries.csv")).unwrap();
    let rows: u64 = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(rows, 400, "per-second rows add up to the total");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_thresholds_exit_99_with_junit_failures() {
    let server = TestServer::start().await;
    server.state.status.store(503, Relaxed);
    let dir = temp_dir("fail");
    let file = scenario(
        &dir,
        "s.toml",
        &basic(
            &server.url,
            50,
            1,
            r#"http_req_failed = ["rate<0.05"]
"http_req_duration{name:b}" = ["p(95)<2000"]"#,
        ),
    );
    let out = dir.join("out");
    let o = harness(args(&["run", &s(&file), "--out", &s(&out), "--quiet"])).await;
    assert_eq!(
        o.status.code(),
        Some(99),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let sum = summary(&out);
    assert_eq!(sum["status"], "failed");
    let failed: Vec<_> = sum["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["passed"] == false)
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["metric"], "http_req_failed");
    assert_eq!(failed[0]["observed"], 1.0);
    let junit = std::fs::read_to_string(run_dir(&out).join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<failure").count(), 1);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("FAIL") && stdout.contains("✗"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_scenario_exits_2_and_sends_nothing() {
    let server = TestServer::start().await;
    let dir = temp_dir("invalid");
    let text = basic(&server.url, 50, 1, r#"http_req_failed = ["rate<<0.05"]"#);
    let file = scenario(&dir, "bad.toml", &text);
    let out = dir.join("out");
    let o = harness(args(&["run", &s(&file), "--out", &s(&out)])).await;
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    let line = text.lines().position(|l| l.contains("rate<<")).unwrap() + 1;
    assert!(
        err.contains(&format!("bad.toml:{line}:"))
            && err.contains("http_req_failed")
            && err.contains("invalid threshold"),
        "{err}"
    );
    assert_eq!(server.total(), 0, "no traffic for an invalid scenario");
    assert!(!out.exists(), "no report for a scenario that never ran");

    let v = harness(args(&["validate", &s(&file)])).await;
    assert_eq!(v.status.code(), Some(2));
    let good = scenario(
        &dir,
        "good.toml",
        &basic(&server.url, 50, 1, r#"http_req_failed = ["rate<0.05"]"#),
    );
    let v = harness(args(&["validate", &s(&good)])).await;
    assert_eq!(
        v.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&v.stderr)
    );
    let v = harness(args(&["run", &s(&good), "--time-scale", "0"])).await;
    assert_eq!(v.status.code(), Some(2));
    assert_eq!(server.total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_target_exits_3_with_a_report() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = temp_dir("dead");
    let file = scenario(
        &dir,
        "s.toml",
        &basic(
            &format!("http://127.0.0.1:{port}"),
            50,
            1,
            r#"http_req_failed = ["rate<0.05"]"#,
        ),
    );
    let out = dir.join("out");
    let started = std::time::Instant::now();
    let o = harness(args(&["run", &s(&file), "--out", &s(&out)])).await;
    assert_eq!(o.status.code(), Some(3));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "a dead target is reported, not waited on"
    );
    let sum = summary(&out);
    assert_eq!(sum["status"], "error");
    assert!(
        sum["reason"].as_str().unwrap().contains("does not answer"),
        "{}",
        sum["reason"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_dying_mid_run_is_counted_and_reported() {
    let mut server = TestServer::start().await;
    let dir = temp_dir("dies");
    let file = scenario(
        &dir,
        "s.toml",
        &basic(&server.url, 100, 3, r#"http_req_failed = ["rate<0.05"]"#),
    );
    let out = dir.join("out");
    let run = tokio::spawn(harness(args(&[
        "run",
        &s(&file),
        "--out",
        &s(&out),
        "--quiet",
    ])));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill().await;
    let o = run.await.unwrap();
    assert_eq!(
        o.status.code(),
        Some(99),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let sum = summary(&out);
    assert_eq!(
        sum["totals"]["http_reqs"], 300,
        "every scheduled request is accounted for"
    );
    let failed = sum["totals"]["http_req_failed"].as_u64().unwrap();
    let conn = sum["totals"]["connect_errors"].as_u64().unwrap()
        + sum["totals"]["timeouts"].as_u64().unwrap();
    assert!(
        failed > 50 && conn > 0,
        "failures after the target died: {}",
        sum["totals"]
    );
    assert_eq!(server.total() + failed, 300, "answered + failed = sent");
}

/// A probe that does not answer is found before the first request: exit 3, nothing sent, and
/// a report that says which probe and why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_probes_stop_the_run_before_any_load() {
    let server = TestServer::start().await;
    let dir = temp_dir("probes");
    let port = closed_port();
    let probes = [
        (format!("[probes.prometheus]\nurl = \"http://127.0.0.1:{port}/metrics\"\nseries = [\"x\"]\n"), "probe prometheus http://127.0.0.1"),
        (format!("[probes.kafka]\nbootstrap = \"127.0.0.1:{port}\"\ngroup = \"g\"\ntopic = \"t\"\n"), "probe kafka lag t (group g) at 127.0.0.1"),
    ];
    for (i, (probe, named)) in probes.iter().enumerate() {
        let text = format!(
            "{}\n{probe}",
            basic(&server.url, 50, 2, r#"http_req_failed = ["rate<0.05"]"#)
        );
        let file = scenario(&dir, &format!("s{i}.toml"), &text);
        let out = dir.join(format!("out{i}"));
        let o = harness(args(&["run", &s(&file), "--out", &s(&out), "--quiet"])).await;
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(3), "{err}");
        assert!(err.contains(named), "wanted `{named}` in: {err}");
        let sum = summary(&out);
        assert_eq!(sum["status"], "error");
        assert!(
            sum["reason"].as_str().unwrap().contains(named),
            "{}",
            sum["reason"]
        );
    }
    assert_eq!(
        server.total(),
        0,
        "nothing may be sent before the probes answer"
    );
}

/// A scenario probing the test server's `/metrics` (series `queue_depth`, a gate on it).
fn probed(server: &TestServer, secs: u32, series: &str) -> String {
    let gate = format!("\"{series}\" = [\"max<10\"]");
    format!(
        "{}\n[probes.prometheus]\nurl = \"{}/metrics\"\nseries = [\"{series}\"]\n",
        basic(&server.url, 20, secs, &gate),
        server.url
    )
}

/// A probe that hangs, answers garbage or loses its series after the preflight turns a passing
/// run into exit 99: its gate fails with "insufficient data (n of m samples, last error …)".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_that_goes_bad_mid_run_fails_its_gate_with_insufficient_data() {
    let modes = [
        ("garbage", Metrics::Garbage),
        ("hang", Metrics::Hang),
        ("missing", Metrics::Missing),
    ];
    let runs = modes.into_iter().map(|(tag, mode)| async move {
        let server = TestServer::start().await;
        let (_dir, out, o) = {
            let text = probed(&server, 8, "queue_depth");
            let run = run_in_temp(tag, &text);
            tokio::pin!(run);
            tokio::select! {
                r = &mut run => panic!("{tag}: the run ended before the probe went bad: {:?}", r.2),
                _ = tokio::time::sleep(Duration::from_millis(1500)) => server.state.set_metrics(mode),
            }
            run.await
        };
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(o.status.code(), Some(99), "{tag}: {err}");
        let sum = summary(&out);
        let v = &sum["thresholds"][0];
        assert_eq!((v["metric"].as_str(), v["passed"].as_bool()), (Some("queue_depth"), Some(false)), "{tag}: {v}");
        let why = v["reason"].as_str().unwrap();
        assert!(why.starts_with("insufficient data (") && why.contains(" samples, last error: "), "{tag}: {why}");
        assert!(server.total() > 0);
    });
    // Concurrently: three runs of 8 s take 8 s, not 24.
    let handles: Vec<_> = runs.map(tokio::spawn).collect();
    for h in handles {
        h.await.unwrap();
    }
}

/// A series the scrape does not have is refused before any load, with the names closest to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_series_is_refused_at_preflight_with_near_matches() {
    let server = TestServer::start().await;
    let (_dir, out, o) = run_in_temp("missing-series", &probed(&server, 2, "queue_dept")).await;
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("series `queue_dept` is not in the scrape (near matches: queue_depth"),
        "{err}"
    );
    assert_eq!(server.total(), 0);
    assert_eq!(summary(&out)["status"], "error");
}

/// `--out` that cannot be written is found before the first request: exit 3, nothing sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_out_dir_is_exit_3_before_any_request() {
    let server = TestServer::start().await;
    let dir = temp_dir("unwritable");
    let file = scenario(&dir, "s.toml", &basic(&server.url, 20, 2, ""));
    let blocker = scenario(&dir, "a-file", "");
    for out in [
        blocker.join("reports"),
        "/proc/harness-cannot-write-here".into(),
    ] {
        let o = harness(args(&["run", &s(&file), "--out", &s(&out), "--quiet"])).await;
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(3), "{err}");
        assert!(err.contains("cannot write"), "{err}");
    }
    assert_eq!(
        server.total(),
        0,
        "no request before the run directory is written"
    );
}

/// A database URL that does not parse is the file's fault (exit 2, placed), one that refuses
/// connections the world's (exit 3, named) — both before the first request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_urls_are_parsed_and_connected_before_any_load() {
    let server = TestServer::start().await;
    let dir = temp_dir("db-preflight");
    let check = |url: &str| {
        format!(
            "{}\n[[sql_checks]]\nname = \"rows\"\ndatabase_url = \"{url}\"\nquery = \"SELECT 1\"\nexpect = 1\n",
            basic(&server.url, 20, 2, "")
        )
    };
    let bad = scenario(&dir, "bad.toml", &check("mysql//no-scheme"));
    let o = harness(args(&["validate", &s(&bad)])).await;
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bad.toml:")
            && err.contains(
                "sql_checks.database_url: check `rows`: `mysql//no-scheme` is not a MySQL or \
                 PostgreSQL URL: its scheme must be"
            ),
        "{err}"
    );

    let from_env = scenario(&dir, "env.toml", &check("{env:HARNESS_TEST_BAD_DB_URL}"));
    let o = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args([
            "run",
            &s(&from_env),
            "--out",
            &s(&dir.join("out-env")),
            "--quiet",
        ])
        .env("HARNESS_TEST_BAD_DB_URL", "mysql//no-scheme")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("env.toml:") && err.contains("is not a MySQL or PostgreSQL URL"),
        "{err}"
    );

    let refused = format!("mysql://root@127.0.0.1:{}/test", closed_port());
    let file = scenario(&dir, "refused.toml", &check(&refused));
    let out = dir.join("out");
    let o = harness(args(&["run", &s(&file), "--out", &s(&out), "--quiet"])).await;
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!(
            "sql check `rows`: database {refused}: cannot connect"
        )),
        "{err}"
    );
    assert_eq!(
        server.total(),
        0,
        "no request before every database answered"
    );
    assert_eq!(summary(&out)["status"], "error");
}

/// The same mistake gets the same answer wherever it comes from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_mistake_gets_the_same_exit_code_from_the_file_a_flag_or_the_environment() {
    let server = TestServer::start().await;
    let dir = temp_dir("one-answer");
    let file = scenario(&dir, "s.toml", &basic(&server.url, 20, 2, ""));
    let o = harness(args(&[
        "run",
        &s(&file),
        "--target",
        "ftp://127.0.0.1:21",
        "--quiet",
    ]))
    .await;
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "target `ftp://127.0.0.1:21` is not an http:// or https:// URL (from --target)"
        ),
        "{err}"
    );
    let ftp = scenario(&dir, "ftp.toml", &basic("ftp://127.0.0.1:21", 20, 2, ""));
    let o = harness(args(&["validate", &s(&ftp)])).await;
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = harness(args(&["run", &s(&file), "--time-scale", "1e-9", "--quiet"])).await;
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--time-scale 0.000000001 makes the stages last"),
        "{err}"
    );
    let mut bytes = basic(&server.url, 20, 2, "").into_bytes();
    let at = bytes.len();
    bytes.extend_from_slice(b"# caf\xe9\n");
    let latin1 = dir.join("latin1.toml");
    std::fs::write(&latin1, &bytes).unwrap();
    let o = harness(args(&["validate", &s(&latin1)])).await;
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "not UTF-8: invalid byte 0xe9 at byte offset {}",
            at + 5
        )),
        "{err}"
    );
    let json = basic(&server.url, 20, 2, "")
        .replace(r#"body = '{"id": {{id}}}'"#, r#"body = '{"id": {{id}}'"#);
    let o = harness(args(&["validate", &s(&scenario(&dir, "json.toml", &json))])).await;
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "requests.body: the body is sent as application/json but is not JSON once expanded"
        ),
        "{err}"
    );
    assert_eq!(server.total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_on_fail_stops_the_run_early() {
    let server = TestServer::start().await;
    server.state.status.store(500, Relaxed);
    let dir = temp_dir("abort");
    let file = scenario(
        &dir,
        "s.toml",
        &basic(
            &server.url,
            50,
            30,
            r#"http_req_failed = [{ threshold = "rate<0.01", abortOnFail = true, delayAbortEval = "1s" }]"#,
        ),
    );
    let out = dir.join("out");
    let started = std::time::Instant::now();
    let o = harness(args(&["run", &s(&file), "--out", &s(&out), "--quiet"])).await;
    assert_eq!(o.status.code(), Some(99));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "aborted after {:?}",
        started.elapsed()
    );
    let sum = summary(&out);
    assert_eq!(sum["status"], "aborted");
    assert!(sum["reason"].as_str().unwrap().contains("http_req_failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_writes_a_partial_report_and_exits_130() {
    let server = TestServer::start().await;
    let dir = temp_dir("sigint");
    let file = scenario(
        &dir,
        "s.toml",
        &basic(&server.url, 50, 30, r#"http_req_failed = ["rate<0.05"]"#),
    );
    let out = dir.join("out");
    let o = run_then_interrupt(&file, &out, Duration::from_secs(2)).await;
    assert_eq!(
        o.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let sum = summary(&out);
    assert_eq!(sum["status"], "interrupted");
    let sent = sum["totals"]["http_reqs"].as_u64().unwrap();
    assert!(sent > 0 && sent < 1500, "partial: {sent}");
    assert_eq!(sent, server.total());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_during_a_goose_run_is_an_interrupt_too() {
    let server = TestServer::start().await;
    let dir = temp_dir("vusigint");
    let text = basic(&server.url, 1, 1, r#"http_req_failed = ["rate<0.01"]"#).replace(
        "type = \"arrival-rate\"\nstart_rate = 1\nmax_in_flight = 500\nstages = [ { duration = \"1s\", target = 1 } ]",
        "type = \"vus\"\nthink_time = \"10ms\"\nstages = [ { duration = \"30s\", target = 3 } ]",
    );
    let file = scenario(&dir, "s.toml", &text);
    let out = dir.join("out");
    let o = run_then_interrupt(&file, &out, Duration::from_secs(3)).await;
    assert_eq!(
        o.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(summary(&out)["status"], "interrupted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_users_via_goose_count_exactly() {
    let server = TestServer::start().await;
    server.state.delay_ms.store(20, Relaxed);
    let dir = temp_dir("vus");
    let text = basic(&server.url, 1, 1, r#"http_req_failed = ["rate<0.01"]
vus = ["max>=4"]"#)
    .replace(
        "type = \"arrival-rate\"\nstart_rate = 1\nmax_in_flight = 500\nstages = [ { duration = \"1s\", target = 1 } ]",
        "type = \"vus\"\nstart_vus = 2\nstages = [ { duration = \"2s\", target = 4 }, { duration = \"1s\", target = 4 } ]",
    );
    assert!(text.contains("type = \"vus\""), "{text}");
    let file = scenario(&dir, "s.toml", &text);
    let out = dir.join("out");
    let o = harness(args(&["run", &s(&file), "--out", &s(&out), "--quiet"])).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let sum = summary(&out);
    let sent = sum["totals"]["http_reqs"].as_u64().unwrap();
    assert!(sent > 50, "2-4 VUs × 3 s at ~20 ms per request: {sent}");
    assert_eq!(sent, server.total(), "client and server counts differ");
    assert_eq!(sum["scenario"]["executor"], "vus");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_json_validates_against_its_schema() {
    let server = TestServer::start().await;
    let dir = temp_dir("schema");
    let file = scenario(
        &dir,
        "s.toml",
        &basic(
            &server.url,
            20,
            1,
            r#"http_req_failed = ["rate<0.05"]
"http_req_duration{name:a}" = ["p(95)<1000"]"#,
        ),
    );
    let out = dir.join("out");
    let o = harness(args(&["run", &s(&file), "--out", &s(&out), "--quiet"])).await;
    assert_eq!(o.status.code(), Some(0));
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../schema/summary.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let sum = summary(&out);
    let errors: Vec<String> = validator
        .iter_errors(&sum)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // The schema is not a rubber stamp: a wrong status is refused.
    let mut broken = sum.clone();
    broken["status"] = serde_json::json!("fine");
    assert!(!validator.is_valid(&broken));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shipped_scenario_validates() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| s(&p))
        .collect();
    assert!(files.len() >= 2, "{files:?}");
    let mut a = vec!["validate".to_owned()];
    a.extend(files);
    let o = harness(a).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A typo of three zeros too many: a stage over `[limits]` is refused before any load with the
/// totals it would have sent, from `run` and `validate` alike; `[limits]` raises the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stage_over_the_rate_limit_is_refused_with_its_totals_and_sends_nothing() {
    let server = TestServer::start().await;
    let dir = temp_dir("huge");
    let text = basic(&server.url, 4_000_000_000, 2, "");
    let file = scenario(&dir, "huge.toml", &text);
    let out = dir.join("out");
    let line = text.lines().position(|l| l.starts_with("stages")).unwrap() + 1;
    let expected = format!(
        "huge.toml:{line}:1: executor.stages: stage 1 asks for 4000000000 requests/s = \
         8000000000 requests in 2 s, over [limits].max_rate = 100000; raise it in [limits] or \
         pass --allow-huge"
    );
    let run = args(&["run", &s(&file), "--out", &s(&out)]);
    let validate = args(&["validate", &s(&file)]);
    for (cmd, argv) in [("run", run), ("validate", validate)] {
        let o = harness(argv).await;
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{cmd}: {err}");
        assert!(
            err.contains(&expected),
            "{cmd}: wanted `{expected}` in: {err}"
        );
    }
    assert_eq!(server.total(), 0, "nothing may be sent");
    assert!(!out.exists(), "no report for a run that never started");

    let long = basic(&server.url, 10, 90_000, "");
    let o = harness(args(&["validate", &s(&scenario(&dir, "long.toml", &long))])).await;
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("the stages add up to 90000s, over [limits].max_duration = 86400s"),
        "{err}"
    );

    let raised = format!("{text}\n[limits]\nmax_rate = 5000000000\n");
    let o = harness(args(&[
        "validate",
        &s(&scenario(&dir, "raised.toml", &raised)),
    ]))
    .await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// With `--allow-huge` a 4,000,000,000/s stage runs: what cannot be sent is counted as dropped
/// (computed, not one by one), and SIGINT stops it at once (exit 130 within 2 s). The child is
/// killed after 60 s whatever happens, so the test is bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_during_a_four_billion_per_second_stage_exits_130_within_2_s() {
    let server = TestServer::start().await;
    let dir = temp_dir("huge-sigint");
    let file = scenario(
        &dir,
        "huge.toml",
        &basic(&server.url, 4_000_000_000, 30, ""),
    );
    let out = dir.join("out");
    let mut child = spawn_run(&file, &out, &["--allow-huge"]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let signalled = std::time::Instant::now();
    let status = exit_within_a_minute(&mut child, signalled).await;
    let took = signalled.elapsed();
    assert_eq!(status.code(), Some(130));
    assert!(
        took < Duration::from_secs(2),
        "exited {took:?} after SIGINT"
    );
    let sum = summary(&out);
    assert_eq!(sum["status"], "interrupted");
    let dropped = sum["totals"]["dropped_iterations"].as_u64().unwrap();
    let sent = sum["totals"]["http_reqs"].as_u64().unwrap();
    assert!(
        dropped > 1_000_000_000,
        "dropped {dropped}: arrivals due in ~3 s at 4e9/s"
    );
    assert!(
        sent > 0 && sent == server.total(),
        "sent {sent}, server saw {}",
        server.total()
    );
}

/// The first SIGINT stops new requests and would wait up to 30 s for the ones in flight (a
/// target answering in 20 s); a second one stops the wait at once — the load-side fault is
/// still rolled back and the partial report written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigint_stops_the_drain_at_once_and_still_rolls_faults_back() {
    let server = TestServer::start().await;
    let dir = temp_dir("second-sigint");
    let plugin = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/build/lock-contention.wasm");
    assert!(
        plugin.is_file(),
        "build the plugins with `make plugins` (make test does)"
    );
    let text = hot_product_with_fault(
        &server.url,
        20,
        30,
        "",
        &plugin,
        "at_s = 0, hot_share = 0.5",
    )
    .replace("timeout = \"2s\"", "timeout = \"25s\"");
    let file = scenario(&dir, "s.toml", &text);
    let out = dir.join("out");
    let mut child = spawn_run(&file, &out, &[]);
    // Once the preflight passed, the target starts answering in 20 s.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.state.delay_ms.store(20_000, Relaxed);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let first = std::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "the first SIGINT waits for requests in flight"
    );
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = exit_within_a_minute(&mut child, first).await;
    let took = first.elapsed();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(
        took < Duration::from_secs(3),
        "exited {took:?} after the first SIGINT: {err}"
    );
    assert!(err.contains("interrupted again"), "{err}");
    let sum = summary(&out);
    let faults = sum["faults"].as_array().unwrap();
    assert!(!faults.is_empty(), "the hot-share fault was applied");
    assert!(
        faults.iter().all(|f| f["rolled_back_s"].is_number()),
        "{faults:?}"
    );
}

/// Ctrl-C while the preflight still waits for a slow target is not lost and does not kill the
/// process: the run stops as soon as it starts, exit 130 with a partial report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_during_the_preflight_ends_in_an_interrupted_report() {
    let server = TestServer::start().await;
    server.state.delay_ms.store(3_000, Relaxed);
    let dir = temp_dir("sigint-preflight");
    let file = scenario(&dir, "s.toml", &basic(&server.url, 20, 10, ""));
    let out = dir.join("out");
    let child = spawn_run(&file, &out, &[]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.state.delay_ms.store(0, Relaxed);
    let o = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(summary(&out)["status"], "interrupted");
}

/// `harness run FILE --out OUT --quiet [extra…]` as a child, its stderr kept.
fn spawn_run(file: &std::path::Path, out: &std::path::Path, extra: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["run", &s(file), "--out", &s(out), "--quiet"])
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for `child`; kills it and fails 60 s after `since`, so every signal test is bounded.
async fn exit_within_a_minute(
    child: &mut std::process::Child,
    since: std::time::Instant,
) -> std::process::ExitStatus {
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if since.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("still running 60 s after SIGINT");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
