//! One run, start to verdict: load the scenario, check the target answers, start probes and the
//! executor, print progress and check abort-on-fail thresholds each second, stop on the end of
//! the stages, an abort or an interrupt, run SQL checks, judge, and always write the report.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

use crate::alerts::{AlertState, Condition};
use crate::exit;
use crate::fault::session::{Actuators, FaultSession};
use crate::load::{self, client::HttpClient, plan::LoadPlan, LoadCtx};
use crate::metrics::{Recorder, RunMetrics};
use crate::plugin::fault::{FaultPlugin, TickState};
use crate::plugin::{CallStats, Limits, PluginError};
use crate::probe::{self, kafka::KafkaLagProbe, prometheus::PrometheusProbe, ProbeHealth};
use crate::report::{self, summary, Summary};
use crate::scenario::{Scenario, ScenarioError};
use crate::verdict::Judges;

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub scenario: PathBuf,
    pub sets: Vec<String>,
    pub target: Option<String>,
    pub out_dir: PathBuf,
    pub time_scale: f64,
    /// Print the progress line each second on stderr.
    pub progress: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("--time-scale must be a positive number, got {0}")]
    TimeScale(f64),
    #[error("target.url: {0} (or pass --target URL)")]
    Target(String),
    #[error("{0}")]
    Plan(#[from] load::plan::PlanError),
    #[error(transparent)]
    Report(#[from] report::ReportError),
}

impl RunError {
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Scenario(_)
            | RunError::TimeScale(_)
            | RunError::Plan(_)
            | RunError::Target(_) => exit::USAGE,
            RunError::Report(_) => exit::RUNTIME,
        }
    }
}

pub struct RunOutcome {
    pub summary: Summary,
    pub dir: PathBuf,
}

/// Loads and validates a scenario with the run's overrides applied (what `validate` checks).
pub fn prepare(opts: &RunOptions) -> Result<Scenario, RunError> {
    if !(opts.time_scale > 0.0 && opts.time_scale.is_finite()) {
        return Err(RunError::TimeScale(opts.time_scale));
    }
    let mut s = Scenario::load(&opts.scenario, &opts.sets)?;
    if opts.time_scale != 1.0 {
        s.scale_time(opts.time_scale);
    }
    Ok(s)
}

fn run_id(name: &str) -> String {
    let now = SystemTime::now();
    let stamp = summary::file_stamp(now);
    let slug: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("{slug}-{stamp}-{:04x}", fastrand::u16(..))
}

