//! `harness run` end to end against a tiny in-test server: exact counts, verdicts and exit
//! codes, bad input, a dead or dying target, unreachable probes, abort-on-fail, Ctrl-C.

mod common;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_probes_are_reported_and_the_run_continues() {
    let server = TestServer::start().await;
    let dir = temp_dir("probes");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = format!(
        "{}\n[probes.prometheus]\nurl = \"http://127.0.0.1:{port}/metrics\"\nseries = [\"x\"]\n[probes.kafka]\nbootstrap = \"127.0.0.1:{port}\"\ngroup = \"g\"\ntopic = \"t\"\n",
        basic(&server.url, 50, 2, r#"http_req_failed = ["rate<0.05"]"#)
    );
    let file = scenario(&dir, "s.toml", &text);
    let out = dir.join("out");
    let o = harness(args(&["run", &s(&file), "--out", &s(&out), "--quiet"])).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let sum = summary(&out);
    assert_eq!(sum["totals"]["http_reqs"], 100);
    let probes = sum["probes"].as_array().unwrap();
    assert_eq!(probes.len(), 2, "{probes:?}");
    assert!(
        probes
            .iter()
            .all(|p| p["failures"].as_u64().unwrap() > 0 && p["last_error"].is_string()),
        "{probes:?}"
    );
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
    for cmd in ["run", "validate"] {
        let o = harness(args(
            &[cmd, &s(&file), "--out", &s(&out)][..if cmd == "run" { 4 } else { 2 }],
        ))
        .await;
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
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_harness"))
        .args([
            "run",
            &s(&file),
            "--out",
            &s(&out),
            "--quiet",
            "--allow-huge",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let signalled = std::time::Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if signalled.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("still running 60 s after SIGINT");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
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
