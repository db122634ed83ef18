//! A distributed run as Kubernetes would start it: the test renders the manifests, unpacks the
//! ConfigMap, and starts the coordinator's command and each index's command with the
//! manifest's env (`JOB_COMPLETION_INDEX` from the Indexed Job), each worker in its own
//! network namespace behind a veth on one bridge (separate hosts), against a server on the
//! host that counts every request and the path it asked for.

mod common;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

use common::k8s;

const HOST: &str = "10.77.0.1";
const TOKEN: &str = "fedcba9876543210fedcba9876543210";

/// The hosts share one address plan (10.77.0.0/16), so the tests take turns.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Paths the server was asked for, in order.
type Seen = Arc<Mutex<Vec<String>>>;
/// When each request arrived.
type Times = Arc<Mutex<Vec<Instant>>>;

async fn server() -> (u16, Seen) {
    let (port, seen, _) = timed_server().await;
    (port, seen)
}

/// The server: `/u/<id>` answers after 100 + id mod 100 ms, so two runs that ask for the same
/// rows see the same latencies, and those delays, not the scheduling of five processes on
/// two cores, make the tail the runs compare.
async fn timed_server() -> (u16, Seen, Times) {
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Default::default();
    let times: Times = Default::default();
    let (s, t) = (seen.clone(), times.clone());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (s, t) = (s.clone(), t.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<_>| {
                    let path = req.uri().path().to_owned();
                    s.lock().unwrap().push(path.clone());
                    t.lock().unwrap().push(Instant::now());
                    let id: u64 = path
                        .rsplit('/')
                        .next()
                        .and_then(|x| x.parse().ok())
                        .unwrap_or(0);
                    async move {
                        tokio::time::sleep(Duration::from_millis(100 + id % 100)).await;
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("ok"))))
                    }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    (port, seen, times)
}

/// Hosts of the test's own: network namespaces on a bridge the host is 10.77.0.1 on.
struct Hosts {
    bridge: String,
    names: Vec<String>,
}

