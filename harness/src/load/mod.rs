//! Load generation: one executor per scenario of the file, run at once, each from its
//! `start_time`. `arrival_rate` is our open model (iterations start on schedule whatever the
//! responses); `vus` is the closed model driven by goose; `iterations` runs k6's
//! `shared-iterations` and `per-vu-iterations` on our own tasks. Every executor runs
//! iterations through `flow` (a mix's one request, or a flow's steps), which sends through
//! `client::HttpClient` and records into the same `metrics::Recorder`.

pub mod arrival_rate;
pub mod client;
mod conn;
pub mod control;
pub mod flow;
pub mod iterations;
pub mod plan;
mod redirect;
pub mod schedule;
mod timer;
pub mod vus;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::watch;

use crate::metrics::Recorder;
use crate::scenario::data::Exhausted;
use crate::scenario::Executor as Spec;
use crate::scenario::Segment;
use flow::End;
use plan::LoadPlan;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("virtual-user executor (goose): {0}")]
    Goose(String),
    /// Ctrl-C reached the executor before the harness saw it (goose catches SIGINT itself).
    #[error("interrupted")]
    Interrupted,
    /// A distributed run's worker stopped reporting, or never got ready.
    #[error("{0}")]
    Worker(String),
}

/// What an executor needs: the plan, where to record, its scenario, and the signals to stop
/// starting iterations (`stop`: the end, an abort or Ctrl-C) and to cut those still running
/// (`cut`: the scenario's gracefulStop ran out).
#[derive(Clone)]
pub struct LoadCtx {
    pub plan: Arc<LoadPlan>,
    pub recorder: Arc<Recorder>,
    pub client: client::HttpClient,
    pub stop: watch::Receiver<bool>,
    pub cut: watch::Receiver<bool>,
    /// Index of the scenario (in `plan.workloads`).
    pub workload: usize,
    pub shared: Arc<Shared>,
}

/// State the scenarios of one run share.
#[derive(Default)]
pub struct Shared {
    /// The variables `setup` set, read by every iteration.
    setup: OnceLock<Arc<Vec<(String, String)>>>,
    /// Per scenario: its data ran out (`exhausted = "stop"`), so it starts no more iterations.
    halted: Vec<AtomicBool>,
    /// Why the run must stop and fail (`exhausted = "fail"`).
    abort: Mutex<Option<String>>,
    /// Each scenario's executor gauges; the recorder gets their sums.
    gauges: Mutex<BTreeMap<&'static str, Vec<f64>>>,
    /// Per scenario: the operator's rate, VU count and pause (the live endpoint's controls).
    controls: Vec<control::Control>,
}

impl Shared {
    pub fn new(workloads: usize) -> Shared {
        Shared {
            halted: (0..workloads).map(|_| AtomicBool::new(false)).collect(),
            controls: (0..workloads)
                .map(|_| control::Control::default())
                .collect(),
            ..Shared::default()
        }
    }

    pub fn set_setup_vars(&self, vars: Vec<(String, String)>) {
        let _ = self.setup.set(Arc::new(vars));
    }

    /// The variables `setup` set (none before it ran).
    pub fn setup_vars(&self) -> Vec<(String, String)> {
        self.setup
            .get()
            .map(|v| v.as_ref().clone())
            .unwrap_or_default()
    }

    /// Scenario `w`'s controls.
    pub fn control(&self, w: usize) -> &control::Control {
        &self.controls[w]
    }

    /// Scenario `w`'s share of gauge `name` (0 before its executor set it).
    pub fn gauge_of(&self, w: usize, name: &str) -> f64 {
        let g = self.gauges.lock().expect("gauge lock");
        g.get(name).and_then(|v| v.get(w)).copied().unwrap_or(0.0)
    }

    /// Why the load must abort, once something asked for it.
    pub fn abort_reason(&self) -> Option<String> {
        self.abort.lock().expect("abort lock").clone()
    }
}

impl LoadCtx {
    pub fn setup_vars(&self) -> Arc<Vec<(String, String)>> {
        self.shared.setup.get().cloned().unwrap_or_default()
    }

    /// Whether iterations still running must end now.
    pub fn is_cut(&self) -> bool {
        *self.cut.borrow() || *self.stop.borrow()
    }

    /// Whether this scenario starts no more iterations (stopped, or its data ran out).
    pub fn halted(&self) -> bool {
        *self.stop.borrow() || self.shared.halted[self.workload].load(Relaxed)
    }

    /// Waits while the operator holds VU `vu` of this scenario (paused, or beyond the VU count
    /// set); false when the scenario stopped meanwhile.
    pub async fn held(&self, vu: u64) -> bool {
        let mut setting = self.shared.controls[self.workload].watch();
        let mut stop = self.stop.clone();
        loop {
            let s = *setting.borrow_and_update();
            let idle = s.paused || s.vus.is_some_and(|n| vu >= u64::from(n));
            if self.halted() {
                return false;
            }
            if !idle {
                return true;
            }
            tokio::select! {
                _ = setting.changed() => {}
                _ = stop.wait_for(|s| *s) => return false,
            }
        }
    }

