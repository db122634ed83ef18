//! `/api/run` and `/api/series` as data (the contract the dashboard reads): the run fills
//! these once a second; they serialise as they are.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::metrics::Window;

#[derive(Debug, Clone, Serialize, Default)]
pub struct RunStatus {
    pub run_id: String,
    pub scenario: String,
    /// `starting`, `running`, `stopping` or `finished`.
    pub state: &'static str,
    pub elapsed_s: f64,
    pub planned_s: f64,
    pub stage: Stage,
    pub rates: Rates,
    pub load: Load,
    pub scenarios: Vec<ScenarioState>,
    pub thresholds: Vec<ThresholdState>,
    pub faults: Vec<FaultState>,
    pub alerts: Vec<AlertView>,
    pub control: Vec<ControlRecord>,
    /// `/report.html` once written.
    pub report: Option<String>,
    /// The run's verdict once finished (`passed`, `failed`, `aborted`, `interrupted`, `error`).
    pub outcome: Option<String>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Stage {
    pub index: usize,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Rates {
    /// Over the last complete second.
    pub requests_per_s: f64,
    pub failed_per_s: f64,
    /// Over the whole run so far.
    pub failed_rate: f64,
    pub requests: u64,
    pub failed: u64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Load {
    /// `target_rate` or `vus`.
    pub gauge: &'static str,
    pub value: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioState {
    pub name: String,
    pub executor: String,
    /// What the controls may set: `rate`, `vus` or `iterations` (pause/resume only).
    pub kind: &'static str,
    pub target_rate: Option<f64>,
    pub vus: Option<f64>,
    pub max_vus: Option<u32>,
    pub paused: bool,
    #[serde(rename = "override")]
    pub override_: Option<BTreeMap<&'static str, f64>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ThresholdState {
    pub metric: String,
    pub expr: String,
    pub ok: Option<bool>,
    pub value: Option<f64>,
    pub line: Option<Line>,
}

/// Where a threshold is drawn: on the chart of `series` at `value`.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub series: String,
    pub value: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FaultState {
    pub id: usize,
    pub kind: String,
    pub target: String,
    pub detail: String,
    pub applied_s: f64,
    pub rolled_back_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AlertView {
    pub name: String,
    pub source: String,
    pub severity: String,
    pub state: &'static str,
    pub pending_s: Option<f64>,
    pub fired_s: Option<f64>,
    pub resolved_s: Option<f64>,
}

/// One control action as journaled: when (the run's clock), what, by whom, and its result.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct ControlRecord {
    pub at_s: f64,
    pub action: String,
    pub scenario: Option<String>,
    pub value: Option<f64>,
    pub from: String,
    /// What was done, or why it was refused.
    pub result: String,
    pub ok: bool,
}

/// One per-second row of `/api/series`.
pub fn row(w: &Window) -> String {
    #[derive(Serialize)]
    struct Row<'a> {
        second: u64,
        requests: u64,
        failed: u64,
        dropped: u64,
        p50_ms: Option<f64>,
        p95_ms: Option<f64>,
        p99_ms: Option<f64>,
        max_ms: Option<f64>,
        gauges: &'a BTreeMap<String, f64>,
    }
    let r = Row {
        second: w.second,
        requests: w.requests,
        failed: w.failed,
        dropped: w.dropped,
        p50_ms: w.p50_ms,
        p95_ms: w.p95_ms,
        p99_ms: w.p99_ms,
        max_ms: w.max_ms,
        gauges: &w.gauges,
    };
    serde_json::to_string(&r).expect("a row serialises")
}
