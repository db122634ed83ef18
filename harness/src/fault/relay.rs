//! The embedded TCP fault relay: Toxiproxy's proxies and toxics on live connections, both
//! directions. Each link runs two pipes (client→upstream, upstream→client); a pipe re-reads its
//! toxics whenever they change, so adding or removing a toxic acts on connections already open.
//!
//! Latency is pipelined (each chunk is delayed from the moment it was read, not queued behind
//! the previous chunk's delay), and a reader feeding a slow writer is back-pressured through a
//! bounded channel, so bandwidth limits hold without buffering without bound.
//!
//! Extension: a proxy created with `"protocol": "http"` (default `"tcp"`) has an HTTP/1.1
//! upstream. Its links put a stage of [`super::http`] between each reader and writer, which
//! frames requests and responses so the HTTP toxics (`http_status`, `http_latency`,
//! `http_abort`) decide per request, rolling `toxicity` for each matching request; the TCP
//! toxics act below that stage as on any proxy. HTTP toxics are refused on tcp proxies, whose
//! links stay byte pipes with no parsing.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::http::{Exchange, Plan, Requests, Responses, Route};
use super::toxic::{Kind, Stream, Toxic};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RelayError {
    #[error("proxy {0} already exists")]
    ProxyExists(String),
    #[error("proxy {0} not found")]
    NoProxy(String),
    #[error("toxic {0} already exists")]
    ToxicExists(String),
    #[error("toxic {0} not found")]
    NoToxic(String),
    #[error("cannot listen on {addr}: {message}")]
    Listen { addr: String, message: String },
    #[error("invalid toxic: {0}")]
    BadToxic(String),
    #[error(
        "toxic type {kind} acts on HTTP requests: proxy {proxy} is a tcp proxy (create it with \
         \"protocol\": \"http\")"
    )]
    NotHttp { kind: &'static str, proxy: String },
}

/// What a proxy's upstream speaks: bytes (Toxiproxy's only kind) or HTTP/1.1 (our extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Http,
}

/// One proxy: a listener, its upstream, its toxics and its live links.
pub struct Proxy {
    pub name: String,
    pub upstream: String,
    pub protocol: Protocol,
    listen: Mutex<SocketAddr>,
    enabled: AtomicBool,
    toxics: RwLock<Vec<Toxic>>,
    changed: watch::Sender<u64>,
    accept: Mutex<Option<JoinHandle<()>>>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProxyView {
    pub name: String,
    pub listen: String,
    pub upstream: String,
    /// An extension: absent (tcp) in a real Toxiproxy's answers.
    #[serde(default)]
    pub protocol: Protocol,
    pub enabled: bool,
    pub toxics: Vec<Toxic>,
}

/// All proxies of one relay (the state behind the Toxiproxy-compatible API).
#[derive(Default)]
pub struct Relay {
    proxies: Mutex<BTreeMap<String, Arc<Proxy>>>,
}

impl Relay {
    pub fn new() -> Arc<Relay> {
        Arc::new(Relay::default())
    }

    /// Creates a proxy listening on `listen` (port 0 picks one) and starts it if `enabled`.
    pub async fn create(
        &self,
        name: &str,
        listen: &str,
        upstream: &str,
        enabled: bool,
        protocol: Protocol,
    ) -> Result<ProxyView, RelayError> {
        if self.proxies.lock().expect("relay lock").contains_key(name) {
            return Err(RelayError::ProxyExists(name.to_owned()));
        }
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| RelayError::Listen {
                addr: listen.to_owned(),
                message: e.to_string(),
            })?;
        let addr = listener.local_addr().map_err(|e| RelayError::Listen {
            addr: listen.to_owned(),
            message: e.to_string(),
        })?;
        let proxy = Arc::new(Proxy {
            name: name.to_owned(),
            upstream: upstream.to_owned(),
            protocol,
            listen: Mutex::new(addr),
            enabled: AtomicBool::new(false),
            toxics: RwLock::new(Vec::new()),
            changed: watch::channel(0).0,
            accept: Mutex::new(None),
            links: Arc::default(),
        });
        {
            let mut map = self.proxies.lock().expect("relay lock");
            if map.contains_key(name) {
                return Err(RelayError::ProxyExists(name.to_owned()));
            }
            map.insert(name.to_owned(), proxy.clone());
        }
        if enabled {
            proxy.start(listener);
        }
        Ok(proxy.view())
    }

