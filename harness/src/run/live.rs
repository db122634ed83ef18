//! A run while it goes: [`Run`] owns everything that changes during the load — the recorder
//! (through `Base`), the judges, the fault plugins and their session, the alert rules, the first
//! breaches, the probes — and moves through `start`, `drive` (a `tick` each second) and
//! `finish`.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::operator::{self, Effect, Operator, Reply, View};
use super::probes::Probes;
use super::prom_alerts::PromAlerts;
use super::steady::Watch;
use super::summary::{self, Findings, Status};
use super::{Base, RunError, RunOutcome};
use crate::alerts::{AlertState, Condition};
use crate::event::{Event, Observer, Progress};
use crate::fault::process::ProcessTarget;
use crate::fault::session::{Actuators, FaultError, FaultSession};
use crate::load::{self, LoadCtx, Shared};
use crate::metrics::RunMetrics;
use crate::plugin::fault::{FaultPlugin, TickState};
use crate::plugin::PluginError;
use crate::probe::sql::{self, Baseline};
use crate::scenario::{expand_env, Scenario, SeriesLabel, Vars};
use crate::serve::control::Command;
use crate::serve::status::ControlRecord;
use crate::serve::Bound;
use crate::threshold::Verdict;
use crate::verdict::Judges;

/// Why a second of the run cannot go on: a plugin failed, or a fault could not be applied.
#[derive(Debug, thiserror::Error)]
pub(super) enum LiveError {
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error(transparent)]
    Fault(#[from] FaultError),
    /// The steady-state hypothesis did not hold when the first fault was due: none injected.
    #[error(
        "steady-state hypothesis does not hold before the first fault, so none was injected: {0}"
    )]
    NotSteady(String),
}

/// How long an interrupted run waits for requests in flight before it rolls back and reports
/// (k6's default gracefulStop); a second interrupt (`RunOptions::hurry`) cuts it short.
const INTERRUPT_DRAIN: Duration = Duration::from_secs(30);

pub(super) struct Run<'a> {
    base: Base<'a>,
    judges: Judges,
    fault_plugins: Vec<FaultPlugin>,
    /// Carries out the fault plugins' actions, journals and rolls them back.
    faults: FaultSession,
    /// Each rule with its state (fired, resolved).
    alerts: Vec<(Condition, AlertState)>,
    /// First second each threshold was seen failing live (index = position in the verdicts).
    first_breach: Vec<Option<f64>>,
    probes: Probes,
    /// The `delta` SQL checks' values before the load.
    sql_before: Baseline,
    /// The series the progress line shows.
    progress: Vec<SeriesLabel>,
    /// The steady-state hypothesis, checked every second.
    steady: Option<Watch>,
    /// What the scenarios share while the load runs (setup's variables, data exhaustion).
    shared: Option<std::sync::Arc<Shared>>,
    /// `setup` failed (or was interrupted): no load, and no teardown either.
    setup_failed: bool,
    /// The live endpoint and the remote-write output, with the control journal.
    operator: Operator,
    /// The team's Prometheus rules, as their Prometheus evaluates them.
    prom_alerts: Option<PromAlerts>,
    /// The thresholds as judged in the last second (the live endpoint shows them).
    live_verdicts: Vec<Verdict>,
    /// The operator rolled every fault back: the fault plugins inject nothing more.
    faults_halted: bool,
    /// Coordinating a distributed run: the workers, ready at the barrier.
    hub: Option<super::hub::Hub>,
    /// A segment's or worker's interval log, cut every second.
    windows: Option<super::window_log::WindowLog>,
    observer: &'a mut dyn Observer,
}