/// Runs a scenario until done, aborted by a threshold, or `interrupt` resolves (Ctrl-C or
/// SIGTERM). Whatever ends the run, every fault applied is rolled back and a report is written.
pub async fn run(
    opts: &RunOptions,
    interrupt: impl Future<Output = ()>,
) -> Result<RunOutcome, RunError> {
    let s = Arc::new(prepare(opts)?);
    let target = match &opts.target {
        Some(t) => t.clone(),
        None => crate::scenario::expand_env(&s.target.url).map_err(RunError::Target)?,
    };
    let target = target.trim_end_matches('/').to_owned();
    let plan = Arc::new(LoadPlan::new(&s, &target)?);
    let id = run_id(&s.name);
    let dir = opts.out_dir.join(&id);
    let started_at = summary::rfc3339(SystemTime::now());
    let recorder = Arc::new(Recorder::new(&plan.names()));
    let client = HttpClient::new();
    let mut extras = Extras::default();
    // A run that ends before any load is sent: an error summary, the report written all the same.
    let stopped_early = |reason: String, extras: Extras| -> Result<RunOutcome, RunError> {
        let summary = build_summary(
            &s,
            opts,
            &id,
            &target,
            &started_at,
            &recorder.finish(),
            Status::Error(reason),
            Vec::new(),
            vec![],
            vec![],
            None,
            vec![],
            extras,
        );
        report::write_all(&dir, &summary, &[])?;
        Ok(RunOutcome {
            summary,
            dir: dir.clone(),
        })
    };

    // Plugins first: a missing, broken or wrong-ABI plugin is a runtime error before any load.
    let (mut judges, mut fault_plugins) = match start_plugins(&s, opts) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return stopped_early(e.to_string(), extras);
        }
    };
    extras.evaluator = judges.evaluator.clone();

    // A dead target is a runtime error, reported before any load is sent.
    if let Err(e) = client.reachable(&target, Duration::from_secs(5)).await {
        return stopped_early(format!("target {target} does not answer: {e}"), extras);
    }

    let (stop_load_tx, stop_load) = watch::channel(false);
    let (stop_probes_tx, stop_probes) = watch::channel(false);
    let mut probe_tasks = Vec::new();
    if let Some(p) = &s.probes.prometheus {
        let probe = PrometheusProbe {
            url: p.url.replace("{target}", &target),
            series: p.series.clone(),
            interval: p.interval.0,
        };
        probe_tasks.push(tokio::spawn(
            probe.run(recorder.clone(), stop_probes.clone()),
        ));
    }
    let mut lag_task = None;
    let mut early_probe_errors = Vec::new();
    if let Some(k) = &s.probes.kafka {
        let made = crate::scenario::expand_env(&k.bootstrap).and_then(|b| {
            KafkaLagProbe::new(&b, &k.group, &k.topic, k.interval.0).map_err(|e| e.to_string())
        });
        match made {
            Ok(p) => {
                lag_task = Some(tokio::spawn(p.run(
                    recorder.clone(),
                    stop_probes.clone(),
                    k.drain_timeout.0,
                )))
            }
            Err(e) => {
                let mut h = ProbeHealth::new(&format!("kafka lag {}", k.topic));
                h.failed(e.to_string());
                early_probe_errors.push(h);
            }
        }
    }

    let sql_before = probe::sql::baseline(&s.sql_checks).await;
    let executor = load::executor_for(&s);
    let gauge = executor.gauge();
    let ctx = LoadCtx {
        plan: plan.clone(),
        recorder: recorder.clone(),
        client: client.clone(),
        stop: stop_load,
    };
    let planned = s.executor.total_duration().as_secs_f64();
    let load_fut = executor.run(ctx);
    tokio::pin!(load_fut);
    tokio::pin!(interrupt);

    let mut alerts: Vec<(Condition, AlertState)> = s
        .alerts
        .iter()
        .map(|a| {
            let c = Condition::parse(a.expr.get_ref()).expect("validated at load");
            (
                c,
                AlertState::new(
                    &a.name,
                    a.expr.get_ref(),
                    &a.severity,
                    a.for_.0.as_secs_f64(),
                ),
            )
        })
        .collect();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut status: Option<Status> = None;
    // First second each threshold was seen failing live (index = position in the verdicts).
    let mut first_breach: Vec<Option<f64>> = Vec::new();
    let load_started = Instant::now();
    let mut faults = FaultSession::new(actuators(&s, &target), plan.clone(), load_started);
    let load_result = loop {
        tokio::select! {
            r = &mut load_fut => break r,
            _ = tick.tick() => {
                let snapshot = recorder.snapshot();
                let last = snapshot.windows.last();
                let t = load_started.elapsed().as_secs_f64();
                if opts.progress {
                    eprintln!("{}", report::progress::line(t, planned, stage_at(&s, t), gauge, last, snapshot.all.count, snapshot.all.failed));
                }
                observe_alerts(&mut alerts, &snapshot);
                if status.is_some() {
                    continue;
                }
                let now = snapshot.elapsed.as_secs_f64();
                let state = tick_state(&s, &snapshot, t);
                if let Err(e) = tick_faults(&mut fault_plugins, &mut faults, &state).await {
                    status = Some(Status::Error(e));
                }
                if status.is_none() {
                    match judge_live(&mut judges, &s, &snapshot, now, &mut first_breach) {
                        Ok(None) => {}
                        Ok(Some(reason)) => {
                            eprintln!("aborting: {reason}");
                            status = Some(Status::Aborted(reason));
                        }
                        Err(e) => status = Some(Status::Error(e)),
                    }
                }
                if let Some(Status::Error(e)) = &status {
                    eprintln!("error: {e}; stopping the load and rolling faults back");
                }
                if status.is_some() {
                    let _ = stop_load_tx.send(true);
                }
            }
            _ = &mut interrupt, if status.is_none() => {
                eprintln!("interrupted: stopping the load, rolling faults back and writing a partial report…");
                status = Some(Status::Interrupted);
                let _ = stop_load_tx.send(true);
            }
        }
    };
    recorder.end_load();
    // Faults end with the load, before the drain is watched and whatever the outcome.
    let stuck = faults.rollback_all().await;
    let status = match (status, load_result) {
        (Some(st), _) => st,
        (None, Err(load::LoadError::Interrupted)) => Status::Interrupted,
        (None, Err(e)) => Status::Error(e.to_string()),
        (None, Ok(())) => Status::Done,
    };
    let _ = stop_probes_tx.send(true);
    let mut probes: Vec<ProbeHealth> = early_probe_errors;
    for t in probe_tasks {
        if let Ok(h) = t.await {
            probes.push(h);
        }
    }
    let mut lag = None;
    if let Some(t) = lag_task {
        // After an interrupt nobody wants to wait for a drain.
        if matches!(status, Status::Interrupted) {
            t.abort();
        } else if let Ok((h, l)) = t.await {
            probes.push(h);
            lag = Some(l);
        }
    }
    let metrics = recorder.finish();
    observe_alerts(&mut alerts, &metrics);
    let mut status = status;
    if stuck > 0 && !matches!(status, Status::Error(_)) {
        status = Status::Error(format!(
            "{stuck} fault(s) could not be rolled back; see the fault table"
        ));
    }
    let thresholds = match &status {
        Status::Error(_) => Vec::new(),
        _ => match judges.evaluate(&crate::plugin::summary::from_run(&s, &metrics)) {
            Ok(v) => v,
            Err(e) => {
                status = Status::Error(e.to_string());
                Vec::new()
            }
        },
    };
    let sql = if matches!(status, Status::Interrupted) {
        Vec::new()
    } else {
        probe::sql::run_checks(&s.sql_checks, &sql_before, &metrics).await
    };
    extras.faults = faults.journal();
    extras.plugins = judges
        .stats()
        .into_iter()
        .chain(fault_plugins.iter().map(|p| (p.name().to_owned(), p.stats)))
        .collect();
    let mut summary = build_summary(
        &s,
        opts,
        &id,
        &target,
        &started_at,
        &metrics,
        status,
        thresholds,
        sql,
        probes,
        lag,
        alerts.into_iter().map(|(_, a)| a).collect(),
        extras,
    );
    for (v, first) in summary.thresholds.iter_mut().zip(&first_breach) {
        v.first_breach_s = *first;
    }
    // Time to detect: from the first fault injected, else from the first threshold breach.
    summary.detect_from = summary
        .faults
        .iter()
        .map(|f| summary::DetectFrom {
            event: format!("fault injected: {} {}", f.kind, f.target),
            at_s: f.applied_s,
        })
        .reduce(|a, b| if b.at_s < a.at_s { b } else { a })
        .or_else(|| {
            summary
                .thresholds
                .iter()
                .filter_map(|v| v.first_breach_s.map(|t| (t, v)))
                .reduce(|a, b| if b.0 < a.0 { b } else { a })
                .map(|(t, v)| summary::DetectFrom {
                    event: format!("first threshold breach: {} {}", v.metric, v.threshold),
                    at_s: t,
                })
        });
    let reference = summary.detect_from.as_ref().map(|d| d.at_s);
    for a in &mut summary.alerts {
        a.time_to_detect_s = match (a.fired_at, reference) {
            (Some(f), Some(r)) => Some((f - r).max(0.0)),
            _ => None,
        };
    }
    report::write_all(&dir, &summary, &metrics.windows)?;
    Ok(RunOutcome { summary, dir })
}

