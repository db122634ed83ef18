//! The pure pieces of a run: where in the stages a second falls, what an alert sees, first
//! breaches, how the run ended, and the summary built from what was measured. No I/O here,
//! so every piece has a unit test.

use crate::alerts::{AlertState, Condition};
use crate::fault::journal::FaultRecord;
use crate::metrics::{RunMetrics, Window};
use crate::plugin::CallStats;
use crate::probe::kafka::LagSummary;
use crate::probe::sql::SqlResult;
use crate::probe::ProbeHealth;

use crate::report::summary::{self as report, DetectFrom, PluginCalls, RunStatus, Summary};
use crate::scenario::Scenario;
use crate::threshold::Verdict;

/// How the load phase ended, before the gates are judged.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Status {
    Done,
    Aborted(String),
    Interrupted,
    Error(String),
}

/// (1-based stage at `t` seconds, number of stages) of the first scenario (counted from its
/// `start_time`); past the end: (n + 1, n).
pub(super) fn stage_at(s: &Scenario, t: f64) -> (usize, usize) {
    let Some(w) = s.workloads.first() else {
        return (1, 0);
    };
    let stages = w.executor.stages();
    let mut end = w.start_time.0.as_secs_f64();
    for (i, st) in stages.iter().enumerate() {
        end += st.duration.0.as_secs_f64();
        if t < end {
            return (i + 1, stages.len());
        }
    }
    (stages.len() + 1, stages.len())
}

/// The value an alert on `series` sees in second `w`: built-in load series, else a gauge.
pub(super) fn alert_value(series: &str, w: &Window) -> Option<f64> {
    match series {
        "http_reqs" => Some(w.requests as f64),
        "http_req_failed" => (w.requests > 0).then(|| w.failed as f64 / w.requests as f64),
        "http_req_duration" => w.p95_ms,
        "dropped_iterations" => Some(w.dropped as f64),
        other => w.gauges.get(other).copied(),
    }
}

/// Feeds the last complete second to every alert rule.
pub(super) fn observe_alerts(alerts: &mut [(Condition, AlertState)], m: &RunMetrics) {
    let Some(w) = m.windows.last() else { return };
    let t = w.second as f64 + 1.0;
    for (c, a) in alerts.iter_mut() {
        a.observe(c, t, alert_value(&c.series, w));
    }
}

/// Records `now` as the first breach of every verdict failing on data for the first time.
pub(super) fn note_breaches(first: &mut Vec<Option<f64>>, live: &[Verdict], now: f64) {
    first.resize(live.len(), None);
    for (slot, v) in first.iter_mut().zip(live) {
        if !v.passed && v.observed.is_some() && slot.is_none() {
            *slot = Some(now);
        }
    }
}

/// Why a run aborts, from the verdicts that asked for it.
pub(super) fn abort_reason(abort: &[Verdict]) -> Option<String> {
    let v = abort.first()?;
    let observed = v
        .observed
        .map(crate::threshold::fmt_num)
        .unwrap_or_else(|| "no data".into());
    Some(format!(
        "threshold {} {} crossed (observed {observed})",
        v.metric, v.threshold
    ))
}

/// A verdict or alert on a probe series judges only what was measured: when the series' probe
/// got too few samples of it, the verdict fails and the alert is marked, with the counts.
pub(super) fn require_coverage(
    thresholds: &mut [Verdict],
    alerts: &mut [AlertState],
    probes: &[ProbeHealth],
) {
    let shortfall = |series: &str| probes.iter().find_map(|p| p.shortfall(series));
    for v in thresholds.iter_mut() {
        if let Some(why) = shortfall(&v.metric) {
            v.passed = false;
            v.reason = Some(why);
        }
    }
    for a in alerts.iter_mut() {
        let series = Condition::parse(&a.expr)
            .map(|c| c.series)
            .unwrap_or_default();
        a.insufficient_data = shortfall(&series);
    }
}

