//! The one HTTP client both executors send through, so a request's latency and outcome mean
//! the same thing whichever load model produced it. hyper's connection API with our own pool
//! per origin (scheme, host, port): a stack of idle HTTP/1.1 connections, and a few shared
//! HTTP/2 connections that multiplex streams. TLS by rustls ([`crate::tls`]); an `https` origin
//! is never spoken to in clear text and an `http` one is never upgraded.
//!
//! A request is two steps: [`HttpClient::send`] returns the response head (status, headers,
//! protocol), [`Response::finish`] reads or drains the body and returns the connection. The
//! caller decides in between (follow a redirect, keep the body for checks); see `plan.rs`.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};

use super::conn::{Clock, Dialer, OpenError, Origin, Sender, Shared, H1};
use crate::metrics::{ErrorKind, Phases, Proto, Traffic};
use crate::tls::{HttpVersion, TlsError, TlsSpec};

/// Streams on one HTTP/2 connection before another is opened (servers allow ≥ 100).
const STREAMS_PER_CONN: usize = 100;
/// HTTP/2 connections per origin at most.
const MAX_H2_CONNS: usize = 8;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Slot {
    idle: Vec<(H1, Clock)>,
    shared: Vec<Shared>,
}

type Pool = Arc<Mutex<HashMap<Origin, Slot>>>;

#[derive(Clone)]
pub struct HttpClient {
    pool: Pool,
    dialer: Arc<Dialer>,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("connect to {0}: {1}")]
    Connect(Origin, String),
    #[error("TLS with {0}: {1}")]
    Tls(Origin, String),
    #[error("{0}")]
    Http(#[from] hyper::Error),
    #[error("{0}")]
    Request(String),
    #[error("body longer than max_body ({max} bytes)")]
    BodyTooLarge { max: u64 },
}

impl SendError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SendError::Connect(..) => ErrorKind::Connect,
            SendError::Tls(..) => ErrorKind::Tls,
            SendError::BodyTooLarge { .. } => ErrorKind::BodyTooLarge,
            SendError::Http(_) | SendError::Request(_) => ErrorKind::Other,
        }
    }
}

/// Why [`HttpClient::reachable`] got no HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum ReachError {
    #[error("bad URL {url}: {source}")]
    Url {
        url: String,
        source: http::uri::InvalidUri,
    },
    /// Connecting, the TLS handshake or the HTTP exchange failed.
    #[error(transparent)]
    Send(#[from] SendError),
    #[error("no answer within {secs} s")]
    Timeout { secs: u64 },
}

/// The connection a response came on, returned to the pool when its body is done.
enum Lease {
    Own {
        sender: H1,
        clock: Clock,
        origin: Origin,
        pool: Pool,
    },
    Shared(SharedGuard),
}

/// One stream on a shared HTTP/2 connection; counted until dropped.
struct SharedGuard(Shared);

impl Drop for SharedGuard {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

impl Lease {
    fn clock(&self) -> &Clock {
        match self {
            Lease::Own { clock, .. } => clock,
            Lease::Shared(g) => &g.0.clock,
        }
    }

