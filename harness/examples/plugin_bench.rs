//! `make bench` (plugin part): what a Wasm plugin call costs, and what share of the harness's
//! CPU the plugins take in a 60 s run. Target (issue #4): under 1% of the harness's CPU.
//!
//! 1. Micro: µs per `evaluate` / `check` of the k6-thresholds plugin on a summary with real
//!    histograms (two requests, ~100k samples), and per `on-tick` of lock-contention, against
//!    the same rules compiled in natively.
//! 2. Macro: a 60 s, 1,000 req/s run of the harness (release) against a trivial server with
//!    k6-thresholds, st-001 and lock-contention loaded; plugin time from the run's own
//!    `summary.json` (`plugins[].total_us`), harness CPU from its rusage (wait4).
//!
//! Usage: plugin_bench HARNESS_BIN TRIVIAL_SERVER_BIN PLUGIN_DIR

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::plugins::{FaultPlugin, Limits, ThresholdPlugin, TickState};
use harness::probes::{Outcome, Recorder};
use harness::Scenario;

const THRESHOLDS: &str = r#"
[thresholds]
http_req_failed = ["rate<0.05"]
http_req_duration = ["p(95)<2000", "p(99)<3000", "avg<500"]
"http_req_duration{name:get}" = ["max<10000"]
"#;

