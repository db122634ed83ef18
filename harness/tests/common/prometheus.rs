//! A real Prometheus for end-to-end tests: Debian's `/usr/bin/prometheus` (installed by
//! `scripts/setup.sh`; a test fails, never skips, without it) on a free port with a config in
//! a temp directory, scraping and evaluating every second, remote write on, killed with its
//! process group on drop. Its config is written here because the crate's stack module is
//! private to the crate.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = "/usr/bin/prometheus";

pub struct TestPrometheus {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    pub port: u16,
    /// Config, TSDB and log; removed on drop (kept with `HARNESS_KEEP_TEST_DIRS`).
    pub dir: PathBuf,
    child: Child,
    http: reqwest::Client,
    _dir: super::TempDir,
}

impl Drop for TestPrometheus {
    fn drop(&mut self) {
        // SAFETY: the child leads its own process group (process_group(0) below).
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// `prometheus.yml`: one job per `(job, host:port, metrics path)`, the rule files as given.
fn config(scrape: &[(&str, String, &str)], rule_files: &[PathBuf]) -> String {
    let mut c = String::from(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n  scrape_timeout: 900ms\n",
    );
    c.push_str("rule_files:\n");
    for f in rule_files {
        let abs = std::path::absolute(f).unwrap();
        c.push_str(&format!("  - {:?}\n", abs.display().to_string()));
    }
    c.push_str("scrape_configs:\n");
    for (job, address, path) in scrape {
        c.push_str(&format!(
            "  - job_name: {job:?}\n    metrics_path: {path:?}\n    static_configs:\n      \
             - targets: [{address:?}]\n"
        ));
    }
    c
}

impl TestPrometheus {
    /// Starts Prometheus scraping `scrape` (job, `host:port`, metrics path) and evaluating
    /// `rule_files`; returns once `/-/ready` answers (panics with the log's tail after 30 s).
    pub async fn start(scrape: &[(&str, String, &str)], rule_files: &[PathBuf]) -> TestPrometheus {
        assert!(
            std::path::Path::new(BIN).is_file(),
            "prometheus is not installed: run scripts/setup.sh (it installs Debian's prometheus)"
        );
        let port = free_port();
        let tmp = super::temp_dir("prometheus");
        let dir = tmp.to_path_buf();
        let file = dir.join("prometheus.yml");
        std::fs::write(&file, config(scrape, rule_files)).unwrap();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new(BIN)
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-remote-write-receiver")
            .arg("--web.enable-lifecycle")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let p = TestPrometheus {
            url: format!("http://127.0.0.1:{port}"),
            port,
            dir,
            child,
            http,
            _dir: tmp,
        };
        p.wait_ready().await;
        p
    }

    async fn wait_ready(&self) {
        let started = Instant::now();
        loop {
            let r = self.http.get(format!("{}/-/ready", self.url)).send().await;
            if r.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "prometheus not ready after 30 s:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The last lines of Prometheus's log, for assertion messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Where remote write goes.
    pub fn remote_write_url(&self) -> String {
        format!("{}/api/v1/write", self.url)
    }

    async fn api(&self, path: &str, params: &[(&str, &str)]) -> serde_json::Value {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .query(params)
            .send()
            .await
            .unwrap();
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["status"], "success", "{path} {params:?}: {v}");
        v["data"].clone()
    }

    /// An instant query's samples (a scalar as one unlabelled sample). Panics on an error.
    pub async fn query(&self, promql: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        let data = self.api("/api/v1/query", &[("query", promql)]).await;
        let value = |v: &serde_json::Value| match v[1].as_str().unwrap() {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            s => s.parse().unwrap(),
        };
        match data["resultType"].as_str().unwrap() {
            "scalar" => vec![(BTreeMap::new(), value(&data["result"]))],
            "vector" => data["result"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    let labels = serde_json::from_value(e["metric"].clone()).unwrap();
                    (labels, value(&e["value"]))
                })
                .collect(),
            other => panic!("`{promql}` answered a {other}"),
        }
    }

    /// The one value of `promql`, `None` when it matches nothing; several series panic.
    pub async fn value(&self, promql: &str) -> Option<f64> {
        let samples = self.query(promql).await;
        assert!(samples.len() <= 1, "`{promql}` matched {samples:?}");
        samples.first().map(|s| s.1)
    }

    /// Polls `promql` every 200 ms until it has a value that `ok` accepts; panics after
    /// `within` with the last value seen.
    pub async fn wait_for(&self, promql: &str, within: Duration, ok: impl Fn(f64) -> bool) -> f64 {
        let started = Instant::now();
        loop {
            let v = self.value(promql).await;
            if let Some(v) = v.filter(|v| ok(*v)) {
                return v;
            }
            assert!(
                started.elapsed() < within,
                "`{promql}` still {v:?} after {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The alerts pending or firing now, as (alertname, state).
    pub async fn alerts(&self) -> Vec<(String, String)> {
        let data = self.api("/api/v1/alerts", &[]).await;
        data["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let name = a["labels"]["alertname"].as_str().unwrap_or("").to_owned();
                (name, a["state"].as_str().unwrap_or("").to_owned())
            })
            .collect()
    }

    /// The names of the alerting rules Prometheus loaded.
    pub async fn rule_names(&self) -> Vec<String> {
        let data = self.api("/api/v1/rules", &[("type", "alert")]).await;
        data["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().unwrap().iter())
            .map(|r| r["name"].as_str().unwrap().to_owned())
            .collect()
    }
}
