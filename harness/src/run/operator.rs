//! The run as the operator sees it from outside the terminal: the live endpoint (`serve`),
//! fed once a second, and the Prometheus remote-write output; and what a control request
//! means for this run's scenarios ([`decide`]). The run applies the effect and journals it
//! (`live.rs`), so every change of the load has one record with its time.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{oneshot, watch};

use crate::alerts::AlertState;
use crate::fault::journal::FaultRecord;
use crate::load::Shared;
use crate::metrics::RunMetrics;
use crate::prom::remote_write::{RemoteWriter, WriteStats};
use crate::scenario::{expand_env, Executor, Scenario, Vars};
use crate::serve::control::{Command, Request};
use crate::serve::exposition::{self, Extras};
use crate::serve::status::{self as st, ControlRecord, RunStatus};
use crate::serve::{Bound, Commands, Live};
use crate::threshold::Verdict;

/// The answer channel of one control request.
pub(super) type Reply = oneshot::Sender<Result<String, String>>;

/// How long the endpoint stays up after the report is written, so an open dashboard sees the
/// end and its link to the report (one poll is a second).
const LINGER: Duration = Duration::from_millis(2500);

pub(super) struct Operator {
    endpoint: Option<Endpoint>,
    remote: Option<Remote>,
    /// Every control request taken, in order.
    pub(super) journal: Vec<ControlRecord>,
    /// The remote-write output's URL could not be expanded (an unset variable).
    pub(super) remote_error: Option<String>,
}

struct Endpoint {
    live: Arc<Live>,
    commands: Commands,
    shutdown: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
}

struct Remote {
    writer: RemoteWriter,
    every: Duration,
    due: tokio::time::Instant,
    labels: Vec<(String, String)>,
}

/// What the run knows at a moment, for the endpoint and the output.
pub(super) struct View<'a> {
    pub scenario: &'a Scenario,
    pub run_id: &'a str,
    pub state: &'static str,
    pub elapsed_s: f64,
    pub gauge: &'static str,
    pub thresholds: &'a [Verdict],
    pub faults: &'a [FaultRecord],
    pub alerts: &'a [AlertState],
    pub shared: Option<&'a Shared>,
}

impl Operator {
    /// Starts serving `bound` (when `--listen` was given) and the remote-write output (when
    /// the scenario has one).
    pub(super) fn start(bound: Option<Bound>, s: &Scenario, vars: &Vars, run_id: &str) -> Self {
        let endpoint = bound.map(|b| {
            let (live, commands) = Live::new(b.token);
            let (shutdown, stop) = watch::channel(false);
            let server = tokio::spawn(crate::serve::run(b.listener, live.clone(), stop));
            Endpoint {
                live,
                commands,
                shutdown,
                server,
            }
        });
        let mut remote_error = None;
        let remote = s.outputs.prometheus_remote_write.as_ref().and_then(|o| {
            let url = expand_env(&o.url, vars)
                .map_err(|e| remote_error = Some(format!("outputs.prometheus_remote_write: {e}")))
                .ok()?;
            Some(Remote {
                writer: RemoteWriter::start(url, o.queue, Duration::from_secs(5)),
                every: o.interval.0,
                due: tokio::time::Instant::now(),
                labels: vec![("run_id".to_owned(), run_id.to_owned())],
            })
        });
        Operator {
            endpoint,
            remote,
            journal: Vec::new(),
            remote_error,
        }
    }

    /// The next control request; never resolves without an endpoint.
    pub(super) async fn next(&mut self) -> (Command, Reply) {
        match &mut self.endpoint {
            Some(e) => match e.commands.recv().await {
                Some(c) => c,
                None => std::future::pending().await,
            },
            None => std::future::pending().await,
        }
    }