    pub fn get(&self, name: &str) -> Result<Arc<Proxy>, RelayError> {
        self.proxies
            .lock()
            .expect("relay lock")
            .get(name)
            .cloned()
            .ok_or_else(|| RelayError::NoProxy(name.to_owned()))
    }

    pub fn list(&self) -> BTreeMap<String, ProxyView> {
        self.proxies
            .lock()
            .expect("relay lock")
            .iter()
            .map(|(k, p)| (k.clone(), p.view()))
            .collect()
    }

    pub fn delete(&self, name: &str) -> Result<(), RelayError> {
        let p = self
            .proxies
            .lock()
            .expect("relay lock")
            .remove(name)
            .ok_or_else(|| RelayError::NoProxy(name.to_owned()))?;
        p.stop();
        Ok(())
    }

    /// Toxiproxy's `/reset`: every proxy enabled, every toxic removed, both directions.
    pub async fn reset(&self) -> Result<(), RelayError> {
        let proxies: Vec<Arc<Proxy>> = self
            .proxies
            .lock()
            .expect("relay lock")
            .values()
            .cloned()
            .collect();
        for p in proxies {
            p.toxics.write().expect("toxics lock").clear();
            p.bump();
            p.set_enabled(true).await?;
        }
        Ok(())
    }

    /// Stops every listener and link (the relay is going away).
    pub fn shutdown(&self) {
        for p in self.proxies.lock().expect("relay lock").values() {
            p.stop();
        }
    }
}

impl Proxy {
    pub fn view(&self) -> ProxyView {
        ProxyView {
            name: self.name.clone(),
            listen: self.listen.lock().expect("listen lock").to_string(),
            upstream: self.upstream.clone(),
            protocol: self.protocol,
            enabled: self.enabled.load(Relaxed),
            toxics: self.toxics.read().expect("toxics lock").clone(),
        }
    }

