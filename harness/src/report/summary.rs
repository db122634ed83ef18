//! `summary.json`: the versioned, machine-readable record of a run. Its JSON Schema is
//! `harness/schema/summary.schema.json`; bump `SCHEMA` on any incompatible change.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::metrics::{ErrorKind, RunMetrics, Totals, Trend};
use crate::probe::kafka::LagSummary;
use crate::probe::sql::SqlResult;
use crate::probe::ProbeHealth;
use crate::scenario::ChartSpec;
use crate::threshold::Verdict;

pub const SCHEMA: &str = "harness.summary/1";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub schema: String,
    pub run_id: String,
    pub scenario: ScenarioInfo,
    pub target: String,
    pub started_at: String,
    pub elapsed_s: f64,
    pub status: RunStatus,
    pub exit_code: i32,
    pub reason: Option<String>,
    pub totals: TotalsRow,
    pub requests: Vec<RequestRow>,
    pub thresholds: Vec<Verdict>,
    pub sql_checks: Vec<SqlResult>,
    pub probes: Vec<ProbeHealth>,
    pub kafka_lag: Option<LagSummary>,
    /// Peak (max) of every recorded gauge series, e.g. a Prometheus series the probe scraped.
    pub series_peaks: BTreeMap<String, f64>,
    pub alerts: Vec<crate::alerts::AlertState>,
    /// What alert time-to-detect is measured from: the first fault injected, else the first
    /// threshold breach.
    #[serde(default)]
    pub detect_from: Option<DetectFrom>,
    /// What judged `[thresholds]`: the k6-thresholds plugin or the built-in rules.
    #[serde(default)]
    pub threshold_evaluator: String,
    /// Every fault applied, with applied and rolled-back times.
    #[serde(default)]
    pub faults: Vec<crate::fault::journal::FaultRecord>,
    /// Call cost of each Wasm plugin.
    #[serde(default)]
    pub plugins: Vec<PluginCalls>,
    /// The probe charts of `report.html`, as the scenario's `[report]` resolved them (absent in
    /// summaries written before it existed: then every probe series gets a chart).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub charts: Vec<ChartSpec>,
    /// How the requests went over the wire: TLS, protocols, error kinds, phases, bytes, checks.
    #[serde(default)]
    pub http: HttpInfo,
    /// Each scenario of the file (k6's `scenarios`), its requests together.
    #[serde(default)]
    pub scenarios: Vec<ScenarioRow>,
    /// The flows' trends (a poll's time until its check held, named by the poll), ms.
    #[serde(default)]
    pub trends: BTreeMap<String, CountedTrend>,
    /// Per flow step: iterations it ended as failed (a failed extraction or poll).
    #[serde(default)]
    pub iteration_failed: BTreeMap<String, u64>,
    /// The steady-state hypothesis: its check before the first fault and each fault window's
    /// time to recover (only with `[hypothesis]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steady_state: Option<SteadyState>,
    /// What the operator did through the live endpoint's controls, with when and from where.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub control: Vec<crate::serve::status::ControlRecord>,
    /// `[outputs.prometheus_remote_write]`: batches sent, dropped (queue full) and failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_write: Option<RemoteWriteReport>,
}

/// How the remote-write output fared.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RemoteWriteReport {
    pub url: String,
    pub sent: u64,
    pub dropped: u64,
    pub failed: u64,
    pub samples: u64,
    pub last_error: Option<String>,
}

/// One scenario's requests together.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ScenarioRow {
    pub name: String,
    pub executor: String,
    /// The scenario's `tags` (besides `scenario` itself).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub start_time_s: f64,
    pub requests: u64,
    pub failed: u64,
    pub p95_ms: Option<f64>,
}

/// A trend with its sample count.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CountedTrend {
    pub count: u64,
    pub avg_ms: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

/// A trend's row in ms, with its count.
pub fn trend_row(h: &Trend) -> CountedTrend {
    CountedTrend {
        count: h.len(),
        avg_ms: h.mean_ms(),
        p50_ms: h.quantile_ms(0.5),
        p95_ms: h.quantile_ms(0.95),
        max_ms: h.max_ms(),
    }
}

/// The HTTP section of a summary.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HttpInfo {
    /// `[target.tls] insecure = true`: no certificate was verified.
    pub tls_insecure: bool,
    /// What the scenario asked for: `auto`, `1.1` or `2`.
    pub http_version: String,
    /// Responses per negotiated protocol (`HTTP/1.1`, `HTTP/2.0`).
    pub protocols: BTreeMap<String, u64>,
    /// Failed requests per error kind (`timeout`, `connect`, `tls`, `body_too_large`,
    /// `redirects`, `other`); kinds that did not happen are left out.
    pub errors: BTreeMap<String, u64>,
    /// k6's timing phases over every request, in ms.
    pub phases: BTreeMap<String, TrendRow>,
    /// Bytes on the wire, TLS included.
    pub data_sent: u64,
    pub data_received: u64,
    /// The `checks` metric per check name.
    pub checks: Vec<CheckRow>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TrendRow {
    pub avg_ms: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CheckRow {
    pub name: String,
    pub passes: u64,
    pub fails: u64,
    /// passes / (passes + fails).
    pub rate: Option<f64>,
}

/// A byte count the way k6 prints it (kB = 1000 B).
pub fn bytes(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.1} GB", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1} kB", n as f64 / 1e3),
        n => format!("{n} B"),
    }
}