impl<'a> Run<'a> {
    /// Starts the probes and takes the SQL baselines; nothing is sent to the target yet.
    pub(super) async fn start(
        base: Base<'a>,
        judges: Judges,
        fault_plugins: Vec<FaultPlugin>,
        bound: Option<Bound>,
        hub: Option<super::hub::Hub>,
        observer: &'a mut dyn Observer,
    ) -> Run<'a> {
        let s = &base.scenario;
        let vars = &base.opts.vars;
        let operator = Operator::start(bound, s, vars, &base.run_id);
        let prom_alerts = prometheus_alerts(s, vars, &base.recorder);
        let probes = Probes::start(s, &base.target, vars, &base.recorder);
        let sql_before = sql::baseline(&s.sql_checks, vars).await;
        let faults = FaultSession::new(actuators(s, &base.target, vars), base.plan.clone())
            .with_ledger(&base.dir);
        let alerts = s
            .alerts
            .iter()
            .map(|a| {
                let c = Condition::parse(a.expr.get_ref()).expect("validated at load");
                let for_s = a.for_.0.as_secs_f64();
                (
                    c,
                    AlertState::new(&a.name, a.expr.get_ref(), &a.severity, for_s),
                )
            })
            .collect();
        let progress = s.progress_series();
        let steady = s.hypothesis.as_ref().map(|h| {
            let probes: Vec<String> = h.probes.iter().map(|p| p.get_ref().clone()).collect();
            Watch::new(&probes, h.timeout.0.as_secs_f64())
        });
        let windows = super::window_log::WindowLog::for_run(&base);
        Run {
            steady,
            base,
            judges,
            fault_plugins,
            faults,
            alerts,
            first_breach: Vec::new(),
            probes,
            sql_before,
            progress,
            shared: None,
            setup_failed: false,
            operator,
            prom_alerts,
            live_verdicts: Vec::new(),
            faults_halted: false,
            windows,
            hub,
            observer,
        }
    }

    /// Drives the load to its end, an abort, an error or `interrupt`; rolls every fault back
    /// before returning, whatever ended it.
    pub(super) async fn drive(&mut self, interrupt: impl Future<Output = ()>) -> Status {
        let gauge = load::gauge_name(&self.base.plan);
        let (stop_tx, stop) = watch::channel(false);
        let shared = std::sync::Arc::new(Shared::new(self.base.plan.workloads.len()));
        self.shared = Some(shared.clone());
        tokio::pin!(interrupt);
        if let Some(st) = self.setup(&stop, &shared, &mut interrupt).await {
            return st;
        }
        let load_fut: std::pin::Pin<Box<dyn Future<Output = _> + Send>> = match self.hub.take() {
            // Coordinating: the workers drive the load; their windows fill the recorder.
            Some(hub) => {
                let vars = shared.setup_vars();
                Box::pin(hub.drive(self.base.recorder.clone(), stop, vars))
            }
            None => Box::pin(load::run_all(
                self.base.plan.clone(),
                self.base.recorder.clone(),
                self.base.client.clone(),
                stop,
                shared.clone(),
            )),
        };
        tokio::pin!(load_fut);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        let started = Instant::now();
        // The journal's times are on the recorder's clock, as the windows, alerts and charts
        // are, so a fault window and the seconds it shaped line up (the recorder starts before
        // the preflight; a plugin's own schedule still counts from the load's start).
        self.faults.start_clock(self.base.recorder.started());
        let mut status: Option<Status> = None;
        // After an interrupt, requests in flight get this long to finish; then they are left
        // behind, so a stop never waits for a slow target's timeouts.
        let mut give_up: Option<tokio::time::Instant> = None;
        let mut hurry = self.base.opts.hurry.clone();
        let load_result = loop {
            let deadline = give_up.unwrap_or_else(tokio::time::Instant::now);
            tokio::select! {
                r = &mut load_fut => break r,
                _ = tokio::time::sleep_until(deadline), if give_up.is_some() => {
                    break Err(load::LoadError::Interrupted);
                }
                _ = second_interrupt(&mut hurry), if give_up.is_some() => {
                    self.observer.event(Event::InterruptedAgain);
                    break Err(load::LoadError::Interrupted);
                }
                _ = tick.tick() => {
                    let stopping = status.is_some();
                    if let (false, Some(reason)) = (stopping, shared.abort_reason()) {
                        self.observer.event(Event::Aborting { reason: &reason });
                        status = Some(Status::Aborted(reason));
                        let _ = stop_tx.send(true);
                    } else if let Some(st) = self.tick(gauge, started, stopping).await {
                        status = Some(st);
                        let _ = stop_tx.send(true);
                    }
                }
                _ = &mut interrupt, if status.is_none() => {
                    self.observer.event(Event::Interrupted);
                    status = Some(Status::Interrupted);
                    give_up = Some(tokio::time::Instant::now() + INTERRUPT_DRAIN);
                    let _ = stop_tx.send(true);
                }
                (cmd, reply) = self.operator.next() => {
                    let abort = self.command(cmd, reply, &shared).await;
                    if abort && status.is_none() {
                        status = Some(Status::Interrupted);
                        give_up = Some(tokio::time::Instant::now() + INTERRUPT_DRAIN);
                        let _ = stop_tx.send(true);
                    }
                }
            }
        };
        let stuck = self.end_faults(status.as_ref()).await;
        // An abort asked for between the last tick and the load's end still counts.
        let status = status.or_else(|| shared.abort_reason().map(Status::Aborted));
        final_status(status, load_result, stuck)
    }

    /// The load is over: every fault is rolled back (before the drain is watched, whatever
    /// the outcome), then, unless interrupted, the steady state is awaited. Returns how many
    /// faults could not be rolled back.
    async fn end_faults(&mut self, status: Option<&Status>) -> usize {
        self.base.recorder.end_load();
        if let Some(w) = &mut self.steady {
            w.load_ended(self.base.recorder.elapsed_secs().ceil() as u64);
        }
        let stuck = self.faults.rollback_all().await;
        self.forward_fault_events();
        if status != Some(&Status::Interrupted) {
            self.await_steady().await;
        }
        stuck
    }

    /// Runs `setup` before the load; Some(status) when it failed or was interrupted (then
    /// neither the load nor the teardown runs, as in k6).
    async fn setup(
        &mut self,
        stop: &watch::Receiver<bool>,
        shared: &std::sync::Arc<Shared>,
        interrupt: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> Option<Status> {
        if self.base.plan.setup_is_empty() {
            return None;
        }
        let vars = tokio::select! {
            r = self.once(false, stop.clone(), shared) => r,
            _ = interrupt.as_mut() => Err((String::new(), String::new())),
        };
        match vars {
            Ok(vars) => {
                shared.set_setup_vars(vars);
                None
            }
            Err((step, _)) if step.is_empty() => {
                self.observer.event(Event::Interrupted);
                self.setup_failed = true;
                Some(Status::Interrupted)
            }
            Err((step, why)) => {
                self.setup_failed = true;
                Some(Status::Error(format!("setup step `{step}` failed: {why}")))
            }
        }
    }

    /// Runs `setup` or `teardown` once (a stop signal of its own: neither is cut by the load's).
    async fn once(
        &self,
        teardown: bool,
        stop: watch::Receiver<bool>,
        shared: &std::sync::Arc<Shared>,
    ) -> Result<Vec<(String, String)>, (String, String)> {
        let (_cut_tx, cut) = watch::channel(false);
        let ctx = LoadCtx {
            plan: self.base.plan.clone(),
            recorder: self.base.recorder.clone(),
            client: self.base.client.clone(),
            stop,
            cut,
            workload: 0,
            shared: shared.clone(),
        };
        self.base.plan.run_once(&ctx, teardown).await
    }

    /// Runs `teardown` after the load (also after a failed or interrupted run); a failure
    /// is reported as the run's error unless it already has one.
    pub(super) async fn teardown(&mut self, status: Status) -> Status {
        if self.base.plan.teardown_is_empty() || self.setup_failed {
            return status;
        }
        let shared = self
            .shared
            .clone()
            .unwrap_or_else(|| std::sync::Arc::new(Shared::new(self.base.plan.workloads.len())));
        let (_stop_tx, stop) = watch::channel(false);
        match self.once(true, stop, &shared).await {
            Ok(_) => status,
            Err((step, why)) => match status {
                Status::Error(_) => status,
                _ => Status::Error(format!("teardown step `{step}` failed: {why}")),
            },
        }
    }

    /// One second: progress, alerts and — unless the run is already stopping — the fault
    /// plugins' ticks and the live judgement. Some(status) stops the load.
    async fn tick(&mut self, gauge: &str, started: Instant, stopping: bool) -> Option<Status> {
        if let Some(w) = &mut self.windows {
            w.cut(&self.base.recorder, false);
        }
        let snapshot = self.base.recorder.snapshot();
        let t = started.elapsed().as_secs_f64();
        let s = &self.base.scenario;
        self.observer.event(Event::Progress(Progress {
            elapsed_s: t,
            planned_s: s.total_duration().as_secs_f64(),
            stage: summary::stage_at(s, t),
            gauge,
            window: snapshot.windows.last(),
            requests: snapshot.all.count,
            failed: snapshot.all.failed,
            series: &self.progress,
            tls_insecure: s.target.tls.insecure,
        }));
        summary::observe_alerts(&mut self.alerts, &snapshot);
        if let Some(w) = &mut self.steady {
            w.observe(&snapshot);
        }
        let state = if stopping { "stopping" } else { "running" };
        self.publish(state, t, &snapshot);
        if stopping {
            return None;
        }
        let state = tick_state(&self.base.scenario, &snapshot, t);
        let faulted = self.tick_faults(&state).await;
        self.forward_fault_events();
        let status = match faulted {
            Err(e) => Status::Error(e.to_string()),
            Ok(()) => match self.judge_live(&snapshot) {
                Ok(None) => return None,
                Ok(Some(reason)) => {
                    self.observer.event(Event::Aborting { reason: &reason });
                    Status::Aborted(reason)
                }
                Err(e) => Status::Error(e.to_string()),
            },
        };
        if let Status::Error(e) = &status {
            self.observer.event(Event::Stopping { error: e });
        }
        Some(status)
    }

    async fn tick_faults(&mut self, state: &TickState) -> Result<(), LiveError> {
        if self.faults_halted {
            return Ok(());
        }
        let mut asked = Vec::new();
        for p in self.fault_plugins.iter_mut() {
            let actions = p.on_tick(state)?;
            asked.extend(actions.into_iter().map(|a| (p.name().to_owned(), a)));
        }
        if !asked.is_empty() && self.faults.journal().is_empty() {
            self.check_steady_before_faults()?;
        }
        for (plugin, a) in asked {
            self.faults.apply(&plugin, a).await?;
        }
        Ok(())
    }

    /// The hypothesis on the last complete second, before the first fault goes in.
    fn check_steady_before_faults(&mut self) -> Result<(), LiveError> {
        let Some(w) = &mut self.steady else {
            return Ok(());
        };
        if w.before_faults.is_some() {
            return Ok(());
        }
        let snapshot = self.base.recorder.snapshot();
        let deviations = match snapshot.windows.last() {
            Some(win) => w.deviations(win),
            None => w.deviations(&Default::default()),
        };
        let failed = deviations.iter().map(|d| d.to_string()).collect::<Vec<_>>();
        w.before_faults = Some(deviations);
        match failed.is_empty() {
            true => Ok(()),
            false => Err(LiveError::NotSteady(failed.join("; "))),
        }
    }

    /// After the rollback: keeps reading seconds until the hypothesis holds again (on a second
    /// that began after the last rollback) or its timeout passes. Probes go on meanwhile.
    async fn await_steady(&mut self) {
        let last_rollback = self
            .faults
            .journal()
            .iter()
            .filter_map(|f| f.rolled_back_s)
            .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.max(t))));
        let (Some(w), Some(since)) = (self.steady.as_mut(), last_rollback) else {
            return;
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(w.timeout_s);
        let mut hurry = self.base.opts.hurry.clone();
        loop {
            w.observe(&self.base.recorder.snapshot());
            if w.steady_since(since) || tokio::time::Instant::now() >= deadline {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = second_interrupt(&mut hurry) => return,
            }
        }
    }

    /// This second's threshold judgement: records first breaches; Some(reason) to abort.
    fn judge_live(&mut self, snapshot: &RunMetrics) -> Result<Option<String>, LiveError> {
        let sum = crate::plugin::summary::from_run(&self.base.scenario, snapshot);
        let live = self.judges.evaluate(&sum)?;
        let now = snapshot.elapsed.as_secs_f64();
        summary::note_breaches(&mut self.first_breach, &live, now);
        self.live_verdicts = live;
        let abort = self.judges.check(&sum)?;
        Ok(summary::abort_reason(&abort))
    }

    /// Every alert rule's state now: the harness's, then the team's Prometheus rules.
    fn alert_states(&self) -> Vec<AlertState> {
        let ours = self.alerts.iter().map(|(_, a)| a.clone());
        let theirs = self.prom_alerts.iter().flat_map(|p| p.states());
        ours.chain(theirs).collect()
    }

    /// This second, to the live endpoint and the remote-write output.
    fn publish(&mut self, state: &'static str, t: f64, m: &RunMetrics) {
        let alerts = self.alert_states();
        let faults = self.faults.journal();
        let view = View {
            scenario: &self.base.scenario,
            run_id: &self.base.run_id,
            state,
            elapsed_s: t,
            gauge: load::gauge_name(&self.base.plan),
            thresholds: &self.live_verdicts,
            faults: &faults,
            alerts: &alerts,
            shared: self.shared.as_deref(),
        };
        self.operator.publish(&view, m);
    }

    /// Carries out one control request, journals it and answers it; true when it asked the
    /// run to end.
    async fn command(&mut self, cmd: Command, reply: Reply, shared: &Shared) -> bool {
        let at_s = self.base.recorder.elapsed_secs();
        let s = &self.base.scenario;
        let distributed = self.base.opts.coordinate.is_some();
        let huge = self.base.opts.allow_huge;
        let effect = operator::decide(&cmd.req, s, shared, huge, distributed);
        let (result, ok, abort) = match effect {
            Effect::Done(done) => (done, true, false),
            Effect::Refused(why) => (why, false, false),
            Effect::Rollback => {
                let before = self.faults.journal().iter().filter(|f| f.active()).count();
                let stuck = self.faults.rollback_all().await;
                self.forward_fault_events();
                self.faults_halted = true;
                let done = format!(
                    "{} fault(s) rolled back, {stuck} could not be; the fault plugins inject nothing more",
                    before - stuck.min(before)
                );
                (done, stuck == 0, false)
            }
            Effect::Abort => {
                let done = "aborting: the load stops, faults roll back, the report follows";
                (done.to_owned(), true, true)
            }
        };
        let (scenario, value) = cmd.req.target();
        self.observer.event(Event::Control {
            at_s,
            action: cmd.req.action(),
            result: &result,
            ok,
        });
        self.operator.journal.push(ControlRecord {
            at_s,
            action: cmd.req.action().to_owned(),
            scenario,
            value,
            from: cmd.from,
            result: result.clone(),
            ok,
        });
        let _ = reply.send(if ok { Ok(result) } else { Err(result) });
        abort
    }

    fn forward_fault_events(&mut self) {
        for e in self.faults.take_events() {
            self.observer.event(Event::Fault(&e));
        }
    }

    /// After the load: the probes' drain, the final judgement, the SQL checks, the report.
    pub(super) async fn finish(mut self, status: Status) -> Result<RunOutcome, RunError> {
        let interrupted = status == Status::Interrupted;
        let (mut probes, lag) = self.probes.stop(interrupted).await;
        let (prom_alerts, prom_health) = match self.prom_alerts.take() {
            Some(p) => p.stop().await,
            None => (Vec::new(), None),
        };
        probes.extend(prom_health);
        let journal = self.faults.journal();
        let steady = self.steady.as_mut().map(|w| {
            w.observe(&self.base.recorder.snapshot());
            w.report(&journal)
        });
        // Each window's recovery time is a series, so `recovery_time: max<30` judges it.
        for r in steady.iter().flat_map(|st| &st.recoveries) {
            if let Some(t) = r.recovery_time_s {
                self.base.recorder.set_gauge("recovery_time", t, true);
            }
        }
        let metrics = close_recorder(self.windows.take(), &self.base);
        summary::observe_alerts(&mut self.alerts, &metrics);
        let s = &self.base.scenario;
        let mut status = status;
        let mut thresholds = match &status {
            Status::Error(_) => Vec::new(),
            _ => match self
                .judges
                .evaluate(&crate::plugin::summary::from_run(s, &metrics))
            {
                Ok(v) => v,
                Err(e) => {
                    status = Status::Error(e.to_string());
                    Vec::new()
                }
            },
        };
        let sql = match interrupted {
            true => Vec::new(),
            false => {
                let vars = &self.base.opts.vars;
                sql::run_checks(&s.sql_checks, &self.sql_before, &metrics, vars).await
            }
        };
        let mut alerts: Vec<AlertState> = self.alerts.into_iter().map(|(_, a)| a).collect();
        alerts.extend(prom_alerts);
        let shared = self.shared.as_deref();
        let view = final_view(&self.base, shared, &metrics, &thresholds, &journal, &alerts);
        let remote_write = self.operator.flush(&view, &metrics).await;
        let remote_write = remote_write.map(|w| remote_report(s, w, &self.operator));
        summary::require_coverage(&mut thresholds, &mut alerts, &probes);
        if let Some(st) = &steady {
            summary::require_recovery(&mut thresholds, st);
        }
        let plugins = self.judges.stats().into_iter();
        let plugins = plugins.chain(
            self.fault_plugins
                .iter()
                .map(|p| (p.name().to_owned(), p.stats)),
        );
        let findings = Findings {
            thresholds,
            first_breach: self.first_breach,
            sql,
            probes,
            lag,
            alerts,
            evaluator: self.judges.evaluator.clone(),
            faults: journal,
            plugins: plugins.collect(),
            steady,
            control: self.operator.journal.clone(),
            remote_write,
        };
        let summary = summary::build(&self.base.identity(), status, &metrics, findings);
        let outcome = self.base.write(summary, &metrics);
        let shared = self.shared.as_deref();
        end_live(self.operator, &self.base, shared, &metrics, &outcome).await;
        outcome
    }
}