    pub fn listen_addr(&self) -> SocketAddr {
        *self.listen.lock().expect("listen lock")
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    fn start(self: &Arc<Self>, listener: TcpListener) {
        self.enabled.store(true, Relaxed);
        let me = self.clone();
        let links = self.links.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let link = tokio::spawn(run_link(client, me.clone()));
                let mut l = links.lock().expect("links lock");
                l.retain(|h| !h.is_finished());
                l.push(link);
            }
        });
        *self.accept.lock().expect("accept lock") = Some(task);
    }

    /// Stops listening and drops every live link (Toxiproxy's "down"). Returns the aborted
    /// accept task: the listener closes only once that task is dropped, so a caller that must
    /// answer "down" only when connections are refused awaits it.
    fn stop(&self) -> Option<tokio::task::JoinHandle<()>> {
        self.enabled.store(false, Relaxed);
        let accept = self.accept.lock().expect("accept lock").take();
        if let Some(t) = &accept {
            t.abort();
        }
        for l in self.links.lock().expect("links lock").drain(..) {
            l.abort();
        }
        accept
    }

    pub async fn set_enabled(self: &Arc<Self>, enabled: bool) -> Result<(), RelayError> {
        if enabled == self.enabled.load(Relaxed) {
            return Ok(());
        }
        if enabled {
            let addr = self.listen_addr();
            // The old listener is gone with its task; the port may take a moment to free.
            let mut last = String::new();
            for _ in 0..50 {
                match TcpListener::bind(addr).await {
                    Ok(l) => {
                        self.start(l);
                        return Ok(());
                    }
                    Err(e) => last = e.to_string(),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(RelayError::Listen {
                addr: addr.to_string(),
                message: last,
            })
        } else {
            if let Some(accept) = self.stop() {
                // Cancelled: the listener is closed once this returns.
                let _ = accept.await;
            }
            Ok(())
        }
    }

    pub fn add_toxic(&self, mut t: Toxic) -> Result<Toxic, RelayError> {
        t.kind
            .validate()
            .map_err(|e| RelayError::BadToxic(e.to_string()))?;
        check_toxicity(t.toxicity)?;
        if t.kind.is_http() && self.protocol != Protocol::Http {
            return Err(RelayError::NotHttp {
                kind: t.kind.type_name(),
                proxy: self.name.clone(),
            });
        }
        if t.name.is_empty() {
            t.name = format!(
                "{}_{}",
                t.kind.type_name(),
                match t.stream {
                    Stream::Upstream => "upstream",
                    Stream::Downstream => "downstream",
                }
            );
        }
        let mut toxics = self.toxics.write().expect("toxics lock");
        if toxics.iter().any(|x| x.name == t.name) {
            return Err(RelayError::ToxicExists(t.name));
        }
        toxics.push(t.clone());
        drop(toxics);
        self.bump();
        Ok(t)
    }

    pub fn update_toxic(
        &self,
        name: &str,
        attributes: Option<serde_json::Value>,
        toxicity: Option<f32>,
    ) -> Result<Toxic, RelayError> {
        let mut toxics = self.toxics.write().expect("toxics lock");
        let t = toxics
            .iter_mut()
            .find(|t| t.name == name)
            .ok_or_else(|| RelayError::NoToxic(name.to_owned()))?;
        let mut updated = t.clone();
        if let Some(attrs) = attributes {
            let mut as_json = serde_json::to_value(&updated).expect("toxic serialises");
            if let (Some(current), Some(new)) =
                (as_json["attributes"].as_object_mut(), attrs.as_object())
            {
                for (k, v) in new {
                    current.insert(k.clone(), v.clone());
                }
            }
            updated =
                serde_json::from_value(as_json).map_err(|e| RelayError::BadToxic(e.to_string()))?;
            updated
                .kind
                .validate()
                .map_err(|e| RelayError::BadToxic(e.to_string()))?;
        }
        if let Some(x) = toxicity {
            check_toxicity(x)?;
            updated.toxicity = x;
        }
        *t = updated.clone();
        drop(toxics);
        self.bump();
        Ok(updated)
    }

    pub fn remove_toxic(&self, name: &str) -> Result<(), RelayError> {
        let mut toxics = self.toxics.write().expect("toxics lock");
        let before = toxics.len();
        toxics.retain(|t| t.name != name);
        if toxics.len() == before {
            return Err(RelayError::NoToxic(name.to_owned()));
        }
        drop(toxics);
        self.bump();
        Ok(())
    }

    pub fn toxic(&self, name: &str) -> Result<Toxic, RelayError> {
        self.toxics
            .read()
            .expect("toxics lock")
            .iter()
            .find(|t| t.name == name)
            .cloned()
            .ok_or_else(|| RelayError::NoToxic(name.to_owned()))
    }

    /// The TCP toxics acting on `dir` for one link; toxicity is rolled once per link and toxic.
    fn active(&self, dir: Stream, rolls: &mut HashMap<String, bool>) -> Vec<Kind> {
        self.toxics
            .read()
            .expect("toxics lock")
            .iter()
            .filter(|t| t.stream == dir && !t.kind.is_http())
            .filter(|t| {
                *rolls
                    .entry(t.name.clone())
                    .or_insert_with(|| t.toxicity >= 1.0 || fastrand::f32() < t.toxicity)
            })
            .map(|t| t.kind.clone())
            .collect()
    }
}

impl Proxy {
    /// What the HTTP toxics do to one request: each whose route matches is rolled for this
    /// request alone, and the first hit of each kind counts.
    pub(super) fn http_plan(&self, method: &str, target: &str) -> Plan {
        let mut plan = Plan::default();
        for t in self.toxics.read().expect("toxics lock").iter() {
            let Some(route) = t.kind.route() else {
                continue;
            };
            if !Route::parse(route).is_ok_and(|r| r.matches(method, target)) {
                continue;
            }
            if !(t.toxicity >= 1.0 || fastrand::f32() < t.toxicity) {
                continue;
            }
            match &t.kind {
                Kind::HttpStatus { status, .. } => {
                    plan.status.get_or_insert_with(|| (*status, t.name.clone()));
                }
                Kind::HttpLatency {
                    latency, jitter, ..
                } => {
                    plan.delay
                        .get_or_insert_with(|| jittered(*latency, *jitter));
                }
                Kind::HttpAbort { bytes, .. } => {
                    plan.abort.get_or_insert(*bytes);
                }
                _ => {}
            }
        }
        plan
    }
}

fn check_toxicity(x: f32) -> Result<(), RelayError> {
    if (0.0..=1.0).contains(&x) {
        return Ok(());
    }
    Err(RelayError::BadToxic(format!(
        "toxicity {x} must be between 0 and 1"
    )))
}

/// `latency` ± a uniform `jitter`, never below zero.
fn jittered(latency: u64, jitter: u64) -> Duration {
    let j = if jitter > 0 {
        fastrand::i64(-(jitter as i64)..=jitter as i64)
    } else {
        0
    };
    Duration::from_millis((latency as i64 + j).max(0) as u64)
}

/// How a pipe ended.
#[derive(Debug, Clone, Copy, PartialEq)]
enum End {
    /// Its source reached EOF and the close was passed on; the other direction may go on.
    Eof,
    /// The link must close now (timeout, limit_data, write error).
    Close,
    /// The link must be reset (TCP RST to the client).
    Reset,
}

async fn run_link(mut client: TcpStream, proxy: Arc<Proxy>) {
    let upstream =
        match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(&proxy.upstream))
            .await
        {
            Ok(Ok(u)) => u,
            _ => return,
        };
    let _ = upstream.set_nodelay(true);
    let client_fd = client.as_raw_fd();
    // Borrowed halves: an owned write half sends FIN when dropped, which would turn a
    // reset_peer into a clean EOF. These close nothing; `client` itself closes last.
    let (cr, cw) = client.split();
    let (ur, uw) = upstream.into_split();
    let end = match proxy.protocol {
        Protocol::Tcp => {
            let up = pipe(cr, uw, Stream::Upstream, proxy.clone());
            both(up, pipe(ur, cw, Stream::Downstream, proxy.clone())).await
        }
        Protocol::Http => {
            // Every request leaves its place in the answer order here (bounded: a client
            // pipelining without reading is back-pressured).
            let (ex_tx, ex_rx) = mpsc::channel::<Exchange>(64);
            let p = proxy.clone();
            let requests = |raw, out| Requests::new(raw, out, ex_tx, p).run();
            let responses = |raw, out| Responses::new(raw, out, ex_rx).run();
            let up = staged(cr, uw, Stream::Upstream, proxy.clone(), requests);
            both(
                up,
                staged(ur, cw, Stream::Downstream, proxy.clone(), responses),
            )
            .await
        }
    };
    if end == End::Reset {
        reset(client_fd);
    }
}

