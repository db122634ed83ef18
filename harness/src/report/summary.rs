//! `summary.json`: the versioned, machine-readable record of a run. Its JSON Schema is
//! `harness/schema/summary.schema.json`; bump `SCHEMA` on any incompatible change.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::metrics::{RunMetrics, Totals};
use crate::probe::kafka::LagSummary;
use crate::probe::sql::SqlResult;
use crate::probe::ProbeHealth;
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
    /// passed | failed | aborted | interrupted | error
    pub status: String,
    pub exit_code: i32,
    pub reason: Option<String>,
    pub totals: TotalsRow,
    pub requests: Vec<RequestRow>,
    pub thresholds: Vec<Verdict>,
    pub sql_checks: Vec<SqlResult>,
    pub probes: Vec<ProbeHealth>,
    pub kafka_lag: Option<LagSummary>,
    /// Peak (max) of every recorded gauge series, e.g. `db_pool_pending`.
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
        timeouts: t.timeouts,
        connect_errors: t.connect_errors,
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
        timeouts: m.all.timeouts,
        connect_errors: m.all.connect_errors,
        p95_ms: m.all.quantile_ms(0.95),
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

/// UTC time as `20261125-151641`, for file and directory names (sorts like time).
pub fn file_stamp(t: std::time::SystemTime) -> String {
    rfc3339(t)
        .replace([':', '-'], "")
        .replace('T', "-")
        .trim_end_matches('Z')
        .to_owned()
}

/// UTC time as RFC 3339 (seconds), without pulling in a date crate.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_known_dates() {
        let at = |s| std::time::UNIX_EPOCH + std::time::Duration::from_secs(s);
        assert_eq!(super::rfc3339(at(0)), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(at(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(super::rfc3339(at(1_795_608_000)), "2026-11-25T12:00:00Z");
    }
}