/// The recorder's last second closed; a segment's last window and `segment.json` written.
fn close_recorder(windows: Option<super::window_log::WindowLog>, base: &Base<'_>) -> RunMetrics {
    let log_error = windows.map(|mut w| {
        w.cut(&base.recorder, true);
        w.error().map(str::to_owned)
    });
    let metrics = base.recorder.finish();
    if !base.opts.segment.is_whole() {
        let log_error = log_error.flatten();
        super::window_log::write_meta(base, metrics.elapsed, log_error.as_deref());
    }
    metrics
}

/// How the load ended: what stopped it (if anything did), else the load's own result; any
/// fault left in force makes it an error.
fn final_status(
    status: Option<Status>,
    load_result: Result<(), load::LoadError>,
    stuck: usize,
) -> Status {
    let status = match (status, load_result) {
        (Some(st), _) => st,
        (None, Err(load::LoadError::Interrupted)) => Status::Interrupted,
        (None, Err(e)) => Status::Error(e.to_string()),
        (None, Ok(())) => Status::Done,
    };
    match status {
        Status::Error(_) => status,
        _ if stuck > 0 => Status::Error(format!(
            "{stuck} fault(s) could not be rolled back; see the fault table"
        )),
        _ => status,
    }
}

/// Resolves when a second interrupt arrived (never without a channel).
async fn second_interrupt(hurry: &mut Option<watch::Receiver<bool>>) {
    match hurry {
        Some(h) => {
            if h.wait_for(|v| *v).await.is_err() {
                std::future::pending::<()>().await
            }
        }
        None => std::future::pending().await,
    }
}

