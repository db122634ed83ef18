//! Load generation: two executors behind one trait. `arrival_rate` is our open model (requests
//! start on schedule whatever the responses); `vus` is the closed model driven by goose. Both
//! send through `client::HttpClient` and record into the same `metrics::Recorder`.

pub mod arrival_rate;
pub mod client;
mod conn;
pub mod plan;
mod redirect;
pub mod schedule;
pub mod vus;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::watch;

use crate::metrics::Recorder;
use plan::LoadPlan;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("virtual-user executor (goose): {0}")]
    Goose(String),
    /// Ctrl-C reached the executor before the harness saw it (goose catches SIGINT itself).
    #[error("interrupted")]
    Interrupted,
}

/// What an executor needs: the plan, where to record, and a stop signal (abort or Ctrl-C).
#[derive(Clone)]
pub struct LoadCtx {
    pub plan: Arc<LoadPlan>,
    pub recorder: Arc<Recorder>,
    pub client: client::HttpClient,
    pub stop: watch::Receiver<bool>,
}

pub trait Executor: Send + Sync {
    /// Runs the stages to the end or until `ctx.stop` flips, then waits for requests in flight.
    fn run(&self, ctx: LoadCtx)
        -> Pin<Box<dyn Future<Output = Result<(), LoadError>> + Send + '_>>;
    /// Gauge name the progress line shows ("vus" or "target_rate").
    fn gauge(&self) -> &'static str;
}

/// The executor a scenario asks for.
pub fn executor_for(s: &crate::scenario::Scenario) -> Box<dyn Executor> {
    match &s.executor {
        crate::scenario::Executor::ArrivalRate {
            start_rate,
            stages,
            max_in_flight,
        } => Box::new(arrival_rate::ArrivalRate::new(
            *start_rate,
            stages,
            *max_in_flight,
        )),
        crate::scenario::Executor::Vus {
            start_vus,
            stages,
            think_time,
            pacing,
        } => Box::new(vus::Vus::new(*start_vus, stages, think_time.0, pacing.0)),
    }
}
