//! `make bench`: our arrival-rate executor against wrk, oha and k6 on the same trivial endpoint,
//! in one run, printed as one table. The server is pinned to core 0 and every generator to
//! core 1, so "requests per generator CPU-second" compares like with like. CPU time comes from
//! the generator process's own rusage (wait4), RSS from /proc while it runs.
//!
//! Usage: bench HARNESS_BIN TRIVIAL_SERVER_BIN  (the Makefile passes release builds)

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Measured {
    wall: f64,
    cpu: f64,
    stdout: String,
    max_rss_kb: u64,
}

fn pinned(core: u32, program: &str, args: &[String]) -> Command {
    let mut c = Command::new("taskset");
    c.arg("-c").arg(core.to_string()).arg(program).args(args);
    c
}

/// Runs to completion, returning wall time, user+sys CPU seconds and stdout.
fn measure(mut cmd: Command, during: impl FnOnce(u32)) -> Measured {
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn generator");
    let pid = child.id();
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).ok();
        s
    });
    during(pid);
    let mut status = 0;
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting on our own child; rusage is a plain out-parameter.
    unsafe { libc::wait4(pid as i32, &mut status, 0, &mut ru) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    std::mem::forget(child);
    Measured {
        wall: started.elapsed().as_secs_f64(),
        cpu: secs(ru.ru_utime) + secs(ru.ru_stime),
        stdout: reader.join().unwrap(),
        max_rss_kb: ru.ru_maxrss as u64,
    }
}

fn rss_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn scenario(dir: &Path, name: &str, url: &str, rate: u32, secs: f64, in_flight: u32) -> PathBuf {
    scenario_with(dir, name, url, "", rate, secs, in_flight)
}

/// [`scenario`] with extra `[target]` lines (TLS, HTTP version).
fn scenario_with(
    dir: &Path,
    name: &str,
    url: &str,
    target: &str,
    rate: u32,
    secs: f64,
    in_flight: u32,
) -> PathBuf {
    let p = dir.join(format!("{name}.toml"));
    let text = format!(
        "name = \"{name}\"\n[target]\nurl = \"{url}\"\ntimeout = \"10s\"\n{target}\n[executor]\ntype = \"arrival-rate\"\nstart_rate = {rate}\nmax_in_flight = {in_flight}\nstages = [ {{ duration = \"{secs}s\", target = {rate} }} ]\n[[requests]]\nname = \"get\"\npath = \"/\"\n"
    );
    std::fs::write(&p, text).unwrap();
    p
}