/// Report material beyond the measurements.
#[derive(Default)]
struct Extras {
    evaluator: String,
    faults: Vec<crate::fault::journal::FaultRecord>,
    plugins: Vec<(String, CallStats)>,
}

/// Loads every plugin the scenario names and passes each its config (what `validate` checks
/// too): the k6-thresholds evaluator, `[[threshold_plugins]]` and `[[faults]]`.
pub fn start_plugins(
    s: &Scenario,
    opts: &RunOptions,
) -> Result<(Judges, Vec<FaultPlugin>), PluginError> {
    let limits = Limits::default();
    let judges = Judges::start(s, &opts.scenario, opts.time_scale, limits)?;
    let mut faults = Vec::new();
    for spec in &s.faults {
        faults.push(FaultPlugin::start(
            &crate::verdict::resolve(&spec.plugin, &opts.scenario),
            &crate::verdict::config_json(spec, opts.time_scale),
            limits,
        )?);
    }
    Ok((judges, faults))
}

/// `{target}` and `{env:NAME}` expanded; an unset variable leaves that actuator absent (a
/// fault needing it then fails with a message naming the setting).
fn actuators(s: &Scenario, target: &str) -> Actuators {
    let expand = |v: &str| {
        crate::scenario::expand_env(&v.replace("{target}", target))
            .ok()
            .filter(|x| !x.is_empty())
    };
    Actuators {
        app_faults: expand(&s.actuators.app_faults),
        toxiproxy: expand(&s.actuators.toxiproxy),
    }
}