    /// Publishes this second to the endpoint and, when due, to the remote-write receiver.
    pub(super) fn publish(&mut self, v: &View, m: &RunMetrics) {
        if self.endpoint.is_none() && self.remote.is_none() {
            return;
        }
        // Once a second, computed once: the probe series and the thresholds' state feed both
        // the exposition and the status.
        let series = v.scenario.probe_series();
        let ths = thresholds(v, &series);
        let extras = self.extras(v, m, &series, &ths);
        let families = exposition::families(m, &extras);
        if let Some(r) = &mut self.remote {
            let now = tokio::time::Instant::now();
            if now >= r.due {
                // A little early: the run's ticks are a second apart but this one came a
                // moment after its tick, and the next push must not wait for a second tick.
                r.due = now + r.every.mul_f64(0.9);
                let ts = unix_ms(SystemTime::now());
                r.writer
                    .push(exposition::timeseries(&families, ts, &r.labels));
            }
        }
        let Some(e) = &self.endpoint else { return };
        let status = status(v, m, &self.journal, ths);
        let text = exposition::text(&families);
        let probes = serde_json::to_string(&series).expect("names serialise");
        e.live.publish(|p| {
            p.status = Arc::new(serde_json::to_string(&status).expect("status serialises"));
            p.metrics = Arc::new(text);
            p.probe_series = Arc::new(probes);
            let from = p.rows.last().map_or(0, |(s, _)| s + 1);
            for w in m.windows.iter().filter(|w| w.second >= from) {
                p.rows.push((w.second, Arc::new(st::row(w))));
            }
        });
    }

    fn extras(
        &self,
        v: &View,
        m: &RunMetrics,
        series: &[String],
        ths: &[st::ThresholdState],
    ) -> Extras {
        let last = m.windows.last();
        let probes = series.iter();
        let probes = probes.filter_map(|s| Some((s.clone(), *last?.gauges.get(s)?)));
        let stats = self.remote.as_ref().map(|r| r.writer.stats());
        Extras {
            probes: probes.collect(),
            thresholds: ths
                .iter()
                .map(|t| (t.metric.clone(), t.expr.clone(), t.ok))
                .collect(),
            faults_active: v
                .faults
                .iter()
                .filter(|f| f.active())
                .map(|f| (f.kind.clone(), f.target.clone()))
                .collect(),
            alerts_firing: v
                .alerts
                .iter()
                .filter(|a| a.fired_at.is_some() && a.resolved_at.is_none())
                .map(|a| (a.name.clone(), a.source().to_owned()))
                .collect(),
            control_actions: self.journal.len() as u64,
            remote_write_dropped: stats.as_ref().map_or(0, |s| s.dropped),
            remote_write_failed: stats.as_ref().map_or(0, |s| s.failed),
        }
    }

    /// The run is over: the final numbers go out (the last push carries the whole run's
    /// counters) and the remote-write output closes, so its counts are in the summary.
    pub(super) async fn flush(&mut self, v: &View<'_>, m: &RunMetrics) -> Option<WriteStats> {
        if let Some(r) = &mut self.remote {
            r.due = tokio::time::Instant::now();
        }
        self.publish(v, m);
        match self.remote.take() {
            Some(r) => Some(r.writer.close(Duration::from_secs(5)).await),
            None => None,
        }
    }

    /// The report is written: the endpoint shows the end and the report for a moment, then
    /// stops.
    pub(super) async fn close(
        mut self,
        v: &View<'_>,
        m: &RunMetrics,
        report: Option<PathBuf>,
        outcome: &str,
    ) {
        let Some(e) = self.endpoint.take() else {
            return;
        };
        let ths = thresholds(v, &v.scenario.probe_series());
        let mut s = status(v, m, &self.journal, ths);
        s.report = report.as_ref().map(|_| "/report.html".to_owned());
        s.outcome = Some(outcome.to_owned());
        e.live.publish(|p| {
            p.status = Arc::new(serde_json::to_string(&s).expect("status serialises"));
            p.report = report;
        });
        tokio::time::sleep(LINGER).await;
        let _ = e.shutdown.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(2), e.server).await;
    }
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `/api/run` for this moment.
fn status(
    v: &View,
    m: &RunMetrics,
    journal: &[ControlRecord],
    thresholds: Vec<st::ThresholdState>,
) -> RunStatus {
    let s = v.scenario;
    let (stage, stages) = super::summary::stage_at(s, v.elapsed_s);
    let last = m.windows.last();
    let requests = m.all.count;
    RunStatus {
        run_id: v.run_id.to_owned(),
        scenario: s.name.clone(),
        state: v.state,
        elapsed_s: v.elapsed_s,
        planned_s: s.total_duration().as_secs_f64(),
        stage: st::Stage {
            index: stage,
            name: format!("{}/{}", stage.min(stages), stages),
        },
        rates: st::Rates {
            requests_per_s: last.map_or(0.0, |w| w.requests as f64),
            failed_per_s: last.map_or(0.0, |w| w.failed as f64),
            failed_rate: match requests {
                0 => 0.0,
                n => m.all.failed as f64 / n as f64,
            },
            requests,
            failed: m.all.failed,
        },
        load: st::Load {
            gauge: v.gauge,
            value: last
                .and_then(|w| w.gauges.get(v.gauge))
                .copied()
                .unwrap_or(0.0),
        },
        scenarios: scenarios(s, v.shared),
        thresholds,
        faults: faults(v.faults),
        alerts: v.alerts.iter().map(alert_view).collect(),
        control: journal.to_vec(),
        report: None,
        outcome: None,
    }
}