/// Runs our harness on a scenario; returns the measurement and the parsed summary.json.
fn ours(
    harness: &str,
    file: &Path,
    out: &Path,
    during: impl FnOnce(u32),
) -> (Measured, serde_json::Value) {
    let _ = std::fs::remove_dir_all(out);
    let args = vec![
        "run".into(),
        file.display().to_string(),
        "--out".into(),
        out.display().to_string(),
        "--quiet".into(),
        // The max rows offer 200k/s, over the default [limits].max_rate.
        "--allow-huge".into(),
    ];
    let m = measure(pinned(1, harness, &args), during);
    let dir = std::fs::read_dir(out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    (m, summary)
}

/// Starts the trivial server on core 0 with `args`; returns it and the address it printed.
fn start_server(bin: &str, args: &[String]) -> (Child, String) {
    let mut server = pinned(0, bin, args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start trivial server");
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (server, line.trim().to_owned())
}

fn find_oha() -> String {
    which("oha").unwrap_or_else(|| {
        format!(
            "{}/.cargo/bin/oha",
            std::env::var("HOME").unwrap_or_default()
        )
    })
}

fn which(name: &str) -> Option<String> {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
        .map(|p| p.display().to_string())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (harness, server_bin) = (
        args.get(1).expect("HARNESS_BIN").clone(),
        args.get(2).expect("SERVER_BIN").clone(),
    );
    let dir = std::env::temp_dir().join(format!("harness-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let (mut server, addr) = start_server(&server_bin, &[]);
    let url = format!("http://{addr}/");
    let server_pid = server.id();
    eprintln!("trivial server at {url} (core 0); generators on core 1");
    let secs = 5.0;
    let conns = 50;
    let mut rows: Vec<[String; 4]> = Vec::new();
    // BENCH_ONLY=flows: just the flow rows (no peers needed), for a quick look.
    if std::env::var("BENCH_ONLY").is_ok_and(|v| v == "flows") {
        print_flows(&flow_rows(&harness, &dir, &url, secs), secs);
        let _ = server.kill();
        return;
    }

    // 1. Max throughput and requests per generator CPU-second.
    let wrk = measure(
        pinned(
            1,
            "wrk",
            &[
                "-t1".into(),
                format!("-c{conns}"),
                format!("-d{}s", secs as u64),
                url.clone(),
            ],
        ),
        |_| {},
    );
    let wrk_n: f64 = wrk
        .stdout
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0);
    rows.push([
        "wrk (-t1 -c50)".into(),
        format!("{:.0}", wrk_n / secs),
        format!("{:.0}", wrk_n / wrk.cpu),
        String::new(),
    ]);

    let oha = find_oha();
    let o = measure(
        pinned(
            1,
            &oha,
            &[
                "-z".into(),
                format!("{}s", secs as u64),
                "-c".into(),
                conns.to_string(),
                "--no-tui".into(),
                "--output-format".into(),
                "json".into(),
                url.clone(),
            ],
        ),
        |_| {},
    );
    let oj: serde_json::Value = serde_json::from_str(&o.stdout).unwrap_or_default();
    let oha_n: f64 = oj["statusCodeDistribution"]
        .as_object()
        .map(|m| m.values().filter_map(|v| v.as_f64()).sum())
        .unwrap_or(0.0);
    rows.push([
        "oha (-c 50)".into(),
        format!("{:.0}", oha_n / secs),
        format!("{:.0}", oha_n / o.cpu),
        String::new(),
    ]);

    let k6_script = dir.join("k6.js");
    std::fs::write(&k6_script, format!("import http from 'k6/http';\nexport const options = {{ vus: {conns}, duration: '{}s' }};\nexport default function () {{ http.get('{url}'); }}\n", secs as u64)).unwrap();
    let k6_summary = dir.join("k6.json");
    let k = measure(
        pinned(
            1,
            &which("k6").unwrap_or_else(|| "k6".into()),
            &[
                "run".into(),
                "--quiet".into(),
                "--summary-export".into(),
                k6_summary.display().to_string(),
                k6_script.display().to_string(),
            ],
        ),
        |_| {},
    );
    let kj: serde_json::Value = std::fs::read_to_string(&k6_summary)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let k6_n = kj["metrics"]["http_reqs"]["count"].as_f64().unwrap_or(0.0);
    rows.push([
        "k6 (50 VUs)".into(),
        format!("{:.0}", k6_n / secs),
        format!("{:.0}", k6_n / k.cpu),
        String::new(),
    ]);

    // BENCH_BASELINE=<an older harness binary>: its rows beside ours, same server, same run.
    // Then each build runs three times, alternating, and the rows give the medians: one run
    // after another on this shared machine differs by more than the builds do.
    let baseline = std::env::var("BENCH_BASELINE").ok();
    let runs = if baseline.is_some() { 3 } else { 1 };
    let builds: Vec<(&str, String)> = std::iter::once(("harness", harness.clone()))
        .chain(baseline.map(|b| ("baseline harness", b)))
        .collect();
    for (tag, rate) in [("max", 200_000), ("sustained", 30_000)] {
        let file = scenario(&dir, tag, &url, rate, secs, 64);
        // Per build: (req/s, requests per CPU-second, dropped) of each run.
        let mut seen: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new(); builds.len()];
        for _ in 0..runs {
            for (i, (_, bin)) in builds.iter().enumerate() {
                let (m, s) = ours(bin, &file, &dir.join(format!("out-{tag}")), |_| {});
                let n = s["totals"]["http_reqs"].as_f64().unwrap();
                let dropped = s["totals"]["dropped_iterations"].as_f64().unwrap_or(0.0);
                seen[i].push((n / s["elapsed_s"].as_f64().unwrap(), n / m.cpu, dropped));
            }
        }
        for ((who, _), mut v) in builds.iter().zip(seen) {
            v.sort_by(|a, b| a.1.total_cmp(&b.1));
            let (rps, per_cpu, dropped) = v[v.len() / 2];
            let of = if runs > 1 {
                format!(", median of {runs}")
            } else {
                String::new()
            };
            rows.push([
                format!(
                    "{who} arrival-rate (offered {}k/s, 64 in flight{of})",
                    rate / 1000
                ),
                format!("{rps:.0}"),
                format!("{per_cpu:.0}"),
                format!("dropped {dropped:.0}"),
            ]);
        }
    }
    let flow_rows = flow_rows(&harness, &dir, &url, secs);
    let tls_rows = https_rows(&harness, &server_bin, &dir, secs, conns, &oha);

    // 2. Achieved vs target rate.
    let mut rate_rows = Vec::new();
    for rate in [100u32, 1_000, 10_000] {
        let file = scenario(&dir, &format!("rate{rate}"), &url, rate, secs, 1_000);
        let (_, s) = ours(&harness, &file, &dir.join(format!("out-{rate}")), |_| {});
        let achieved = s["totals"]["http_reqs"].as_f64().unwrap() / secs;
        rate_rows.push([
            format!("{rate}/s"),
            format!("{achieved:.1}/s"),
            format!("{:.2}%", (achieved / f64::from(rate) - 1.0) * 100.0),
            format!("dropped {}", s["totals"]["dropped_iterations"]),
        ]);
    }

    // 3. p99 across a 2 s server stall (SIGSTOP) at 500 req/s for 8 s.
    let stall = |pid_server: u32| {
        move |_gen: u32| {
            std::thread::sleep(Duration::from_secs(3));
            unsafe { libc::kill(pid_server as i32, libc::SIGSTOP) };
            std::thread::sleep(Duration::from_secs(2));
            unsafe { libc::kill(pid_server as i32, libc::SIGCONT) };
        }
    };
    let file = scenario(&dir, "stall", &url, 500, 8.0, 5_000);
    let (_, s) = ours(&harness, &file, &dir.join("out-stall"), stall(server_pid));
    let ours_p99 = s["requests"][0]["p99_ms"].as_f64().unwrap_or(f64::NAN);
    let o = measure(
        pinned(
            1,
            &oha,
            &[
                "-z".into(),
                "8s".into(),
                "-q".into(),
                "500".into(),
                "-c".into(),
                "1000".into(),
                "--latency-correction".into(),
                "--no-tui".into(),
                "--output-format".into(),
                "json".into(),
                url.clone(),
            ],
        ),
        stall(server_pid),
    );
    let oj: serde_json::Value = serde_json::from_str(&o.stdout).unwrap_or_default();
    let oha_p99 = oj["latencyPercentiles"]["p99"]
        .as_f64()
        .map(|s| s * 1000.0)
        .unwrap_or(f64::NAN);

    // 4. RSS over at least 1M requests (20k/s for 52 s): VmRSS after 2 s vs at the end.
    let file = scenario(&dir, "rss", &url, 20_000, 52.0, 1_000);
    let samples = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u64>::new()));
    let sampler = samples.clone();
    let (m, s) = ours(&harness, &file, &dir.join("out-rss"), move |pid| {
        std::thread::spawn(move || {
            while let Some(kb) = rss_kb(pid) {
                sampler.lock().unwrap().push(kb);
                std::thread::sleep(Duration::from_millis(500));
            }
        });
    });
    let samples = samples.lock().unwrap().clone();
    let early = samples.get(4).copied().unwrap_or(0);
    let late = samples.iter().rev().nth(1).copied().unwrap_or(0);

    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);

    println!(
        "\n## Throughput on a trivial endpoint ({secs:.0} s each, generator pinned to one core)\n"
    );
    println!(
        "| generator | req/s | requests per generator CPU-second | note |\n|---|---:|---:|---|"
    );
    for r in &rows {
        println!("| {} | {} | {} | {} |", r[0], r[1], r[2], r[3]);
    }
    println!("\n## Flows at a fixed arrival rate (30k requests/s offered, {secs:.0} s each)\n");
    println!(
        "| load | req/s | requests per generator CPU-second | vs one request | note |\n|---|---:|---:|---:|---|"
    );
    for r in &flow_rows {
        println!("| {} | {} | {} | {} | {} |", r[0], r[1], r[2], r[3], r[4]);
    }
    println!(
        "\n## HTTPS on the same trivial endpoint (TLS 1.3, {secs:.0} s each, {conns} concurrent)\n"
    );
    println!(
        "| generator | protocol | req/s | requests per generator CPU-second | vs oha, same protocol |\n|---|---|---:|---:|---:|"
    );
    for r in &tls_rows {
        println!("| {} | {} | {} | {} | {} |", r[0], r[1], r[2], r[3], r[4]);
    }
    println!("\n## Arrival-rate accuracy ({secs:.0} s each)\n");
    println!("| target | achieved | error | note |\n|---|---:|---:|---|");
    for r in &rate_rows {
        println!("| {} | {} | {} | {} |", r[0], r[1], r[2], r[3]);
    }
    println!("\n## p99 across a 2 s server stall (SIGSTOP), 500 req/s for 8 s\n");
    println!("| generator | p99 ms |\n|---|---:|");
    println!("| harness arrival-rate (latency from intended start) | {ours_p99:.1} |");
    println!("| oha --latency-correction -q 500 | {oha_p99:.1} |");
    println!("\n## Memory over 1M requests (20k/s offered for 52 s)\n");
    println!("| requests | RSS after 2 s | RSS at the end | growth | peak RSS | CPU s |\n|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {:.1} MB | {:.1} MB | {:.1} MB | {:.1} MB | {:.1} |",
        s["totals"]["http_reqs"],
        early as f64 / 1024.0,
        late as f64 / 1024.0,
        (late as f64 - early as f64) / 1024.0,
        m.max_rss_kb as f64 / 1024.0,
        m.cpu
    );
    let _ = m.wall;
}

