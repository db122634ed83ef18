//! `harness stack up|down|status|env|restart`: the local stack on 127.0.0.1 (MariaDB,
//! PostgreSQL, broker, the target app and its external dependency) for the demo and the
//! end-to-end tests.
//!
//! Invariants: every process the stack starts is recorded in the state file *before* the next
//! one starts, so a failed or interrupted `up` can always be undone by `down`; `down` leaves no
//! process and no directory of ours behind; `up` on a healthy stack changes nothing.

pub mod app;
pub mod broker;
pub mod dependency;
pub mod mariadb;
pub mod pids;
pub mod postgres;
pub mod process;
pub mod prometheus;
pub mod relay;
pub mod restart;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::event::{Event, Observer, StackStep};

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("`{what}` failed:\n{output}")]
    Command { what: String, output: String },
    #[error("{what} not found: {hint}")]
    Missing { what: String, hint: String },
    #[error("{what} exited during start-up (log: {log}):\n{tail}")]
    Died {
        what: String,
        log: PathBuf,
        tail: String,
    },
    #[error("{what} not ready after {secs} s (log: {log}):\n{tail}")]
    NotReady {
        what: String,
        secs: u64,
        log: PathBuf,
        tail: String,
    },
    #[error("database {url}: {source}")]
    Db { url: String, source: sqlx::Error },
    #[error("state file {path} is unreadable ({source}); stop leftovers by hand or delete it")]
    State {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("the stack is not up (no {0})")]
    NotUp(PathBuf),
    #[error("no {part} to restart in the stack at {dir} (restartable: broker, app, dependency)")]
    NoPart { part: String, dir: PathBuf },
}

impl StackError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        StackError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// What `up` started, persisted between commands.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StackState {
    /// The stack directory, absolute (empty in state files written before it was recorded).
    #[serde(default)]
    pub dir: PathBuf,
    pub database: Option<mariadb::Database>,
    /// The database the target app uses on that server.
    pub database_name: String,
    pub broker: Option<broker::Broker>,
    /// The fault relay in front of the database and the broker.
    pub relay: Option<relay::RelayProc>,
    /// Relay port in front of the database (the app connects here).
    pub db_proxy_port: Option<u16>,
    /// The app's external dependency (started with the app).
    pub dependency: Option<dependency::Dependency>,
    /// Relay port in front of the dependency (the app calls it here).
    pub dependency_proxy_port: Option<u16>,
    pub app: Option<app::App>,
    /// `None` in state files written before the stack had one.
    #[serde(default)]
    pub postgres: Option<postgres::Postgres>,
    /// Debian's Prometheus scraping the app and the harness's live endpoint, evaluating the
    /// rule files (started with the app).
    #[serde(default)]
    pub prometheus: Option<prometheus::Prometheus>,
}

#[derive(Debug, Clone)]
pub struct UpOptions {
    pub dir: PathBuf,
    /// Tried first; a private server is started when it does not answer.
    pub database_url: String,
    pub database_name: String,
    /// PostgreSQL tried first; a private server is started when it does not answer.
    pub postgres_url: String,
    /// Start the target app and its dependency stub too (tests start their own in-process).
    pub with_app: bool,
    pub preset: String,
    /// Extra `target-app` flags.
    pub app_args: Vec<String>,
    /// Rule files the stack's Prometheus evaluates (with the app only).
    pub prometheus_rules: Vec<PathBuf>,
    /// The harness live endpoint the stack's Prometheus scrapes (`harness run --listen`).
    pub scrape_live: String,
}

/// The rule file `harness stack up` loads by default, when it is there (run from the repo).
pub const DEFAULT_RULES: &str = "scenarios/alerts/incident.rules.yml";

/// k6's REST API port: where `harness run --listen` is expected by the stack's Prometheus.
pub const DEFAULT_LIVE: &str = "127.0.0.1:6565";

/// [`DEFAULT_RULES`] as an absolute path when it exists here, else none.
pub fn default_rules() -> Vec<PathBuf> {
    let p = Path::new(DEFAULT_RULES);
    match p.is_file() {
        true => std::path::absolute(p).into_iter().collect(),
        false => Vec::new(),
    }
}

impl StackState {
    fn path(dir: &Path) -> PathBuf {
        dir.join("state.json")
    }