/// The report is written: the live endpoint shows the verdict and the report, then stops.
async fn end_live(
    op: Operator,
    base: &Base<'_>,
    shared: Option<&Shared>,
    metrics: &RunMetrics,
    outcome: &Result<RunOutcome, RunError>,
) {
    let report = outcome.as_ref().ok().map(|o| o.dir.join("report.html"));
    let word = match outcome {
        Ok(o) => format!("{:?}", o.summary.status).to_lowercase(),
        Err(_) => "error".to_owned(),
    };
    let sum = outcome.as_ref().ok().map(|o| &o.summary);
    let view = final_view(
        base,
        shared,
        metrics,
        sum.map_or(&[][..], |s| &s.thresholds),
        sum.map_or(&[][..], |s| &s.faults),
        sum.map_or(&[][..], |s| &s.alerts),
    );
    op.close(&view, metrics, report, &word).await;
}

/// The finished run, for the live endpoint.
fn final_view<'v>(
    base: &'v Base<'_>,
    shared: Option<&'v Shared>,
    m: &RunMetrics,
    thresholds: &'v [Verdict],
    faults: &'v [crate::fault::journal::FaultRecord],
    alerts: &'v [AlertState],
) -> View<'v> {
    View {
        scenario: &base.scenario,
        run_id: &base.run_id,
        state: "finished",
        elapsed_s: m.elapsed.as_secs_f64(),
        gauge: load::gauge_name(&base.plan),
        thresholds,
        faults,
        alerts,
        shared,
    }
}