/// A threshold on `recovery_time` judges only windows that recovered; when one did not (within
/// the hypothesis timeout) every such threshold fails, saying which window.
pub(super) fn require_recovery(
    thresholds: &mut [Verdict],
    st: &crate::report::summary::SteadyState,
) {
    let Some(r) = st.recoveries.iter().find(|r| r.recovery_time_s.is_none()) else {
        return;
    };
    let why = match r.fault_end_s >= 0.0 {
        true => format!(
            "the fault window {:.1}–{:.1} s was not steady again within {:.0} s of its rollback",
            r.fault_start_s, r.fault_end_s, st.timeout_s
        ),
        false => format!(
            "the fault window from {:.1} s was never rolled back",
            r.fault_start_s
        ),
    };
    for v in thresholds
        .iter_mut()
        .filter(|v| v.metric == "recovery_time")
    {
        v.passed = false;
        v.reason = Some(why.clone());
    }
}

/// The run's status and reason once the gates are judged.
pub(super) fn final_status(
    status: Status,
    thresholds: &[Verdict],
    sql: &[SqlResult],
    alerts: &[AlertState],
) -> (RunStatus, Option<String>) {
    match status {
        Status::Interrupted => (
            RunStatus::Interrupted,
            Some("interrupted by signal; partial results".to_owned()),
        ),
        Status::Error(e) => (RunStatus::Error, Some(e)),
        Status::Aborted(r) => (RunStatus::Aborted, Some(r)),
        Status::Done => {
            let failed: Vec<String> = thresholds
                .iter()
                .filter(|v| !v.passed)
                .map(|v| format!("{} {}", v.metric, v.threshold))
                .chain(
                    sql.iter()
                        .filter(|c| !c.passed)
                        .map(|c| format!("sql check `{}`", c.name)),
                )
                .chain(alerts.iter().filter_map(|a| {
                    let why = a.insufficient_data.as_ref()?;
                    Some(format!("alert `{}` ({why})", a.name))
                }))
                .collect();
            if failed.is_empty() {
                (RunStatus::Passed, None)
            } else {
                (
                    RunStatus::Failed,
                    Some(format!("failed: {}", failed.join(", "))),
                )
            }
        }
    }
}

/// Time to detect is measured from the first fault injected, else the first threshold breach.
pub(super) fn detect_from(faults: &[FaultRecord], thresholds: &[Verdict]) -> Option<DetectFrom> {
    let first_fault = faults
        .iter()
        .map(|f| DetectFrom {
            event: format!("fault injected: {} {}", f.kind, f.target),
            at_s: f.applied_s,
        })
        .reduce(|a, b| if b.at_s < a.at_s { b } else { a });
    first_fault.or_else(|| {
        thresholds
            .iter()
            .filter_map(|v| v.first_breach_s.map(|t| (t, v)))
            .reduce(|a, b| if b.0 < a.0 { b } else { a })
            .map(|(t, v)| DetectFrom {
                event: format!("first threshold breach: {} {}", v.metric, v.threshold),
                at_s: t,
            })
    })
}

/// Who ran: the facts fixed when the run started.
pub(super) struct Identity<'a> {
    pub scenario: &'a Scenario,
    pub file: String,
    pub time_scale: f64,
    pub run_id: &'a str,
    pub target: &'a str,
    pub started_at: &'a str,
}

/// Everything a run found besides the metrics, handed to [`build`] once.
#[derive(Default)]
pub(super) struct Findings {
    pub thresholds: Vec<Verdict>,
    /// First live breach per threshold, by position.
    pub first_breach: Vec<Option<f64>>,
    pub sql: Vec<SqlResult>,
    pub probes: Vec<ProbeHealth>,
    pub lag: Option<LagSummary>,
    pub alerts: Vec<AlertState>,
    pub evaluator: String,
    pub faults: Vec<FaultRecord>,
    pub plugins: Vec<(String, CallStats)>,
    /// The steady-state hypothesis and each fault window's recovery (with `[hypothesis]`).
    pub steady: Option<crate::report::summary::SteadyState>,
    /// The operator's control actions (live endpoint), in order.
    pub control: Vec<crate::serve::status::ControlRecord>,
    pub remote_write: Option<crate::report::summary::RemoteWriteReport>,
}

/// Each scenario's requests together, from the per-request totals.
fn scenario_rows(s: &Scenario, m: &RunMetrics) -> Vec<report::ScenarioRow> {
    s.workloads
        .iter()
        .map(|w| {
            let t = m.totals_of(w.steps().iter().map(|r| r.name.as_str()));
            report::ScenarioRow {
                name: w.name.clone(),
                executor: w.kind.as_str().to_owned(),
                tags: w.tags.clone(),
                start_time_s: w.start_time.0.as_secs_f64(),
                requests: t.count,
                failed: t.failed,
                p95_ms: t.quantile_ms(0.95),
            }
        })
        .collect()
}

