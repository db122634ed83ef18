//! VU start-up and memory, harness against k6: N VUs with 1 s think time, so each VU sends
//! about once a second. "Start" is the time from the server's first request to its N-th (all
//! VUs sending, when it is under 1 s); memory is the generator's peak RSS, and per VU the
//! growth from 1,000 to 5,000 VUs.

use std::time::{Duration, Instant};

use crate::measure::{measure, Measured, Server};
use crate::ours::Ours;
use crate::peers::Peers;

const SECS: u64 = 8;

pub struct VuRow {
    pub who: &'static str,
    pub vus: u32,
    /// Spawn to the first request, and first to N-th request.
    pub first: Duration,
    pub all: Option<Duration>,
    /// Requests per second in seconds 2–6 after the first request (≈ VUs when all loop).
    pub rate: f64,
    pub m: Measured,
}

pub fn rows(ours: &Ours, peers: &Peers, server: &Server) -> Vec<VuRow> {
    let url = format!("http://{}/", server.addr);
    let mut rows = Vec::new();
    for vus in [1_000, 5_000] {
        let file = ours.vus(&format!("vus{vus}"), &url, vus, "1s", SECS);
        let cmd = ours.command_for(&file);
        rows.push(run("harness", vus, cmd, server));
        let cmd = peers.k6_for(&ours.dir, &format!("k6-vus{vus}"), &url, vus, 1.0, SECS, "");
        rows.push(run("k6 1.1", vus, cmd, server));
    }
    rows
}

fn run(who: &'static str, vus: u32, cmd: std::process::Command, server: &Server) -> VuRow {
    let before = server.answered();
    let spawned = Instant::now();
    let (mut first, mut all, mut rate) = (Duration::ZERO, None, 0.0);
    let m = measure(cmd, |_| {
        if !server.wait_for(before + 1, Duration::from_secs(60)) {
            return;
        }
        let at = Instant::now();
        first = at - spawned;
        if server.wait_for(before + u64::from(vus), Duration::from_secs(10)) {
            all = Some(at.elapsed());
        }
        std::thread::sleep((at + Duration::from_secs(2)).saturating_duration_since(Instant::now()));
        let c1 = server.answered();
        std::thread::sleep(Duration::from_secs(4));
        rate = (server.answered() - c1) as f64 / 4.0;
    });
    VuRow {
        who,
        vus,
        first,
        all,
        rate,
        m,
    }
}

pub fn print(rows: &[VuRow]) {
    println!("\n## VUs: start-up and memory (1 s think time, {SECS} s runs)\n");
    println!("| generator | VUs | spawn → first request | first → N-th request | req/s in s 2–6 | peak RSS | CPU s |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let all = r
            .all
            .map(|d| format!("{:.0} ms", d.as_secs_f64() * 1e3))
            .unwrap_or_else(|| "not within 10 s".into());
        println!(
            "| {} | {} | {:.0} ms | {all} | {:.0} | {:.1} MB | {:.2} |",
            r.who,
            r.vus,
            r.first.as_secs_f64() * 1e3,
            r.rate,
            r.m.max_rss_kb as f64 / 1024.0,
            r.m.cpu
        );
    }
    let per_vu = |who: &str| {
        let rss = |n: u32| {
            rows.iter()
                .find(|r| r.who == who && r.vus == n)
                .map(|r| r.m.max_rss_kb as f64)
                .unwrap_or(f64::NAN)
        };
        (rss(5_000) - rss(1_000)) / 4_000.0
    };
    let (ours, k6) = (per_vu("harness"), per_vu("k6 1.1"));
    println!("\nMemory per VU (peak RSS, 1,000 → 5,000 VUs): harness {ours:.1} KiB, k6 {k6:.1} KiB, ratio {:.2}.", ours / k6);
}
