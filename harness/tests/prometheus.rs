//! The harness with a real Prometheus (Debian's package, started per test on a free port with
//! the remote-write receiver on): remote-written counts equal the summary's, the live endpoint
//! is scraped during the run, a PromQL probe judges like a scrape, the team's own rule fires in
//! Prometheus with its time-to-detect in the report, and Prometheus's mistakes and absences
//! are preflight errors.

mod common;

use std::time::Duration;

use common::prometheus::TestPrometheus;
use common::*;

async fn query(prom: &TestPrometheus, q: &str) -> Option<f64> {
    let r: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/api/v1/query", prom.url))
        .query(&[("query", q)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let v = r["data"]["result"].as_array()?.first()?["value"][1]
        .as_str()?
        .to_owned();
    v.parse().ok()
}

fn run_with(
    file: &std::path::Path,
    out: &std::path::Path,
    extra: &[&str],
) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_harness"));
    c.args([
        "run",
        &file.display().to_string(),
        "--out",
        &out.display().to_string(),
        "--quiet",
    ]);
    c.args(extra);
    c
}

async fn output(mut c: std::process::Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn remote_written_requests_equal_the_summary_and_the_live_endpoint_is_scraped() {
    let server = TestServer::start().await;
    let listen = closed_port();
    let prom = TestPrometheus::start(
        &[("harness", format!("127.0.0.1:{listen}"), "/metrics")],
        &[],
    )
    .await;
    let dir = temp_dir("prom-rw");
    let text = format!(
        "{}\n[outputs.prometheus_remote_write]\nurl = \"{}/api/v1/write\"\n",
        basic(&server.url, 30, 6, ""),
        prom.url
    );
    let file = scenario(&dir, "s.toml", &text);
    let out = dir.join("out");
    let o = output(run_with(
        &file,
        &out,
        &["--listen", &format!("127.0.0.1:{listen}")],
    ))
    .await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let sum = summary(&out);
    let count = sum["totals"]["http_reqs"].as_f64().unwrap();
    let run_id = sum["run_id"].as_str().unwrap();
    let rw = &sum["remote_write"];
    assert!(rw["sent"].as_u64().unwrap() >= 3, "{rw}");
    assert_eq!(
        (rw["dropped"].as_u64(), rw["failed"].as_u64()),
        (Some(0), Some(0)),
        "{rw}"
    );
    let pushed = query(
        &prom,
        &format!("sum(k6_http_reqs_total{{run_id=\"{run_id}\"}})"),
    )
    .await;
    assert_eq!(
        pushed,
        Some(count),
        "remote-written http_reqs vs the summary's {count}"
    );
    let scraped = query(
        &prom,
        "sum(max_over_time(k6_http_reqs_total{job=\"harness\"}[10m]))",
    )
    .await;
    let scraped = scraped.expect("Prometheus scraped the live endpoint during the run");
    assert!(
        scraped > 0.5 * count && scraped <= count,
        "scraped {scraped} of {count}"
    );
    let up = query(&prom, "max_over_time(up{job=\"harness\"}[10m])").await;
    assert_eq!(up, Some(1.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_that_is_gone_is_counted_and_the_run_goes_on() {
    let server = TestServer::start().await;
    let dir = temp_dir("prom-rw-gone");
    let text = format!(
        "{}\n[outputs.prometheus_remote_write]\nurl = \"http://127.0.0.1:{}/api/v1/write\"\n",
        basic(&server.url, 20, 3, "http_req_failed = [\"rate<0.01\"]"),
        closed_port()
    );
    let (_d, out, o) = run_in_temp("prom-rw-gone", &text).await;
    drop(dir);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let sum = summary(&out);
    let rw = &sum["remote_write"];
    assert!(
        rw["failed"].as_u64().unwrap() + rw["dropped"].as_u64().unwrap() >= 3,
        "{rw}"
    );
    assert_eq!(rw["sent"].as_u64(), Some(0), "{rw}");
    assert!(rw["last_error"].as_str().is_some(), "{rw}");
    assert_eq!(
        sum["totals"]["http_reqs"].as_u64(),
        Some(60),
        "the load never waited"
    );
}

/// The harness's own failures, scraped from its live endpoint, drive the team's rule.
const FAILURE_RULES: &str = r#"groups:
  - name: harness
    rules:
      - alert: RequestsFailing
        expr: sum(k6_http_req_failed_total) > 10
        for: 3s
        labels:
          severity: critical
        annotations:
          summary: requests fail
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_prometheus_rule_fires_and_its_time_to_detect_is_in_the_report() {
    let server = TestServer::start().await;
    server
        .state
        .status
        .store(500, std::sync::atomic::Ordering::Relaxed);
    let dir = temp_dir("prom-rule");
    let rules = dir.join("alerts.yml");
    std::fs::write(&rules, FAILURE_RULES).unwrap();
    let listen = closed_port();
    let scrape = [("harness", format!("127.0.0.1:{listen}"), "/metrics")];
    let prom = TestPrometheus::start(&scrape, std::slice::from_ref(&rules)).await;
    let text = format!(
        "{}\n[alerts]\nprometheus_rules = [\"alerts.yml\"]\nprometheus_url = \"{}\"\n",
        basic(&server.url, 20, 14, "http_req_failed = [\"rate<0.01\"]"),
        prom.url
    );
    let file = scenario(&dir, "s.toml", &text);
    let out = dir.join("out");
    let o = output(run_with(
        &file,
        &out,
        &["--listen", &format!("127.0.0.1:{listen}")],
    ))
    .await;
    assert_eq!(
        o.status.code(),
        Some(99),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let sum = summary(&out);
    let alert = sum["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "RequestsFailing")
        .unwrap_or_else(|| panic!("{}", sum["alerts"]));
    assert!(
        alert["source"].as_str().unwrap().starts_with("prometheus"),
        "{alert}"
    );
    let (pending, fired) = (
        alert["pending_at"].as_f64().unwrap(),
        alert["fired_at"].as_f64().unwrap(),
    );
    assert!(fired - pending >= 3.0 - 1.0, "for: 3s held: {alert}");
    let ttd = alert["time_to_detect_s"].as_f64().unwrap();
    assert!(ttd > 2.0 && ttd < 12.0, "{alert}");
    assert!(
        sum["detect_from"]["event"]
            .as_str()
            .unwrap()
            .contains("threshold"),
        "{sum}"
    );
    let md = std::fs::read_to_string(run_dir(&out).join("report.md")).unwrap();
    assert!(
        md.contains("RequestsFailing") && md.contains("prometheus"),
        "{md}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_mistakes_and_absences_stop_the_run_before_any_load() {
    let server = TestServer::start().await;
    let prom = TestPrometheus::start(&[], &[]).await;
    let dir = temp_dir("prom-pre");
    let gone = format!("http://127.0.0.1:{}", closed_port());
    let cases = [
        (
            "gone",
            format!("[probes.promql]\nurl = \"{gone}\"\nqueries = {{ x = \"vector(1)\" }}\n"),
            3,
            gone.clone(),
        ),
        (
            "rejected",
            format!(
                "[probes.promql]\nurl = \"{}\"\nqueries = {{ x = \"sum(rate(x[1m]\" }}\n",
                prom.url
            ),
            3,
            "parse error".to_owned(),
        ),
        (
            "empty",
            format!(
                "[probes.promql]\nurl = \"{}\"\nqueries = {{ x = \"absent_metric_here\" }}\n",
                prom.url
            ),
            3,
            "no series".to_owned(),
        ),
        (
            "not-loaded",
            format!(
                "[alerts]\nprometheus_rules = [\"alerts.yml\"]\nprometheus_url = \"{}\"\n",
                prom.url
            ),
            3,
            "does not evaluate RequestsFailing".to_owned(),
        ),
        (
            "broken-file",
            format!(
                "[alerts]\nprometheus_rules = [\"broken.yml\"]\nprometheus_url = \"{}\"\n",
                prom.url
            ),
            2,
            "broken.yml:5:1: did not find expected".to_owned(),
        ),
    ];
    std::fs::write(dir.join("alerts.yml"), FAILURE_RULES).unwrap();
    std::fs::write(
        dir.join("broken.yml"),
        "groups:\n  - name: x\n    rules:\n      - alert: [oops\n",
    )
    .unwrap();
    for (tag, extra, code, words) in cases {
        let text = format!("{}\n{extra}", basic(&server.url, 10, 1, ""));
        let (o, _) = run_named(&dir, tag, &text).await;
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "{tag}: {err}");
        assert!(err.contains(&words), "{tag}: wanted `{words}` in: {err}");
    }
    assert_eq!(server.total(), 0, "no load was sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_promql_probe_judges_like_the_scraped_series() {
    // The harness's own gauges, scraped by Prometheus from its live endpoint: the PromQL
    // series and the Prometheus-side view of the same number must give the same verdict.
    let server = TestServer::start().await;
    let listen = closed_port();
    let prom = TestPrometheus::start(
        &[("harness", format!("127.0.0.1:{listen}"), "/metrics")],
        &[],
    )
    .await;
    let dir = temp_dir("prom-probe");
    let text = format!(
        "{}\n[probes.promql]\nurl = \"{}\"\nqueries = {{ target = \"max(k6_target_rate) or vector(0)\" }}\n",
        basic(&server.url, 25, 8, "target = [\"max<20\"]"),
        prom.url
    );
    let file = scenario(&dir, "s.toml", &text);
    let out = dir.join("out");
    let o = output(run_with(
        &file,
        &out,
        &["--listen", &format!("127.0.0.1:{listen}")],
    ))
    .await;
    assert_eq!(
        o.status.code(),
        Some(99),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let sum = summary(&out);
    let (observed, passed) = verdict(&sum, "target");
    assert!(!passed);
    assert_eq!(
        observed,
        Some(25.0),
        "Prometheus saw the target rate the run set"
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
}