fn time_per_call(n: u32, mut f: impl FnMut()) -> f64 {
    f();
    let started = Instant::now();
    for _ in 0..n {
        f();
    }
    started.elapsed().as_secs_f64() * 1e6 / n as f64
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let [_, harness_bin, server_bin, plugin_dir] = &argv[..] else {
        eprintln!("usage: plugin_bench HARNESS_BIN TRIVIAL_SERVER_BIN PLUGIN_DIR");
        std::process::exit(2);
    };
    // Absolute: the scenario below lives in a temp dir, and plugin paths resolve from there.
    let plugins = PathBuf::from(plugin_dir)
        .canonicalize()
        .expect("plugin dir (run `make plugins`)");
    let dir = std::env::temp_dir().join(format!("plugin-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // 1. Micro.
    let text = format!("name = \"b\"\n[target]\nurl = \"http://127.0.0.1:1\"\n[executor]\ntype = \"arrival-rate\"\nstages = [ {{ duration = \"1s\", target = 1 }} ]\n[[requests]]\nname = \"get\"\npath = \"/\"\n[[requests]]\nname = \"post\"\nmethod = \"POST\"\npath = \"/p\"\n{THRESHOLDS}");
    let s = Scenario::from_str(&text, "bench.toml", &[]).unwrap();
    let rec = Recorder::new(&["get".to_owned(), "post".to_owned()]);
    let mut rng = fastrand::Rng::with_seed(1);
    for i in 0..100_000u64 {
        let latency =
            Duration::from_micros(500 + rng.u64(0..(if i % 50 == 0 { 3_000_000 } else { 80_000 })));
        rec.record(
            if i % 3 == 0 { "post" } else { "get" },
            Outcome {
                status: Some(200),
                error: None,
                latency,
                ok: true,
                phases: None,
                proto: None,
            },
        );
    }
    let sum = harness::plugins::summary_of(&s, &rec.finish());
    let buckets: usize = sum.requests.iter().map(|r| r.latency_ms.len()).sum();
    let defs = harness::plugins::threshold_defs(&s);
    let config = serde_json::json!({ "thresholds": defs.iter().map(|d| serde_json::json!({"metric": d.metric, "threshold": d.threshold})).collect::<Vec<_>>() }).to_string();
    let mut k6 = ThresholdPlugin::start(
        &plugins.join("k6-thresholds.wasm"),
        &config,
        Limits::default(),
    )
    .expect("k6-thresholds plugin");
    let eval_us = time_per_call(2_000, || {
        k6.evaluate(&sum).unwrap();
    });
    let check_us = time_per_call(2_000, || {
        k6.check(&sum).unwrap();
    });
    let native_us = time_per_call(2_000, || {
        std::hint::black_box(k6_rules::evaluate(&defs, &sum));
    });
    let mut lc = FaultPlugin::start(
        &plugins.join("lock-contention.wasm"),
        r#"{"hold_ms": 200, "at_s": 1000000}"#,
        Limits::default(),
    )
    .expect("lock-contention plugin");
    let tick = TickState {
        elapsed_s: 5.0,
        stage: 1,
        requests: 1000,
        failed: 0,
        gauges: vec![
            ("db_pool_pending".into(), 3.0),
            ("kafka_consumer_lag".into(), 10.0),
        ],
    };
    let tick_us = time_per_call(20_000, || {
        lc.on_tick(&tick).unwrap();
    });

    // 2. Macro: 60 s at 1,000 req/s with three plugins loaded.
    let mut server = Command::new(server_bin)
        .stdout(Stdio::piped())
        .spawn()
        .expect("trivial server");
    let addr = BufReader::new(server.stdout.take().unwrap())
        .lines()
        .next()
        .unwrap()
        .unwrap();
    let scenario = dir.join("run.toml");
    let lc_path = plugins.join("lock-contention.wasm");
    let st_path = plugins.join("st-001.wasm");
    std::fs::write(
        &scenario,
        format!(
            "name = \"plugin-cost\"\n[target]\nurl = \"http://{addr}\"\n[executor]\ntype = \"arrival-rate\"\nstart_rate = 1000\nmax_in_flight = 200\nstages = [ {{ duration = \"60s\", target = 1000 }} ]\n[[requests]]\nname = \"get\"\npath = \"/\"\n{THRESHOLDS}\n[[threshold_plugins]]\nplugin = \"{}\"\n[[faults]]\nplugin = \"{}\"\nconfig = {{ hold_ms = 100, at_s = 1000000 }}\n",
            st_path.display(),
            lc_path.display()
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let child = Command::new(harness_bin)
        .args([
            "run",
            &scenario.display().to_string(),
            "--out",
            &out.display().to_string(),
            "--quiet",
        ])
        .env("HARNESS_PLUGIN_DIR", &plugins)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("harness");
    let (mut status, mut ru): (i32, libc::rusage) = (0, unsafe { std::mem::zeroed() });
    // SAFETY: waiting on our own child; rusage is a plain out-parameter.
    unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut ru) };
    // Reaped by wait4 above (for its rusage); nothing left for std to wait on.
    std::mem::forget(child);
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let cpu_s = secs(ru.ru_utime) + secs(ru.ru_stime);
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        status == 0,
        "the 60 s run failed (exit status {status}); run it by hand: {} run {}",
        harness_bin,
        scenario.display()
    );
    let run_dir = std::fs::read_dir(&out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("summary.json")).unwrap())
            .unwrap();
    let rows = summary["plugins"].as_array().cloned().unwrap_or_default();
    let plugin_s: f64 = rows
        .iter()
        .map(|p| p["total_us"].as_f64().unwrap_or(0.0))
        .sum::<f64>()
        / 1e6;

    println!("\nPlugin call cost (release harness, {buckets} latency buckets in the summary)");
    println!("| call | µs per call |");
    println!("|---|---:|");
    println!("| k6-thresholds evaluate (Wasm, 5 thresholds) | {eval_us:.1} |");
    println!("| k6-thresholds check (Wasm) | {check_us:.1} |");
    println!("| same rules compiled in (native) | {native_us:.1} |");
    println!("| lock-contention on-tick (Wasm) | {tick_us:.2} |");
    println!("\n60 s run at 1,000 req/s with k6-thresholds + st-001 + lock-contention loaded ({} requests)", summary["totals"]["http_reqs"]);
    println!("| plugin | calls | mean µs | max µs | total ms |");
    println!("|---|---:|---:|---:|---:|");
    for p in &rows {
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.2} |",
            p["plugin"].as_str().unwrap_or(""),
            p["calls"],
            p["mean_us"].as_f64().unwrap_or(0.0),
            p["max_us"].as_f64().unwrap_or(0.0),
            p["total_us"].as_f64().unwrap_or(0.0) / 1000.0
        );
    }
    println!("| **all plugins** | | | | **{:.2}** |", plugin_s * 1000.0);
    println!(
        "\nharness CPU {cpu_s:.2} s; plugins {:.3} s = {:.3}% of it (target < 1%)",
        plugin_s,
        plugin_s / cpu_s * 100.0
    );
    let _ = std::fs::remove_dir_all(Path::new(&dir));
}