/// The summary of a run from what it measured (`m`) and found.
pub(super) fn build(id: &Identity<'_>, status: Status, m: &RunMetrics, f: Findings) -> Summary {
    let s = id.scenario;
    let secs = m.elapsed.as_secs_f64();
    let (status, reason) = final_status(status, &f.thresholds, &f.sql, &f.alerts);
    let mut requests: Vec<_> = s
        .all_requests()
        .filter_map(|r| {
            m.per_name
                .get(&r.name)
                .map(|t| report::request_row(&r.name, t, secs))
        })
        .collect();
    requests.push(report::request_row("(all)", &m.all, secs));
    let mut thresholds = f.thresholds;
    for (v, first) in thresholds.iter_mut().zip(&f.first_breach) {
        v.first_breach_s = *first;
    }
    let detect = detect_from(&f.faults, &thresholds);
    let mut alerts = f.alerts;
    for a in &mut alerts {
        // A rule already pending before the run started (Prometheus's `activeAt` before the
        // run's clock) detected something older than this run: no time to detect.
        let before_run = a.pending_at.is_some_and(|p| p < 0.0);
        a.time_to_detect_s = match (a.fired_at, detect.as_ref()) {
            (Some(fired), Some(d)) if !before_run => Some((fired - d.at_s).max(0.0)),
            _ => None,
        };
    }
    Summary {
        schema: report::SCHEMA.to_owned(),
        run_id: id.run_id.to_owned(),
        scenario: report::ScenarioInfo {
            name: s.name.clone(),
            file: id.file.clone(),
            executor: s.executor_kind(),
            planned_duration_s: s.total_duration().as_secs_f64(),
            time_scale: id.time_scale,
        },
        target: id.target.to_owned(),
        started_at: id.started_at.to_owned(),
        elapsed_s: secs,
        status,
        exit_code: status.exit_code(),
        reason,
        totals: report::totals_row(m),
        requests,
        thresholds,
        sql_checks: f.sql,
        probes: f.probes,
        kafka_lag: f.lag,
        series_peaks: report::series_peaks(m),
        alerts,
        detect_from: detect,
        threshold_evaluator: f.evaluator,
        faults: f.faults,
        plugins: f
            .plugins
            .into_iter()
            .map(|(name, c)| plugin_calls(name, c))
            .collect(),
        charts: s.charts(),
        http: report::http_info(m, s.target.tls.insecure, s.target.http_version.as_str()),
        scenarios: scenario_rows(s, m),
        trends: m
            .trends
            .iter()
            .map(|(n, h)| (n.clone(), report::trend_row(h)))
            .collect(),
        iteration_failed: m.iteration_failed.clone(),
        steady_state: f.steady,
        control: f.control,
        remote_write: f.remote_write,
    }
}