    pub fn load(dir: &Path) -> Result<Option<StackState>, StackError> {
        let path = Self::path(dir);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| StackError::State { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StackError::io(&path, e)),
        }
    }

    fn save(&self, dir: &Path) -> Result<(), StackError> {
        let path = Self::path(dir);
        let tmp = path.with_extension("json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(self).expect("state serialises"),
        )
        .map_err(|e| StackError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| StackError::io(&path, e))?;
        pids::write(dir, &self.pid_parts())
    }

    /// Each running child by its pid file's name.
    fn pid_parts(&self) -> Vec<(&'static str, u32)> {
        let private = |p: Option<&mariadb::PrivateServer>| p.map(|p| p.child.pid);
        [
            (
                "mariadb",
                private(self.database.as_ref().and_then(|d| d.private.as_ref())),
            ),
            (
                "postgres",
                private(self.postgres.as_ref().and_then(|d| d.private.as_ref())),
            ),
            ("relay", self.relay.as_ref().map(|r| r.child.pid)),
            ("broker", self.broker.as_ref().map(|b| b.child.pid)),
            ("dependency", self.dependency.as_ref().map(|d| d.child.pid)),
            ("app", self.app.as_ref().map(|a| a.child.pid)),
            ("prometheus", self.prometheus.as_ref().map(|p| p.child.pid)),
        ]
        .into_iter()
        .filter_map(|(part, pid)| Some((part, pid?)))
        .collect()
    }

    /// Database URL (server + the stack's database), direct.
    pub fn database_url(&self) -> Option<String> {
        self.database
            .as_ref()
            .map(|d| mariadb::with_database(&d.server_url, &self.database_name))
    }

    /// Database URL through the fault relay: what the target app uses.
    pub fn app_database_url(&self) -> Option<String> {
        let url = self.database_url()?;
        Some(match self.db_proxy_port {
            Some(p) => relay::via_port(&url, p),
            None => url,
        })
    }

    /// True when every recorded process still runs.
    pub fn healthy(&self) -> bool {
        let db = self
            .database
            .as_ref()
            .is_some_and(|d| d.private.as_ref().is_none_or(|p| p.child.alive()));
        let broker = self.broker.as_ref().is_some_and(|b| b.child.alive());
        let relay = self.relay.as_ref().is_some_and(|r| r.child.alive());
        let dependency = self.dependency.as_ref().is_none_or(|d| d.child.alive());
        let app = self.app.as_ref().is_none_or(|a| a.child.alive());
        let prom = self.prometheus.as_ref().is_none_or(|p| p.child.alive());
        let pg = self
            .postgres
            .as_ref()
            .is_none_or(|p| p.private.as_ref().is_none_or(|p| p.child.alive()));
        db && pg && broker && relay && dependency && app && prom
    }

    /// Shell `export` lines for tests and scripts.
    pub fn env_lines(&self) -> Vec<String> {
        self.vars()
            .iter()
            .map(|(k, v)| format!("export {k}='{v}'"))
            .collect()
    }

    /// The variables the shipped scenarios expand (`{env:HARNESS_TARGET_URL}` …), in the order
    /// `env_lines` prints them.
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(url) = self.database_url() {
            out.push(("HARNESS_DATABASE_URL", url));
        }
        if let Some(p) = &self.postgres {
            out.push(("HARNESS_POSTGRES_URL", p.url.clone()));
        }
        if let Some(b) = &self.broker {
            out.push(("HARNESS_KAFKA", b.bootstrap.clone()));
        }
        if let Some(r) = &self.relay {
            out.push(("HARNESS_PROXY_API", r.api.clone()));
        }
        if let Some(d) = &self.dependency {
            out.push(("HARNESS_DEPENDENCY_URL", d.url.clone()));
            out.push(("HARNESS_DEPENDENCY_PROXY", dependency::PROXY.to_owned()));
        }
        if let Some(a) = &self.app {
            out.push(("HARNESS_TARGET_URL", a.url.clone()));
        }
        if let Some(p) = &self.prometheus {
            out.push(("HARNESS_PROMETHEUS_URL", p.url.clone()));
        }
        out.extend(self.process_vars());
        out
    }

    /// What a scenario's `[actuators.processes.*]` needs: pid files, and the harness binary
    /// and stack directory for a restart command such as
    /// `["{env:HARNESS_BIN}", "stack", "restart", "broker", "--dir", "{env:HARNESS_STACK_DIR}"]`.
    fn process_vars(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if !self.dir.is_absolute() {
            return out;
        }
        let bin = self.relay.as_ref().and_then(|r| r.child.launch.as_ref());
        if let Some(l) = bin {
            out.push(("HARNESS_BIN", l.path.display().to_string()));
        }
        out.push(("HARNESS_STACK_DIR", self.dir.display().to_string()));
        let pid_file = |part| pids::path(&self.dir, part).display().to_string();
        if self.broker.is_some() {
            out.push(("HARNESS_BROKER_PID_FILE", pid_file("broker")));
        }
        if self.dependency.is_some() {
            out.push(("HARNESS_DEPENDENCY_PID_FILE", pid_file("dependency")));
        }
        if self.app.is_some() {
            out.push(("HARNESS_APP_PID_FILE", pid_file("app")));
        }
        out
    }
}