/// How the remote-write output fared, for the summary.
fn remote_report(
    s: &Scenario,
    w: crate::prom::remote_write::WriteStats,
    op: &Operator,
) -> crate::report::summary::RemoteWriteReport {
    let url = s
        .outputs
        .prometheus_remote_write
        .as_ref()
        .map(|o| o.url.clone());
    crate::report::summary::RemoteWriteReport {
        url: url.unwrap_or_default(),
        sent: w.sent,
        dropped: w.dropped,
        failed: w.failed,
        samples: w.samples_sent,
        last_error: w.last_error.or(op.remote_error.clone()),
    }
}

/// The Prometheus-rules poller, when the scenario names rule files (preflight checked the URL).
fn prometheus_alerts(
    s: &Scenario,
    vars: &Vars,
    rec: &std::sync::Arc<crate::metrics::Recorder>,
) -> Option<PromAlerts> {
    let pa = s.prometheus_alerts.as_ref()?;
    let url = s.rules_prometheus_url()?;
    let url = expand_env(url, vars).ok()?;
    let am = pa
        .alertmanager_url
        .as_deref()
        .and_then(|u| expand_env(u, vars).ok());
    Some(PromAlerts::start(pa, url, am, rec))
}

/// `{target}` and `{env:NAME}` expanded; an unset variable leaves that actuator absent (a
/// fault needing it then fails with a message naming the setting).
pub(super) fn actuators(s: &Scenario, target: &str, vars: &Vars) -> Actuators {
    let expand = |v: &str| {
        expand_env(&v.replace("{target}", target), vars)
            .ok()
            .filter(|x| !x.is_empty())
    };
    let sql = s.actuators.sql.iter();
    let sql = sql.filter_map(|(k, a)| Some((k.clone(), expand(a.url.get_ref())?)));
    let processes = s.actuators.processes.iter().filter_map(|(k, p)| {
        let target = ProcessTarget {
            name: k.clone(),
            pid_file: expand(p.pid_file.get_ref())?.into(),
            restart: p.restart.iter().filter_map(|a| expand(a)).collect(),
        };
        Some((k.clone(), target))
    });
    Actuators {
        app_faults: s.actuators.app_faults.as_deref().and_then(expand),
        toxiproxy: expand(&s.actuators.toxiproxy),
        sql: sql.collect(),
        processes: processes.collect(),
    }
}

fn tick_state(s: &Scenario, m: &RunMetrics, t: f64) -> TickState {
    let gauges = m
        .windows
        .last()
        .map(|w| w.gauges.iter().map(|(k, v)| (k.clone(), *v)).collect())
        .unwrap_or_default();
    TickState {
        elapsed_s: t,
        stage: summary::stage_at(s, t).0 as u32,
        requests: m.all.count,
        failed: m.all.failed,
        gauges,
    }
}
