//! Scenario files (TOML): what load to drive, what to watch, and what makes a run pass.
//!
//! Loading is all-or-nothing and happens before any traffic: unknown fields, wrong types, bad
//! durations, threshold syntax and dangling references (a template naming an undeclared
//! generator, a metric naming an unknown request) are errors that name the file, line, column
//! and field.

pub mod checks;
pub mod data;
pub mod duration;
pub mod env;
pub mod flow;
mod http_spec;
pub mod prometheus;
pub mod segment;
pub mod template;
pub mod workload;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

pub use crate::tls::{HttpVersion, TlsSpec};
pub use checks::CheckSpec;
pub use data::{DataSet, DataSpec};
pub use duration::Dur;
pub use env::{expand_env, EnvError, Vars};
pub use flow::{ExtractSpec, PollSpec};
pub use prometheus::{AlertsSection, Outputs, PrometheusAlerts, PromqlProbeSpec};
pub use segment::{Segment, SegmentError};
pub use template::{Draws, GeneratorError, GeneratorSpec, Generators, Scope, Template};
pub use workload::{Executor, ExecutorError, Workload, WorkloadSpec};

use crate::threshold::{Expr, MetricKind, MetricRef};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Seed for the random generators (same seed, same values in the same order).
    #[serde(default)]
    pub seed: u64,
    pub target: Target,
    /// The older single-scenario form: `[executor]` with top-level `[[requests]]`.
    executor: Option<WorkloadSpec>,
    #[serde(default)]
    requests: Vec<RequestSpec>,
    /// k6's scenarios: `[scenarios.NAME]`, run at once, each with its executor.
    #[serde(default)]
    scenarios: BTreeMap<String, WorkloadSpec>,
    /// Steps run once before the load (k6's `setup()`); their variables are read by every
    /// iteration.
    #[serde(default)]
    pub setup: Vec<RequestSpec>,
    /// Steps run once after the load, also after a failed or interrupted run.
    #[serde(default)]
    pub teardown: Vec<RequestSpec>,
    /// Data files, `{{NAME.column}}` in templates.
    #[serde(default)]
    pub data: BTreeMap<String, DataSpec>,
    #[serde(default)]
    pub generators: BTreeMap<String, GeneratorSpec>,
    #[serde(default)]
    pub metrics: BTreeMap<String, CustomMetric>,
    #[serde(default)]
    pub thresholds: BTreeMap<Spanned<MetricRef>, Vec<ThresholdSpec>>,
    #[serde(default)]
    pub probes: Probes,
    #[serde(default)]
    pub sql_checks: Vec<SqlCheck>,
    /// `[[alerts]]` (in-harness rules) or `[alerts]` (a table: `rules`, and the team's
    /// Prometheus rule files); split into the two fields below by `normalize`.
    #[serde(default, rename = "alerts")]
    alerts_section: AlertsSection,
    #[serde(skip)]
    pub alerts: Vec<AlertRule>,
    /// `[alerts] prometheus_rules`: rules a Prometheus evaluates; the run reads their state.
    #[serde(skip)]
    pub prometheus_alerts: Option<PrometheusAlerts>,
    /// `[outputs]`: where metrics go while the run runs (Prometheus remote write).
    #[serde(default)]
    pub outputs: Outputs,
    /// The steady-state hypothesis: checked before the first fault, every second, and after
    /// each fault window until it holds again (the window's `recovery_time`).
    #[serde(default)]
    pub hypothesis: Option<HypothesisSpec>,
    /// Extra gates as Wasm threshold plugins (`harness:plugin/thresholds`).
    #[serde(default)]
    pub threshold_plugins: Vec<PluginSpec>,
    /// Fault schedules as Wasm fault plugins (`harness:plugin/faults`).
    #[serde(default)]
    pub faults: Vec<PluginSpec>,
    /// Where fault actions go.
    #[serde(default)]
    pub actuators: ActuatorSpec,
    /// Which probe series the progress line shows and `report.html` charts.
    #[serde(default)]
    pub report: ReportSpec,
    /// How much load a run may ask for before `--allow-huge` is needed.
    #[serde(default)]
    pub limits: LoadLimits,
    /// The text the scenario was parsed from, to place errors found after loading.
    #[serde(skip)]
    source: Source,
    /// The scenario file's directory: relative TLS file paths start here.
    #[serde(skip)]
    pub dir: PathBuf,
    /// Every scenario of the file, in name order (the older form: one, `default`).
    #[serde(skip)]
    pub workloads: Vec<Workload>,
    /// The data files, loaded, in name order (templates number them so).
    #[serde(skip)]
    pub datasets: Vec<(String, std::sync::Arc<DataSet>)>,
}

/// A scenario's file name and the text its spans point into.
#[derive(Debug, Clone, Default)]
struct Source {
    file: String,
    text: String,
}

/// `[limits]`: a typo in a stage (three zeros too many) must not overload a target or run for
/// days. A scenario over a limit is refused before any load unless it raises the limit here
/// or the run passes `--allow-huge`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadLimits {
    /// Highest arrival rate (requests/s) a stage of the arrival-rate executor may reach.
    #[serde(default = "default_max_rate")]
    pub max_rate: u64,
    /// Most virtual users a stage of the vus executor may reach.
    #[serde(default = "default_max_vus")]
    pub max_vus: u64,
    /// Longest total of the stages.
    #[serde(default = "default_max_duration")]
    pub max_duration: Dur,
}

impl Default for LoadLimits {
    fn default() -> Self {
        LoadLimits {
            max_rate: default_max_rate(),
            max_vus: default_max_vus(),
            max_duration: default_max_duration(),
        }
    }
}

fn default_max_rate() -> u64 {
    100_000
}
fn default_max_vus() -> u64 {
    20_000
}
fn default_max_duration() -> Dur {
    Dur(std::time::Duration::from_secs(24 * 3600))
}

/// `[report]`: how a run is shown. Both lists name probe series; each defaults to every probe
/// series (one chart each), so a scenario for any service gets its vital signs charted.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSpec {
    /// Series on the live progress line, in order.
    pub progress: Option<Vec<SeriesLabel>>,
    /// Probe charts, after the built-in load, error and latency charts.
    pub charts: Option<Vec<ChartSpec>>,
}

/// A probe series and the label it is shown with (the series name when empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesLabel {
    pub series: String,
    #[serde(default)]
    pub label: String,
}

/// One chart of probe series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChartSpec {
    pub title: String,
    #[serde(default)]
    pub unit: String,
    pub series: Vec<SeriesLabel>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Base URL; `--target` overrides it.
    pub url: String,
    /// Default per-request timeout.
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `[target.tls]`: CA, client certificate, server name, or no verification.
    #[serde(default)]
    pub tls: TlsSpec,
    /// `auto` (ALPN on HTTPS), `1.1` or `2` (h2c with prior knowledge on http://).
    #[serde(default)]
    pub http_version: HttpVersion,
    /// Redirects followed per request (k6's `maxRedirects`, default 10); 0 turns them off.
    #[serde(default = "ten")]
    pub max_redirects: u32,
    /// Most body bytes read for checks (default 1 MiB); a longer body fails the request.
    pub max_body: Option<Spanned<i64>>,
}

fn ten() -> u32 {
    10
}

/// The default `max_body`: 1 MiB.
pub const MAX_BODY: u64 = 1 << 20;

fn default_timeout() -> Dur {
    Dur(std::time::Duration::from_secs(10))
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub duration: Dur,
    /// VUs (vus executor) or requests per second (arrival-rate executor) at the stage's end.
    pub target: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    pub name: String,
    #[serde(default = "default_method")]
    pub method: String,
    pub path: Spanned<String>,
    #[serde(default)]
    pub body: Option<Spanned<String>>,
    /// Share of the mix relative to the other requests' weights.
    #[serde(default = "one")]
    pub weight: u32,
    pub timeout: Option<Dur>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Statuses that count as success for `http_req_failed` (default: 200–399, as k6).
    #[serde(default)]
    pub expect_status: Vec<u16>,
    /// Checks on each response (`checks` metric, tagged `check:<name>`).
    #[serde(default)]
    pub checks: Vec<CheckSpec>,
    /// Overrides `target.max_body` for this request.
    pub max_body: Option<Spanned<i64>>,
    /// Overrides `target.max_redirects` for this request.
    pub max_redirects: Option<u32>,
    /// Flow steps only: values of the answer into variables for later steps.
    #[serde(default)]
    pub extract: Vec<ExtractSpec>,
    /// Flow steps only: pause after this step.
    pub think_time: Option<Dur>,
    /// Flow steps only: repeat until a check holds.
    pub poll: Option<PollSpec>,
    /// Flow steps only: run once per VU (log in once); its variables last the VU's life.
    #[serde(default)]
    pub once: bool,
}