    fn give_back(self) {
        if let Lease::Own {
            sender,
            clock,
            origin,
            pool,
        } = self
        {
            if !sender.is_closed() {
                let mut pool = pool.lock().expect("pool lock");
                pool.entry(origin).or_default().idle.push((sender, clock));
            }
        }
    }
}

/// A response head; the body is still on the wire.
pub struct Response {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub proto: Proto,
    body: hyper::body::Incoming,
    lease: Lease,
    started: Instant,
    got: Instant,
    head: Instant,
    connecting: Duration,
    tls_handshaking: Duration,
}

/// A response read to its end.
pub struct Finished {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub proto: Proto,
    /// The body when asked for (`finish(Some(max))`).
    pub body: Option<Bytes>,
    pub phases: Phases,
    /// When the connection was in hand (k6's duration runs from here).
    pub got: Instant,
    pub done: Instant,
}

impl Response {
    /// Reads the body: kept up to `keep` bytes (longer is [`SendError::BodyTooLarge`] and the
    /// connection is closed), or drained and dropped; then the connection goes back.
    pub async fn finish(mut self, keep: Option<u64>) -> Result<Finished, SendError> {
        let mut kept = keep.map(|_| BytesMut::new());
        while let Some(frame) = self.body.frame().await {
            let frame = frame?;
            if let (Some(buf), Some(max), Ok(data)) = (kept.as_mut(), keep, frame.into_data()) {
                if (buf.len() + data.len()) as u64 > max {
                    // Dropping the lease closes an HTTP/1.1 connection mid-body.
                    return Err(SendError::BodyTooLarge { max });
                }
                buf.extend_from_slice(&data);
            }
        }
        let done = Instant::now();
        let wrote = self
            .lease
            .clock()
            .last_write()
            .filter(|w| *w >= self.got && *w <= self.head)
            .unwrap_or(self.got);
        let phases = Phases {
            blocked: self.got - self.started,
            connecting: self.connecting,
            tls_handshaking: self.tls_handshaking,
            sending: wrote - self.got,
            waiting: self.head - wrote,
            receiving: done - self.head,
        };
        self.lease.give_back();
        Ok(Finished {
            status: self.status,
            headers: self.headers,
            proto: self.proto,
            body: kept.map(BytesMut::freeze),
            phases,
            got: self.got,
            done,
        })
    }
}

impl Default for HttpClient {
    fn default() -> Self {
        HttpClient::new(
            &TlsSpec::default(),
            std::path::Path::new(""),
            HttpVersion::Auto,
            Default::default(),
        )
        .expect("default TLS settings load")
    }
}

impl HttpClient {
    /// A client with `[target.tls]` settings (paths relative to `dir`) speaking `version`,
    /// counting wire bytes into `traffic`.
    pub fn new(
        tls: &TlsSpec,
        dir: &std::path::Path,
        version: HttpVersion,
        traffic: Arc<Traffic>,
    ) -> Result<HttpClient, TlsError> {
        // The files are checked now (a file changed since validation is an error here); the
        // configuration with the system's roots is built at the first https connection.
        crate::tls::check_files(tls, dir)?;
        Ok(HttpClient {
            pool: Default::default(),
            dialer: Arc::new(Dialer {
                tls: Default::default(),
                dir: dir.to_owned(),
                tls_spec: tls.clone(),
                version,
                traffic,
                epoch: Instant::now(),
                connect_timeout: CONNECT_TIMEOUT,
            }),
        })
    }

    /// A pooled connection: a shared HTTP/2 one with room, else an idle HTTP/1.1 one. The
    /// origin moves into the lease (no copy per request) or comes back on a miss.
    fn checkout(&self, origin: Origin) -> Result<(Lease, Proto), Origin> {
        let mut pool = self.pool.lock().expect("pool lock");
        let Some(slot) = pool.get_mut(&origin) else {
            return Err(origin);
        };
        slot.shared.retain(|s| !s.sender.is_closed());
        let least = slot.shared.iter().min_by_key(|s| s.in_flight.load(Relaxed));
        if let Some(s) = least {
            let full = s.in_flight.load(Relaxed) >= STREAMS_PER_CONN;
            if !full || slot.shared.len() >= MAX_H2_CONNS {
                s.in_flight.fetch_add(1, Relaxed);
                return Ok((Lease::Shared(SharedGuard(s.clone())), Proto::Http2));
            }
            return Err(origin);
        }
        while let Some((sender, clock)) = slot.idle.pop() {
            if !sender.is_closed() {
                let lease = Lease::Own {
                    sender,
                    clock,
                    origin,
                    pool: self.pool.clone(),
                };
                return Ok((lease, Proto::Http1));
            }
        }
        Err(origin)
    }