/// This second's threshold judgement: records first breaches; Some(reason) to abort.
fn judge_live(
    judges: &mut Judges,
    s: &Scenario,
    snapshot: &RunMetrics,
    now: f64,
    first_breach: &mut Vec<Option<f64>>,
) -> Result<Option<String>, String> {
    let sum = crate::plugin::summary::from_run(s, snapshot);
    let live = judges.evaluate(&sum).map_err(|e| e.to_string())?;
    first_breach.resize(live.len(), None);
    for (slot, v) in first_breach.iter_mut().zip(&live) {
        if !v.passed && v.observed.is_some() && slot.is_none() {
            *slot = Some(now);
        }
    }
    let abort = judges.check(&sum).map_err(|e| e.to_string())?;
    Ok(abort.first().map(|v| {
        format!(
            "threshold {} {} crossed (observed {})",
            v.metric,
            v.threshold,
            v.observed
                .map(crate::threshold::fmt_num)
                .unwrap_or_else(|| "no data".into())
        )
    }))
}

fn tick_state(s: &Scenario, m: &RunMetrics, t: f64) -> TickState {
    let gauges = m
        .windows
        .last()
        .map(|w| w.gauges.iter().map(|(k, v)| (k.clone(), *v)).collect())
        .unwrap_or_default();
    TickState {
        elapsed_s: t,
        stage: stage_at(s, t).0 as u32,
        requests: m.all.count,
        failed: m.all.failed,
        gauges,
    }
}

