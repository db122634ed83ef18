//! The open model's own properties: the achieved rate against the target, p99 across a server
//! stall (no coordinated omission), and RSS over a million requests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::measure::{measure, rss_kb, Server};
use crate::ours::{total, Ours};
use crate::peers::Peers;

/// (target, achieved over the configured duration, error, dropped) for 100, 1k and 10k/s.
pub fn accuracy(ours: &Ours, server: &Server) -> Vec<[String; 4]> {
    let url = format!("http://{}/", server.addr);
    let secs = 5;
    [100u32, 1_000, 10_000]
        .into_iter()
        .map(|rate| {
            let file = ours.arrival(&format!("rate{rate}"), &url, rate, secs, Some(1_000));
            let (_, s) = ours.measured(&file, |_| {});
            let achieved = total(&s, "http_reqs") / secs as f64;
            [
                format!("{rate}/s"),
                format!("{achieved:.1}/s"),
                format!("{:.2}%", (achieved / f64::from(rate) - 1.0) * 100.0),
                format!("dropped {}", total(&s, "dropped_iterations")),
            ]
        })
        .collect()
}

/// p99 (ms) of ours and of oha --latency-correction at 500/s for 8 s, the server stopped
/// (SIGSTOP) from second 3 to 5.
pub fn stall(ours: &Ours, peers: &Peers, server: &Server) -> (f64, f64) {
    let url = format!("http://{}/", server.addr);
    let pid = server.pid() as i32;
    let stall = |_gen: u32| {
        std::thread::sleep(Duration::from_secs(3));
        // SAFETY: signals to our own child process.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        std::thread::sleep(Duration::from_secs(2));
        unsafe { libc::kill(pid, libc::SIGCONT) };
    };
    let file = ours.arrival("stall", &url, 500, 8, Some(5_000));
    let (_, s) = ours.measured(&file, stall);
    let ours_p99 = s["requests"][0]["p99_ms"].as_f64().unwrap_or(f64::NAN);
    let args = [
        "-z",
        "8s",
        "-q",
        "500",
        "-c",
        "1000",
        "--latency-correction",
        "--no-tui",
        "--output-format",
        "json",
        &url,
    ];
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let o = measure(crate::measure::pinned(1, &peers.oha, &args), stall);
    let oj: serde_json::Value = serde_json::from_str(&o.stdout).unwrap_or_default();
    let oha_p99 = oj["latencyPercentiles"]["p99"]
        .as_f64()
        .map(|s| s * 1000.0)
        .unwrap_or(f64::NAN);
    (ours_p99, oha_p99)
}

/// RSS over at least 1M requests: VmRSS after 2 s and at the end, for the arrival-rate
/// executor (20k/s for 52 s) and for 50 VUs without think time (20 s).
pub fn rss(ours: &Ours, server: &Server) -> Vec<[String; 7]> {
    let url = format!("http://{}/", server.addr);
    let arrival = ours.arrival("rss", &url, 20_000, 52, Some(1_000));
    let vus = ours.vus("rss-vus", &url, 50, "0s", 20);
    [
        ("arrival-rate 20k/s, 52 s", arrival),
        ("50 VUs, no think time, 20 s", vus),
    ]
    .into_iter()
    .map(|(label, file)| {
        let samples = Arc::new(Mutex::new(Vec::<u64>::new()));
        let sampler = samples.clone();
        let (m, s) = ours.measured(&file, move |pid| {
            while let Some(kb) = rss_kb(pid) {
                sampler.lock().unwrap().push(kb);
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        let samples = samples.lock().unwrap().clone();
        let early = samples.get(4).copied().unwrap_or(0) as f64 / 1024.0;
        let late = samples.iter().rev().nth(1).copied().unwrap_or(0) as f64 / 1024.0;
        let n = total(&s, "http_reqs");
        [
            label.into(),
            format!("{n:.0}"),
            format!("{early:.1} MB"),
            format!("{late:.1} MB"),
            format!("{:.1} MB", (late - early) / (n / 1e6)),
            format!("{:.1} MB", m.max_rss_kb as f64 / 1024.0),
            format!("{:.1}", m.cpu),
        ]
    })
    .collect()
}

pub fn print(accuracy: &[[String; 4]], stall: (f64, f64), rss: &[[String; 7]]) {
    println!("\n## Arrival-rate accuracy (5 s each)\n");
    println!("| target | achieved | error | note |\n|---|---:|---:|---|");
    for r in accuracy {
        println!("| {} | {} | {} | {} |", r[0], r[1], r[2], r[3]);
    }
    println!("\n## p99 across a 2 s server stall (SIGSTOP), 500 req/s for 8 s\n");
    println!("| generator | p99 ms |\n|---|---:|");
    println!(
        "| harness arrival-rate (latency from intended start) | {:.1} |",
        stall.0
    );
    println!("| oha --latency-correction -q 500 | {:.1} |", stall.1);
    println!("\n## Memory over 1M requests\n");
    println!("| executor | requests | RSS after 2 s | RSS at the end | growth per million | peak RSS | CPU s |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in rss {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            r[0], r[1], r[2], r[3], r[4], r[5], r[6]
        );
    }
}