/// Brings the stack up; a no-op when the recorded stack is healthy and has what was asked (a
/// healthy stack recorded before PostgreSQL existed only gets that part added).
pub async fn up(opts: &UpOptions, observer: &mut dyn Observer) -> Result<StackState, StackError> {
    // Absolute, so the recorded paths and `restart` work from any working directory.
    let dir = std::path::absolute(&opts.dir).map_err(|e| StackError::io(&opts.dir, e))?;
    let opts = &UpOptions {
        dir,
        ..opts.clone()
    };
    if let Some(mut state) = StackState::load(&opts.dir)? {
        let same_app = match (&state.app, opts.with_app) {
            // A stack recorded before the dependency existed is restarted to get one.
            // A stack recorded before the dependency or Prometheus existed is restarted.
            (Some(a), true) => {
                a.preset == opts.preset && state.dependency.is_some() && state.prometheus.is_some()
            }
            (None, false) => true,
            _ => false,
        };
        if state.healthy() && same_app {
            if state.postgres.is_none() || state.dir.as_os_str().is_empty() {
                add_postgres(opts, &mut state, observer).await?;
            }
            observer.event(Event::Stack(StackStep::AlreadyUp { dir: &opts.dir }));
            return Ok(state);
        }
        observer.event(Event::Stack(StackStep::Restarting));
        down(&opts.dir)?;
    }
    let logs = opts.dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| StackError::io(&logs, e))?;
    let mut state = StackState {
        dir: opts.dir.clone(),
        database_name: opts.database_name.clone(),
        ..Default::default()
    };
    let result = start_parts(opts, &logs, &mut state, observer).await;
    if let Err(e) = result {
        observer.event(Event::Stack(StackStep::UpFailed));
        let _ = stop_parts(&state);
        let _ = std::fs::remove_file(StackState::path(&opts.dir));
        return Err(e);
    }
    Ok(state)
}

async fn start_parts(
    opts: &UpOptions,
    logs: &Path,
    state: &mut StackState,
    observer: &mut dyn Observer,
) -> Result<(), StackError> {
    observer.event(Event::Stack(StackStep::Starting {
        component: "database",
    }));
    let db = mariadb::start(&opts.database_url, &opts.dir, logs, observer).await?;
    let server = db.server_url.clone();
    state.database = Some(db);
    state.save(&opts.dir)?;
    mariadb::create_database(&server, &opts.database_name).await?;
    start_postgres(opts, logs, state, observer).await?;

    observer.event(Event::Stack(StackStep::Starting {
        component: "fault relay",
    }));
    let relay = relay::start(&opts.dir, logs).await?;
    state.relay = Some(relay.clone());
    state.save(&opts.dir)?;
    let db_upstream = relay::host_port(&server).ok_or_else(|| StackError::Missing {
        what: format!("host:port in {server}"),
        hint: "use mysql://user@host:port".into(),
    })?;
    state.db_proxy_port = Some(relay.add_proxy("mariadb", &db_upstream).await?);
    let broker_port = process::free_port()?;
    let advertised = relay
        .add_proxy("kafka", &format!("127.0.0.1:{broker_port}"))
        .await?;
    state.save(&opts.dir)?;

    observer.event(Event::Stack(StackStep::Starting {
        component: "broker",
    }));
    state.broker = Some(broker::start(&opts.dir, logs, broker_port, advertised, observer).await?);
    state.save(&opts.dir)?;

    if opts.with_app {
        start_dependency(opts, logs, &relay, state, observer).await?;
        start_app(opts, logs, state, observer).await?;
        start_prometheus(opts, logs, state, observer).await?;
    }
    Ok(())
}