fn plugin_calls(plugin: String, c: CallStats) -> PluginCalls {
    let mean_us = if c.calls > 0 {
        c.total_us / c.calls as f64
    } else {
        0.0
    };
    PluginCalls {
        plugin,
        calls: c.calls,
        total_us: c.total_us,
        mean_us,
        max_us: c.max_us,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(extra: &str) -> Scenario {
        let text = format!(
            "name = \"t\"\n[target]\nurl = \"http://127.0.0.1:1\"\n[executor]\ntype = \"arrival-rate\"\n\
             stages = [{{ duration = \"10s\", target = 5 }}, {{ duration = \"5s\", target = 5 }}]\n\
             [[requests]]\nname = \"get\"\npath = \"/\"\n{extra}"
        );
        Scenario::from_str(&text, "t.toml", &[]).unwrap()
    }

    fn verdict(passed: bool, observed: Option<f64>) -> Verdict {
        Verdict {
            metric: "http_req_duration".into(),
            threshold: "p(95)<200".into(),
            observed,
            passed,
            abort_on_fail: false,
            reason: None,
            first_breach_s: None,
        }
    }

    #[test]
    fn stages_are_found_by_elapsed_time() {
        let s = scenario("");
        assert_eq!(stage_at(&s, 0.0), (1, 2));
        assert_eq!(stage_at(&s, 9.9), (1, 2));
        assert_eq!(stage_at(&s, 10.0), (2, 2));
        assert_eq!(stage_at(&s, 15.0), (3, 2), "past the end: draining");
    }

    #[test]
    fn alerts_see_built_in_series_and_gauges() {
        let mut w = Window {
            requests: 4,
            failed: 1,
            p95_ms: Some(9.0),
            ..Default::default()
        };
        w.gauges.insert("db_pool_pending".into(), 3.0);
        assert_eq!(alert_value("http_req_failed", &w), Some(0.25));
        assert_eq!(alert_value("http_req_duration", &w), Some(9.0));
        assert_eq!(alert_value("db_pool_pending", &w), Some(3.0));
        assert_eq!(alert_value("absent", &w), None);
        let idle = Window::default();
        assert_eq!(
            alert_value("http_req_failed", &idle),
            None,
            "no requests: no rate"
        );
    }

    #[test]
    fn a_breach_is_noted_once_and_only_on_data() {
        let mut first = Vec::new();
        note_breaches(
            &mut first,
            &[verdict(false, None), verdict(true, Some(1.0))],
            1.0,
        );
        assert_eq!(first, vec![None, None]);
        note_breaches(
            &mut first,
            &[verdict(false, Some(300.0)), verdict(true, Some(1.0))],
            2.0,
        );
        note_breaches(
            &mut first,
            &[verdict(false, Some(400.0)), verdict(true, Some(1.0))],
            3.0,
        );
        assert_eq!(first, vec![Some(2.0), None]);
    }

    #[test]
    fn status_follows_gates_and_how_the_load_ended() {
        let failing = [verdict(false, Some(300.0))];
        assert_eq!(
            final_status(Status::Done, &[], &[], &[]),
            (RunStatus::Passed, None)
        );
        let (st, reason) = final_status(Status::Done, &failing, &[], &[]);
        assert_eq!(st, RunStatus::Failed);
        assert_eq!(reason.unwrap(), "failed: http_req_duration p(95)<200");
        let (st, _) = final_status(Status::Aborted("x".into()), &[], &[], &[]);
        assert_eq!(
            (st, st.exit_code()),
            (RunStatus::Aborted, crate::exit::THRESHOLDS_FAILED)
        );
        assert_eq!(
            final_status(Status::Interrupted, &[], &[], &[]).0,
            RunStatus::Interrupted
        );
        assert_eq!(
            final_status(Status::Error("e".into()), &failing, &[], &[]).0,
            RunStatus::Error
        );
    }

    #[test]
    fn detection_counts_from_the_first_fault_else_the_first_breach() {
        let mut v = verdict(false, Some(300.0));
        v.first_breach_s = Some(7.0);
        let d = detect_from(&[], &[v.clone()]).unwrap();
        assert_eq!(
            (d.at_s, d.event.as_str()),
            (7.0, "first threshold breach: http_req_duration p(95)<200")
        );
        let fault = FaultRecord {
            plugin: "p".into(),
            kind: "toxic".into(),
            target: "latency".into(),
            value: "1".into(),
            updates: 0,
            original: "removed".into(),
            applied_at: String::new(),
            applied_s: 3.0,
            rolled_back_at: None,
            rolled_back_s: None,
            rollback_error: None,
        };
        assert_eq!(detect_from(&[fault], &[v]).unwrap().at_s, 3.0);
    }

    #[test]
    fn the_summary_carries_what_was_measured() {
        let s = scenario("[thresholds]\nhttp_req_duration = [\"p(95)<200\"]\n");
        let id = Identity {
            scenario: &s,
            file: "t.toml".into(),
            time_scale: 1.0,
            run_id: "t-1",
            target: "http://127.0.0.1:1",
            started_at: "2026-12-01T00:00:00Z",
        };
        let f = Findings {
            thresholds: vec![verdict(false, Some(300.0))],
            first_breach: vec![Some(4.0)],
            ..Default::default()
        };
        let sum = build(&id, Status::Done, &RunMetrics::default(), f);
        assert_eq!(
            (sum.status, sum.exit_code),
            (RunStatus::Failed, crate::exit::THRESHOLDS_FAILED)
        );
        assert_eq!(sum.thresholds[0].first_breach_s, Some(4.0));
        assert_eq!(sum.detect_from.unwrap().at_s, 4.0);
        assert_eq!(sum.requests.last().unwrap().name, "(all)");
        assert_eq!(sum.scenario.planned_duration_s, 15.0);
    }
}
