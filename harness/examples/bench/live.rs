//! The game-day console's cost: the same arrival-rate run with the live endpoint off, and on
//! with a remote-write output and a dashboard open (a poller doing what the page does each
//! second: /api/run, /api/series and, as a Prometheus scrape would, /metrics). Runs alternate
//! off/on so a drift of the shared machine hits both; CPU per request inside the counted
//! window, as a ratio to off.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use crate::measure::{counted, Counted, Server, RUN_SECS};
use crate::ours::Ours;

const RATE: u32 = 10_000;
const ROUNDS: usize = 5;

/// (with the console, CPU µs per request) per round, off and on alternating.
pub fn rows(ours: &Ours, server: &Server) -> (Vec<Counted>, Vec<Counted>, u64) {
    let url = format!("http://{}/", server.addr);
    let sink = Sink::start();
    let off = ours.arrival("live-off", &url, RATE, RUN_SECS, Some(1_000));
    let on = ours.arrival("live-on", &url, RATE, RUN_SECS, Some(1_000));
    let text = std::fs::read_to_string(&on).unwrap();
    let output = format!(
        "\n[outputs.prometheus_remote_write]\nurl = \"http://{}/api/v1/write\"\n",
        sink.addr
    );
    std::fs::write(
        &on,
        text.replace("[scenarios.s]", &format!("{output}\n[scenarios.s]")),
    )
    .unwrap();
    let (mut offs, mut ons) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        offs.push(counted(ours.command_for(&off), server));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut cmd = ours.command_for(&on);
        cmd.args(["--listen", &addr]);
        let stop = Arc::new(AtomicBool::new(false));
        let poller = dashboard(addr, stop.clone());
        ons.push(counted(cmd, server));
        stop.store(true, Relaxed);
        let _ = poller.join();
    }
    (offs, ons, sink.bodies.load(Relaxed))
}

pub fn print(offs: &[Counted], ons: &[Counted], pushed: u64) {
    println!("\n#### Live endpoint, remote write and an open dashboard ({RATE}/s, {ROUNDS} rounds off/on alternating)\n");
    println!("| run | req/s (server) | CPU µs/request | ratio to off |\n|---|---:|---:|---:|");
    let median = |v: &[Counted]| {
        let mut c: Vec<f64> = v.iter().map(Counted::cpu_us).collect();
        c.sort_by(f64::total_cmp);
        c[c.len() / 2]
    };
    let base = median(offs);
    for (i, (off, on)) in offs.iter().zip(ons).enumerate() {
        println!(
            "| round {} off | {:.0} | {:.2} | 1.000 |",
            i + 1,
            off.rate,
            off.cpu_us()
        );
        println!(
            "| round {} on | {:.0} | {:.2} | {:.3} |",
            i + 1,
            on.rate,
            on.cpu_us(),
            on.cpu_us() / off.cpu_us()
        );
    }
    let on = median(ons);
    println!(
        "| **median** | | off {base:.2} / on {on:.2} | **{:.3}** |",
        on / base
    );
    println!("\nRemote-write batches received by the sink: {pushed}.");
}

/// What the open dashboard (and a Prometheus scrape) asks of the endpoint, every second.
fn dashboard(addr: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut since = 0u64;
        while !stop.load(Relaxed) {
            let _ = get(&addr, "/api/run");
            if let Some(body) = get(&addr, &format!("/api/series?since={since}")) {
                since += body.matches("\"second\"").count() as u64;
            }
            let _ = get(&addr, "/metrics");
            std::thread::sleep(Duration::from_secs(1));
        }
    })
}

fn get(addr: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// A remote-write receiver that reads each body and answers 204, counting them.
struct Sink {
    addr: String,
    bodies: Arc<AtomicU64>,
}

impl Sink {
    fn start() -> Sink {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let bodies = Arc::new(AtomicU64::new(0));
        let count = bodies.clone();
        std::thread::spawn(move || {
            for conn in l.incoming().flatten() {
                let count = count.clone();
                std::thread::spawn(move || serve(conn, &count));
            }
        });
        Sink { addr, bodies }
    }
}

fn serve(mut c: TcpStream, count: &AtomicU64) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let Some(end) = find(&buf, b"\r\n\r\n") else {
            match c.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < end + 4 + len {
            match c.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..end + 4 + len);
        count.fetch_add(1, Relaxed);
        if c.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
