//! The live endpoint of `harness run --listen`: metrics and status while the run goes, the
//! controls (rate, pause, abort) acting on the real load, the token on a non-loopback bind,
//! and a taken port.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Starts `harness run FILE --out OUT --quiet --listen ADDR [extra…]`.
fn spawn_listening(
    file: &std::path::Path,
    out: &std::path::Path,
    addr: &str,
    extra: &[&str],
) -> Child {
    Command::new(env!("CARGO_BIN_EXE_harness"))
        .args([
            "run",
            &file.display().to_string(),
            "--out",
            &out.display().to_string(),
        ])
        .args(["--quiet", "--listen", addr])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

async fn wait(child: Child) -> std::process::Output {
    tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap()
}

/// GETs `url` until it answers 200 (the run binds at once, but publishes after its first second).
async fn get_json(http: &reqwest::Client, url: &str, token: Option<&str>) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut req = http.get(url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Ok(r) = req.send().await {
            if r.status() == 200 {
                if let Ok(v) = r.json::<serde_json::Value>().await {
                    if v.get("state").is_none_or(|s| s != "") {
                        return v;
                    }
                }
            }
        }
        assert!(Instant::now() < deadline, "{url} never answered 200");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let mut req = http.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

fn steady(url: &str, rate: u32, secs: u32) -> String {
    format!(
        r#"
name = "live"
[target]
url = "{url}"
timeout = "2s"
[scenarios.orders]
executor = "constant-arrival-rate"
rate = {rate}
duration = "{secs}s"
preAllocatedVUs = 50
[[scenarios.orders.requests]]
name = "get"
path = "/x"
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_change_through_the_control_api_shows_in_the_achieved_rate_within_2s() {
    let server = TestServer::start().await;
    let dir = temp_dir("live-rate");
    let file = scenario(&dir, "s.toml", &steady(&server.url, 40, 16));
    let out = dir.join("out");
    let port = closed_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = spawn_listening(&file, &out, &format!("127.0.0.1:{port}"), &[]);
    let http = reqwest::Client::new();

    let status = get_json(&http, &format!("{base}/api/run"), None).await;
    assert_eq!(status["scenario"], "live", "{status}");
    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap();
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("# TYPE k6_http_req_duration_seconds histogram"),
        "{text}"
    );
    assert!(
        text.contains("k6_http_reqs_total{name=\"get\",status=\"200\"}"),
        "{text}"
    );

    let (code, body) = post(
        &http,
        &format!("{base}/api/control/rate"),
        None,
        serde_json::json!({"scenario": "orders", "rate": 120}),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let changed = Instant::now();
    // From 2 s after the change on, the server sees the new rate (± 2%, over 4 s).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (c0, t0) = (server.total(), Instant::now());
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (c1, t1) = (server.total(), Instant::now());
    let achieved = (c1 - c0) as f64 / (t1 - t0).as_secs_f64();
    assert!(
        (achieved - 120.0).abs() <= 0.02 * 120.0 + 0.5,
        "achieved {achieved:.1}/s from {:?} after the change, asked 120/s",
        t0 - changed
    );
    let (code, body) = post(
        &http,
        &format!("{base}/api/control/rate"),
        None,
        serde_json::json!({"scenario": "orders", "rate": -3}),
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("≥ 0"), "{body}");
    let (code, body) = post(
        &http,
        &format!("{base}/api/control/rate"),
        None,
        serde_json::json!({"scenario": "nope", "rate": 3}),
    )
    .await;
    assert_eq!(code, 400, "{body}");

    let o = wait(child).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let sum = summary(&out);
    let control = sum["control"].as_array().unwrap();
    // The -3 never reached the run (refused as it was parsed); the unknown scenario did.
    assert_eq!(control.len(), 2, "{control:?}");
    assert_eq!(
        (control[0]["action"].as_str(), control[0]["value"].as_f64()),
        (Some("rate"), Some(120.0))
    );
    assert_eq!(control[0]["ok"], true);
    assert_eq!(
        control[1]["ok"], false,
        "a refused request is journaled too"
    );
    assert_eq!(control[1]["scenario"], "nope");
    // The scenario asked 40/s for 16 s; with 120/s for most of it the run sent far more.
    let count = sum["totals"]["http_reqs"].as_u64().unwrap();
    assert!(count > 40 * 16 + 500, "{count}");
    let md = std::fs::read_to_string(run_dir(&out).join("report.md")).unwrap();
    assert!(
        md.contains("Control"),
        "report.md shows the control journal"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_non_loopback_bind_refuses_requests_without_the_token_and_they_change_nothing() {
    let server = TestServer::start().await;
    let dir = temp_dir("live-token");
    let file = scenario(&dir, "s.toml", &steady(&server.url, 20, 6));
    let out = dir.join("out");
    let port = closed_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = spawn_listening(
        &file,
        &out,
        &format!("0.0.0.0:{port}"),
        &["--listen-token", "s3cret"],
    );
    let http = reqwest::Client::new();
    let status = get_json(&http, &format!("{base}/api/run"), Some("s3cret")).await;
    assert_eq!(status["state"], "running", "{status}");

    let r = http.get(format!("{base}/api/run")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body = serde_json::json!({"scenario": "orders", "rate": 200});
    let (code, _) = post(
        &http,
        &format!("{base}/api/control/rate"),
        None,
        body.clone(),
    )
    .await;
    assert_eq!(code, 401);
    let (code, _) = post(
        &http,
        &format!("{base}/api/control/abort"),
        Some("wrong"),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(code, 401);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let status = get_json(&http, &format!("{base}/api/run"), Some("s3cret")).await;
    assert!(status["scenarios"][0]["override"].is_null(), "{status}");

    let o = wait(child).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let sum = summary(&out);
    assert!(sum.get("control").is_none(), "nothing was journaled: {sum}");
    let sent = sum["totals"]["http_reqs"].as_u64().unwrap();
    assert_eq!(sent, 20 * 6, "the load followed the file");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_generated_token_is_printed_for_a_non_loopback_bind() {
    let server = TestServer::start().await;
    let dir = temp_dir("live-gen");
    let file = scenario(&dir, "s.toml", &steady(&server.url, 5, 2));
    let out = dir.join("out");
    let port = closed_port();
    let child = spawn_listening(&file, &out, &format!("0.0.0.0:{port}"), &[]);
    let o = wait(child).await;
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let token = err
        .split("#token=")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .unwrap_or_else(|| panic!("no token printed: {err}"));
    assert_eq!(token.len(), 32, "{token}");
}

#[tokio::test(flavor = "multi_thread")]
async fn pause_resume_and_abort_through_the_control_api() {
    let server = TestServer::start().await;
    let dir = temp_dir("live-abort");
    let file = scenario(&dir, "s.toml", &steady(&server.url, 50, 60));
    let out = dir.join("out");
    let port = closed_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = spawn_listening(&file, &out, &format!("127.0.0.1:{port}"), &[]);
    let http = reqwest::Client::new();
    get_json(&http, &format!("{base}/api/run"), None).await;

    let (code, body) = post(
        &http,
        &format!("{base}/api/control/pause"),
        None,
        serde_json::json!({}),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let c0 = server.total();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        server.total() - c0 <= 1,
        "paused, yet {} requests",
        server.total() - c0
    );
    let (code, _) = post(
        &http,
        &format!("{base}/api/control/resume"),
        None,
        serde_json::json!({}),
    )
    .await;
    assert_eq!(code, 200);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let c1 = server.total();
    assert!(c1 - c0 >= 50, "resumed, {} requests", c1 - c0);

    let asked = Instant::now();
    let (code, body) = post(
        &http,
        &format!("{base}/api/control/abort"),
        None,
        serde_json::json!({}),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let o = wait(child).await;
    assert_eq!(
        o.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        asked.elapsed() < Duration::from_secs(15),
        "{:?}",
        asked.elapsed()
    );
    let sum = summary(&out);
    assert_eq!(sum["status"], "interrupted");
    let actions: Vec<&str> = sum["control"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["pause", "resume", "abort"]);
    assert!(run_dir(&out).join("report.html").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_taken_listen_port_is_exit_2_naming_it_and_sends_nothing() {
    let server = TestServer::start().await;
    let dir = temp_dir("live-taken");
    let file = scenario(&dir, "s.toml", &steady(&server.url, 20, 2));
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let o = wait(spawn_listening(&file, &dir.join("out"), &addr, &[])).await;
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains(&addr), "{err}");
    assert_eq!(server.total() + server.count("/"), 0, "nothing was sent");
}