fn scenarios(s: &Scenario, shared: Option<&Shared>) -> Vec<st::ScenarioState> {
    s.workloads
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let set = shared.map(|sh| sh.control(i).get()).unwrap_or_default();
            let gauge = |g| shared.map_or(0.0, |sh| sh.gauge_of(i, g));
            let kind = control_kind(&w.executor);
            let mut over = BTreeMap::new();
            if let Some(r) = set.rate {
                over.insert("rate", r);
            }
            if let Some(n) = set.vus {
                over.insert("vus", f64::from(n));
            }
            st::ScenarioState {
                name: w.name.clone(),
                executor: w.kind.as_str().to_owned(),
                kind,
                target_rate: (kind == "rate").then(|| gauge("target_rate")),
                vus: (kind != "rate").then(|| gauge("vus")),
                max_vus: max_vus(&w.executor),
                paused: set.paused,
                override_: (!over.is_empty()).then_some(over),
            }
        })
        .collect()
}

fn control_kind(e: &Executor) -> &'static str {
    match e {
        Executor::ArrivalRate { .. } => "rate",
        Executor::Vus { .. } => "vus",
        _ => "iterations",
    }
}

/// The most VUs a scenario has: its stages' highest target (k6's maxVUs for a VU executor).
fn max_vus(e: &Executor) -> Option<u32> {
    match e {
        Executor::Vus {
            start_vus, stages, ..
        } => Some(stages.iter().map(|s| s.target).fold(*start_vus, u32::max)),
        Executor::SharedIterations { vus, .. } | Executor::PerVuIterations { vus, .. } => {
            Some(*vus)
        }
        Executor::ArrivalRate { .. } => None,
    }
}

/// Each threshold with its state now, and where a chart draws it: `p(N)` of the request
/// duration on the latency chart, a probe series' bound on its own chart.
fn thresholds(v: &View, probes: &[String]) -> Vec<st::ThresholdState> {
    v.thresholds
        .iter()
        .map(|t| {
            let bound = crate::threshold::split_op(&t.threshold)
                .and_then(|(agg, _, rhs)| Some((agg.trim(), rhs.trim().parse::<f64>().ok()?)));
            let line = bound.and_then(|(agg, value)| {
                let series = match (t.metric.as_str(), agg) {
                    ("http_req_duration", "p(50)" | "med") => "p50_ms".to_owned(),
                    ("http_req_duration", "p(95)") => "p95_ms".to_owned(),
                    ("http_req_duration", "p(99)") => "p99_ms".to_owned(),
                    (m, _) if probes.iter().any(|p| p == m) => m.to_owned(),
                    _ => return None,
                };
                Some(st::Line { series, value })
            });
            st::ThresholdState {
                metric: t.metric.clone(),
                expr: t.threshold.clone(),
                ok: t.observed.map(|_| t.passed),
                value: t.observed,
                line,
            }
        })
        .collect()
}

fn faults(journal: &[FaultRecord]) -> Vec<st::FaultState> {
    journal
        .iter()
        .enumerate()
        .map(|(i, f)| st::FaultState {
            id: i + 1,
            kind: f.kind.clone(),
            target: f.target.clone(),
            detail: f.value.clone(),
            applied_s: f.applied_s,
            rolled_back_s: f.rolled_back_s,
        })
        .collect()
}