/// Debian's Prometheus, scraping the app and the harness's live endpoint every second and
/// evaluating the rule files, with the remote-write receiver on.
async fn start_prometheus(
    opts: &UpOptions,
    logs: &Path,
    state: &mut StackState,
    observer: &mut dyn Observer,
) -> Result<(), StackError> {
    observer.event(Event::Stack(StackStep::Starting {
        component: "prometheus",
    }));
    let app = state.app.as_ref().expect("app recorded before");
    let app_addr = app.url.trim_start_matches("http://").to_owned();
    let target = |job: &str, address: String| prometheus::ScrapeTarget {
        job: job.to_owned(),
        address,
        metrics_path: "/metrics".to_owned(),
    };
    let spec = prometheus::PromSpec {
        port: 0,
        scrape: vec![
            target("target-app", app_addr),
            target("harness", opts.scrape_live.clone()),
        ],
        rule_files: opts.prometheus_rules.clone(),
        remote_write_receiver: true,
    };
    let prom = prometheus::start(&spec, &opts.dir, logs).await?;
    let client = crate::prom::api::PromClient::new(&prom.url, std::time::Duration::from_secs(2));
    state.prometheus = Some(prom);
    state.save(&opts.dir)?;
    // A run right after `up` queries the app's series at its preflight: wait for one scrape.
    let child = &state.prometheus.as_ref().expect("recorded above").child;
    let scraped = || async {
        let up = client.query("up{job=\"target-app\"}").await;
        up.is_ok_and(|v| v.single().ok().flatten() == Some(1.0))
    };
    let within = std::time::Duration::from_secs(15);
    process::wait_ready(
        child,
        "prometheus's first scrape of the app",
        within,
        scraped,
    )
    .await
}

async fn start_postgres(
    opts: &UpOptions,
    logs: &Path,
    state: &mut StackState,
    observer: &mut dyn Observer,
) -> Result<(), StackError> {
    observer.event(Event::Stack(StackStep::Starting {
        component: "postgres",
    }));
    state.postgres = Some(postgres::start(&opts.postgres_url, &opts.dir, logs, observer).await?);
    state.save(&opts.dir)
}

/// Completes a healthy stack recorded by an older harness: its directory and PostgreSQL.
async fn add_postgres(
    opts: &UpOptions,
    state: &mut StackState,
    observer: &mut dyn Observer,
) -> Result<(), StackError> {
    state.dir = opts.dir.clone();
    if state.postgres.is_none() {
        let logs = opts.dir.join("logs");
        std::fs::create_dir_all(&logs).map_err(|e| StackError::io(&logs, e))?;
        start_postgres(opts, &logs, state, observer).await?;
    }
    state.save(&opts.dir)
}

/// The dependency stub, and the relay proxy in front of it that the app will call.
async fn start_dependency(
    opts: &UpOptions,
    logs: &Path,
    relay: &relay::RelayProc,
    state: &mut StackState,
    observer: &mut dyn Observer,
) -> Result<(), StackError> {
    observer.event(Event::Stack(StackStep::Starting {
        component: "dependency stub",
    }));
    let stub = dependency::start(&opts.dir, logs).await?;
    let upstream = stub.upstream().to_owned();
    state.dependency = Some(stub);
    state.save(&opts.dir)?;
    // HTTP-aware, so a scenario can fail or slow the dependency per route.
    let port = relay.add_http_proxy(dependency::PROXY, &upstream).await?;
    state.dependency_proxy_port = Some(port);
    state.save(&opts.dir)
}

async fn start_app(
    opts: &UpOptions,
    logs: &Path,
    state: &mut StackState,
    observer: &mut dyn Observer,
) -> Result<(), StackError> {
    observer.event(Event::Stack(StackStep::StartingApp {
        preset: &opts.preset,
    }));
    let url = state.app_database_url().expect("database recorded before");
    let bootstrap = state
        .broker
        .as_ref()
        .expect("broker recorded before")
        .bootstrap
        .clone();
    let port = state
        .dependency_proxy_port
        .expect("dependency recorded before");
    let parts = app::Parts {
        database_url: &url,
        bootstrap: &bootstrap,
        external_url: &dependency::via_relay(port),
    };
    let started = app::start(&parts, &opts.preset, &opts.app_args, &opts.dir, logs).await?;
    state.app = Some(started);
    state.save(&opts.dir)
}

