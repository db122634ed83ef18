//! A tiny in-test HTTP server with exact per-path counters and switchable behaviour (status,
//! delay), served on 127.0.0.1:0 with `run(listener, shutdown)`, plus helpers to run the
//! `harness` binary and read what it wrote.

#![allow(dead_code)]

pub mod cdp;
pub mod faults;
pub mod k8s;
pub mod prometheus;
pub mod web;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::Router;

#[derive(Default)]
pub struct Behaviour {
    pub counts: Mutex<BTreeMap<String, u64>>,
    pub status: AtomicU16,
    pub delay_ms: AtomicU64,
    /// What `/metrics` answers: see [`Metrics`].
    pub metrics: AtomicU8,
    /// Requests being answered now, and the most ever at once.
    pub in_flight: AtomicU64,
    pub peak_in_flight: AtomicU64,
}

/// The modes of the test server's `/metrics`.
#[repr(u8)]
pub enum Metrics {
    /// `queue_depth 3` and `jobs_total{queue="a"} 1`, `jobs_total{queue="b"} 2`.
    Ok = 0,
    /// A body that is not Prometheus text.
    Garbage = 1,
    /// No answer for a minute.
    Hang = 2,
    /// Valid text without `queue_depth`.
    Missing = 3,
}

impl Behaviour {
    pub fn set_metrics(&self, m: Metrics) {
        self.metrics.store(m as u8, Relaxed);
    }
}

async fn metrics(State(b): State<Arc<Behaviour>>) -> (StatusCode, String) {
    let body = match b.metrics.load(Relaxed) {
        0 => "# TYPE queue_depth gauge\nqueue_depth 3\njobs_total{queue=\"a\"} 1\njobs_total{queue=\"b\"} 2\n",
        1 => "<html>this is { not prometheus\n",
        2 => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            ""
        }
        _ => "# TYPE other gauge\nother 1\n",
    };
    (StatusCode::OK, body.to_owned())
}

pub struct TestServer {
    pub url: String,
    pub state: Arc<Behaviour>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<()>,
}

async fn any(State(b): State<Arc<Behaviour>>, req: Request) -> StatusCode {
    let path = req.uri().path().to_owned();
    let now = b.in_flight.fetch_add(1, Relaxed) + 1;
    b.peak_in_flight.fetch_max(now, Relaxed);
    let delay = b.delay_ms.load(Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    *b.counts.lock().unwrap().entry(path).or_default() += 1;
    b.in_flight.fetch_sub(1, Relaxed);
    StatusCode::from_u16(b.status.load(Relaxed)).unwrap()
}

impl TestServer {
    pub async fn start() -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Behaviour::default());
        state.status.store(200, Relaxed);
        let app = Router::new()
            .route("/metrics", axum::routing::get(metrics))
            .fallback(any)
            .with_state(state.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        TestServer {
            url,
            state,
            stop: Some(tx),
            handle,
        }
    }

    pub fn count(&self, path: &str) -> u64 {
        self.state
            .counts
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Requests to every path but `/`, which the harness's one pre-flight GET hits.
    pub fn total(&self) -> u64 {
        self.state
            .counts
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p.as_str() != "/")
            .map(|(_, v)| v)
            .sum()
    }

    /// Stops accepting and closes the listener (the target "dies").
    pub async fn kill(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.handle.abort();
    }
}