    async fn open(&self, origin: Origin) -> Result<(Lease, Proto, Duration, Duration), SendError> {
        let opened = self.dialer.open(&origin).await.map_err(|e| match e {
            OpenError::Connect(m) => SendError::Connect(origin.clone(), m),
            OpenError::Tls(m) => SendError::Tls(origin.clone(), m),
        })?;
        let proto = opened.sender.proto();
        let lease = match opened.sender {
            Sender::H1(sender) => Lease::Own {
                sender,
                clock: opened.clock,
                origin,
                pool: self.pool.clone(),
            },
            Sender::H2(sender) => {
                let shared = Shared {
                    sender,
                    clock: opened.clock,
                    in_flight: Default::default(),
                };
                shared.in_flight.fetch_add(1, Relaxed);
                let mut pool = self.pool.lock().expect("pool lock");
                let slot = pool.entry(origin).or_default();
                if slot.shared.len() < MAX_H2_CONNS {
                    slot.shared.push(shared.clone());
                }
                Lease::Shared(SharedGuard(shared))
            }
        };
        Ok((lease, proto, opened.connecting, opened.tls_handshaking))
    }

    /// Sends `req` (an absolute URI) and returns the response head.
    pub async fn send(&self, mut req: http::Request<Full<Bytes>>) -> Result<Response, SendError> {
        let started = Instant::now();
        let uri = req.uri().clone();
        let origin = Origin::of(&uri)
            .ok_or_else(|| SendError::Request(format!("URL {uri} has no http(s) host")))?;
        // A pooled connection is in hand at once (one clock read less per request).
        let (mut lease, proto, connecting, tls_handshaking, got) = match self.checkout(origin) {
            Ok((lease, proto)) => (lease, proto, Duration::ZERO, Duration::ZERO, started),
            // Boxed: opening (TCP, TLS, h2 handshake) is the rare path, and inline it would
            // make every request's future several kB larger.
            Err(origin) => {
                let (lease, proto, c, t) = Box::pin(self.open(origin)).await?;
                (lease, proto, c, t, Instant::now())
            }
        };
        let resp = match &mut lease {
            Lease::Own { sender, .. } => {
                if !req.headers().contains_key(http::header::HOST) {
                    let host = http::HeaderValue::from_str(
                        uri.authority().map(|a| a.as_str()).unwrap_or_default(),
                    )
                    .map_err(|e| SendError::Request(e.to_string()))?;
                    req.headers_mut().insert(http::header::HOST, host);
                }
                // HTTP/1.1 on a connection wants the origin form: path and query only.
                *req.uri_mut() = uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/")
                    .parse()
                    .map_err(|e: http::uri::InvalidUri| SendError::Request(e.to_string()))?;
                sender.ready().await?;
                sender.send_request(req).await?
            }
            Lease::Shared(g) => {
                let mut sender = g.0.sender.clone();
                sender.ready().await?;
                sender.send_request(req).await?
            }
        };
        let head = Instant::now();
        let (parts, body) = resp.into_parts();
        Ok(Response {
            status: parts.status.as_u16(),
            headers: parts.headers,
            proto,
            body,
            lease,
            started,
            got,
            head,
            connecting,
            tls_handshaking,
        })
    }

    /// The status something answers HTTP at `url` with (any status counts), within `timeout`.
    pub async fn reachable(&self, url: &str, timeout: Duration) -> Result<u16, ReachError> {
        let uri: http::Uri = url.parse().map_err(|source| ReachError::Url {
            url: url.to_owned(),
            source,
        })?;
        let req = http::Request::get(uri)
            .body(Full::new(Bytes::new()))
            .expect("valid request");
        let answer = async { self.send(req).await?.finish(None).await };
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(f)) => Ok(f.status),
            Ok(Err(e)) => Err(ReachError::Send(e)),
            Err(_) => Err(ReachError::Timeout {
                secs: timeout.as_secs(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refused_connection_is_a_connect_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = HttpClient::default();
        let req = http::Request::get(format!("http://127.0.0.1:{port}/"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let e = c.send(req).await.err().unwrap();
        assert_eq!(e.kind(), ErrorKind::Connect);
        let e = c
            .reachable(&format!("http://127.0.0.1:{port}"), Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("refused"), "{e}");
    }
}