fn stop_parts(state: &StackState) -> Result<(), StackError> {
    let prom = state
        .prometheus
        .as_ref()
        .map(|p| p.stop())
        .unwrap_or(Ok(()));
    if let Some(a) = &state.app {
        a.stop();
    }
    if let Some(d) = &state.dependency {
        d.stop();
    }
    let broker = state.broker.as_ref().map(|b| b.stop()).unwrap_or(Ok(()));
    if let Some(r) = &state.relay {
        r.stop();
    }
    let pg = state.postgres.as_ref().map(|p| p.stop()).unwrap_or(Ok(()));
    let db = state.database.as_ref().map(|d| d.stop()).unwrap_or(Ok(()));
    prom.and(broker).and(pg).and(db)
}

/// Stops everything recorded and removes the stack directory. Idempotent.
pub fn down(dir: &Path) -> Result<(), StackError> {
    if let Some(state) = StackState::load(dir)? {
        stop_parts(&state)?;
    }
    std::fs::remove_dir_all(dir)
        .or_else(mariadb::ignore_missing)
        .map_err(|e| StackError::io(dir, e))
}

/// One line per component: what, where, alive.
pub fn status_lines(state: &StackState) -> Vec<String> {
    let mark = |alive: bool| if alive { "up  " } else { "DOWN" };
    let mut out = Vec::new();
    if let Some(d) = &state.database {
        match &d.private {
            Some(p) => out.push(format!(
                "{} database   {}/{} (private mariadbd pid {})",
                mark(p.child.alive()),
                d.server_url,
                state.database_name,
                p.child.pid
            )),
            None => out.push(format!(
                "up   database   {}/{} (existing server)",
                d.server_url, state.database_name
            )),
        }
    }
    if let Some(p) = &state.postgres {
        out.push(match &p.private {
            Some(s) => format!(
                "{} postgres   {} (private, pid {})",
                mark(s.child.alive()),
                p.url,
                s.child.pid
            ),
            None => format!("up   postgres   {} (existing server)", p.url),
        });
    }
    if let Some(r) = &state.relay {
        let db = state
            .db_proxy_port
            .map(|p| format!("database via 127.0.0.1:{p}, "))
            .unwrap_or_default();
        out.push(format!(
            "{} relay      {} ({db}pid {})",
            mark(r.child.alive()),
            r.api,
            r.child.pid
        ));
    }
    if let Some(b) = &state.broker {
        out.push(format!(
            "{} broker     {} via relay → {} (tansu pid {})",
            mark(b.child.alive()),
            b.bootstrap,
            b.direct,
            b.child.pid
        ));
    }
    out.extend(service_lines(state));
    out
}

/// The dependency stub's, the app's and Prometheus's status lines.
fn service_lines(state: &StackState) -> Vec<String> {
    let mark = |alive: bool| if alive { "up  " } else { "DOWN" };
    let mut out = Vec::new();
    if let Some(d) = &state.dependency {
        let via = state
            .dependency_proxy_port
            .map(|p| {
                format!(
                    "app calls it via relay proxy `{}` at 127.0.0.1:{p}, ",
                    dependency::PROXY
                )
            })
            .unwrap_or_default();
        out.push(format!(
            "{} dependency {} (stub, {} ms; {via}pid {})",
            mark(d.child.alive()),
            d.url,
            d.delay_ms,
            d.child.pid
        ));
    }
    if let Some(a) = &state.app {
        out.push(format!(
            "{} app        {} (preset {}, pid {})",
            mark(a.child.alive()),
            a.url,
            a.preset,
            a.child.pid
        ));
    }
    if let Some(p) = &state.prometheus {
        let rules: Vec<String> = p
            .rule_files
            .iter()
            .map(|f| f.display().to_string())
            .collect();
        out.push(format!(
            "{} prometheus {} (scrapes the app and the harness at {}; rules: {}; pid {})",
            mark(p.child.alive()),
            p.url,
            DEFAULT_LIVE,
            if rules.is_empty() {
                "none".to_owned()
            } else {
                rules.join(", ")
            },
            p.child.pid
        ));
    }
    out
}