async fn tick_faults(
    plugins: &mut [FaultPlugin],
    session: &mut FaultSession,
    state: &TickState,
) -> Result<(), String> {
    for p in plugins.iter_mut() {
        let actions = p.on_tick(state).map_err(|e| e.to_string())?;
        for a in actions {
            session
                .apply(p.name(), a)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

enum Status {
    Done,
    Aborted(String),
    Interrupted,
    Error(String),
}

/// (1-based stage at `t` seconds, number of stages); past the end: (n + 1, n).
fn stage_at(s: &Scenario, t: f64) -> (usize, usize) {
    let stages = s.executor.stages();
    let mut end = 0.0;
    for (i, st) in stages.iter().enumerate() {
        end += st.duration.0.as_secs_f64();
        if t < end {
            return (i + 1, stages.len());
        }
    }
    (stages.len() + 1, stages.len())
}

fn observe_alerts(alerts: &mut [(Condition, AlertState)], m: &RunMetrics) {
    let Some(w) = m.windows.last() else { return };
    let t = w.second as f64 + 1.0;
    for (c, a) in alerts.iter_mut() {
        let v = match c.series.as_str() {
            "http_reqs" => Some(w.requests as f64),
            "http_req_failed" => (w.requests > 0).then(|| w.failed as f64 / w.requests as f64),
            "http_req_duration" => w.p95_ms,
            "dropped_iterations" => Some(w.dropped as f64),
            other => w.gauges.get(other).copied(),
        };
        a.observe(c, t, v);
    }
}

#[allow(clippy::too_many_arguments)]
fn build_summary(
    s: &Scenario,
    opts: &RunOptions,
    id: &str,
    target: &str,
    started_at: &str,
    m: &RunMetrics,
    status: Status,
    thresholds: Vec<crate::threshold::Verdict>,
    sql: Vec<probe::sql::SqlResult>,
    probes: Vec<ProbeHealth>,
    lag: Option<probe::kafka::LagSummary>,
    alerts: Vec<AlertState>,
    extras: Extras,
) -> Summary {
    let secs = m.elapsed.as_secs_f64();
    let gates_ok = thresholds.iter().all(|v| v.passed) && sql.iter().all(|c| c.passed);
    let (status_text, code, reason) = match status {
        Status::Interrupted => (
            "interrupted",
            exit::INTERRUPTED,
            Some("interrupted by signal; partial results".to_owned()),
        ),
        Status::Error(e) => ("error", exit::RUNTIME, Some(e)),
        Status::Aborted(r) => ("aborted", exit::THRESHOLDS_FAILED, Some(r)),
        Status::Done if gates_ok => ("passed", exit::PASS, None),
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
                .collect();
            (
                "failed",
                exit::THRESHOLDS_FAILED,
                Some(format!("failed: {}", failed.join(", "))),
            )
        }
    };
    let mut requests: Vec<_> = plan_order(s)
        .iter()
        .filter_map(|n| m.per_name.get(n).map(|t| summary::request_row(n, t, secs)))
        .collect();
    requests.push(summary::request_row("(all)", &m.all, secs));
    Summary {
        schema: summary::SCHEMA.to_owned(),
        run_id: id.to_owned(),
        scenario: summary::ScenarioInfo {
            name: s.name.clone(),
            file: opts.scenario.display().to_string(),
            executor: s.executor.kind().to_owned(),
            planned_duration_s: s.executor.total_duration().as_secs_f64(),
            time_scale: opts.time_scale,
        },
        target: target.to_owned(),
        started_at: started_at.to_owned(),
        elapsed_s: secs,
        status: status_text.to_owned(),
        exit_code: code,
        reason,
        totals: summary::totals_row(m),
        requests,
        thresholds,
        sql_checks: sql,
        probes,
        kafka_lag: lag,
        series_peaks: summary::series_peaks(m),
        alerts,
        detect_from: None,
        threshold_evaluator: extras.evaluator,
        faults: extras.faults,
        plugins: extras
            .plugins
            .into_iter()
            .map(|(plugin, c)| summary::PluginCalls {
                plugin,
                calls: c.calls,
                total_us: c.total_us,
                mean_us: if c.calls > 0 {
                    c.total_us / c.calls as f64
                } else {
                    0.0
                },
                max_us: c.max_us,
            })
            .collect(),
    }
}

fn plan_order(s: &Scenario) -> Vec<String> {
    s.requests.iter().map(|r| r.name.clone()).collect()
}

/// Where `harness run` writes: `<out>/<run-id>/`.
pub fn describe(dir: &Path) -> String {
    format!(
        "report: {}/ (report.html, report.md, summary.json, timeseries.csv, junit.xml)",
        dir.display()
    )
}
