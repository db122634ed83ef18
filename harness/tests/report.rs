//! Reports from a real run: re-rendering from summary.json + timeseries.csv, comparing two
//! runs, refusing missing or corrupt inputs without overwriting anything, and a headless
//! Chromium pass over report.html (every chart drawn with data; screenshot kept as an artifact).

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;

use common::*;

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// One real run against the in-test server; returns its run directory.
/// (the temp dir that holds it, removed when dropped; the run directory)
async fn one_run(tag: &str, status: u16) -> (TempDir, PathBuf) {
    let server = TestServer::start().await;
    server.state.status.store(status, Relaxed);
    let text = format!(
        "{}\n[[alerts]]\nname = \"errors\"\nexpr = \"http_req_failed > 0.5\"\nfor = \"1s\"\n",
        basic(
            &server.url,
            40,
            3,
            r#"http_req_failed = ["rate<0.05"]
http_req_duration = ["p(95)<500"]"#
        )
    );
    let (dir, out, o) = run_in_temp(tag, &text).await;
    assert!(
        matches!(o.status.code(), Some(0) | Some(99)),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let run = run_dir(&out);
    (dir, run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_format_regenerates_identically_from_the_run_files() {
    let (_keep_run, run) = one_run("regen", 200).await;
    for (format, file) in [
        ("html", "report.html"),
        ("md", "report.md"),
        ("junit", "junit.xml"),
    ] {
        let original = std::fs::read_to_string(run.join(file)).unwrap();
        std::fs::remove_file(run.join(file)).unwrap();
        let o = harness(args(&["report", &s(&run), "--format", format])).await;
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(
            std::fs::read_to_string(run.join(file)).unwrap(),
            original,
            "{file} differs after regeneration"
        );
    }
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(md.starts_with("## ✅ PASSED"), "verdict first: {md}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_corrupt_inputs_are_named_and_nothing_is_overwritten() {
    let (_keep_run, run) = one_run("corrupt", 200).await;
    let html_before = std::fs::read_to_string(run.join("report.html")).unwrap();

    std::fs::write(run.join("timeseries.csv"), "second,requests\n1,abc\n").unwrap();
    let o = harness(args(&["report", &s(&run), "--format", "html"])).await;
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("timeseries.csv") && err.contains("`abc`"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(run.join("report.html")).unwrap(),
        html_before,
        "report.html was touched"
    );

    let summary = std::fs::read_to_string(run.join("summary.json")).unwrap();
    std::fs::write(run.join("summary.json"), &summary[..summary.len() / 2]).unwrap();
    let o = harness(args(&["report", &s(&run), "--format", "md"])).await;
    assert_eq!(o.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("summary.json"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(run.join("summary.json")).unwrap(),
        summary[..summary.len() / 2],
        "input rewritten"
    );

    std::fs::remove_file(run.join("summary.json")).unwrap();
    let o = harness(args(&["report", &s(&run), "--format", "junit"])).await;
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("summary.json"));

    let o = harness(args(&["report", &s(&run), "--format", "pdf"])).await;
    assert_eq!(o.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_compare_side_by_side() {
    let (_keep_good, good) = one_run("cmp-a", 200).await;
    let (_keep_bad, bad) = one_run("cmp-b", 503).await;
    let o = harness(args(&["report", &s(&good), &s(&bad)])).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8_lossy(&o.stdout);
    let id = |d: &Path| d.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        text.contains(&id(&good)) && text.contains(&id(&bad)),
        "{text}"
    );
    let failed_row = text
        .lines()
        .find(|l| l.starts_with("| http_req_failed |"))
        .expect(&text);
    assert!(failed_row.contains("| 0 | 120 |"), "{failed_row}");
    assert!(
        text.contains("| `http_req_failed` rate<0.05 | ✓ 0 | ✗ 1 |"),
        "{text}"
    );
    // The failing run's alert fired, and time to detect is measured from the first breach.
    let sum: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bad.join("summary.json")).unwrap()).unwrap();
    let alert = &sum["alerts"][0];
    assert!(alert["fired_at"].as_f64().is_some(), "{alert}");
    assert!(
        alert["time_to_detect_s"].as_f64().unwrap() <= 3.0,
        "{alert}"
    );
    let failed = sum["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["metric"] == "http_req_failed")
        .unwrap();
    assert!(failed["first_breach_s"].as_f64().is_some(), "{failed}");
}

/// A run with a load-side fault (hot-key share raised from 1 s to 2 s by lock-contention).
async fn run_with_fault(tag: &str) -> (TempDir, PathBuf) {
    let server = TestServer::start().await;
    let plugin =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/build/lock-contention.wasm");
    assert!(
        plugin.is_file(),
        "{} missing: run `make plugins`",
        plugin.display()
    );
    let thresholds = r#"http_req_failed = ["rate<0.05"]
http_req_duration = ["p(95)<500"]"#;
    let text = hot_product_with_fault(
        &server.url,
        40,
        3,
        thresholds,
        &plugin,
        "hot_share = 0.9, at_s = 1, duration_s = 1",
    );
    let (dir, out, o) = run_in_temp(tag, &text).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let run = run_dir(&out);
    // The skew really happened on the load side, and only inside the window.
    let hot = server.count("/b/1");
    assert!(
        (3..=30).contains(&hot),
        "requests to the hot product: {hot}"
    );
    (dir, run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_renders_every_chart_with_data() {
    let (_keep_run, run) = run_with_fault("chromium").await;
    let sum: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    let f = &sum["faults"][0];
    assert_eq!(
        (
            f["kind"].as_str(),
            f["value"].as_str(),
            f["original"].as_str()
        ),
        (Some("hot-share"), Some("0.9"), Some("0")),
        "{f}"
    );
    assert!(
        f["rolled_back_s"].as_f64().unwrap() - f["applied_s"].as_f64().unwrap() < 2.5,
        "{f}"
    );
    assert!(
        sum["detect_from"]["event"]
            .as_str()
            .unwrap()
            .starts_with("fault injected"),
        "{}",
        sum["detect_from"]
    );
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("Debian's chromium is required for this test (scripts/setup.sh installs it)");
    let profile = temp_dir("chromium-profile");
    let profile_dir = profile.to_path_buf();
    let page = format!("file://{}", run.join("report.html").display());
    let page_ref = page.clone();
    let flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ];
    let run_chromium = move |extra: Vec<String>| {
        let mut c = std::process::Command::new(chromium);
        c.args(flags)
            .arg(format!("--user-data-dir={}", profile_dir.display()))
            .args(extra)
            .arg(&page_ref);
        c.output().unwrap()
    };
    // Blocking calls are fine here: nothing else runs on this test's runtime.
    let dom = run_chromium(vec!["--dump-dom".into()]);
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    let figures: Vec<&str> = dom.split("<figure class=\"chart\"").skip(1).collect();
    assert!(
        figures.len() >= 4,
        "expected load, rps, error and latency charts, got {}",
        figures.len()
    );
    for f in &figures {
        let id = f
            .split("id=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("?");
        let points: u64 = f
            .split("data-points=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(points > 0, "chart {id} has no data");
        assert!(
            f.contains("<path class=\"series\""),
            "chart {id} drew no line"
        );
    }
    assert!(
        dom.contains("class=\"threshold\""),
        "threshold lines are drawn"
    );
    assert!(
        dom.contains("<rect class=\"band\""),
        "the fault window is shaded"
    );
    assert!(
        dom.contains("hot-share generator product"),
        "the fault table lists it"
    );

    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../reports/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("report-html.png");
    let _ = std::fs::remove_file(&shot);
    let out = run_chromium(vec![
        "--window-size=1000,2400".into(),
        format!("--screenshot={}", shot.display()),
    ]);
    let png = std::fs::read(&shot)
        .unwrap_or_else(|_| panic!("no screenshot: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(&png[1..4], b"PNG");
    assert!(
        png.len() > 20_000,
        "a blank page is a few KB; got {} bytes",
        png.len()
    );
}