    /// Sleeps `d`; false when cut short.
    pub async fn pause(&self, d: Duration) -> bool {
        let (mut cut, mut stop) = (self.cut.clone(), self.stop.clone());
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = cut.wait_for(|c| *c) => false,
            _ = stop.wait_for(|c| *c) => false,
        }
    }

    /// Sets this scenario's share of gauge `name`; the recorder shows the sum over scenarios.
    pub fn gauge(&self, name: &'static str, value: f64) {
        let mut g = self.shared.gauges.lock().expect("gauge lock");
        let n = self.shared.halted.len();
        let slot = g.entry(name).or_insert_with(|| vec![0.0; n]);
        slot[self.workload] = value;
        self.recorder.set_gauge(name, slot.iter().sum(), false);
    }

    /// Acts on how an iteration ended: a data set out of rows stops the scenario or the run.
    pub fn ended(&self, end: &End) {
        if let End::Exhausted(set) = end {
            let d = &self.plan.data[*set];
            match d.exhausted {
                Exhausted::Stop => self.shared.halted[self.workload].store(true, Relaxed),
                Exhausted::Fail => {
                    self.shared.halted[self.workload].store(true, Relaxed);
                    let mut a = self.shared.abort.lock().expect("abort lock");
                    a.get_or_insert_with(|| {
                        format!(
                            "data file {} ran out of unique rows ({} used) in scenario `{}`",
                            self.plan.data_name(*set),
                            d.len(),
                            self.plan.workloads[self.workload].spec.name
                        )
                    });
                }
            }
        }
    }
}

pub trait Executor: Send + Sync {
    /// Runs the scenario to its end or until `ctx.stop` flips, then waits for iterations in
    /// flight.
    fn run(&self, ctx: LoadCtx)
        -> Pin<Box<dyn Future<Output = Result<(), LoadError>> + Send + '_>>;
}

/// The executor a scenario asks for.
pub fn executor_for(e: &Spec, seg: &Segment) -> Box<dyn Executor> {
    match e {
        Spec::ArrivalRate {
            start_rate,
            stages,
            max_in_flight,
            time_unit,
        } => Box::new(arrival_rate::ArrivalRate::new(
            *start_rate,
            stages,
            *max_in_flight,
            time_unit.0,
            seg.clone(),
        )),
        Spec::Vus {
            start_vus,
            stages,
            think_time,
            pacing,
        } => Box::new(vus::Vus::new(
            *start_vus,
            stages,
            think_time.0,
            pacing.0,
            seg.clone(),
        )),
        Spec::SharedIterations {
            vus,
            iterations,
            max_duration,
        } => Box::new(iterations::Iterations::shared(
            *vus,
            *iterations,
            max_duration.0,
            seg.clone(),
        )),
        Spec::PerVuIterations {
            vus,
            iterations,
            max_duration,
        } => Box::new(iterations::Iterations::per_vu(
            *vus,
            *iterations,
            max_duration.0,
            seg.clone(),
        )),
    }
}

/// The gauge the progress line shows: `vus` when a scenario is closed-model, else
/// `target_rate`.
pub fn gauge_name(plan: &LoadPlan) -> &'static str {
    match plan
        .workloads
        .iter()
        .all(|w| w.spec.executor.is_arrival_rate())
    {
        true => "target_rate",
        false => "vus",
    }
}

/// Runs every scenario of the plan at once, each from its `start_time`, until all have ended
/// or `stop` flips; an iteration still running `graceful_stop` after its scenario's end is
/// cut. Returns the first executor error.
pub async fn run_all(
    plan: Arc<LoadPlan>,
    recorder: Arc<Recorder>,
    client: client::HttpClient,
    stop: watch::Receiver<bool>,
    shared: Arc<Shared>,
) -> Result<(), LoadError> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, w) in plan.workloads.iter().enumerate() {
        let (cut_tx, cut) = watch::channel(false);
        let ctx = LoadCtx {
            plan: plan.clone(),
            recorder: recorder.clone(),
            client: client.clone(),
            stop: stop.clone(),
            cut,
            workload: i,
            shared: shared.clone(),
        };
        let executor = executor_for(&w.spec.executor, &plan.segment);
        let (start, end, grace) = (w.spec.start_time.0, w.spec.end(), w.spec.graceful_stop.0);
        let t0 = tokio::time::Instant::now();
        tasks.spawn(async move {
            let cutter = tokio::spawn(async move {
                tokio::time::sleep_until(t0 + end + grace).await;
                let _ = cut_tx.send(true);
            });
            let mut stop = ctx.stop.clone();
            let started = tokio::select! {
                _ = tokio::time::sleep_until(t0 + start) => true,
                _ = stop.wait_for(|s| *s) => false,
            };
            let result = match started {
                true => executor.run(ctx).await,
                false => Ok(()),
            };
            cutter.abort();
            result
        });
    }
    let mut first = Ok(());
    while let Some(done) = tasks.join_next().await {
        let r = done.unwrap_or_else(|e| Err(LoadError::Goose(format!("executor task: {e}"))));
        if first.is_ok() {
            first = r;
        }
    }
    first
}