/// The HTTP section from the whole-run totals; `insecure` and `version` from the scenario.
pub fn http_info(m: &RunMetrics, insecure: bool, version: &str) -> HttpInfo {
    let trend = |h: &Trend| TrendRow {
        avg_ms: h.mean_ms(),
        p50_ms: h.quantile_ms(0.5),
        p95_ms: h.quantile_ms(0.95),
        max_ms: h.max_ms(),
    };
    let protocols = [
        ("HTTP/1.1", m.all.protocols[0]),
        ("HTTP/2.0", m.all.protocols[1]),
    ];
    HttpInfo {
        tls_insecure: insecure,
        http_version: version.to_owned(),
        protocols: protocols
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(p, n)| (p.to_owned(), n))
            .collect(),
        errors: ErrorKind::ALL
            .iter()
            .map(|k| (k.as_str().to_owned(), m.all.error_count(*k)))
            .filter(|(_, n)| *n > 0)
            .collect(),
        phases: k6_rules::PHASES
            .iter()
            .zip(&m.all.phases)
            .map(|(p, h)| ((*p).to_owned(), trend(h)))
            .collect(),
        data_sent: m.data_sent,
        data_received: m.data_received,
        checks: m
            .checks
            .iter()
            .map(|(name, c)| CheckRow {
                name: name.clone(),
                passes: c.passes,
                fails: c.fails,
                rate: (c.passes + c.fails > 0)
                    .then(|| c.passes as f64 / (c.passes + c.fails) as f64),
            })
            .collect(),
    }
}

/// How a run ended; serialised as the lowercase word the schema lists.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Passed,
    Failed,
    Aborted,
    Interrupted,
    Error,
}

impl RunStatus {
    /// The word in `summary.json` (and the CSS class of the HTML verdict).
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Passed => "passed",
            RunStatus::Failed => "failed",
            RunStatus::Aborted => "aborted",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Error => "error",
        }
    }
}

/// Lets callers and tests compare with the JSON word: `status == "passed"`.
impl PartialEq<&str> for RunStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DetectFrom {
    pub event: String,
    pub at_s: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PluginCalls {
    pub plugin: String,
    pub calls: u64,
    pub total_us: f64,
    pub mean_us: f64,
    pub max_us: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScenarioInfo {
    pub name: String,
    pub file: String,
    pub executor: String,
    pub planned_duration_s: f64,
    pub time_scale: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TotalsRow {
    pub http_reqs: u64,
    pub http_reqs_per_s: f64,
    pub http_req_failed: u64,
    pub dropped_iterations: u64,
    pub timeouts: u64,
    pub connect_errors: u64,
    pub p95_ms: Option<f64>,
    /// k6's `iterations`: a mix's requests started, plus whole flow iterations.
    #[serde(default)]
    pub iterations: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RequestRow {
    pub name: String,
    pub count: u64,
    pub per_s: f64,
    pub failed: u64,
    pub error_rate: f64,
    pub statuses: BTreeMap<String, u64>,
    pub timeouts: u64,
    pub connect_errors: u64,
    pub avg_ms: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

pub fn request_row(name: &str, t: &Totals, secs: f64) -> RequestRow {
    RequestRow {
        name: name.to_owned(),
        count: t.count,
        per_s: t.count as f64 / secs.max(1e-9),
        failed: t.failed,
        error_rate: if t.count > 0 {
            t.failed as f64 / t.count as f64
        } else {
            0.0
        },
        statuses: t
            .statuses
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect(),
        timeouts: t.error_count(ErrorKind::Timeout),
        connect_errors: t.error_count(ErrorKind::Connect),
        avg_ms: t.mean_ms(),
        p50_ms: t.quantile_ms(0.5),
        p90_ms: t.quantile_ms(0.9),
        p95_ms: t.quantile_ms(0.95),
        p99_ms: t.quantile_ms(0.99),
        max_ms: t.max_ms(),
    }
}

pub fn totals_row(m: &RunMetrics) -> TotalsRow {
    TotalsRow {
        http_reqs: m.all.count,
        http_reqs_per_s: m.requests_per_sec(),
        http_req_failed: m.all.failed,
        dropped_iterations: m.dropped,
        timeouts: m.all.error_count(ErrorKind::Timeout),
        connect_errors: m.all.error_count(ErrorKind::Connect),
        p95_ms: m.all.quantile_ms(0.95),
        iterations: m.iterations,
    }
}

pub fn series_peaks(m: &RunMetrics) -> BTreeMap<String, f64> {
    m.series
        .iter()
        .filter_map(|(k, v)| {
            v.iter()
                .map(|(_, x)| *x)
                .reduce(f64::max)
                .map(|p| (k.clone(), p))
        })
        .collect()
}

/// How one fault window ended: when the system was steady again, if it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recovery {
    /// The window: from the first fault applied to the last one rolled back (overlapping
    /// faults are one window), seconds since the load started.
    pub fault_start_s: f64,
    pub fault_end_s: f64,
    /// End of the first second from the window's end on in which every probe held.
    pub steady_at_s: Option<f64>,
    /// `steady_at_s − fault_end_s`; None: not steady again within the hypothesis timeout.
    pub recovery_time_s: Option<f64>,
}

/// What `summary.json` says of the hypothesis.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SteadyState {
    pub probes: Vec<String>,
    /// The check before the first fault: None when no fault was asked for, else the
    /// deviations (empty: it held).
    pub before_faults: Option<Vec<String>>,
    pub seconds_checked: u64,
    pub seconds_steady: u64,
    pub recoveries: Vec<Recovery>,
    /// How long after the last rollback the run waited for the hypothesis to hold.
    pub timeout_s: f64,
}