fn alert_view(a: &AlertState) -> st::AlertView {
    let state = match (a.pending_at, a.fired_at, a.resolved_at) {
        (_, Some(_), Some(_)) => "resolved",
        (_, Some(_), None) => "firing",
        (Some(_), None, _) => "pending",
        _ => "inactive",
    };
    st::AlertView {
        name: a.name.clone(),
        source: a.source().to_owned(),
        severity: a.severity.clone(),
        state,
        pending_s: a.pending_at,
        fired_s: a.fired_at,
        resolved_s: a.resolved_at,
    }
}

/// What a control request does to this run.
pub(super) enum Effect {
    /// Applied to the load; the words say what.
    Done(String),
    /// Refused, with the reason (a 400).
    Refused(String),
    Rollback,
    Abort,
}

/// Applies rate, VU and pause requests to the scenarios' controls; rollback and abort are the
/// run's to carry out.
/// `distributed`: the workers drive the load, and these controls do not reach them, so rate,
/// VU and pause requests are refused rather than answered as if applied.
pub(super) fn decide(
    req: &Request,
    s: &Scenario,
    shared: &Shared,
    allow_huge: bool,
    distributed: bool,
) -> Effect {
    let load_control = !matches!(req, Request::Rollback | Request::Abort);
    if distributed && load_control {
        return Effect::Refused(
            "the workers drive this run's load: rate, VU and pause controls do not reach them \
             (rollback and abort do)"
                .to_owned(),
        );
    }
    let pick = |name: &Option<String>| -> Result<Vec<usize>, String> {
        let names = || {
            s.workloads
                .iter()
                .map(|w| w.name.as_str())
                .collect::<Vec<_>>()
        };
        match name {
            Some(n) => match s.workloads.iter().position(|w| &w.name == n) {
                Some(i) => Ok(vec![i]),
                None => Err(format!(
                    "no scenario `{n}` (scenarios: {})",
                    names().join(", ")
                )),
            },
            None => Ok((0..s.workloads.len()).collect()),
        }
    };
    let one = |name: &Option<String>| match pick(name)?[..] {
        [i] => Ok(i),
        _ => Err("name the scenario: this run has several".to_owned()),
    };
    let result = match req {
        Request::Rate { scenario, rate } => {
            one(scenario).and_then(|i| set_rate(s, shared, i, *rate, allow_huge))
        }
        Request::Vus { scenario, vus } => one(scenario).and_then(|i| set_vus(s, shared, i, *vus)),
        Request::Pause { scenario } | Request::Resume { scenario } => pick(scenario).map(|all| {
            let pause = matches!(req, Request::Pause { .. });
            for &i in &all {
                shared.control(i).set_paused(pause);
            }
            let names: Vec<&str> = all.iter().map(|&i| s.workloads[i].name.as_str()).collect();
            format!(
                "{} {}",
                if pause { "paused" } else { "resumed" },
                names.join(", ")
            )
        }),
        Request::Rollback => return Effect::Rollback,
        Request::Abort => return Effect::Abort,
    };
    match result {
        Ok(done) => Effect::Done(done),
        Err(why) => Effect::Refused(why),
    }
}

fn set_rate(s: &Scenario, sh: &Shared, i: usize, rate: f64, huge: bool) -> Result<String, String> {
    let w = &s.workloads[i];
    if control_kind(&w.executor) != "rate" {
        return Err(format!(
            "scenario `{}` runs {}: set its VU count (vus), not a rate",
            w.name,
            w.kind.as_str()
        ));
    }
    if rate > s.limits.max_rate as f64 && !huge {
        return Err(format!(
            "rate {rate}/s is over the scenario's [limits] max_rate ({}); raise it there or run with --allow-huge",
            s.limits.max_rate
        ));
    }
    sh.control(i).set_rate(rate);
    Ok(format!("scenario `{}` now at {rate} arrivals/s", w.name))
}

fn set_vus(s: &Scenario, sh: &Shared, i: usize, vus: u32) -> Result<String, String> {
    let w = &s.workloads[i];
    let Some(max) = max_vus(&w.executor) else {
        return Err(format!(
            "scenario `{}` runs {}: set its arrival rate (rate), not VUs",
            w.name,
            w.kind.as_str()
        ));
    };
    if vus > max {
        return Err(format!(
            "scenario `{}` has at most {max} VUs (its stages' highest target, k6's maxVUs); asked {vus}",
            w.name
        ));
    }
    sh.control(i).set_vus(vus);
    Ok(format!("scenario `{}` now at {vus} VUs", w.name))
}