/// Runs a link's two pipes until both ended cleanly or one ends the link.
async fn both(up: impl Future<Output = End>, down: impl Future<Output = End>) -> End {
    tokio::pin!(up);
    tokio::pin!(down);
    let (mut up_done, mut down_done) = (false, false);
    while !(up_done && down_done) {
        let end = tokio::select! {
            e = &mut up, if !up_done => { up_done = true; e }
            e = &mut down, if !down_done => { down_done = true; e }
        };
        if end != End::Eof {
            return end;
        }
    }
    End::Eof
}

/// Makes the coming close of the client socket an RST (SO_LINGER with zero timeout).
fn reset(fd: RawFd) {
    // SAFETY: the fd belongs to the client socket, whose halves are still alive in this task.
    let sock = unsafe { BorrowedFd::borrow_raw(fd) };
    let _ = socket2::SockRef::from(&sock).set_linger(Some(Duration::ZERO));
}

/// The toxics in force on one direction at this moment, by kind (the first of each kind wins).
#[derive(Debug, Default, PartialEq)]
struct InForce {
    timeout: Option<u64>,
    reset_peer: Option<u64>,
    slow_close: Option<u64>,
    /// (latency, jitter) ms.
    latency: Option<(u64, u64)>,
    limit_data: Option<u64>,
    /// (average size, size variation, delay µs).
    slicer: Option<(u64, u64, u64)>,
    /// KB/s.
    bandwidth: Option<u64>,
}