/// A directory under the system temp dir, removed when dropped unless
/// `HARNESS_KEEP_TEST_DIRS` is set (to read a failed run's reports afterwards).
pub struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("HARNESS_KEEP_TEST_DIRS").is_some() {
            eprintln!("kept {}", self.0.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn temp_dir(tag: &str) -> TempDir {
    let d = std::env::temp_dir().join(format!(
        "harness-{tag}-{}-{}",
        std::process::id(),
        fastrand::u32(..)
    ));
    std::fs::create_dir_all(&d).unwrap();
    TempDir(d)
}

/// Writes `text` as a scenario file in `dir`.
pub fn scenario(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Runs the harness binary to completion (async-friendly).
pub async fn harness(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_harness"))
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

/// The single run directory under `out`.
pub fn run_dir(out: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(
        dirs.len(),
        1,
        "expected one run directory in {}: {dirs:?}",
        out.display()
    );
    dirs.into_iter().next().unwrap()
}

pub fn summary(out: &Path) -> serde_json::Value {
    let p = run_dir(out).join("summary.json");
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

/// (observed, passed) of the first verdict on `metric` (as written) in a summary.json.
pub fn verdict(sum: &serde_json::Value, metric: &str) -> (Option<f64>, bool) {
    let v = sum["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["metric"] == metric)
        .unwrap_or_else(|| panic!("no verdict for {metric}: {}", sum["thresholds"]));
    (v["observed"].as_f64(), v["passed"].as_bool().unwrap())
}

/// A two-request arrival-rate scenario against `url`.
pub fn basic(url: &str, rate: u32, secs: u32, thresholds: &str) -> String {
    format!(
        r#"
name = "basic"
[target]
url = "{url}"
timeout = "2s"
[executor]
type = "arrival-rate"
start_rate = {rate}
max_in_flight = 500
stages = [ {{ duration = "{secs}s", target = {rate} }} ]
[generators]
id = {{ type = "sequence" }}
[[requests]]
name = "a"
method = "POST"
path = "/a/{{{{id}}}}"
body = '{{"id": {{{{id}}}}}}'
weight = 3
[[requests]]
name = "b"
path = "/b"
[thresholds]
{thresholds}
"#
    )
}

/// [`basic`] with `/b` spread over products 2..9 by the hot-key generator `product` (share 0, so
/// product 1 gets nothing until a fault raises the share) and the lock-contention plugin at
/// `plugin` as a fault with `fault_config` (a TOML inline-table body).
pub fn hot_product_with_fault(
    url: &str,
    rate: u32,
    secs: u32,
    thresholds: &str,
    plugin: &Path,
    fault_config: &str,
) -> String {
    let text = basic(url, rate, secs, thresholds)
        .replace("[generators]\n", "[generators]\nproduct = { type = \"hot-key\", min = 2, max = 9, hot = 1, share = 0.0 }\n")
        .replace("path = \"/b\"", "path = \"/b/{{product}}\"");
    format!(
        "{text}\n[[faults]]\nplugin = \"{}\"\nconfig = {{ {fault_config} }}\n",
        plugin.display()
    )
}

/// Writes `text` as a scenario in a new temp dir and runs `harness run … --quiet` on it to the
/// end. Returns the dir (removed on drop), the run's `--out` dir and the process output.
pub async fn run_in_temp(tag: &str, text: &str) -> (TempDir, PathBuf, Output) {
    let dir = temp_dir(tag);
    let (o, out) = run_named(&dir, "s", text).await;
    (dir, out, o)
}

/// Writes `text` as `<name>.toml` in `dir` and runs it quietly with `--out <dir>/<name>`.
pub async fn run_named(dir: &Path, name: &str, text: &str) -> (Output, PathBuf) {
    let file = scenario(dir, &format!("{name}.toml"), text);
    let out = dir.join(name);
    let o = harness(args(&[
        "run",
        &file.display().to_string(),
        "--out",
        &out.display().to_string(),
        "--quiet",
    ]))
    .await;
    (o, out)
}

pub fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Starts `harness run FILE --out OUT --quiet`, sends SIGINT after `after`, returns its output.
pub async fn run_then_interrupt(file: &Path, out: &Path, after: Duration) -> Output {
    run_then_signal(file, out, after, libc::SIGINT).await
}

/// Like [`run_then_interrupt`] with any signal.
pub async fn run_then_signal(file: &Path, out: &Path, after: Duration, signal: i32) -> Output {
    let child = spawn_run(file, out, true);
    tokio::time::sleep(after).await;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, signal) };
    tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap()
}

/// Starts `harness run FILE --out OUT --quiet`; its output piped, or dropped.
pub fn spawn_run(file: &Path, out: &Path, piped: bool) -> std::process::Child {
    let io = || match piped {
        true => std::process::Stdio::piped(),
        false => std::process::Stdio::null(),
    };
    Command::new(env!("CARGO_BIN_EXE_harness"))
        .args([
            "run",
            &file.display().to_string(),
            "--out",
            &out.display().to_string(),
            "--quiet",
        ])
        .stdout(io())
        .stderr(io())
        .spawn()
        .unwrap()
}

/// A port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
