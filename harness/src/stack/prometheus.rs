//! The stack's Prometheus: Debian's `prometheus` (installed by `scripts/setup.sh`) as a child
//! on 127.0.0.1, scraping the stack's parts every second, evaluating the scenario's rule files
//! every second and, when asked, receiving remote write (the harness's own series).
//!
//! One-second scrapes and evaluations, because a demo run lasts 90 s: at Prometheus's default
//! 1 m a `for: 10s` rule could not fire inside it. Its TSDB starts empty every time (a stale
//! one would answer queries with the last stack's series).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

// `crate::stack::…` rather than `super::…`: the same paths wherever the module is mounted.
use crate::stack::process::{self, Child};
use crate::stack::StackError;

/// Where Debian's package puts the server.
const DEBIAN_BIN: &str = "/usr/bin/prometheus";
/// How long a fresh Prometheus may take to answer `/-/ready`.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// One scrape job: `address` is `host:port`, `metrics_path` e.g. `/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScrapeTarget {
    pub job: String,
    pub address: String,
    pub metrics_path: String,
}

/// What the stack's Prometheus does.
#[derive(Debug, Clone, PartialEq)]
pub struct PromSpec {
    /// 0: a free port.
    pub port: u16,
    pub scrape: Vec<ScrapeTarget>,
    pub rule_files: Vec<PathBuf>,
    /// `--web.enable-remote-write-receiver`: `POST /api/v1/write` accepts series.
    pub remote_write_receiver: bool,
}

/// The running server, as the state file records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Prometheus {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    pub port: u16,
    pub child: Child,
    /// `<stack dir>/prometheus`: config and TSDB, removed by `stop`.
    pub dir: PathBuf,
    pub rule_files: Vec<PathBuf>,
    pub remote_write_receiver: bool,
}

#[derive(Serialize)]
struct Config {
    global: Global,
    rule_files: Vec<String>,
    scrape_configs: Vec<ScrapeConfig>,
}

#[derive(Serialize)]
struct Global {
    scrape_interval: &'static str,
    evaluation_interval: &'static str,
    scrape_timeout: &'static str,
}

#[derive(Serialize)]
struct ScrapeConfig {
    job_name: String,
    metrics_path: String,
    static_configs: Vec<StaticConfig>,
}

#[derive(Serialize)]
struct StaticConfig {
    targets: Vec<String>,
}

/// `prometheus.yml` for `spec`: 1 s scrapes (900 ms timeout) and evaluations, one job per
/// target, the rule files as absolute paths (Prometheus reads relative ones from its config's
/// directory, which is not the user's).
pub fn config_yaml(spec: &PromSpec) -> String {
    let config = Config {
        global: Global {
            scrape_interval: "1s",
            evaluation_interval: "1s",
            scrape_timeout: "900ms",
        },
        rule_files: spec
            .rule_files
            .iter()
            .map(|p| {
                std::path::absolute(p)
                    .unwrap_or_else(|_| p.clone())
                    .display()
                    .to_string()
            })
            .collect(),
        scrape_configs: spec
            .scrape
            .iter()
            .map(|t| ScrapeConfig {
                job_name: t.job.clone(),
                metrics_path: t.metrics_path.clone(),
                static_configs: vec![StaticConfig {
                    targets: vec![t.address.clone()],
                }],
            })
            .collect(),
    };
    serde_yaml::to_string(&config).expect("config serialises")
}

/// `prometheus` on PATH, else Debian's `/usr/bin/prometheus`.
pub fn binary() -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join("prometheus"))
        .chain([PathBuf::from(DEBIAN_BIN)])
        .find(|p| p.is_file())
}