impl InForce {
    fn of(toxics: &[Kind]) -> InForce {
        let mut f = InForce::default();
        for k in toxics {
            match *k {
                // HTTP toxics act in the http stage, per request, never here.
                Kind::HttpStatus { .. } | Kind::HttpLatency { .. } | Kind::HttpAbort { .. } => {}
                Kind::Timeout { timeout } => f.timeout = f.timeout.or(Some(timeout)),
                Kind::ResetPeer { timeout } => f.reset_peer = f.reset_peer.or(Some(timeout)),
                Kind::SlowClose { delay } => f.slow_close = f.slow_close.or(Some(delay)),
                Kind::Latency { latency, jitter } => {
                    f.latency = f.latency.or(Some((latency, jitter)))
                }
                Kind::LimitData { bytes } => f.limit_data = f.limit_data.or(Some(bytes)),
                Kind::Slicer {
                    average_size,
                    size_variation,
                    delay,
                } => f.slicer = f.slicer.or(Some((average_size, size_variation, delay))),
                Kind::Bandwidth { rate } => f.bandwidth = f.bandwidth.or(Some(rate)),
            }
        }
        f
    }
}

/// What flows from a reader (or an http stage) to a pipe's writer.
#[derive(Debug)]
pub(super) enum Piece {
    /// Bytes, with when they were read (latency counts from then).
    Data(Instant, Bytes),
    /// The source ended: pass the close on.
    Eof,
    /// Reset the link once what came before is written (`http_abort`).
    Reset,
}

async fn pipe<R, W>(r: R, w: W, dir: Stream, proxy: Arc<Proxy>) -> End
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    let (tx, rx) = mpsc::channel::<Piece>(16);
    tokio::select! {
        end = write_toxic(w, rx, dir, proxy) => end,
        _ = read_all(r, tx) => End::Close,
    }
}

/// A pipe with a stage between reader and writer (an http link's framing); the stage never
/// returns, like the reader: the writer decides the end.
async fn staged<R, W, S, F>(r: R, w: W, dir: Stream, proxy: Arc<Proxy>, stage: S) -> End
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
    S: FnOnce(mpsc::Receiver<Piece>, mpsc::Sender<Piece>) -> F,
    F: Future<Output = ()>,
{
    let (raw_tx, raw_rx) = mpsc::channel::<Piece>(16);
    let (tx, rx) = mpsc::channel::<Piece>(16);
    tokio::select! {
        end = write_toxic(w, rx, dir, proxy) => end,
        _ = read_all(r, raw_tx) => End::Close,
        _ = stage(raw_rx, tx) => End::Close,
    }
}

/// Reads until EOF or error (sent as `Eof`), then waits forever: the writer decides the end.
async fn read_all<R: AsyncRead + Unpin>(mut r: R, tx: mpsc::Sender<Piece>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = tx.send(Piece::Eof).await;
                break;
            }
            Ok(n) => {
                let chunk = Piece::Data(Instant::now(), Bytes::copy_from_slice(&buf[..n]));
                if tx.send(chunk).await.is_err() {
                    break;
                }
            }
        }
    }
    std::future::pending::<()>().await;
}