fn print_flows(rows: &[[String; 5]], secs: f64) {
    println!("\n## Flows at a fixed arrival rate (30k requests/s offered, {secs:.0} s each)\n");
    println!(
        "| load | req/s | requests per generator CPU-second | vs one request | note |\n|---|---:|---:|---:|---|"
    );
    for r in rows {
        println!("| {} | {} | {} | {} | {} |", r[0], r[1], r[2], r[3], r[4]);
    }
}

/// The flow rows: one JSON request per iteration at 30k/s, then a 3-step flow at 10k
/// iterations/s (30k requests/s) without and with a JSONPath extraction in each of the first
/// two steps, whose ids the next step's path uses. The last column of the extraction row is
/// what one extraction costs (CPU µs per step beyond the same flow without it).
fn flow_rows(harness: &str, dir: &Path, url: &str, secs: f64) -> Vec<[String; 5]> {
    let base = url.trim_end_matches('/');
    let head = |name: &str, rate: u32, in_flight: u32| {
        format!("name = \"{name}\"\n[target]\nurl = \"{base}\"\ntimeout = \"10s\"\n[scenarios.s]\nexecutor = \"constant-arrival-rate\"\nrate = {rate}\nduration = \"{secs}s\"\nmaxVUs = {in_flight}\n")
    };
    let single = format!(
        "{}[[scenarios.s.requests]]\nname = \"get\"\npath = \"/json\"\n",
        head("single", 30_000, 64)
    );
    let step = |n: u32, path: &str, extract: bool| {
        let x = if extract {
            format!("[[scenarios.s.flow.extract]]\nvar = \"id{n}\"\njsonpath = \"$.id\"\n")
        } else {
            String::new()
        };
        format!("[[scenarios.s.flow]]\nname = \"step{n}\"\npath = \"{path}\"\n{x}")
    };
    let plain = format!(
        "{}{}{}{}",
        head("flow", 10_000, 200),
        step(1, "/json", false),
        step(2, "/json/a", false),
        step(3, "/json/b", false)
    );
    let extracting = format!(
        "{}{}{}{}",
        head("extract", 10_000, 200),
        step(1, "/json", true),
        step(2, "/json/{{id1}}", true),
        step(3, "/json/{{id2}}", false)
    );
    let mut measured = Vec::new();
    for (name, text) in [("single", single), ("flow", plain), ("extract", extracting)] {
        let file = dir.join(format!("{name}.toml"));
        std::fs::write(&file, text).unwrap();
        let (m, s) = ours(harness, &file, &dir.join(format!("out-{name}")), |_| {});
        let n = s["totals"]["http_reqs"].as_f64().unwrap();
        let dropped = s["totals"]["dropped_iterations"].as_f64().unwrap_or(0.0);
        measured.push((n / s["elapsed_s"].as_f64().unwrap(), n / m.cpu, dropped));
    }
    let one = measured[0].1;
    let per_step_us = (1e6 / measured[2].1 - 1e6 / measured[1].1) * 3.0 / 2.0;
    let labels = [
        "harness, one request per iteration (30k/s, 64 in flight)",
        "harness, 3-step flow (10k iterations/s, 200 in flight)",
        "harness, 3-step flow, JSONPath extraction in 2 steps (10k iterations/s)",
    ];
    labels
        .iter()
        .zip(&measured)
        .enumerate()
        .map(|(i, (label, (rps, per_cpu, dropped)))| {
            let note = match i {
                2 => format!("dropped {dropped:.0}; extraction ≈ {per_step_us:.1} CPU µs per step"),
                _ => format!("dropped {dropped:.0}"),
            };
            [
                label.to_string(),
                format!("{rps:.0}"),
                format!("{per_cpu:.0}"),
                format!("{:.2}×", per_cpu / one),
                note,
            ]
        })
        .collect()
}

