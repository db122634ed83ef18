//! The live dashboard in headless Chromium (Debian's, over the DevTools protocol) during a real
//! run with a fault: its charts gain a point every second, a rate set from the page moves the
//! load chart within 2 s, and the page's abort ends the run with exit 130 and the fault rolled
//! back (checked through the relay's own API). A screenshot is kept as a test artifact.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cdp::Browser;
use common::faults::built_plugin;
use common::*;
use harness::faults::{Relay, ToxiproxyClient};

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_follows_the_run_and_its_controls_steer_it() {
    let server = TestServer::start().await;
    // A fault relay of the test's own, with a proxy the fault plugin puts a latency toxic on.
    let relay = Relay::new();
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_url = format!("http://{}", api.local_addr().unwrap());
    tokio::spawn(harness::faults::serve_api(
        api,
        relay,
        std::future::pending(),
    ));
    let client = ToxiproxyClient::new(&api_url);
    let upstream = server.url.trim_start_matches("http://").to_owned();
    client
        .create_proxy("web", "127.0.0.1:0", &upstream)
        .await
        .unwrap();

    let dir = temp_dir("dashboard");
    let plugin = built_plugin("chaos-schedule.wasm");
    let text = format!(
        r#"
name = "dashboard"
[target]
url = "{url}"
timeout = "2s"
[scenarios.orders]
executor = "constant-arrival-rate"
rate = 20
duration = "60s"
preAllocatedVUs = 50
[[scenarios.orders.requests]]
name = "get"
path = "/x"
[thresholds]
http_req_duration = ["p(95)<1000"]
[actuators]
toxiproxy = "{api_url}"
[[faults]]
plugin = "{plugin}"
config = {{ steps = [ {{ action = "toxic", at_s = 2, proxy = "web", kind = "latency", attributes = {{ latency = 5 }} }} ] }}
"#,
        url = server.url,
        plugin = plugin
    );
    let file = scenario(&dir, "s.toml", &text);
    let out = dir.join("out");
    let port = closed_port();
    let child = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args([
            "run",
            &file.display().to_string(),
            "--out",
            &out.display().to_string(),
        ])
        .args(["--quiet", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let mut b = Browser::launch().await;
    b.navigate(&format!("http://127.0.0.1:{port}/?noconfirm"))
        .await;
    b.wait_for(
        "Number(document.querySelector('#chart-load').dataset.points) >= 3",
        Duration::from_secs(20),
    )
    .await;
    let charts = ["#chart-load", "#chart-errors", "#chart-latency"];
    let mut before = Vec::new();
    for c in charts {
        before.push(chart_points(&mut b, c).await);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (c, p0) in charts.iter().zip(before) {
        let p1 = chart_points(&mut b, c).await;
        assert!(p1 - p0 >= 2.0, "{c} went from {p0} to {p1} points in 3 s");
    }
    // The fault is in force and shown.
    b.wait_for(
        "(window.harnessDashboard.run.faults || []).length >= 1",
        Duration::from_secs(10),
    )
    .await;
    let toxics = client.proxy("web").await.unwrap().toxics;
    assert_eq!(toxics.len(), 1, "{toxics:?}");

    // Set the rate from the page: the load chart's latest target follows within 2 s.
    b.set_value("#rate-input-orders", "60").await;
    b.click("#rate-set-orders").await;
    let asked = Instant::now();
    b.wait_for(
        "(() => { const r = window.harnessDashboard.rows; const g = r.length && r[r.length-1].gauges; return g && g.target_rate === 60; })()",
        Duration::from_secs(4),
    )
    .await;
    assert!(
        asked.elapsed() <= Duration::from_millis(3000),
        "{:?}",
        asked.elapsed()
    );
    let c0 = server.total();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let achieved = (server.total() - c0) as f64 / 2.0;
    assert!(
        (achieved - 60.0).abs() <= 60.0 * 0.1,
        "achieved {achieved}/s after the page set 60/s"
    );

    std::fs::create_dir_all("../reports/test-artifacts").unwrap();
    b.screenshot(std::path::Path::new(
        "../reports/test-artifacts/dashboard.png",
    ))
    .await;

    b.click("#abort").await;
    let o = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let toxics = client.proxy("web").await.unwrap().toxics;
    assert!(toxics.is_empty(), "the toxic was rolled back: {toxics:?}");
    let sum = summary(&out);
    let actions: Vec<&str> = sum["control"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["rate", "abort"]);
    assert!(
        sum["faults"][0]["rolled_back_s"].as_f64().is_some(),
        "{}",
        sum["faults"]
    );
}

async fn chart_points(b: &mut Browser, chart: &str) -> f64 {
    let js = format!("Number(document.querySelector('{chart}').dataset.points)");
    b.eval(&js).await.as_f64().unwrap_or(0.0)
}
