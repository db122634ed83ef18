//! A worker of a distributed run (`harness worker`): its segment of the load, started at the
//! coordinator's t0 with setup's variables, a window sent every second and logged to its own
//! directory. It runs no setup, teardown, probe, alert or fault: those are the coordinator's.
//! A coordinator that says stop, or goes silent, stops the load at once.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::watch;

use super::window_log::WindowLog;
use super::wire::{self, Reader, ToCoordinator, ToWorker, Writer};
use super::{Base, RunError, RunOptions};
use crate::load::{self, Shared};
use crate::report;

/// `harness worker`'s settings.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    /// The coordinator's `HOST:PORT`.
    pub coordinator: String,
    pub token: String,
    pub index: u64,
    pub workers: u64,
    /// How long to keep dialling, and to wait for the start.
    pub ready_timeout: Duration,
}

/// How a worker's part ended.
#[derive(Debug)]
pub enum WorkerEnd {
    /// Its load ran to the end or the coordinator stopped it.
    Done {
        dir: std::path::PathBuf,
        requests: u64,
    },
    /// The coordinator was unreachable, refused it, or went away (its load stopped).
    Lost(String),
    Interrupted,
}

/// A coordinator silent this long is gone (pings come every second).
const COORDINATOR_SILENCE: Duration = Duration::from_secs(3);
/// After a stop, requests in flight get this long before the worker lets them go.
const STOP_DRAIN: Duration = Duration::from_millis(1500);

pub async fn work(
    opts: &RunOptions,
    spec: &WorkerSpec,
    interrupt: impl std::future::Future<Output = ()>,
) -> Result<WorkerEnd, RunError> {
    // The file's mistakes before dialling: exit 2, nothing sent. Its clock restarts at t0.
    let mut base = Base::new(opts)?;
    let (mut r, w) = match join(spec, &base.scenario.name).await {
        Ok(link) => link,
        Err(why) => return Ok(WorkerEnd::Lost(why)),
    };
    let start = r.next::<ToWorker>(spec.ready_timeout * 2).await;
    let (t0, vars) = match start {
        Ok(ToWorker::Start {
            t0_unix_ms,
            setup_vars,
        }) => (t0_unix_ms, setup_vars),
        Ok(ToWorker::Stop { reason }) => return Ok(WorkerEnd::Lost(reason)),
        other => {
            return Ok(WorkerEnd::Lost(format!(
                "no start from the coordinator: {other:?}"
            )))
        }
    };
    report::start_dir(&base.dir, base.scenario.source_text())?;
    tokio::time::sleep_until(wire::instant_of(t0)).await;
    base.restart_clock(true)?;
    let log = WindowLog::create(&base.dir, base.recorder.started_at()).map_err(|source| {
        let path = base.dir.display().to_string();
        RunError::Report(report::ReportError { path, source })
    })?;
    let shared = Arc::new(Shared::new(base.plan.workloads.len()));
    shared.set_setup_vars(vars);
    let mut link = Link { r, w, log };
    let ended = link.drive(&base, shared, interrupt).await;
    let requests = base.recorder.snapshot().all.count;
    let error = match &ended {
        Some(WorkerEnd::Lost(why)) => Some(why.clone()),
        _ => None,
    };
    link.finish(&base, error).await;
    Ok(ended.unwrap_or(WorkerEnd::Done {
        dir: base.dir.clone(),
        requests,
    }))
}

/// Dials until the coordinator answers (it may start after its workers), then says hello.
async fn join(spec: &WorkerSpec, scenario: &str) -> Result<(Reader, Writer), String> {
    let deadline = tokio::time::Instant::now() + spec.ready_timeout;
    let stream = loop {
        match TcpStream::connect(&spec.coordinator).await {
            Ok(s) => break s,
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(format!(
                    "coordinator {} unreachable for {} s: {e}",
                    spec.coordinator,
                    spec.ready_timeout.as_secs()
                ))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    };
    let (mut r, mut w) = wire::split(stream);
    let hello = ToCoordinator::Hello {
        token: spec.token.clone(),
        index: spec.index,
        workers: spec.workers,
        scenario: scenario.to_owned(),
    };
    w.send(&hello).await.map_err(|e| e.to_string())?;
    // The coordinator answers once it is at the start barrier (after its own preflight).
    match r.next::<ToWorker>(spec.ready_timeout).await {
        Ok(ToWorker::Welcome) => Ok((r, w)),
        Ok(ToWorker::Refused { reason }) => Err(format!("the coordinator refused: {reason}")),
        other => Err(format!("no welcome from the coordinator: {other:?}")),
    }
}

struct Link {
    r: Reader,
    w: Writer,
    log: WindowLog,
}

impl Link {
    /// The load until its end, the coordinator's stop, its silence, or `interrupt`; None when
    /// it ended as the run meant (at its end, or stopped by the coordinator).
    async fn drive(
        &mut self,
        base: &Base<'_>,
        shared: Arc<Shared>,
        interrupt: impl std::future::Future<Output = ()>,
    ) -> Option<WorkerEnd> {
        let (stop_tx, stop) = watch::channel(false);
        let load = load::run_all(
            base.plan.clone(),
            base.recorder.clone(),
            base.client.clone(),
            stop,
            shared,
        );
        tokio::pin!(load);
        tokio::pin!(interrupt);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        let (mut stopping, mut end) = (false, None);
        let mut give_up: Option<tokio::time::Instant> = None;
        loop {
            let deadline = give_up.unwrap_or_else(tokio::time::Instant::now);
            tokio::select! {
                _ = &mut load => break,
                _ = tokio::time::sleep_until(deadline), if give_up.is_some() => break,
                _ = tick.tick() => {
                    if let Err(e) = self.send_window(base, false).await {
                        end.get_or_insert(WorkerEnd::Lost(format!("coordinator gone: {e}")));
                        stopping = true;
                    }
                }
                m = self.r.next::<ToWorker>(COORDINATOR_SILENCE), if !stopping => {
                    stopping = match m {
                        Ok(ToWorker::Stop { .. }) => true,
                        Ok(_) => continue,
                        Err(e) => {
                            end = Some(WorkerEnd::Lost(format!("coordinator gone: {e}")));
                            true
                        }
                    }
                }
                _ = &mut interrupt, if !stopping => {
                    end = Some(WorkerEnd::Interrupted);
                    stopping = true;
                }
            }
            if stopping && give_up.is_none() {
                let _ = stop_tx.send(true);
                give_up = Some(tokio::time::Instant::now() + STOP_DRAIN);
            }
        }
        end
    }

    /// Cuts a window, logs it and sends it to the coordinator.
    async fn send_window(&mut self, base: &Base<'_>, close: bool) -> Result<(), wire::WireError> {
        let window = self.log.cut(&base.recorder, close);
        self.w.send(&ToCoordinator::Window(Box::new(window))).await
    }

    /// The last window and `done` (best effort: the coordinator may be gone), and the
    /// worker's own record of its part.
    async fn finish(&mut self, base: &Base<'_>, error: Option<String>) {
        base.recorder.end_load();
        let _ = self.send_window(base, true).await;
        let _ = self.w.send(&ToCoordinator::Done { error }).await;
        let m = base.recorder.snapshot();
        super::window_log::write_meta(base, m.elapsed, self.log.error());
    }
}
