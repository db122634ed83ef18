//! The coordinator's side of a distributed run (`harness coordinate`): workers dial in, the
//! start barrier hands them one t0, their windows are merged into the run's recorder every
//! second (so thresholds, `abortOnFail`, alerts and reports judge the global data), and a
//! worker that stops reporting fails the run and stops the others.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use super::wire::{self, Reader, ToCoordinator, ToWorker, WireError, Writer, SILENCE};
use crate::load::LoadError;
use crate::metrics::Recorder;

/// `harness coordinate`'s settings.
#[derive(Debug, Clone)]
pub struct CoordinateSpec {
    /// Where workers dial in.
    pub listen: SocketAddr,
    /// The bearer token every worker must present.
    pub token: String,
    pub workers: u64,
    /// How long the start barrier waits for every worker.
    pub ready_timeout: Duration,
}

/// Every worker, connected and welcomed, by index.
pub(super) struct Hub {
    links: Vec<(u64, Reader, Writer)>,
}

/// Binds the workers' port (before anything else: a taken one is a usage error).
pub(super) fn bind(spec: &CoordinateSpec) -> std::io::Result<std::net::TcpListener> {
    let l = std::net::TcpListener::bind(spec.listen)?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Waits until all `spec.workers` indices said hello with the token; Err names the missing.
pub(super) async fn gather(
    listener: std::net::TcpListener,
    spec: &CoordinateSpec,
    scenario: &str,
) -> Result<Hub, String> {
    let listener = TcpListener::from_std(listener).map_err(|e| e.to_string())?;
    let deadline = tokio::time::Instant::now() + spec.ready_timeout;
    let mut links: BTreeMap<u64, (Reader, Writer)> = BTreeMap::new();
    while (links.len() as u64) < spec.workers {
        let accepted = tokio::time::timeout_at(deadline, listener.accept()).await;
        let Ok(Ok((stream, _))) = accepted else {
            if accepted.is_ok() {
                continue;
            }
            let missing: Vec<String> = (0..spec.workers)
                .filter(|i| !links.contains_key(i))
                .map(|i| i.to_string())
                .collect();
            return Err(format!(
                "{} of {} workers not ready after {} s (missing index {})",
                missing.len(),
                spec.workers,
                spec.ready_timeout.as_secs(),
                missing.join(", ")
            ));
        };
        let (mut r, mut w) = wire::split(stream);
        let hello = r.next::<ToCoordinator>(SILENCE).await;
        match admit(hello, spec, scenario, &links) {
            Ok(index) => {
                if w.send(&ToWorker::Welcome).await.is_ok() {
                    links.insert(index, (r, w));
                }
            }
            Err(reason) => {
                let _ = w.send(&ToWorker::Refused { reason }).await;
            }
        }
    }
    let links = links.into_iter().map(|(i, (r, w))| (i, r, w)).collect();
    Ok(Hub { links })
}

/// The index a hello claims, if it may join.
fn admit(
    hello: Result<ToCoordinator, WireError>,
    spec: &CoordinateSpec,
    scenario: &str,
    links: &BTreeMap<u64, (Reader, Writer)>,
) -> Result<u64, String> {
    let Ok(ToCoordinator::Hello {
        token,
        index,
        workers,
        scenario: theirs,
    }) = hello
    else {
        return Err("the first message must be hello".into());
    };
    if !wire::same_token(&token, &spec.token) {
        return Err("wrong token".into());
    }
    if workers != spec.workers || index >= workers {
        return Err(format!(
            "worker {index} of {workers}: this run has {} workers",
            spec.workers
        ));
    }
    if theirs != scenario {
        return Err(format!("scenario `{theirs}`, this run is `{scenario}`"));
    }
    if links.contains_key(&index) {
        return Err(format!("index {index} is already taken"));
    }
    Ok(index)
}

type Inbox = mpsc::UnboundedReceiver<(u64, Result<ToCoordinator, WireError>)>;

impl Hub {
    /// Starts every worker at one t0 and merges their windows into `recorder` until all are
    /// done. `stop` flipping (end, abort, interrupt) stops them; a worker gone silent fails
    /// the run (the others are stopped).
    pub(super) async fn drive(
        self,
        recorder: Arc<Recorder>,
        mut stop: watch::Receiver<bool>,
        setup_vars: Vec<(String, String)>,
    ) -> Result<(), LoadError> {
        let t0 = wire::unix_ms_now() + 500;
        let offset = (wire::instant_of(t0).into_std())
            .saturating_duration_since(recorder.started())
            .as_secs_f64()
            .round() as u64;
        let (tx, mut inbox) = mpsc::unbounded_channel();
        let mut writers = BTreeMap::new();
        for (i, r, mut w) in self.links {
            let start = ToWorker::Start {
                t0_unix_ms: t0,
                setup_vars: setup_vars.clone(),
            };
            if w.send(&start).await.is_err() {
                return Err(LoadError::Worker(format!(
                    "worker {i} left before the start"
                )));
            }
            tokio::spawn(read_all(i, r, tx.clone()));
            writers.insert(i, w);
        }
        drop(tx);
        let mut run = Running {
            writers,
            done: Default::default(),
            lost: None,
            recorder,
            offset,
        };
        run.until_done(&mut inbox, &mut stop).await
    }
}

async fn read_all(
    index: u64,
    mut r: Reader,
    tx: mpsc::UnboundedSender<(u64, Result<ToCoordinator, WireError>)>,
) {
    loop {
        let msg = r.next::<ToCoordinator>(SILENCE).await;
        let end = msg.is_err() || matches!(msg, Ok(ToCoordinator::Done { .. }));
        if tx.send((index, msg)).is_err() || end {
            return;
        }
    }
}

/// The workers while they run.
struct Running {
    writers: BTreeMap<u64, Writer>,
    done: std::collections::BTreeSet<u64>,
    /// The first worker lost, in words.
    lost: Option<String>,
    recorder: Arc<Recorder>,
    /// Where the workers' second 0 falls on the recorder's clock.
    offset: u64,
}

impl Running {
    async fn until_done(
        &mut self,
        inbox: &mut Inbox,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), LoadError> {
        let mut ping = tokio::time::interval(Duration::from_secs(1));
        let mut give_up: Option<tokio::time::Instant> = None;
        while self.done.len() < self.writers.len() {
            let deadline = give_up.unwrap_or_else(tokio::time::Instant::now);
            tokio::select! {
                m = inbox.recv() => match m {
                    Some((i, msg)) => {
                        if self.take(i, msg) && give_up.is_none() {
                            give_up = Some(self.stop_all("another worker was lost").await);
                        }
                    }
                    None => break,
                },
                _ = ping.tick() => self.ping().await,
                r = stop.changed(), if give_up.is_none() => {
                    let stopped = r.is_err() || *stop.borrow();
                    if stopped {
                        give_up = Some(self.stop_all("the coordinator stopped the run").await);
                    }
                }
                _ = tokio::time::sleep_until(deadline), if give_up.is_some() => break,
            }
        }
        let unfinished: Vec<String> = self
            .writers
            .keys()
            .filter(|i| !self.done.contains(i))
            .map(|i| i.to_string())
            .collect();
        match (&self.lost, unfinished.is_empty()) {
            (Some(lost), _) => Err(LoadError::Worker(lost.clone())),
            (None, false) => Err(LoadError::Worker(format!(
                "worker {} did not finish within {} s of the stop",
                unfinished.join(", "),
                SILENCE.as_secs()
            ))),
            (None, true) => Ok(()),
        }
    }

    /// One message from worker `i`; true when it was lost just now.
    fn take(&mut self, i: u64, msg: Result<ToCoordinator, WireError>) -> bool {
        match msg {
            Ok(ToCoordinator::Window(w)) => {
                if let Err(e) = self.recorder.absorb_wire(&w, self.offset) {
                    return self.lose(i, format!("worker {i} sent a broken window: {e}"));
                }
            }
            Ok(ToCoordinator::Done { error: None }) => {
                self.done.insert(i);
            }
            Ok(ToCoordinator::Done { error: Some(e) }) => {
                self.done.insert(i);
                return self.lose(i, format!("worker {i} failed: {e}"));
            }
            Ok(ToCoordinator::Hello { .. }) => {}
            Err(e) if !self.done.contains(&i) => {
                return self.lose(i, format!("worker {i} stopped reporting ({e})"));
            }
            Err(_) => {}
        }
        false
    }

    fn lose(&mut self, i: u64, why: String) -> bool {
        self.done.insert(i);
        let first = self.lost.is_none();
        self.lost.get_or_insert(why);
        first
    }

    async fn ping(&mut self) {
        for (i, w) in &mut self.writers {
            if !self.done.contains(i) {
                let _ = w.send(&ToWorker::Ping).await;
            }
        }
    }

    /// Tells every worker still running to stop; returns when to stop waiting for them.
    async fn stop_all(&mut self, reason: &str) -> tokio::time::Instant {
        for (i, w) in &mut self.writers {
            if !self.done.contains(i) {
                let stop = ToWorker::Stop {
                    reason: reason.to_owned(),
                };
                let _ = w.send(&stop).await;
            }
        }
        tokio::time::Instant::now() + SILENCE
    }
}