fn default_method() -> String {
    "GET".into()
}
fn one() -> u32 {
    1
}

/// A declared metric of one of k6's four types, fed by the responses of `request`:
/// - `rate`: the share of responses whose status is in `success_status`, or whose `value`
///   is true or a non-zero number;
/// - `counter`: the responses (with a status in `success_status`, when given);
/// - `trend`: the number `value` selects in each response (k6's `Trend.add`);
/// - `gauge`: the last such number (k6's `Gauge.add`).
///
/// (A struct, not a tagged enum: tagged enums lose the field spans.)
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomMetric {
    #[serde(rename = "type")]
    pub kind: CustomKind,
    pub request: Spanned<String>,
    #[serde(default)]
    pub success_status: Vec<u16>,
    /// JSONPath into the response body: the sample's value.
    pub value: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum CustomKind {
    Counter,
    Gauge,
    Rate,
    Trend,
}

impl CustomKind {
    pub fn metric_kind(self) -> MetricKind {
        match self {
            CustomKind::Counter => MetricKind::Counter,
            CustomKind::Gauge => MetricKind::Gauge,
            CustomKind::Rate => MetricKind::Rate,
            CustomKind::Trend => MetricKind::Trend,
        }
    }
}

/// One threshold: a bare expression or `{ threshold, abortOnFail, delayAbortEval }`.
#[derive(Debug, Clone)]
pub struct ThresholdSpec {
    pub expr: Expr,
    pub abort_on_fail: bool,
    pub delay_abort_eval: Dur,
}

impl<'de> Deserialize<'de> for ThresholdSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Full {
            threshold: Expr,
            #[serde(default, rename = "abortOnFail")]
            abort_on_fail: bool,
            #[serde(default, rename = "delayAbortEval")]
            delay_abort_eval: Dur,
        }
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ThresholdSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a threshold string like \"p(95)<2000\" or a table { threshold = \"…\", abortOnFail = true }")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<ThresholdSpec, E> {
                let expr = s.parse().map_err(E::custom)?;
                Ok(ThresholdSpec {
                    expr,
                    abort_on_fail: false,
                    delay_abort_eval: Dur::default(),
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<ThresholdSpec, A::Error> {
                let f = Full::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(ThresholdSpec {
                    expr: f.threshold,
                    abort_on_fail: f.abort_on_fail,
                    delay_abort_eval: f.delay_abort_eval,
                })
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probes {
    pub prometheus: Option<PrometheusProbe>,
    pub kafka: Option<KafkaProbe>,
    pub sql: Option<SqlProbeSpec>,
    pub promql: Option<PromqlProbeSpec>,
}

/// `[probes.sql]`: named queries, each returning one number, run every `interval` on one
/// connection; each name is a series like a scraped one (thresholds, alerts, charts).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlProbeSpec {
    /// mysql://, mariadb:// or postgres:// URL; `{env:NAME}` expanded.
    pub url: String,
    /// series name → query, e.g. `lock_waits = "SELECT COUNT(*) FROM pg_locks WHERE NOT granted"`.
    pub queries: BTreeMap<String, String>,
    #[serde(default = "one_second")]
    pub interval: Dur,
    /// Share of samples that must have a series for a gate on it to judge (default 0.9).
    #[serde(default = "default_coverage")]
    pub min_coverage: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusProbe {
    /// Full URL of the metrics endpoint; `{target}` is replaced by the target URL.
    pub url: String,
    /// Series to record: PromQL-style selectors with an optional aggregation, e.g. `up`,
    /// `node_cpu_seconds_total{mode="idle",cpu="0"}`, `sum(http_requests_total{code=~"5.."})`;
    /// several matching label sets need an aggregation (see `probe::selector`).
    pub series: Vec<String>,
    #[serde(default = "one_second")]
    pub interval: Dur,
    /// Share of scrapes that must have a series for a gate on it to judge (default 0.9).
    #[serde(default = "default_coverage")]
    pub min_coverage: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaProbe {
    pub bootstrap: String,
    pub group: String,
    pub topic: String,
    #[serde(default = "one_second")]
    pub interval: Dur,
    /// After the load ends, keep watching until the lag is 0 or this much time passed.
    #[serde(default)]
    pub drain_timeout: Dur,
    /// Share of lag readings that must succeed for a gate on `kafka_consumer_lag` to judge.
    #[serde(default = "default_coverage")]
    pub min_coverage: f64,
}

fn default_coverage() -> f64 {
    crate::probe::DEFAULT_COVERAGE
}

fn one_second() -> Dur {
    Dur(std::time::Duration::from_secs(1))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlCheck {
    pub name: String,
    /// MySQL URL; `{env:NAME}` takes it from an environment variable.
    pub database_url: String,
    /// Must return one integer (or NULL, read as 0).
    pub query: String,
    /// The value must equal this number…
    pub expect: Option<i64>,
    /// …or how many responses of `request` had `status` (exactly one of the two).
    pub expect_responses: Option<ResponseCount>,
    /// Judge the change over the run: the query also runs before the load, and the observed
    /// value is after − before (e.g. new orders == 201s seen, on a database with history).
    #[serde(default)]
    pub delta: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseCount {
    pub request: String,
    pub status: u16,
}

/// `[hypothesis]`: probes with tolerances, each `<series> <op> <number>` like an alert
/// (`queue_depth <= 2`, `http_req_failed < 0.01`, `http_req_duration < 500` — the second's
/// p95).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HypothesisSpec {
    pub probes: Vec<Spanned<String>>,
    /// How long after the last rollback the run waits for the hypothesis to hold again.
    #[serde(default = "sixty_seconds")]
    pub timeout: Dur,
}

fn sixty_seconds() -> Dur {
    Dur(std::time::Duration::from_secs(60))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    pub name: String,
    /// `<series> <op> <number>`, e.g. `http_req_failed > 0.05` or a probe series `queue_depth >= 100`.
    pub expr: Spanned<String>,
    #[serde(default, rename = "for")]
    pub for_: Dur,
    #[serde(default = "warning")]
    pub severity: String,
}

fn warning() -> String {
    "warning".into()
}

/// A plugin by path (relative to the scenario file) with its config table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSpec {
    pub plugin: Spanned<PathBuf>,
    #[serde(default)]
    pub config: toml::Table,
}

impl SeriesLabel {
    fn resolved(self) -> SeriesLabel {
        let label = if self.label.is_empty() {
            self.series.clone()
        } else {
            self.label
        };
        SeriesLabel { label, ..self }
    }
}

/// Fault actuators. `{target}` and `{env:NAME}` are expanded.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActuatorSpec {
    /// The target's fault admin API (GET fields, POST a partial update). No default: the
    /// harness knows no application's routes, so a scenario whose fault plugins set app
    /// faults names it.
    #[serde(default)]
    pub app_faults: Option<String>,
    /// A Toxiproxy-compatible API: `harness stack` exports the relay's as HARNESS_PROXY_API.
    #[serde(default = "default_toxiproxy")]
    pub toxiproxy: String,
    /// `[actuators.sql.NAME]`: databases the sql-lock and sql-connections faults act in.
    #[serde(default)]
    pub sql: BTreeMap<String, SqlActuator>,
    /// `[actuators.processes.NAME]`: processes the process faults may pause or kill.
    #[serde(default)]
    pub processes: BTreeMap<String, ProcessActuator>,
}

impl Default for ActuatorSpec {
    fn default() -> Self {
        ActuatorSpec {
            app_faults: None,
            toxiproxy: default_toxiproxy(),
            sql: BTreeMap::new(),
            processes: BTreeMap::new(),
        }
    }
}

/// A database faults may act in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlActuator {
    /// mysql://, mariadb:// or postgres:// URL; `{env:NAME}` expanded.
    pub url: Spanned<String>,
}

/// A process faults may pause or kill.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessActuator {
    /// File holding the pid, read when a fault starts.
    pub pid_file: Spanned<String>,
    /// argv that starts the process again after a kill (it must rewrite the pid file);
    /// without it only pauses are allowed.
    #[serde(default)]
    pub restart: Vec<String>,
}

fn default_toxiproxy() -> String {
    "{env:HARNESS_PROXY_API}".into()
}

/// Where in which file something is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {field}: {message}")]
pub struct Located {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub field: String,
    pub message: String,
}

impl From<Located> for ScenarioError {
    fn from(l: Located) -> Self {
        ScenarioError::Invalid(l)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Located),
    #[error("--set {assignment}: {message}")]
    Override { assignment: String, message: String },
}

impl Scenario {
    /// Reads, parses and validates a scenario file; `sets` are `key.path=value` overrides.
    pub fn load(path: &Path, sets: &[String]) -> Result<Scenario, ScenarioError> {
        let bytes = std::fs::read(path).map_err(|source| ScenarioError::Read {
            path: path.to_owned(),
            source,
        })?;
        let file = path.display().to_string();
        let text =
            String::from_utf8(bytes).map_err(|e| not_utf8(&file, e.as_bytes(), e.utf8_error()))?;
        Self::from_str(&text, &file, sets)
    }

    pub fn from_str(text: &str, file: &str, sets: &[String]) -> Result<Scenario, ScenarioError> {
        let dir = Path::new(file).parent().unwrap_or(Path::new("")).to_owned();
        let mut scenario: Scenario = toml::from_str(text)
            .map_err(|e| ScenarioError::Invalid(locate_toml(text, file, &e)))?;
        scenario.dir = dir.clone();
        scenario.normalize(text, file)?;
        scenario.validate(text, file)?;
        if sets.is_empty() {
            scenario.source = Source {
                file: file.to_owned(),
                text: text.to_owned(),
            };
            return Ok(scenario);
        }
        let mut doc: toml::Table = toml::from_str(text).expect("parsed above");
        for s in sets {
            apply_set(&mut doc, s)?;
        }
        let edited = toml::to_string(&doc).expect("table serialises");
        let mut scenario: Scenario =
            toml::from_str(&edited).map_err(|e| ScenarioError::Override {
                assignment: sets.join(" "),
                message: e.message().to_owned(),
            })?;
        let file = format!("{file} (after --set)");
        scenario.dir = dir;
        scenario.normalize(&edited, &file)?;
        scenario.validate(&edited, &file)?;
        scenario.source = Source { file, text: edited };
        Ok(scenario)
    }

    /// Refuses a load over `[limits]` (after `--time-scale`), with the computed totals, unless
    /// `allow_huge`.
    pub fn check_limits(&self, allow_huge: bool) -> Result<(), ScenarioError> {
        if allow_huge {
            return Ok(());
        }
        let l = &self.limits;
        let total = self.total_duration();
        let fix = "raise it in [limits] or pass --allow-huge";
        let Some(first) = self.workloads.first() else {
            return Ok(());
        };
        if total > l.max_duration.0 {
            let what = match self.workloads.len() {
                1 => "the stages add up to",
                _ => "the scenarios last",
            };
            let message = format!(
                "{what} {}, over [limits].max_duration = {}; {fix}",
                Dur(total),
                l.max_duration
            );
            return Err(self.locate_key(&first.exec_field("stages"), message).into());
        }
        for w in &self.workloads {
            let field = w.exec_field("stages");
            let (start, unit, max, key, per) = match &w.executor {
                Executor::ArrivalRate {
                    start_rate,
                    time_unit,
                    ..
                } => (
                    *start_rate,
                    "requests/s",
                    l.max_rate,
                    "max_rate",
                    time_unit.0.as_secs_f64(),
                ),
                Executor::Vus { start_vus, .. } => (*start_vus, "VUs", l.max_vus, "max_vus", 1.0),
                Executor::SharedIterations { vus, .. } | Executor::PerVuIterations { vus, .. } => {
                    if u64::from(*vus) > l.max_vus {
                        let message = format!(
                            "scenario `{}` asks for {vus} VUs, over [limits].max_vus = {}; {fix}",
                            w.name, l.max_vus
                        );
                        return Err(self.locate_key(&w.exec_field("vus"), message).into());
                    }
                    continue;
                }
            };
            let mut from = f64::from(start) / per;
            for (i, st) in w.executor.stages().iter().enumerate() {
                let to = f64::from(st.target) / per;
                if from.max(to) > max as f64 {
                    let secs = st.duration.0.as_secs_f64();
                    let load = match unit {
                        "VUs" => String::new(),
                        _ => format!(" = {:.0} requests in {secs} s", (from + to) / 2.0 * secs),
                    };
                    let message = format!(
                        "stage {} asks for {} {unit}{load}, over [limits].{key} = {max}; {fix}",
                        i + 1,
                        from.max(to)
                    );
                    return Err(self.locate_key(&field, message).into());
                }
                from = to;
            }
        }
        Ok(())
    }

    /// When the last scenario's executor ends, from the run's start.
    pub fn total_duration(&self) -> std::time::Duration {
        self.workloads
            .iter()
            .map(Workload::end)
            .max()
            .unwrap_or_default()
    }

    /// The executors' names, `+`-joined when there are several scenarios.
    pub fn executor_kind(&self) -> String {
        let names: Vec<&str> = self.workloads.iter().map(|w| w.kind.as_str()).collect();
        names.join("+")
    }

    /// Every request spec of the file: each scenario's mix or steps, then setup and teardown.
    pub fn all_requests(&self) -> impl Iterator<Item = &RequestSpec> {
        self.workloads
            .iter()
            .flat_map(|w| w.steps())
            .chain(&self.setup)
            .chain(&self.teardown)
    }

    /// The scenario a request belongs to (None: setup or teardown).
    pub fn workload_of(&self, request: &str) -> Option<&Workload> {
        self.workloads
            .iter()
            .find(|w| w.steps().iter().any(|r| r.name == request))
    }

    /// The tag sets thresholds on HTTP metrics ask for beyond a request name or a scenario alone
    /// (those have entries of their own); the recorder keeps each one's samples.
    pub fn threshold_tag_sets(&self) -> Vec<Vec<(String, String)>> {
        let mut sets: Vec<Vec<(String, String)>> = self
            .thresholds
            .keys()
            .map(|m| m.get_ref())
            .filter(|m| by_scenario(&m.name))
            .map(|m| m.tags.clone())
            .filter(|t| match t.as_slice() {
                [] => false,
                [(k, _)] => k != "name" && k != "scenario",
                _ => true,
            })
            .collect();
        sets.sort();
        sets.dedup();
        sets
    }

    /// The tags every sample of request `r` carries: its scenario's own tags, then k6's system
    /// tags a request decides (`name`, `method`, `url`: `target` and the path as written,
    /// `scenario`).
    pub fn request_tags(&self, r: &RequestSpec, target: &str) -> BTreeMap<String, String> {
        let mut tags = BTreeMap::new();
        if let Some(w) = self.workload_of(&r.name) {
            tags.extend(w.tags.clone());
            tags.insert("scenario".to_owned(), w.name.clone());
        }
        tags.insert("name".to_owned(), r.name.clone());
        tags.insert("method".to_owned(), r.method.to_uppercase());
        let url = format!("{}{}", target.trim_end_matches('/'), r.path.get_ref());
        tags.insert("url".to_owned(), url);
        tags
    }

    /// The trends the flows' polls record (each named by its poll).
    pub fn poll_trends(&self) -> Vec<&str> {
        self.all_requests()
            .filter_map(|r| r.poll.as_ref()?.trend.as_deref())
            .collect()
    }

    /// The text the scenario was parsed from (after `--set`).
    pub fn source_text(&self) -> &str {
        &self.source.text
    }

    /// An error at the first line naming `field`'s last key.
    pub fn locate_key(&self, field: &str, message: String) -> Located {
        self.locate(self.locate_span(field), field, message)
    }

    /// Where the first line naming `field`'s last key starts.
    pub fn locate_span(&self, field: &str) -> std::ops::Range<usize> {
        field_span(&self.source.text, field)
    }

    /// An error at `span` of the scenario's text, for checks made after loading (plugins).
    pub fn locate(&self, span: std::ops::Range<usize>, field: &str, message: String) -> Located {
        let (line, column) = line_col(&self.source.text, span.start);
        let (file, field) = (self.source.file.clone(), field.to_owned());
        Located {
            file,
            line,
            column,
            field,
            message,
        }
    }

    /// Multiplies every stage duration by `factor` (>0): the same shape, faster or slower.
    pub fn scale_time(&mut self, factor: f64) {
        for w in &mut self.workloads {
            w.executor.scale_time(factor);
            w.start_time = w.start_time.scaled(factor);
            w.graceful_stop = w.graceful_stop.scaled(factor);
        }
        if let Some(k) = &mut self.probes.kafka {
            k.drain_timeout = k.drain_timeout.scaled(factor);
        }
        for a in &mut self.alerts {
            a.for_ = a.for_.scaled(factor);
        }
        if let Some(h) = &mut self.hypothesis {
            h.timeout = h.timeout.scaled(factor);
        }
    }

    /// Every series the probes record: the Prometheus series, then the Kafka lag.
    pub fn probe_series(&self) -> Vec<String> {
        let prometheus = self
            .probes
            .prometheus
            .iter()
            .flat_map(|p| p.series.iter().cloned());
        let kafka = self
            .probes
            .kafka
            .iter()
            .map(|_| "kafka_consumer_lag".to_owned());
        let sql = self
            .probes
            .sql
            .iter()
            .flat_map(|p| p.queries.keys().cloned());
        let promql = self
            .probes
            .promql
            .iter()
            .flat_map(|p| p.queries.keys().cloned());
        prometheus.chain(kafka).chain(sql).chain(promql).collect()
    }

    /// The Prometheus that evaluates `[alerts] prometheus_rules`: its `prometheus_url`, else
    /// `[probes.promql] url` (unexpanded).
    pub fn rules_prometheus_url(&self) -> Option<&str> {
        let pa = self.prometheus_alerts.as_ref()?;
        let promql = self.probes.promql.as_ref().map(|p| p.url.as_str());
        pa.url.as_deref().or(promql)
    }

    /// The progress line's series, labelled (default: every probe series).
    pub fn progress_series(&self) -> Vec<SeriesLabel> {
        let listed = self.report.progress.clone();
        let all = || {
            self.probe_series()
                .into_iter()
                .map(|series| SeriesLabel {
                    series,
                    label: String::new(),
                })
                .collect()
        };
        listed
            .unwrap_or_else(all)
            .into_iter()
            .map(SeriesLabel::resolved)
            .collect()
    }

    /// The probe charts, labelled (default: one chart per probe series).
    pub fn charts(&self) -> Vec<ChartSpec> {
        let one_each = || {
            let chart = |series: String| ChartSpec {
                title: series.clone(),
                unit: String::new(),
                series: vec![SeriesLabel {
                    series,
                    label: String::new(),
                }],
            };
            self.probe_series().into_iter().map(chart).collect()
        };
        let charts: Vec<ChartSpec> = self.report.charts.clone().unwrap_or_else(one_each);
        charts
            .into_iter()
            .map(|c| ChartSpec {
                series: c.series.into_iter().map(SeriesLabel::resolved).collect(),
                ..c
            })
            .collect()
    }

    /// The k6 metric names and their kinds, plus declared custom and probe metrics.
    pub fn metric_kind(&self, name: &str) -> Option<MetricKind> {
        match name {
            "http_reqs" | "iterations" | "dropped_iterations" | "data_sent" | "data_received"
            | "iteration_failed" => Some(MetricKind::Counter),
            n if self.poll_trends().contains(&n) => Some(MetricKind::Trend),
            "http_req_duration" | "iteration_duration" => Some(MetricKind::Trend),
            n if k6_rules::PHASES.contains(&n) => Some(MetricKind::Trend),
            "http_req_failed" | "checks" => Some(MetricKind::Rate),
            "vus" | "vus_max" | "target_rate" => Some(MetricKind::Gauge),
            "kafka_consumer_lag" if self.probes.kafka.is_some() => Some(MetricKind::Gauge),
            "recovery_time" if self.hypothesis.is_some() => Some(MetricKind::Gauge),
            n if self.metrics.contains_key(n) => Some(self.metrics[n].kind.metric_kind()),
            n if self
                .probes
                .prometheus
                .as_ref()
                .is_some_and(|p| p.series.iter().any(|s| s == n)) =>
            {
                Some(MetricKind::Gauge)
            }
            n if self
                .probes
                .sql
                .as_ref()
                .is_some_and(|p| p.queries.contains_key(n)) =>
            {
                Some(MetricKind::Gauge)
            }
            n if self
                .probes
                .promql
                .as_ref()
                .is_some_and(|p| p.queries.contains_key(n)) =>
            {
                Some(MetricKind::Gauge)
            }
            _ => None,
        }
    }

    /// Turns the file's form (older `[executor]` or `[scenarios.NAME]`) into `workloads`,
    /// and loads the data files.
    fn normalize(&mut self, text: &str, file: &str) -> Result<(), ScenarioError> {
        let v = Checker { text, file };
        self.alerts = std::mem::take(&mut self.alerts_section.rules);
        self.prometheus_alerts = self.alerts_section.prometheus.take();
        if let Some(pa) = &mut self.prometheus_alerts {
            prometheus::load_rules(pa, &self.dir)
                .map_err(|(span, m)| v.at(span, "alerts.prometheus_rules", m))?;
        }
        let mut workloads = Vec::new();
        match (&self.executor, self.scenarios.is_empty()) {
            (Some(_), false) => {
                return Err(v.nowhere(
                    "executor",
                    "use [executor] with [[requests]] (one scenario) or [scenarios.NAME], not both"
                        .into(),
                ))
            }
            (None, true) => {
                return Err(v.nowhere(
                    "scenarios",
                    "no load: add a [scenarios.NAME] table (or [executor] with [[requests]])"
                        .into(),
                ))
            }
            (Some(spec), true) => {
                if spec.requests.is_some() || spec.flow.is_some() {
                    return Err(v.nowhere(
                        "executor",
                        "requests and flow belong in [scenarios.NAME]; with [executor], list [[requests]] at the top level".into(),
                    ));
                }
                workloads.push(workload(
                    "default",
                    spec,
                    self.requests.clone(),
                    Vec::new(),
                    true,
                    &v,
                )?);
            }
            (None, false) => {
                if !self.requests.is_empty() {
                    return Err(v.nowhere(
                        "requests",
                        "top-level [[requests]] go with [executor]; a [scenarios.NAME] table lists its own requests or flow".into(),
                    ));
                }
                for (name, spec) in &self.scenarios {
                    if name.is_empty() || name.contains(['{', '}', ',', ':', '"', ' ']) {
                        return Err(v.nowhere(
                            &format!("scenarios.{name}"),
                            format!("`{name}` is not a scenario name (letters, digits, _ and -)"),
                        ));
                    }
                    let requests = spec.requests.clone().unwrap_or_default();
                    let flow = spec.flow.clone().unwrap_or_default();
                    if requests.is_empty() == flow.is_empty() {
                        return Err(v.nowhere(
                            &format!("scenarios.{name}"),
                            format!("scenario `{name}` needs exactly one of [[scenarios.{name}.requests]] (a mix) or [[scenarios.{name}.flow]] (steps)"),
                        ));
                    }
                    workloads.push(workload(name, spec, requests, flow, false, &v)?);
                }
            }
        }
        self.workloads = workloads;
        let mut datasets = Vec::new();
        for (i, (name, spec)) in self.data.iter().enumerate() {
            let d = DataSet::load(spec, &self.dir, self.seed.wrapping_add(i as u64))
                .map_err(|e| v.nowhere(&format!("data.{name}.file"), e.to_string()))?;
            datasets.push((name.clone(), d));
        }
        self.datasets = datasets;
        Ok(())
    }

    fn validate(&self, text: &str, file: &str) -> Result<(), ScenarioError> {
        let v = Checker { text, file };
        v.shape(self)?;
        let names = v.requests(self)?;
        v.http(self)?;
        v.metrics(self, &names)?;
        v.probes(self)?;
        v.thresholds(self, &names)?;
        v.alerts_and_sql(self, &names)?;
        v.prometheus(self)?;
        self.validate_report()
            .map_err(|(field, m)| v.nowhere(field, m))?;
        v.coverage(self)?;
        v.plugins(self)
    }

    /// `[report]` may only name series a probe records.
    fn validate_report(&self) -> Result<(), (&'static str, String)> {
        let known = self.probe_series();
        let unknown = |field, series: &str| {
            let known = if known.is_empty() {
                "none: the scenario has no probes".to_owned()
            } else {
                known.join(", ")
            };
            (
                field,
                format!("`{series}` is not a probe series (probe series: {known})"),
            )
        };
        for p in self.report.progress.iter().flatten() {
            if !known.contains(&p.series) {
                return Err(unknown("report.progress", &p.series));
            }
        }
        for c in self.report.charts.iter().flatten() {
            if c.series.is_empty() {
                return Err((
                    "report.charts",
                    format!("chart `{}` names no series", c.title),
                ));
            }
            if let Some(p) = c.series.iter().find(|p| !known.contains(&p.series)) {
                return Err(unknown("report.charts", &p.series));
            }
        }
        Ok(())
    }

    fn builtin(&self, name: &str) -> bool {
        k6_rules::PHASES.contains(&name)
            || matches!(
                name,
                "http_reqs"
                    | "iterations"
                    | "dropped_iterations"
                    | "http_req_duration"
                    | "http_req_failed"
                    | "checks"
                    | "data_sent"
                    | "data_received"
                    | "vus"
                    | "vus_max"
                    | "target_rate"
                    | "iteration_failed"
                    | "iteration_duration"
            )
    }

    /// Every check name of every request.
    pub fn check_names(&self) -> std::collections::BTreeSet<&str> {
        let checks = self.all_requests().flat_map(|r| &r.checks);
        checks.map(|c| c.name.as_str()).collect()
    }
}

/// One scenario from its table: the executor its fields ask for, placed errors otherwise.
fn workload(
    name: &str,
    spec: &WorkloadSpec,
    requests: Vec<RequestSpec>,
    flow: Vec<RequestSpec>,
    legacy: bool,
    v: &Checker<'_>,
) -> Result<Workload, ScenarioError> {
    let mut w = Workload {
        name: name.to_owned(),
        kind: spec.executor,
        executor: Executor::PerVuIterations {
            vus: 1,
            iterations: 1,
            max_duration: Dur::default(),
        },
        start_time: spec.start_time.unwrap_or_default(),
        graceful_stop: spec.graceful_stop.unwrap_or(Dur(workload::GRACEFUL_STOP)),
        tags: spec.tags.clone(),
        requests,
        flow,
        legacy,
    };
    w.executor = spec.executor().map_err(|e| {
        let field = match &e {
            ExecutorError::NotAnOption { field, .. } | ExecutorError::Missing { field, .. } => {
                w.exec_field(field)
            }
            ExecutorError::Zero(field) => w.exec_field(field),
            _ if legacy => "executor.type".to_owned(),
            _ => w.exec_field("executor"),
        };
        v.nowhere(&field, e.to_string())
    })?;
    Ok(w)
}

/// The metrics also kept per scenario, so `{scenario:…}` selects one scenario's samples.
fn by_scenario(metric: &str) -> bool {
    matches!(
        metric,
        "http_reqs" | "http_req_duration" | "http_req_failed"
    )
}

/// What is wrong with tag `key:value` on an HTTP metric (None: nothing; a value no sample has
/// is allowed, and judged as no data).
fn http_tag_error(s: &Scenario, key: &str, value: &str) -> Option<String> {
    let ok = match key {
        "method" | "url" => true,
        // Written as the sample carries it: `200`, not `0200`.
        "status" => value
            .parse::<u16>()
            .is_ok_and(|v| v.to_string() == value && (v == 0 || (100..=599).contains(&v))),
        "expected_response" => matches!(value, "true" | "false"),
        "proto" => matches!(value, "HTTP/1.1" | "HTTP/2.0"),
        "error_code" => value
            .parse::<u32>()
            .is_ok_and(|v| v.to_string() == value && (1000..2000).contains(&v)),
        k if s.workloads.iter().any(|w| w.tags.contains_key(k)) => true,
        _ => {
            let own: BTreeSet<&str> = s
                .workloads
                .iter()
                .flat_map(|w| w.tags.keys().map(String::as_str))
                .collect();
            let own = own.into_iter().collect::<Vec<_>>().join(", ");
            return Some(format!(
                "unsupported tag `{key}` (HTTP metrics take name, method, url, status, \
                 expected_response, proto, error_code, scenario{}{own})",
                if own.is_empty() {
                    ""
                } else {
                    " and the scenarios' tags: "
                }
            ));
        }
    };
    let expected = match key {
        "status" => "a status 100–599, or 0 for no response",
        "expected_response" => "true or false",
        "proto" => "HTTP/1.1 or HTTP/2.0",
        "error_code" => "a k6 error code, 1000–1999",
        _ => "",
    };
    (!ok).then(|| format!("tag `{key}` is {expected}, not `{value}`"))
}

/// The metrics measured per request, so `{name:…}` selects one request's samples.
fn tagged_by_name(metric: &str) -> bool {
    matches!(
        metric,
        "http_reqs" | "http_req_duration" | "http_req_failed"
    ) || k6_rules::PHASES.contains(&metric)
}

/// Places validation errors in the scenario's text: `at` a span, or `nowhere` (at the first
/// line naming the field's last key) for values serde keeps no span of.
struct Checker<'a> {
    text: &'a str,
    file: &'a str,
}

type Names<'s> = std::collections::HashSet<&'s str>;

impl Checker<'_> {
    fn at(&self, span: std::ops::Range<usize>, field: &str, message: String) -> ScenarioError {
        let (line, column) = line_col(self.text, span.start);
        let (file, field) = (self.file.to_owned(), field.to_owned());
        ScenarioError::Invalid(Located {
            file,
            line,
            column,
            field,
            message,
        })
    }

    fn nowhere(&self, field: &str, message: String) -> ScenarioError {
        self.at(field_span(self.text, field), field, message)
    }

    /// Target URL, stages, and a request mix that can send something.
    fn shape(&self, s: &Scenario) -> Result<(), ScenarioError> {
        let v = self;
        if !s.target.url.starts_with("http://")
            && !s.target.url.starts_with("https://")
            && !s.target.url.starts_with("{env:")
        {
            return Err(v.nowhere(
                "target.url",
                format!("`{}` is not an http:// or https:// URL", s.target.url),
            ));
        }
        let ends: Vec<_> = s.workloads.iter().map(Workload::end).collect();
        for (i, w) in s.workloads.iter().enumerate() {
            v.workload_shape(w)?;
            let others = ends.iter().enumerate().filter(|(j, _)| *j != i);
            let last_other = others.map(|(_, e)| *e).max();
            if let Some(end) = last_other.filter(|end| w.start_time.0 > *end) {
                return Err(v.nowhere(
                    &w.exec_field("start_time"),
                    format!(
                        "scenario `{}` starts at {}, after every other scenario has ended (at {}): the run would idle in between",
                        w.name,
                        w.start_time,
                        Dur(end)
                    ),
                ));
            }
        }
        Ok(())
    }

    fn workload_shape(&self, w: &Workload) -> Result<(), ScenarioError> {
        let v = self;
        let stages = matches!(
            w.executor,
            Executor::Vus { .. } | Executor::ArrivalRate { .. }
        );
        if stages && w.executor.stages().is_empty() {
            return Err(v.nowhere(
                &w.exec_field("stages"),
                "at least one stage is required".into(),
            ));
        }
        if w.executor.total_duration().is_zero() {
            let (field, m) = match stages {
                true => ("stages", "the stages add up to zero time".to_owned()),
                false => (
                    "max_duration",
                    format!("scenario `{}` lasts zero time", w.name),
                ),
            };
            return Err(v.nowhere(&w.exec_field(field), m));
        }
        if let Executor::ArrivalRate {
            max_in_flight: 0, ..
        } = w.executor
        {
            return Err(v.nowhere(&w.exec_field("max_in_flight"), "must be at least 1".into()));
        }
        if w.flow.is_empty() {
            if w.requests.is_empty() {
                return Err(v.nowhere(
                    "requests",
                    "at least one [[requests]] entry is required".into(),
                ));
            }
            if w.requests.iter().all(|r| r.weight == 0) {
                return Err(v.nowhere(
                    &w.step_field("weight"),
                    "at least one request needs a weight above 0".into(),
                ));
            }
            for r in &w.requests {
                let flow_only = [
                    ("extract", !r.extract.is_empty()),
                    ("poll", r.poll.is_some()),
                    ("once", r.once),
                    ("think_time", r.think_time.is_some()),
                ];
                if let Some((f, _)) = flow_only.iter().find(|(_, set)| *set) {
                    return Err(v.nowhere(
                        &w.step_field(f),
                        format!("request `{}`: `{f}` belongs to a flow step ([[scenarios.NAME.flow]]), not to a request mix", r.name),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Generators, then each request (unique name, method, path and body templates); returns
    /// the request names.
    fn requests<'s>(&self, s: &'s Scenario) -> Result<Names<'s>, ScenarioError> {
        let v = self;
        for (name, g) in &s.generators {
            g.validate()
                .map_err(|e| v.nowhere(&format!("generators.{name}"), e.to_string()))?;
        }
        let gens = Generators::new(&s.generators, s.seed);
        let data: Vec<(String, Vec<String>)> = s
            .datasets
            .iter()
            .map(|(n, d)| (n.clone(), d.columns.clone()))
            .collect();
        let mut names = std::collections::HashSet::new();
        let mut setup_vars = Vec::new();
        for r in &s.setup {
            let scope = Scope {
                vars: &setup_vars,
                data: &data,
                flow: true,
            };
            v.request(s, r, &|f| format!("setup.{f}"), &gens, scope, &mut names)?;
            setup_vars.extend(r.extract.iter().map(|e| e.var.clone()));
        }
        for w in &s.workloads {
            let mut vars = setup_vars.clone();
            let flow = !w.flow.is_empty();
            let mut used = std::collections::BTreeSet::new();
            for r in w.steps() {
                let scope = Scope {
                    vars: &vars,
                    data: &data,
                    flow,
                };
                used.extend(v.request(s, r, &|f| w.step_field(f), &gens, scope, &mut names)?);
                vars.extend(r.extract.iter().map(|e| e.var.clone()));
            }
            let needed = match w.executor {
                Executor::SharedIterations { iterations, .. } => Some(iterations),
                Executor::PerVuIterations {
                    vus, iterations, ..
                } => Some(u64::from(vus) * iterations),
                _ => None,
            };
            for set in used {
                let (name, d) = &s.datasets[set];
                if let (Some(n), data::Select::Unique) = (needed, d.select()) {
                    if d.len() < n {
                        return Err(v.nowhere(
                            &format!("data.{name}.select"),
                            format!("`unique` needs a row per iteration: scenario `{}` runs {n} iterations, `{name}` has {} rows", w.name, d.len()),
                        ));
                    }
                }
            }
        }
        let mut vars = setup_vars.clone();
        for r in &s.teardown {
            let scope = Scope {
                vars: &vars,
                data: &data,
                flow: true,
            };
            v.request(s, r, &|f| format!("teardown.{f}"), &gens, scope, &mut names)?;
            vars.extend(r.extract.iter().map(|e| e.var.clone()));
        }
        Ok(names)
    }

    /// One request or step: unique name, method, templates (in `scope`), extractions and
    /// poll; returns the data sets it reads.
    fn request<'s>(
        &self,
        s: &Scenario,
        r: &'s RequestSpec,
        field: &dyn Fn(&str) -> String,
        gens: &Generators,
        scope: Scope<'_>,
        names: &mut Names<'s>,
    ) -> Result<Vec<usize>, ScenarioError> {
        let v = self;
        if !names.insert(r.name.as_str()) {
            return Err(v.nowhere(
                &field("name"),
                format!(
                    "request name `{}` is used twice (names are unique across the file)",
                    r.name
                ),
            ));
        }
        if r.method.parse::<http::Method>().is_err() {
            return Err(v.nowhere(
                &field("method"),
                format!("`{}` is not an HTTP method", r.method),
            ));
        }
        if !r.path.get_ref().starts_with('/') {
            return Err(v.at(
                r.path.span(),
                &field("path"),
                format!("`{}` must start with /", r.path.get_ref()),
            ));
        }
        let in_step = |m: String| match scope.flow {
            true => format!("step `{}`: {m}", r.name),
            false => m,
        };
        let path = Template::compile_in(r.path.get_ref(), gens, scope)
            .map_err(|e| v.at(r.path.span(), &field("path"), in_step(e.to_string())))?;
        let mut used: Vec<usize> = path.data_sets().collect();
        if let Some(b) = &r.body {
            let t = Template::compile_in(b.get_ref(), gens, scope)
                .map_err(|e| v.at(b.span(), &field("body"), in_step(e.to_string())))?;
            used.extend(t.data_sets());
            if sent_as_json(&s.target.headers, &r.headers) {
                json_body(&t, gens).map_err(|e| v.at(b.span(), &field("body"), e.to_string()))?;
            }
        }
        self.step_parts(s, r, field, gens, &in_step)?;
        Ok(used)
    }

    /// A step's extractions (names free, expressions valid) and poll (its check exists, its
    /// trend is a new name, its times are above 0).
    fn step_parts(
        &self,
        s: &Scenario,
        r: &RequestSpec,
        field: &dyn Fn(&str) -> String,
        gens: &Generators,
        in_step: &dyn Fn(String) -> String,
    ) -> Result<(), ScenarioError> {
        let v = self;
        for e in &r.extract {
            if gens.index(&e.var).is_some() || matches!(e.var.as_str(), "iteration" | "vu") {
                return Err(v.nowhere(
                    &field("extract.var"),
                    in_step(format!(
                        "`{}` is already a generator or built-in: name the variable otherwise",
                        e.var
                    )),
                ));
            }
            if r.poll.as_ref().is_some_and(|p| p.every > 1) {
                return Err(v.nowhere(
                    &field("extract"),
                    in_step("a poll with `every` > 1 is skipped in most iterations, so it cannot set a variable".into()),
                ));
            }
            if let Err((f, m)) = flow::Extract::compile(e) {
                let span = match f {
                    "extract.jsonpath" => e.jsonpath.as_ref().map(Spanned::span),
                    "extract.regex" => e.regex.as_ref().map(Spanned::span),
                    _ => None,
                };
                let f = field(f);
                let m = in_step(m);
                return Err(match span {
                    Some(span) => v.at(span, &f, m),
                    None => v.nowhere(&f, m),
                });
            }
        }
        if let Some(p) = &r.poll {
            if !r.checks.iter().any(|c| c.name == p.until) {
                return Err(v.nowhere(
                    &field("poll.until"),
                    in_step(format!(
                        "`until` names no check of this step: `{}`",
                        p.until
                    )),
                ));
            }
            let taken = |t: &str| {
                s.builtin(t)
                    || s.metrics.contains_key(t)
                    || s.probe_series().iter().any(|p| p == t)
                    || t == "kafka_consumer_lag"
            };
            if let Some(Err(why)) = p.trend.as_deref().map(k6_rules::check_metric_name) {
                return Err(v.nowhere(&field("poll.trend"), in_step(why)));
            }
            if let Some(t) = p.trend.as_deref().filter(|t| taken(t)) {
                return Err(v.nowhere(
                    &field("poll.trend"),
                    in_step(format!(
                        "`{t}` is already a metric: name the trend otherwise"
                    )),
                ));
            }
            if p.interval.0.is_zero() || p.timeout.0.is_zero() || p.every == 0 {
                return Err(v.nowhere(
                    &field("poll"),
                    in_step("interval, timeout and every must be above 0".into()),
                ));
            }
        }
        Ok(())
    }

    fn metrics(&self, s: &Scenario, names: &Names<'_>) -> Result<(), ScenarioError> {
        let v = self;
        for (name, m) in &s.metrics {
            k6_rules::check_metric_name(name)
                .map_err(|why| v.nowhere(&format!("metrics.{name}"), why))?;
            let request = &m.request;
            if !names.contains(request.get_ref().as_str()) {
                return Err(v.at(
                    request.span(),
                    &format!("metrics.{name}.request"),
                    format!("no request named `{}`", request.get_ref()),
                ));
            }
            if s.builtin(name) {
                return Err(v.nowhere(
                    &format!("metrics.{name}"),
                    "a custom metric cannot reuse a built-in metric's name".into(),
                ));
            }
            v.metric_feed(name, m)?;
        }
        Ok(())
    }

    /// What feeds a declared metric fits its type: a `value` for trends and gauges, none for
    /// counters, one of `value` or `success_status` for rates; the JSONPath compiles.
    fn metric_feed(&self, name: &str, m: &CustomMetric) -> Result<(), ScenarioError> {
        let field = |f: &str| format!("metrics.{name}.{f}");
        let why = match (m.kind, &m.value, m.success_status.is_empty()) {
            (CustomKind::Trend | CustomKind::Gauge, None, _) => {
                Some("a trend or gauge needs `value`, the JSONPath of a number in each response")
            }
            (CustomKind::Trend | CustomKind::Gauge, Some(_), false) => {
                Some("`success_status` is for rates and counters")
            }
            (CustomKind::Counter, Some(_), _) => {
                Some("a counter counts responses (`success_status` picks which); `value` is for trends, gauges and rates")
            }
            (CustomKind::Rate, None, true) => {
                Some("a rate needs `success_status` or `value` (true or non-zero passes)")
            }
            (CustomKind::Rate, Some(_), false) => Some("a rate takes `success_status` or `value`, not both"),
            _ => None,
        };
        if let Some(why) = why {
            return Err(self.nowhere(&format!("metrics.{name}"), why.into()));
        }
        if let Some(path) = &m.value {
            serde_json_path::JsonPath::parse(path.get_ref())
                .map_err(|e| self.at(path.span(), &field("value"), format!("bad JSONPath: {e}")))?;
        }
        Ok(())
    }

    /// Each threshold names a known metric of a kind its aggregation fits, tagged by request.
    fn thresholds(&self, s: &Scenario, names: &Names<'_>) -> Result<(), ScenarioError> {
        let v = self;
        for (metric, specs) in &s.thresholds {
            let m = metric.get_ref();
            let field = format!("thresholds.\"{m}\"");
            let kind = s.metric_kind(&m.name).ok_or_else(|| {
                v.at(metric.span(), &field, format!("unknown metric `{}` (built-in, a declared [metrics] entry, kafka_consumer_lag with [probes.kafka], or a [probes.prometheus] series)", m.name))
            })?;
            let checks = s.check_names();
            for (k, tag) in &m.tags {
                let message = match (m.name.as_str(), k.as_str()) {
                    ("checks", "check") if checks.contains(tag.as_str()) => continue,
                    ("checks", "check") => format!("no check named `{tag}`"),
                    ("checks", _) => format!("unsupported tag `{k}` (checks take `check`)"),
                    (n, "name") if tagged_by_name(n) && names.contains(tag.as_str()) => {
                        let scenario = m.tags.iter().find(|(k, _)| k == "scenario");
                        match (scenario, s.workload_of(tag)) {
                            (Some((_, sc)), Some(w)) if &w.name != sc => format!(
                                "request `{tag}` is in scenario `{}`, not `{sc}`: the tags select nothing",
                                w.name
                            ),
                            _ => continue,
                        }
                    }
                    (n, "name") if tagged_by_name(n) => format!("no request named `{tag}`"),
                    (n, "scenario")
                        if by_scenario(n) && s.workloads.iter().any(|w| &w.name == tag) =>
                    {
                        continue
                    }
                    (n, "scenario") if by_scenario(n) => {
                        let known: Vec<&str> =
                            s.workloads.iter().map(|w| w.name.as_str()).collect();
                        format!(
                            "no scenario named `{tag}` (scenarios: {})",
                            known.join(", ")
                        )
                    }
                    (n, _) if by_scenario(n) => match http_tag_error(s, k, tag) {
                        None => continue,
                        Some(why) => why,
                    },
                    (n, _) if tagged_by_name(n) => {
                        format!("unsupported tag `{k}` (only `name` is supported)")
                    }
                    (n, _) => format!("`{n}` takes no tags (it is not measured per request)"),
                };
                return Err(v.at(metric.span(), &field, message));
            }
            let declared_gauge = s
                .metrics
                .get(&m.name)
                .is_some_and(|c| c.kind == CustomKind::Gauge);
            for spec in specs {
                spec.expr
                    .check_kind(&m.name, kind)
                    .map_err(|e| v.at(metric.span(), &field, e.to_string()))?;
                if declared_gauge && spec.expr.agg != k6_rules::Agg::Value {
                    let why = format!(
                        "`{}` on a declared gauge: k6 judges a gauge by `value` (its last sample)",
                        spec.expr.agg
                    );
                    return Err(v.at(metric.span(), &field, why));
                }
            }
        }
        Ok(())
    }

    fn alerts_and_sql(&self, s: &Scenario, names: &Names<'_>) -> Result<(), ScenarioError> {
        let v = self;
        for c in &s.sql_checks {
            // A URL with `{env:…}` is checked once expanded, before the load (run's preflight).
            if c.database_url.contains("{env:") {
                continue;
            }
            if let Err(e) = crate::probe::sql::parse_url(&c.database_url) {
                let m = format!("check `{}`: {e}", c.name);
                return Err(v.nowhere("sql_checks.database_url", m));
            }
        }
        for a in &s.alerts {
            let rule = crate::alerts::Condition::parse(a.expr.get_ref())
                .map_err(|e| v.at(a.expr.span(), "alerts.expr", e.to_string()))?;
            if s.metric_kind(&rule.series).is_none() {
                return Err(v.at(
                    a.expr.span(),
                    "alerts.expr",
                    format!("unknown series `{}`", rule.series),
                ));
            }
        }
        for p in s.hypothesis.iter().flat_map(|h| &h.probes) {
            let rule = crate::alerts::Condition::parse(p.get_ref())
                .map_err(|e| v.at(p.span(), "hypothesis.probes", e.to_string()))?;
            if rule.series == "recovery_time" || s.metric_kind(&rule.series).is_none() {
                let m = format!("unknown series `{}`", rule.series);
                return Err(v.at(p.span(), "hypothesis.probes", m));
            }
        }
        if s.hypothesis.as_ref().is_some_and(|h| h.probes.is_empty()) {
            let m = "list at least one probe with its tolerance, e.g. \"queue_depth <= 2\"";
            return Err(v.nowhere("hypothesis.probes", m.to_owned()));
        }
        for c in &s.sql_checks {
            match (&c.expect, &c.expect_responses) {
                (Some(_), None) => {}
                (None, Some(r)) if names.contains(r.request.as_str()) => {}
                (None, Some(r)) => {
                    return Err(v.nowhere(
                        "expect_responses",
                        format!("no request named `{}`", r.request),
                    ))
                }
                _ => {
                    return Err(v.nowhere(
                        "sql_checks",
                        format!(
                            "check `{}` needs exactly one of `expect` or `expect_responses`",
                            c.name
                        ),
                    ))
                }
            }
        }
        Ok(())
    }

    /// `min_coverage` is a share.
    fn coverage(&self, s: &Scenario) -> Result<(), ScenarioError> {
        let prometheus = s.probes.prometheus.as_ref();
        let coverages = [
            prometheus.map(|p| ("probes.prometheus.min_coverage", p.min_coverage)),
            s.probes
                .kafka
                .as_ref()
                .map(|k| ("probes.kafka.min_coverage", k.min_coverage)),
            s.probes
                .sql
                .as_ref()
                .map(|p| ("probes.sql.min_coverage", p.min_coverage)),
            s.probes
                .promql
                .as_ref()
                .map(|p| ("probes.promql.min_coverage", p.min_coverage)),
        ];
        for (field, c) in coverages.into_iter().flatten() {
            if !(0.0..=1.0).contains(&c) {
                return Err(self.nowhere(field, format!("{c} is not a share between 0 and 1")));
            }
        }
        Ok(())
    }

    /// Each Prometheus series is a selector (`name{label="v"}`, `sum(…)`, …).
    fn probes(&self, s: &Scenario) -> Result<(), ScenarioError> {
        for series in s.probes.prometheus.iter().flat_map(|p| &p.series) {
            series
                .parse::<crate::probe::selector::Selector>()
                .map_err(|e| self.nowhere("probes.prometheus.series", e.to_string()))?;
        }
        if let Some(p) = &s.probes.prometheus {
            // `{target}` stands for an http(s) base URL; `{env:…}` is checked once expanded.
            let url = p.url.replace("{target}", "http://target.invalid");
            let parsed = reqwest::Url::parse(&url)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"));
            if !url.contains("{env:") && parsed.is_none() {
                let m = format!("`{}` is not an http:// or https:// URL", p.url);
                return Err(self.nowhere("probes.prometheus.url", m));
            }
        }
        if let Some(p) = &s.probes.sql {
            if !p.url.contains("{env:") {
                if let Err(e) = crate::probe::sql::parse_url(&p.url) {
                    return Err(self.nowhere("probes.sql.url", e.to_string()));
                }
            }
            if p.queries.is_empty() {
                let m = "name at least one query (series = \"SELECT …\")";
                return Err(self.nowhere("probes.sql.queries", m.to_owned()));
            }
        }
        if let Some(k) = &s.probes.kafka {
            let bad = k.bootstrap.split(',').map(str::trim).find(|b| {
                !b.contains("{env:")
                    && b.rsplit_once(':')
                        .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
            });
            if let Some(b) = bad {
                let m = format!("`{b}` is not host:port (a comma-separated list of them)");
                return Err(self.nowhere("probes.kafka.bootstrap", m));
            }
        }
        Ok(())
    }

    /// `[probes.promql]`, `[outputs.prometheus_remote_write]` and `[alerts]`'s Prometheus.
    fn prometheus(&self, s: &Scenario) -> Result<(), ScenarioError> {
        if let Some(p) = &s.probes.promql {
            prometheus::http_url(&p.url).map_err(|m| self.nowhere("probes.promql.url", m))?;
            if p.queries.is_empty() {
                let m = "name at least one query (series = \"max(up)\")";
                return Err(self.nowhere("probes.promql.queries", m.to_owned()));
            }
        }
        if let Some(o) = &s.outputs.prometheus_remote_write {
            let field = "outputs.prometheus_remote_write.url";
            prometheus::http_url(&o.url).map_err(|m| self.nowhere(field, m))?;
            if o.queue == 0 {
                let m = "must be at least 1".to_owned();
                return Err(self.nowhere("outputs.prometheus_remote_write.queue", m));
            }
        }
        let Some(pa) = &s.prometheus_alerts else {
            return Ok(());
        };
        if pa.rule_files.is_empty() {
            let m =
                "name the rule files Prometheus evaluates (prometheus_rules = [\"alerts.yml\"])";
            return Err(self.nowhere("alerts.prometheus_rules", m.to_owned()));
        }
        let Some(url) = s.rules_prometheus_url() else {
            let m = "say which Prometheus evaluates these rules: prometheus_url = \"http://…:9090\" (or [probes.promql] url)";
            return Err(self.nowhere("alerts.prometheus_rules", m.to_owned()));
        };
        prometheus::http_url(url).map_err(|m| self.nowhere("alerts.prometheus_url", m))?;
        if let Some(am) = &pa.alertmanager_url {
            prometheus::http_url(am).map_err(|m| self.nowhere("alerts.alertmanager_url", m))?;
        }
        Ok(())
    }

    fn plugins(&self, s: &Scenario) -> Result<(), ScenarioError> {
        let v = self;
        for (field, specs) in [
            ("faults", &s.faults),
            ("threshold_plugins", &s.threshold_plugins),
        ] {
            for p in specs {
                if p.plugin.get_ref().extension().is_none_or(|e| e != "wasm") {
                    return Err(v.nowhere(
                        &format!("{field}.plugin"),
                        format!(
                            "`{}` is not a .wasm component",
                            p.plugin.get_ref().display()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Whether a request body goes out as JSON: the client sends `application/json` unless a
/// header says otherwise.
fn sent_as_json(target: &BTreeMap<String, String>, request: &BTreeMap<String, String>) -> bool {
    let content_type = request
        .iter()
        .chain(target)
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.to_ascii_lowercase());
    content_type.is_none_or(|v| v.contains("json"))
}

/// A body sent as JSON that is not JSON once its fields are filled in.
#[derive(Debug, thiserror::Error)]
#[error("the body is sent as application/json but is not JSON once expanded ({source}): {sample}")]
struct NotJson {
    source: serde_json::Error,
    sample: String,
}

/// A JSON body must still be JSON once its fields are filled in with the generators' values
/// (and variables and data with `0`, which fits both `"{{x}}"` and a bare `{{x}}`).
fn json_body(t: &Template, gens: &Generators) -> Result<(), NotJson> {
    struct Zero;
    impl template::Env for Zero {
        fn var(&self, _: &str) -> Option<&str> {
            Some("0")
        }
        fn data(&self, _: usize, _: usize) -> Option<&str> {
            Some("0")
        }
    }
    let sample = t.render_in(gens, 0, 0, &mut Draws::default(), &Zero);
    match serde_json::from_str::<serde_json::Value>(&sample) {
        Ok(_) => Ok(()),
        Err(source) => Err(NotJson { source, sample }),
    }
}

/// `a.b.c=value`: value parsed as TOML (number, bool, string in quotes) or else taken as a string.
fn apply_set(doc: &mut toml::Table, assignment: &str) -> Result<(), ScenarioError> {
    let err = |m: &str| ScenarioError::Override {
        assignment: assignment.to_owned(),
        message: m.to_owned(),
    };
    let (key, raw) = assignment
        .split_once('=')
        .ok_or_else(|| err("expected key.path=value"))?;
    let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()));
    let parts: Vec<&str> = key.trim().split('.').collect();
    let mut table = doc;
    for p in &parts[..parts.len() - 1] {
        table = match table.get_mut(*p) {
            Some(toml::Value::Table(t)) => t,
            Some(toml::Value::Array(_)) => {
                return Err(err(&format!(
                    "`{p}` is a list; --set cannot index into lists"
                )))
            }
            Some(_) => return Err(err(&format!("`{p}` is not a table"))),
            None => return Err(err(&format!("no `{p}` in the scenario"))),
        };
    }
    let last = parts[parts.len() - 1];
    if !table.contains_key(last) {
        return Err(err(&format!(
            "no `{key}` in the scenario (only existing keys can be overridden)"
        )));
    }
    table.insert(last.to_owned(), value);
    Ok(())
}

/// A file that is not UTF-8: where the first bad byte is (line and column of the valid text
/// before it, and its byte offset).
fn not_utf8(file: &str, bytes: &[u8], e: std::str::Utf8Error) -> ScenarioError {
    let at = e.valid_up_to();
    let valid = std::str::from_utf8(&bytes[..at]).expect("valid up to here");
    let (line, column) = line_col(valid, at);
    ScenarioError::Invalid(Located {
        file: file.to_owned(),
        line,
        column,
        field: "(file)".into(),
        message: format!(
            "not UTF-8: invalid byte 0x{:02x} at byte offset {at}",
            bytes[at]
        ),
    })
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map(|nl| before.len() - nl)
        .unwrap_or(before.len() + 1);
    (line, column)
}

/// Where `field` (a dotted path) is: the first line naming its last key.
fn field_span(text: &str, field: &str) -> std::ops::Range<usize> {
    find_key(text, field.rsplit('.').next().unwrap_or(field))
}

/// The first line that assigns or opens `key`, for errors without a span of their own.
fn find_key(text: &str, key: &str) -> std::ops::Range<usize> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        let indent = line.len() - t.len();
        let head = t.trim_start_matches('[').trim_end();
        if head.starts_with(key)
            && (t[key.len().min(t.len())..].trim_start().starts_with('=') || t.starts_with('['))
        {
            return offset + indent..offset + indent + key.len();
        }
        offset += line.len();
    }
    0..0
}

fn locate_toml(text: &str, file: &str, e: &toml::de::Error) -> Located {
    let span = e.span().unwrap_or(0..0);
    let (line, column) = line_col(text, span.start);
    let line_text = text.lines().nth(line.saturating_sub(1)).unwrap_or("");
    let field = line_text
        .split_once('=')
        .map(|(k, _)| k.trim().to_owned())
        .filter(|k| !k.is_empty() && !k.starts_with('['))
        .unwrap_or_else(|| {
            line_text
                .trim()
                .trim_matches(|c| c == '[' || c == ']')
                .to_owned()
        });
    Located {
        file: file.to_owned(),
        line,
        column,
        field,
        message: e.message().to_owned(),
    }
}

#[cfg(test)]
mod tests;