/// Writes `<dir>/prometheus/prometheus.yml`, starts Prometheus with an empty TSDB in
/// `<dir>/prometheus/data` and its output in `<logs>/prometheus.log`, and waits until it is
/// ready (the log's tail in the error otherwise).
pub async fn start(spec: &PromSpec, dir: &Path, logs: &Path) -> Result<Prometheus, StackError> {
    let bin = binary().ok_or_else(|| StackError::Missing {
        what: "prometheus".into(),
        hint: "install Debian's prometheus package (`scripts/setup.sh` does)".into(),
    })?;
    for f in &spec.rule_files {
        if !f.is_file() {
            return Err(StackError::Missing {
                what: format!("rule file {}", f.display()),
                hint: "the scenario's rule files must exist before Prometheus starts".into(),
            });
        }
    }
    let home = dir.join("prometheus");
    let data = home.join("data");
    std::fs::remove_dir_all(&data)
        .or_else(ignore_missing)
        .map_err(|e| StackError::io(&data, e))?;
    std::fs::create_dir_all(&data).map_err(|e| StackError::io(&data, e))?;
    let config = home.join("prometheus.yml");
    std::fs::write(&config, config_yaml(spec)).map_err(|e| StackError::io(&config, e))?;
    let port = match spec.port {
        0 => process::free_port()?,
        p => p,
    };
    let mut args = vec![
        format!("--config.file={}", config.display()),
        format!("--storage.tsdb.path={}", data.display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
        // /-/reload and /-/quit: a changed rule file is reloaded without a restart.
        "--web.enable-lifecycle".to_owned(),
        "--storage.tsdb.retention.time=1d".to_owned(),
    ];
    if spec.remote_write_receiver {
        args.push("--web.enable-remote-write-receiver".to_owned());
    }
    let child = process::spawn(&bin, &args, &home, &logs.join("prometheus.log"), &[])?;
    let url = format!("http://127.0.0.1:{port}");
    wait_ready(&child, &url).await?;
    Ok(Prometheus {
        url,
        port,
        child,
        dir: home,
        rule_files: spec.rule_files.clone(),
        remote_write_receiver: spec.remote_write_receiver,
    })
}

/// Waits until Prometheus (`child`) at `url` answers `/-/ready` (503 while it starts).
pub(super) async fn wait_ready(child: &Child, url: &str) -> Result<(), StackError> {
    let ready = format!("{url}/-/ready");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("http client");
    process::wait_ready(child, "prometheus", READY_WITHIN, || {
        let (c, r) = (client.clone(), ready.clone());
        async move { matches!(c.get(&r).send().await, Ok(r) if r.status().is_success()) }
    })
    .await
}

fn ignore_missing(e: std::io::Error) -> std::io::Result<()> {
    match e.kind() {
        std::io::ErrorKind::NotFound => Ok(()),
        _ => Err(e),
    }
}

impl Prometheus {
    /// Where remote write goes (when the receiver is on).
    pub fn remote_write_url(&self) -> String {
        format!("{}/api/v1/write", self.url)
    }

    /// SIGTERM (Prometheus closes its TSDB cleanly), then removes its directory.
    pub fn stop(&self) -> Result<(), StackError> {
        self.child.stop(Duration::from_secs(10));
        std::fs::remove_dir_all(&self.dir)
            .or_else(ignore_missing)
            .map_err(|e| StackError::io(&self.dir, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(rule_files: Vec<PathBuf>) -> PromSpec {
        PromSpec {
            port: 0,
            scrape: vec![ScrapeTarget {
                job: "app".into(),
                address: "127.0.0.1:8080".into(),
                metrics_path: "/metrics".into(),
            }],
            rule_files,
            remote_write_receiver: true,
        }
    }

    #[test]
    fn the_config_scrapes_each_target_every_second_with_absolute_rule_files() {
        let yaml = config_yaml(&spec(vec![PathBuf::from("alerts/a.yml")]));
        let v: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(v["global"]["scrape_interval"], "1s");
        assert_eq!(v["global"]["evaluation_interval"], "1s");
        assert_eq!(v["global"]["scrape_timeout"], "900ms");
        let rule = v["rule_files"][0].as_str().unwrap();
        assert!(
            Path::new(rule).is_absolute() && rule.ends_with("alerts/a.yml"),
            "{rule}"
        );
        let job = &v["scrape_configs"][0];
        assert_eq!(job["job_name"], "app");
        assert_eq!(job["metrics_path"], "/metrics");
        assert_eq!(job["static_configs"][0]["targets"][0], "127.0.0.1:8080");
    }

    #[test]
    fn promtool_accepts_the_config() {
        let promtool = crate::prom::rules::promtool()
            .expect("promtool is not installed: run scripts/setup.sh (Debian's prometheus)");
        let dir = std::env::temp_dir().join(format!("harness-promcfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let rules = dir.join("r.yml");
        std::fs::write(&rules, "groups: []\n").unwrap();
        let file = dir.join("prometheus.yml");
        std::fs::write(&file, config_yaml(&spec(vec![rules]))).unwrap();
        let out = std::process::Command::new(promtool)
            .args(["check", "config"])
            .arg(&file)
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[tokio::test]
    async fn a_started_prometheus_scrapes_evaluates_and_is_gone_after_stop() {
        let dir = std::env::temp_dir().join(format!("harness-promstack-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let rules = dir.join("r.yml");
        let text = "groups:\n  - name: g\n    rules:\n      - alert: On\n        expr: vector(1)\n";
        std::fs::write(&rules, text).unwrap();
        let port = process::free_port().unwrap();
        let spec = PromSpec {
            port,
            scrape: vec![ScrapeTarget {
                job: "self".into(),
                address: format!("127.0.0.1:{port}"),
                metrics_path: "/metrics".into(),
            }],
            rule_files: vec![rules],
            remote_write_receiver: true,
        };
        let p = start(&spec, &dir, &dir).await.unwrap();
        assert!(p.child.alive());
        let c = crate::prom::api::PromClient::new(&p.url, Duration::from_secs(5));
        assert_eq!(c.rule_names().await.unwrap(), ["On"]);
        let started = std::time::Instant::now();
        loop {
            let up = c
                .query(r#"up{job="self"}"#)
                .await
                .unwrap()
                .single()
                .unwrap();
            if up == Some(1.0) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "never scraped itself"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        p.stop().unwrap();
        assert!(!p.child.alive());
        assert!(!p.dir.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_missing_rule_file_is_named_before_anything_starts() {
        let dir = std::env::temp_dir().join(format!("harness-promnone-{}", std::process::id()));
        let e = start(&spec(vec![dir.join("nope.yml")]), &dir, &dir)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("nope.yml"), "{e}");
        assert!(!dir.exists());
    }
}
