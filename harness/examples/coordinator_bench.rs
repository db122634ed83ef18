//! `make bench` (coordinator part): what one worker-second costs the coordinator, on paper for
//! 100 workers (2 cores cannot run them). A real recorder with 20 tag sets records a worker's
//! load for a few seconds and is cut once a second; the windows, in their wire form, are then
//! replayed as 100 workers' into one coordinator recorder: parse the JSON, decode the V2 +
//! DEFLATE histograms, absorb. CPU is this thread's own (CLOCK_THREAD_CPUTIME_ID), so the
//! figure does not move with the machine's other load as wall time would.
//!
//! Usage: coordinator_bench [RATE_PER_WORKER] [SECONDS] [full]
//! (`full`: decode through hdrhistogram's deserialiser instead, for comparison)

use std::collections::HashSet;
use std::time::{Duration, Instant};

use harness::distributed::{Cumulative, Delta, Scalars, TagFilter};
use harness::probes::{Outcome, Recorder};

const WORKERS: usize = 100;
const TAG_SETS: usize = 20;

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid pointer to a timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn names() -> Vec<String> {
    (0..TAG_SETS).map(|i| format!("request-{i}")).collect()
}

fn recorder() -> Recorder {
    let filters = names()
        .iter()
        .map(|n| {
            let tags = vec![
                ("name".to_owned(), n.clone()),
                ("status".to_owned(), "200".to_owned()),
            ];
            TagFilter::new(&tags, HashSet::from([n.clone()]))
        })
        .collect();
    Recorder::new(&names()).with_filters(filters)
}

/// One worker's windows as it sends them: `seconds` of `rate` requests/s over 20 names.
fn record(rate: u64, seconds: u64) -> Vec<String> {
    let r = recorder().keep_seconds();
    let mut last = Cumulative::default();
    let mut rng = fastrand::Rng::with_seed(7);
    let names = names();
    let mut frames = Vec::new();
    let mut cut_cpu = Duration::ZERO;
    let start = Instant::now();
    for s in 0..seconds {
        for _ in 0..rate {
            // A realistic spread: mostly 5-80 ms, 1% of slow ones up to 3 s.
            let ms = match rng.u32(0..100) {
                0 => rng.u64(500..3000),
                _ => rng.u64(5..80),
            };
            let o = Outcome {
                status: Some(200),
                error: None,
                latency: Duration::from_micros(ms * 1000 + rng.u64(0..1000)),
                ok: true,
                phases: None,
                proto: None,
            };
            r.record(&names[rng.usize(0..names.len())], o);
        }
        std::thread::sleep(
            (start + Duration::from_secs(s + 1)).saturating_duration_since(Instant::now()),
        );
        let c0 = thread_cpu();
        let d = r.cut(&mut last, s + 1 == seconds);
        let frame = serde_json::to_string(&d.to_wire()).expect("a window serialises");
        cut_cpu += thread_cpu() - c0;
        frames.push(frame);
    }
    println!(
        "worker: cut + encode of one window  {:.1} ms CPU a second",
        cut_cpu.as_secs_f64() * 1e3 / seconds as f64
    );
    frames
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rate: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let seconds: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(5);
    let full = args.get(3).map(String::as_str) == Some("full");
    let frames = record(rate, seconds);
    let bytes: usize = frames.iter().map(String::len).sum();
    let coordinator = recorder();
    let (cpu0, wall0) = (thread_cpu(), Instant::now());
    for frame in &frames {
        for _ in 0..WORKERS {
            let s: Scalars = serde_json::from_str(frame).expect("a window parses");
            match full {
                // hdrhistogram's deserialiser: a whole histogram built per trend and window.
                true => coordinator.absorb(&Delta::from_wire(s).expect("decodes"), 0),
                false => coordinator.absorb_wire(&s, 0).expect("a window decodes"),
            }
        }
    }
    let (cpu, wall) = (thread_cpu() - cpu0, wall0.elapsed());
    let judge0 = thread_cpu();
    let snapshot = coordinator.snapshot();
    let judge = thread_cpu() - judge0;
    let worker_seconds = (WORKERS as u64 * seconds) as f64;
    let us = cpu.as_secs_f64() * 1e6 / worker_seconds;
    println!("coordinator: {WORKERS} simulated workers × {TAG_SETS} tag sets, {rate} req/s each, {seconds} s");
    println!("  merged requests           {}", snapshot.all.count);
    println!(
        "  bytes per worker-second   {:.0}",
        bytes as f64 / seconds as f64
    );
    println!(
        "  CPU per worker-second     {us:.0} µs  (wall {:.0} µs)",
        wall.as_secs_f64() * 1e6 / worker_seconds
    );
    println!(
        "  snapshot for judging      {:.1} ms once a second",
        judge.as_secs_f64() * 1e3
    );
    let per_core = 1e6 / us;
    println!("  workers per coordinator core at 1 s windows: {per_core:.0}");
    assert_eq!(
        snapshot.all.count,
        rate * seconds * WORKERS as u64,
        "every request merged"
    );
}