fn ip(args: &[&str]) {
    let o = Command::new("ip")
        .args(args)
        .output()
        .expect("ip (iproute2)");
    assert!(
        o.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
}

impl Hosts {
    fn new(n: usize) -> Hosts {
        let tag = std::process::id() % 10_000;
        let bridge = format!("hb{tag}");
        let _ = Command::new("ip").args(["link", "del", &bridge]).output();
        ip(&["link", "add", &bridge, "type", "bridge"]);
        ip(&["addr", "add", &format!("{HOST}/16"), "dev", &bridge]);
        ip(&["link", "set", &bridge, "up"]);
        let mut names = Vec::new();
        for i in 0..n {
            let (ns, vh, vn) = (
                format!("hw{tag}-{i}"),
                format!("vh{tag}-{i}"),
                format!("vn{tag}-{i}"),
            );
            // A namespace or veth an aborted earlier run left behind is not this run's.
            let _ = Command::new("ip").args(["netns", "del", &ns]).output();
            let _ = Command::new("ip").args(["link", "del", &vh]).output();
            ip(&["netns", "add", &ns]);
            ip(&["link", "add", &vh, "type", "veth", "peer", "name", &vn]);
            ip(&["link", "set", &vh, "master", &bridge]);
            ip(&["link", "set", &vh, "up"]);
            ip(&["link", "set", &vn, "netns", &ns]);
            let addr = format!("10.77.1.{}/16", 10 + i);
            ip(&["netns", "exec", &ns, "ip", "addr", "add", &addr, "dev", &vn]);
            ip(&["netns", "exec", &ns, "ip", "link", "set", &vn, "up"]);
            ip(&["netns", "exec", &ns, "ip", "link", "set", "lo", "up"]);
            names.push(ns);
        }
        Hosts { bridge, names }
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for ns in &self.names {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
    }
}

struct Rendered {
    unpacked: k8s::Unpacked,
    dir: PathBuf,
    reports: PathBuf,
}

/// Renders `scenario` for `workers` and unpacks its ConfigMap under a fresh directory.
fn render(name: &str, scenario: &str, files: &[(&str, &str)], workers: u32) -> Rendered {
    let root = std::env::temp_dir().join(format!("harness-dist-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let src = root.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("dist.toml"), scenario).unwrap();
    for (f, text) in files {
        std::fs::write(src.join(f), text).unwrap();
    }
    let o = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["k8s", "render"])
        .arg(src.join("dist.toml"))
        .args(["--workers", &workers.to_string(), "--image", "harness:test"])
        .args(["--token", TOKEN])
        .env("HARNESS_PLUGIN_DIR", plugin_dir())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "render: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let dir = root.join("mount");
    let unpacked = k8s::unpack(&String::from_utf8(o.stdout).unwrap(), &dir);
    let reports = root.join("reports");
    std::fs::create_dir_all(&reports).unwrap();
    Rendered {
        unpacked,
        dir,
        reports,
    }
}

fn plugin_dir() -> String {
    std::env::var("HARNESS_PLUGIN_DIR").unwrap_or_else(|_| {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        repo.join("plugins/build").display().to_string()
    })
}

impl Rendered {
    /// The launch with the pod's paths made the test's, and the Service's name this host.
    fn local(&self, l: k8s::Launch, coordinator: &str) -> k8s::Launch {
        let (dir, reports) = (
            self.dir.display().to_string(),
            self.reports.display().to_string(),
        );
        l.rewritten(&[
            (self.unpacked.mount.as_str(), dir.as_str()),
            (self.unpacked.reports.as_str(), reports.as_str()),
            (self.unpacked.service.as_str(), coordinator),
            ("/opt/harness/plugins", plugin_dir().as_str()),
        ])
    }

    /// Starts a launch (in network namespace `ns` when given) with exactly its env.
    fn start(&self, l: &k8s::Launch, ns: Option<&str>, log: &str) -> Proc {
        assert_eq!(l.command[0], "harness", "{:?}", l.command);
        let mut cmd = match ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, env!("CARGO_BIN_EXE_harness")]);
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_harness")),
        };
        let out = std::fs::File::create(self.reports.join(format!("{log}.stdout"))).unwrap();
        let err = std::fs::File::create(self.reports.join(format!("{log}.stderr"))).unwrap();
        cmd.args(&l.command[1..])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(l.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        Proc(cmd.spawn().unwrap())
    }

    fn log(&self, name: &str) -> String {
        let read = |ext| std::fs::read_to_string(self.reports.join(format!("{name}.{ext}")));
        format!(
            "{}{}",
            read("stdout").unwrap_or_default(),
            read("stderr").unwrap_or_default()
        )
    }
}

/// A child process that is killed when the test lets go of it, so a failed assertion leaves
/// no load running and no namespace held for the next test.
struct Proc(Child);

impl std::ops::Deref for Proc {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Proc {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Waits for a child, at most `within`.
fn wait(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    None
}

fn worker_dirs(reports: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(reports)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("segment.json").exists())
        .collect();
    v.sort();
    v
}

fn scenario(port: u16, rate: u32, secs: u32, thresholds: &str) -> String {
    format!(
        r#"
name = "dist"
[target]
url = "http://{HOST}:{port}"
[data.users]
file = "users.csv"
select = "unique"
[scenarios.steady]
executor = "constant-arrival-rate"
rate = {rate}
duration = "{secs}s"
preAllocatedVUs = 20
maxVUs = 40
[[scenarios.steady.requests]]
name = "user"
path = "/u/{{{{users.id}}}}"
[thresholds]
{thresholds}
"#
    )
}

fn users(n: usize) -> String {
    let rows: String = (0..n).map(|i| format!("{i}\n")).collect();
    format!("id\n{rows}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_workers_send_exactly_the_single_run_schedule_and_a_global_breach_fails_the_run() {
    let _one = SERIAL.lock().await;
    let (port, seen) = server().await;
    let hosts = Hosts::new(4);
    // 50/s for 4 s is 200 requests: 50 per worker, each alone under the threshold's 120.
    let text = scenario(port, 50, 4, "http_reqs = [\"count<120\"]");
    let r = render("four", &text, &[("users.csv", &users(1000))], 4);
    for i in 0..4 {
        let env = r
            .unpacked
            .worker(i)
            .var("JOB_COMPLETION_INDEX")
            .map(str::to_owned);
        assert_eq!(
            env,
            Some(i.to_string()),
            "the Indexed Job's index is the worker's"
        );
    }
    let (mut coord, mut workers) = start_all(&r, &hosts, 4);
    let st = wait(&mut coord, Duration::from_secs(60)).expect("the coordinator ends");
    for (i, w) in workers.iter_mut().enumerate() {
        let ws = wait(w, Duration::from_secs(10)).expect("the worker ends");
        assert!(
            ws.success(),
            "worker {i}: {}",
            r.log(&format!("worker-{i}"))
        );
    }
    assert_eq!(st.code(), Some(99), "{}", r.log("coordinator"));
    assert_eq!(
        load_paths(&seen).len(),
        200,
        "exactly the single run's schedule"
    );
    // The coordinator's summary is the merged windows; `harness merge` of the workers'
    // directories rebuilds the same numbers offline.
    let dirs = worker_dirs(&r.reports);
    assert_eq!(dirs.len(), 4);
    let (_, coord_sum) = summary_in_role(&r.reports, "coordinator");
    assert_eq!(
        coord_sum["totals"]["http_reqs"].as_u64(),
        Some(200),
        "{coord_sum:#}"
    );
    let merged = r.reports.join("merged");
    let merged_sum = merge(&dirs, &merged, 99);
    let lat = |s: &serde_json::Value| {
        let t: Vec<serde_json::Value> = s["thresholds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["value"].clone())
            .collect();
        (s["totals"]["p95_ms"].clone(), t)
    };
    assert_eq!(
        merged_sum["totals"]["http_reqs"],
        coord_sum["totals"]["http_reqs"]
    );
    assert_eq!(
        lat(&merged_sum),
        lat(&coord_sum),
        "latency, bucket for bucket"
    );
    // One process fed the same schedule (the same rows, so the same delays): p99 within noise.
    seen.lock().unwrap().clear();
    let single = r.reports.join("single");
    let o = Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("run")
        .arg(
            r.unpacked
                .files
                .iter()
                .find(|f| f.ends_with("dist.toml"))
                .unwrap(),
        )
        .args(["--quiet", "--out"])
        .arg(&single)
        .env("HARNESS_PLUGIN_DIR", plugin_dir())
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(99),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let (_, one) = summary_in_role(&single, "single");
    assert_eq!(one["totals"]["http_reqs"], coord_sum["totals"]["http_reqs"]);
    let p99 = |s: &serde_json::Value| {
        let r = s["requests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "user")
            .unwrap();
        r["p99_ms"].as_f64().unwrap()
    };
    let (a, b) = (p99(&one), p99(&coord_sum));
    assert!(
        (a - b).abs() <= 5.0_f64.max(a * 0.25),
        "p99: one process {a} ms, four workers {b} ms"
    );
    // Three of four workers are not the run: refused, never a verdict on part of the load.
    let o = Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("merge")
        .args(&dirs[..3])
        .arg("--out")
        .arg(r.reports.join("partial"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("missing"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_run_fails_the_run_with_exit_3_and_the_others_stop() {
    let _one = SERIAL.lock().await;
    let (port, seen) = server().await;
    let hosts = Hosts::new(2);
    let text = scenario(port, 40, 30, "http_req_failed = [\"rate<0.5\"]");
    let r = render("kill", &text, &[("users.csv", &users(5000))], 2);
    let (mut coord, mut workers) = start_all(&r, &hosts, 2);
    // Wait for the load to flow, then kill worker 1 outright.
    wait_for_load(&seen, 60, &r).await;
    let killed_at = Instant::now();
    workers[1].kill().unwrap();
    let st = wait(&mut coord, Duration::from_secs(20)).expect("the coordinator ends");
    assert_eq!(st.code(), Some(3), "{}", r.log("coordinator"));
    let w0 = wait(&mut workers[0], Duration::from_secs(10)).expect("worker 0 stops");
    assert!(killed_at.elapsed() < Duration::from_secs(15));
    let _ = w0;
    let (_, sum) = summary_in_role(&r.reports, "coordinator");
    assert_eq!(sum["status"], "error", "{sum:#}");
    assert!(
        sum["reason"].as_str().unwrap_or("").contains("worker 1"),
        "{sum:#}"
    );
    // No orphan load: nothing arrives once the run ended.
    let after = seen.lock().unwrap().len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(seen.lock().unwrap().len(), after);
    assert!(after < 1200, "the run ended early: {after}");
}

/// The coordinator's summary (the run dir without segment.json).
fn summary_in_role(reports: &Path, _role: &str) -> (PathBuf, serde_json::Value) {
    let mut found = BTreeMap::new();
    for e in std::fs::read_dir(reports).unwrap() {
        let p = e.unwrap().path();
        if p.join("segment.json").exists() || p.file_name().unwrap() == "merged" {
            continue;
        }
        if let Ok(text) = std::fs::read_to_string(p.join("summary.json")) {
            found.insert(p.clone(), serde_json::from_str(&text).unwrap());
        }
    }
    assert_eq!(found.len(), 1, "one coordinator run: {found:?}");
    found.into_iter().next().unwrap()
}

/// `harness merge DIRS --out OUT`, which must exit `code`; the merged summary.
fn merge(dirs: &[PathBuf], out: &Path, code: i32) -> serde_json::Value {
    let o = Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("merge")
        .args(dirs)
        .arg("--out")
        .arg(out)
        .env("HARNESS_PLUGIN_DIR", plugin_dir())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "{err}");
    serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap()
}

/// The load's paths (the preflight's request to `/` is the coordinator's, not the load's),
/// checked to name no `unique` row twice.
fn load_paths(seen: &Seen) -> Vec<String> {
    let paths: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|p| p.starts_with("/u/"))
        .cloned()
        .collect();
    let mut rows = paths.clone();
    rows.sort();
    rows.dedup();
    assert_eq!(
        rows.len(),
        paths.len(),
        "a unique row used twice across workers"
    );
    paths
}

/// Waits until the server has seen `n` requests (at most 20 s).
async fn wait_for_load(seen: &Seen, n: usize, r: &Rendered) {
    let until = Instant::now() + Duration::from_secs(20);
    while seen.lock().unwrap().len() < n && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen.lock().unwrap().len() >= n, "{}", r.log("coordinator"));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The coordinator listens on the pod's `0.0.0.0:<port>`; here on the bridge's address.
fn rewrite_listen(l: k8s::Launch, addr: &str) -> k8s::Launch {
    let mut l = l;
    if let Some(i) = l.command.iter().position(|a| a == "--listen") {
        l.command[i + 1] = addr.to_owned();
    }
    l
}

/// Starts the coordinator and `n` workers of `r`; the coordinator on the bridge's address.
fn start_all(r: &Rendered, hosts: &Hosts, n: u32) -> (Proc, Vec<Proc>) {
    start_with(r, hosts, n, &[])
}

/// `start_all` with `extra` appended to the coordinator's command.
fn start_with(r: &Rendered, hosts: &Hosts, n: u32, extra: &[&str]) -> (Proc, Vec<Proc>) {
    let coordinator = format!("{HOST}:{}", free_port());
    let mut c = rewrite_listen(
        r.local(r.unpacked.coordinator(), &coordinator),
        &coordinator,
    );
    c.command.extend(extra.iter().map(|a| a.to_string()));
    let coord = r.start(&c, None, "coordinator");
    let workers = (0..n)
        .map(|i| {
            let w = r.local(r.unpacked.worker(i), &coordinator);
            r.start(&w, Some(&hosts.names[i as usize]), &format!("worker-{i}"))
        })
        .collect();
    (coord, workers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_on_fail_on_the_global_count_stops_every_worker_within_2_s() {
    let _one = SERIAL.lock().await;
    let (port, seen, times) = timed_server().await;
    let hosts = Hosts::new(2);
    // 100/s over two workers: the global count passes 300 after ~3 s, each worker's after ~6 s.
    let t = r#"http_reqs = [{ threshold = "count<300", abortOnFail = true }]"#;
    let r = render(
        "abort",
        &scenario(port, 100, 30, t),
        &[("users.csv", &users(5000))],
        2,
    );
    let (mut coord, mut workers) = start_all(&r, &hosts, 2);
    let st = wait(&mut coord, Duration::from_secs(40)).expect("the coordinator ends");
    let ended = Instant::now();
    assert_eq!(st.code(), Some(99), "{}", r.log("coordinator"));
    for (i, w) in workers.iter_mut().enumerate() {
        let ws = wait(w, Duration::from_secs(10)).expect("the worker ends");
        assert!(
            ws.success(),
            "worker {i}: {}",
            r.log(&format!("worker-{i}"))
        );
    }
    // Nothing leaves a worker 2 s after the abort (the coordinator ends after its drain).
    let count = || seen.lock().unwrap().len();
    let at_end = count();
    tokio::time::sleep(Duration::from_secs(2).saturating_sub(ended.elapsed())).await;
    assert_eq!(count(), at_end, "load after the abort");
    assert!(
        at_end < 1000,
        "aborted early, not at the end: {at_end} requests"
    );
    // The 300th request broke the threshold; the coordinator sees it within a window and a
    // tick (2 s), and the workers stop within 2 s of its word.
    let times = times.lock().unwrap().clone();
    let breach = times[299];
    let last = *times.last().unwrap();
    let after = last.duration_since(breach);
    assert!(
        after < Duration::from_millis(4500),
        "load went on {after:?} after the breach"
    );
    let (_, sum) = summary_in_role(&r.reports, "coordinator");
    assert_eq!(sum["status"], "aborted", "{sum:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_plugin_runs_once_on_the_coordinator_applied_once_and_rolled_back_once() {
    let _one = SERIAL.lock().await;
    let (port, _seen) = server().await;
    let hosts = Hosts::new(2);
    // A process to pause: SIGSTOP at 1 s for 2 s, then SIGCONT.
    let mut victim = Command::new("sleep").arg("60").spawn().unwrap();
    let root = std::env::temp_dir().join(format!("harness-dist-victim-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    let pid_file = root.join("victim.pid");
    std::fs::write(&pid_file, victim.id().to_string()).unwrap();
    let plugin = Path::new(&plugin_dir()).join("chaos-schedule.wasm");
    let faults = format!(
        r#"
[actuators.processes.victim]
pid_file = "{}"
[[faults]]
plugin = "{}"
[[faults.config.steps]]
action = "pause"
name = "victim-paused"
process = "victim"
at_s = 1
duration_s = 2
"#,
        pid_file.display(),
        plugin.display()
    );
    let text = scenario(port, 20, 5, "http_req_failed = [\"rate<0.5\"]") + &faults;
    let r = render("fault", &text, &[("users.csv", &users(1000))], 2);
    let (mut coord, mut workers) = start_all(&r, &hosts, 2);
    let st = wait(&mut coord, Duration::from_secs(40)).expect("the coordinator ends");
    for w in &mut workers {
        wait(w, Duration::from_secs(10)).expect("the worker ends");
    }
    assert_eq!(st.code(), Some(0), "{}", r.log("coordinator"));
    let (dir, sum) = summary_in_role(&r.reports, "coordinator");
    let applied = sum["faults"].as_array().unwrap();
    assert_eq!(applied.len(), 1, "one fault, applied once: {applied:#?}");
    assert_eq!(applied[0]["kind"], "process-pause");
    assert!(applied[0]["rolled_back_s"].is_number(), "{applied:#?}");
    assert!(dir.join("faults.jsonl").exists());
    for w in worker_dirs(&r.reports) {
        assert!(
            !w.join("faults.jsonl").exists(),
            "a worker journaled a fault: {}",
            w.display()
        );
    }
    // Rolled back: the process runs again.
    let state = std::fs::read_to_string(format!("/proc/{}/stat", victim.id())).unwrap();
    let state = state
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    assert_ne!(state, "T", "the victim is still stopped");
    let _ = victim.kill();
    let _ = victim.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_loses_its_coordinator_stops_its_load_within_5_s() {
    let _one = SERIAL.lock().await;
    let (port, seen, times) = timed_server().await;
    let hosts = Hosts::new(2);
    let text = scenario(port, 40, 30, "http_req_failed = [\"rate<0.5\"]");
    let r = render("orphan", &text, &[("users.csv", &users(5000))], 2);
    let (mut coord, mut workers) = start_all(&r, &hosts, 2);
    wait_for_load(&seen, 60, &r).await;
    let killed_at = Instant::now();
    coord.kill().unwrap();
    let _ = coord.wait();
    for (i, w) in workers.iter_mut().enumerate() {
        let st = wait(w, Duration::from_secs(8)).expect("the worker stops");
        assert_eq!(
            st.code(),
            Some(3),
            "worker {i}: {}",
            r.log(&format!("worker-{i}"))
        );
        assert!(r.log(&format!("worker-{i}")).contains("coordinator gone"));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let last = *times.lock().unwrap().last().unwrap();
    let went_on = last.saturating_duration_since(killed_at);
    assert!(
        went_on < Duration::from_secs(5),
        "orphan load for {went_on:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_runs_without_a_coordinator_merge_into_the_whole_run() {
    let _one = SERIAL.lock().await;
    let (port, seen) = server().await;
    let _hosts = Hosts::new(0);
    // Each half alone passes count<80; the merged run (120) fails it, as one process would.
    let text = scenario(port, 30, 4, "http_reqs = [\"count<80\"]");
    let r = render("segments", &text, &[("users.csv", &users(500))], 2);
    let file = r
        .unpacked
        .files
        .iter()
        .find(|f| f.ends_with("dist.toml"))
        .unwrap();
    let halves = ["0:1/2", "1/2:1"];
    let runs: Vec<Proc> = halves
        .iter()
        .map(|seg| {
            let c = Command::new(env!("CARGO_BIN_EXE_harness"))
                .arg("run")
                .arg(file)
                .args(["--quiet", "--segment", seg, "--out"])
                .arg(&r.reports)
                .env("HARNESS_PLUGIN_DIR", plugin_dir())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            Proc(c)
        })
        .collect();
    for mut c in runs {
        let st = wait(&mut c, Duration::from_secs(30)).expect("the segment run ends");
        assert_eq!(st.code(), Some(0), "each half passes on its own share");
    }
    assert_eq!(
        load_paths(&seen).len(),
        120,
        "the halves send the whole schedule"
    );
    let dirs = worker_dirs(&r.reports);
    assert_eq!(dirs.len(), 2);
    let merged = r.reports.join("merged");
    let sum = merge(&dirs, &merged, 99);
    assert_eq!(sum["totals"]["http_reqs"].as_u64(), Some(120));
    for f in ["report.html", "k6-summary.json", "timeseries.csv"] {
        assert!(merged.join(f).exists(), "{f}");
    }
    // A worker whose window log stopped early holds part of its load: refused by name.
    let meta = dirs[1].join("segment.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&meta).unwrap()).unwrap();
    m["log_error"] = "No space left on device (os error 28)".into();
    std::fs::write(&meta, m.to_string()).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("merge")
        .args(&dirs)
        .arg("--out")
        .arg(r.reports.join("partial"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("window log is incomplete"), "{err}");
    assert!(
        !r.reports.join("partial").exists(),
        "nothing written for a refused merge"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_missing_at_the_barrier_is_exit_3_after_the_ready_timeout_and_nothing_is_sent() {
    let _one = SERIAL.lock().await;
    let (port, seen) = server().await;
    let hosts = Hosts::new(1);
    let text = scenario(port, 20, 5, "http_reqs = [\"count>0\"]");
    let r = render("barrier", &text, &[("users.csv", &users(200))], 2);
    let started = Instant::now();
    // Index 0 dials in; index 1 never comes.
    let (mut coord, mut workers) = start_with(&r, &hosts, 1, &["--ready-timeout", "3"]);
    let st = wait(&mut coord, Duration::from_secs(20)).expect("the coordinator ends");
    assert_eq!(st.code(), Some(3), "{}", r.log("coordinator"));
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(3), "waited {took:?}");
    assert!(took < Duration::from_secs(12), "waited {took:?}");
    let ws = wait(&mut workers[0], Duration::from_secs(10)).expect("the waiting worker ends");
    assert_eq!(ws.code(), Some(3), "{}", r.log("worker-0"));
    let (_, sum) = summary_in_role(&r.reports, "coordinator");
    assert_eq!(sum["status"], "error", "{sum:#}");
    let reason = sum["reason"].as_str().unwrap_or("");
    assert!(reason.contains("missing index 1"), "{sum:#}");
    let seen = seen.lock().unwrap().clone();
    assert!(
        !seen.iter().any(|p| p.starts_with("/u/")),
        "no load before all are ready: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_and_teardown_run_once_on_the_coordinator_and_its_variables_reach_every_worker() {
    let _one = SERIAL.lock().await;
    let (port, seen) = server().await;
    let hosts = Hosts::new(2);
    // The server answers "ok": setup's variable is its content-length, 2.
    let text = format!(
        r#"
name = "dist"
[target]
url = "http://{HOST}:{port}"
[[setup]]
name = "login"
method = "POST"
path = "/setup"
[[setup.extract]]
var = "sid"
header = "content-length"
[scenarios.steady]
executor = "constant-arrival-rate"
rate = 20
duration = "3s"
preAllocatedVUs = 10
[[scenarios.steady.flow]]
name = "work"
path = "/w/{{{{sid}}}}/1"
[[teardown]]
name = "logout"
method = "POST"
path = "/teardown"
[thresholds]
http_reqs = ["count>=60"]
"#
    );
    let r = render("setup", &text, &[], 2);
    let (mut coord, mut workers) = start_all(&r, &hosts, 2);
    let st = wait(&mut coord, Duration::from_secs(40)).expect("the coordinator ends");
    for w in &mut workers {
        wait(w, Duration::from_secs(10)).expect("the worker ends");
    }
    assert_eq!(st.code(), Some(0), "{}", r.log("coordinator"));
    let paths = seen.lock().unwrap().clone();
    let count = |p: &str| paths.iter().filter(|x| x.as_str() == p).count();
    assert_eq!(count("/setup"), 1, "{paths:?}");
    assert_eq!(count("/teardown"), 1, "{paths:?}");
    assert_eq!(
        count("/w/2/1"),
        60,
        "every worker's requests carry setup's value"
    );
    // And the coordinator's preflight asked for the target once: nothing else arrived.
    assert_eq!(count("/"), 1, "{paths:?}");
    assert_eq!(paths.len(), 63, "{paths:?}");
}