/// Writes what the reader sends through the toxics in force, re-reading them on every change.
async fn write_toxic<W>(
    mut w: W,
    mut rx: mpsc::Receiver<Piece>,
    dir: Stream,
    proxy: Arc<Proxy>,
) -> End
where
    W: AsyncWrite + Unpin + Send,
{
    let mut changed = proxy.changed.subscribe();
    let mut rolls = HashMap::new();
    let mut sent: u64 = 0;
    let mut reset_at: Option<Instant> = None;
    loop {
        let toxics = InForce::of(&proxy.active(dir, &mut rolls));
        if let Some(t) = toxics.timeout {
            // Nothing passes; close after `t` ms (0: never) unless the toxic goes away first.
            let wait = async {
                match t {
                    0 => std::future::pending::<()>().await,
                    t => tokio::time::sleep(Duration::from_millis(t)).await,
                }
            };
            tokio::select! {
                _ = wait => return End::Close,
                _ = changed.changed() => continue,
            }
        }
        match toxics.reset_peer {
            Some(t) => {
                reset_at.get_or_insert_with(|| Instant::now() + Duration::from_millis(t));
            }
            None => reset_at = None,
        }
        let reset = async { tokio::time::sleep_until(reset_at.expect("guarded")).await };
        let item = tokio::select! {
            it = rx.recv() => it,
            _ = changed.changed() => continue,
            _ = reset, if reset_at.is_some() => return End::Reset,
        };
        let (read_at, mut data) = match item {
            Some(Piece::Data(at, data)) => (at, data),
            Some(Piece::Reset) => return End::Reset,
            Some(Piece::Eof) | None => {
                if let Some(d) = toxics.slow_close {
                    tokio::time::sleep(Duration::from_millis(d)).await;
                }
                let _ = w.shutdown().await;
                return End::Eof;
            }
        };
        if let Some((latency, jitter)) = toxics.latency {
            tokio::time::sleep_until(read_at + jittered(latency, jitter)).await;
        }
        let mut last = false;
        if let Some(limit) = toxics.limit_data {
            let room = limit.saturating_sub(sent) as usize;
            if data.len() >= room {
                data = data.slice(..room);
                last = true;
            }
        }
        if write_shaped(&mut w, &data, toxics.slicer, toxics.bandwidth)
            .await
            .is_err()
        {
            return End::Close;
        }
        sent += data.len() as u64;
        if last {
            return End::Close;
        }
    }
}

/// Writes `data`, sliced and/or rate-limited.
async fn write_shaped<W: AsyncWrite + Unpin>(
    w: &mut W,
    data: &[u8],
    slicer: Option<(u64, u64, u64)>,
    rate_kb: Option<u64>,
) -> std::io::Result<()> {
    let mut rest = data;
    while !rest.is_empty() {
        let mut n = rest.len();
        if let Some((avg, var, _)) = slicer {
            let size = if var > 0 {
                fastrand::u64(avg - var..=avg + var)
            } else {
                avg
            };
            n = n.min(size.max(1) as usize);
        }
        if let Some(rate) = rate_kb {
            // Pieces of at most 1/20 s worth, each followed by its share of time.
            n = n.min(((rate * 1000) / 20).max(1) as usize);
        }
        w.write_all(&rest[..n]).await?;
        w.flush().await?;
        if let Some(rate) = rate_kb {
            tokio::time::sleep(Duration::from_secs_f64(n as f64 / (rate as f64 * 1000.0))).await;
        }
        if let Some((_, _, delay_us)) = slicer {
            if delay_us > 0 {
                tokio::time::sleep(Duration::from_micros(delay_us)).await;
            }
        }
        rest = &rest[n..];
    }
    Ok(())
}