/// The HTTPS rows: a TLS trivial server (certificate from a CA made here), then oha, k6 and our
/// arrival-rate executor over HTTP/1.1 and HTTP/2, each with `conns` requests in flight.
fn https_rows(
    harness: &str,
    server_bin: &str,
    dir: &Path,
    secs: f64,
    conns: u32,
    oha: &str,
) -> Vec<[String; 5]> {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let (ca_file, cert_file, key_file) = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&ca_file, ca_pem).unwrap();
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let tls_args = [
        "127.0.0.1:0".to_owned(),
        "--tls".into(),
        cert_file.display().to_string(),
        key_file.display().to_string(),
    ];
    let (mut server, addr) = start_server(server_bin, &tls_args);
    let url = format!("https://{addr}/");
    let mut rows: Vec<[String; 5]> = Vec::new();
    let mut oha_per_cpu = [0.0f64; 2];
    for (i, proto) in ["HTTP/1.1", "HTTP/2"].iter().enumerate() {
        let mut a = vec!["-z".into(), format!("{}s", secs as u64)];
        if i == 0 {
            a.extend(["-c".into(), conns.to_string()]);
        } else {
            // One connection, `conns` streams on it (oha runs c × p workers).
            a.extend([
                "--http2".into(),
                "-c".into(),
                "1".into(),
                "-p".into(),
                conns.to_string(),
            ]);
        }
        a.extend([
            "--insecure".into(),
            "--no-tui".into(),
            "--output-format".into(),
            "json".into(),
            url.clone(),
        ]);
        let o = measure(pinned(1, oha, &a), |_| {});
        let oj: serde_json::Value = serde_json::from_str(&o.stdout).unwrap_or_default();
        let n: f64 = oj["statusCodeDistribution"]
            .as_object()
            .map(|m| m.values().filter_map(|v| v.as_f64()).sum())
            .unwrap_or(0.0);
        oha_per_cpu[i] = n / o.cpu;
        rows.push([
            "oha".into(),
            (*proto).into(),
            format!("{:.0}", n / secs),
            format!("{:.0}", n / o.cpu),
            "1.00".into(),
        ]);
    }
    let k6_script = dir.join("k6-tls.js");
    std::fs::write(&k6_script, format!("import http from 'k6/http';\nexport const options = {{ vus: {conns}, duration: '{}s', insecureSkipTLSVerify: true }};\nexport default function () {{ http.get('{url}'); }}\n", secs as u64)).unwrap();
    for (i, proto) in ["HTTP/1.1", "HTTP/2"].iter().enumerate() {
        let summary = dir.join(format!("k6-tls-{i}.json"));
        let mut cmd = pinned(
            1,
            &which("k6").unwrap_or_else(|| "k6".into()),
            &[
                "run".into(),
                "--quiet".into(),
                "--summary-export".into(),
                summary.display().to_string(),
                k6_script.display().to_string(),
            ],
        );
        if i == 0 {
            // Go's switch for HTTP/1.1 only; k6 negotiates h2 by ALPN otherwise.
            cmd.env("GODEBUG", "http2client=0");
        }
        let k = measure(cmd, |_| {});
        let kj: serde_json::Value = std::fs::read_to_string(&summary)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        let n = kj["metrics"]["http_reqs"]["count"].as_f64().unwrap_or(0.0);
        rows.push([
            "k6 (VUs)".into(),
            (*proto).into(),
            format!("{:.0}", n / secs),
            format!("{:.0}", n / k.cpu),
            format!("{:.2}", n / k.cpu / oha_per_cpu[i]),
        ]);
    }
    for (i, (proto, version)) in [("HTTP/1.1", "1.1"), ("HTTP/2", "2")].iter().enumerate() {
        let target = format!(
            "http_version = \"{version}\"\ntls = {{ ca_file = \"{}\" }}",
            ca_file.display()
        );
        let file = scenario_with(dir, &format!("tls{i}"), &url, &target, 200_000, secs, conns);
        let (m, s) = ours(harness, &file, &dir.join(format!("out-tls{i}")), |_| {});
        let n = s["totals"]["http_reqs"].as_f64().unwrap();
        let seen = s["http"]["protocols"].to_string();
        rows.push([
            format!("harness arrival-rate ({conns} in flight; seen {seen})"),
            (*proto).into(),
            format!("{:.0}", n / s["elapsed_s"].as_f64().unwrap()),
            format!("{:.0}", n / m.cpu),
            format!("{:.2}", n / m.cpu / oha_per_cpu[i]),
        ]);
    }
    let _ = server.kill();
    let _ = server.wait();
    rows
}
