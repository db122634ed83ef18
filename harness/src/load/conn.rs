//! One client connection: TCP, then TLS when the origin is `https`, then an HTTP/1.1 or HTTP/2
//! handshake. The TCP stream is wrapped in [`Metered`] below TLS, so `data_sent` and
//! `data_received` count wire bytes (as k6 does) and the time of the last write tells when a
//! request was sent.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::metrics::{Proto, Traffic};

/// Where requests go: scheme, host and port, the pool's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    pub https: bool,
    pub host: String,
    pub port: u16,
}

impl Origin {
    pub fn of(uri: &http::Uri) -> Option<Origin> {
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return None,
        };
        let host = uri.host().filter(|h| !h.is_empty())?.to_owned();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        Some(Origin { https, host, port })
    }

    /// `host:port` for connecting (IPv6 hosts keep their brackets).
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

/// A TCP stream that counts bytes into the run's [`Traffic`] and notes its last write.
pub struct Metered {
    inner: TcpStream,
    traffic: Arc<Traffic>,
    clock: Clock,
}

/// When a connection last wrote, as nanoseconds after the client's epoch (0: never).
#[derive(Clone)]
pub struct Clock {
    epoch: Instant,
    wrote: Arc<AtomicU64>,
}

impl Clock {
    pub fn new(epoch: Instant) -> Clock {
        Clock {
            epoch,
            wrote: Arc::new(AtomicU64::new(0)),
        }
    }

    fn mark(&self) {
        let nanos = self.epoch.elapsed().as_nanos() as u64;
        self.wrote.store(nanos.max(1), Relaxed);
    }

    /// The last write, if any.
    pub fn last_write(&self) -> Option<Instant> {
        match self.wrote.load(Relaxed) {
            0 => None,
            n => Some(self.epoch + Duration::from_nanos(n)),
        }
    }
}

impl AsyncRead for Metered {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            self.traffic.received.fetch_add(n as u64, Relaxed);
        }
        r
    }
}

impl AsyncWrite for Metered {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            self.traffic.sent.fetch_add(n as u64, Relaxed);
            self.clock.mark();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = r {
            self.traffic.sent.fetch_add(n as u64, Relaxed);
            self.clock.mark();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

pub type H1 = http1::SendRequest<Full<Bytes>>;
pub type H2 = http2::SendRequest<Full<Bytes>>;

/// A connection's request side.
pub enum Sender {
    H1(H1),
    H2(H2),
}

/// A new connection and what it took.
pub struct Opened {
    pub sender: Sender,
    pub clock: Clock,
    pub connecting: Duration,
    pub tls_handshaking: Duration,
}

/// An HTTP/2 connection shared by many requests at once.
#[derive(Clone)]
pub struct Shared {
    pub sender: H2,
    pub clock: Clock,
    /// Requests on it now: a new connection is opened when every one is at its stream limit.
    pub in_flight: Arc<AtomicUsize>,
}

/// Why a connection could not be opened.
#[derive(Debug)]
pub enum OpenError {
    Connect(String),
    Tls(String),
}

/// How the client connects: TLS settings and which protocol to speak.
pub struct Dialer {
    /// Built at the first `https` connection: reading the system's roots costs a plain-HTTP
    /// run CPU for nothing.
    pub tls: std::sync::OnceLock<Result<Arc<rustls::ClientConfig>, String>>,
    pub dir: std::path::PathBuf,
    pub tls_spec: crate::tls::TlsSpec,
    pub version: crate::tls::HttpVersion,
    pub traffic: Arc<Traffic>,
    pub epoch: Instant,
    pub connect_timeout: Duration,
}

impl Dialer {
    pub async fn open(&self, origin: &Origin) -> Result<Opened, OpenError> {
        let secs = self.connect_timeout.as_secs();
        let started = Instant::now();
        let tcp = tokio::time::timeout(self.connect_timeout, TcpStream::connect(origin.addr()))
            .await
            .map_err(|_| OpenError::Connect(format!("no connection within {secs} s")))?
            .map_err(|e| OpenError::Connect(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let connecting = started.elapsed();
        let clock = Clock::new(self.epoch);
        let io = Metered {
            inner: tcp,
            traffic: self.traffic.clone(),
            clock: clock.clone(),
        };
        let hs = |e: hyper::Error| OpenError::Connect(format!("HTTP handshake: {e}"));
        use crate::tls::HttpVersion;
        if !origin.https {
            let sender = match self.version {
                HttpVersion::Http2 => Sender::H2(h2(io).await.map_err(hs)?),
                _ => Sender::H1(h1(io).await.map_err(hs)?),
            };
            return Ok(Opened {
                sender,
                clock,
                connecting,
                tls_handshaking: Duration::ZERO,
            });
        }
        let tls_started = Instant::now();
        let name = crate::tls::server_name(&self.tls_spec, &origin.host)
            .map_err(|e| OpenError::Tls(e.message))?;
        let config = self.tls.get_or_init(|| {
            let alpn = Dialer::alpn(self.version);
            crate::tls::client_config(&self.tls_spec, &self.dir, alpn).map_err(|e| e.message)
        });
        let config = config.clone().map_err(OpenError::Tls)?;
        let connector = tokio_rustls::TlsConnector::from(config);
        let left = self.connect_timeout.saturating_sub(connecting);
        let stream = tokio::time::timeout(left, connector.connect(name, io))
            .await
            .map_err(|_| OpenError::Tls(format!("no TLS handshake within {secs} s")))?
            .map_err(|e| OpenError::Tls(crate::tls::io_words(&e).unwrap_or(e.to_string())))?;
        let tls_handshaking = tls_started.elapsed();
        let negotiated_h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
        let sender = match (self.version, negotiated_h2) {
            (HttpVersion::Http2, _) | (HttpVersion::Auto, true) => {
                Sender::H2(h2(stream).await.map_err(hs)?)
            }
            _ => Sender::H1(h1(stream).await.map_err(hs)?),
        };
        Ok(Opened {
            sender,
            clock,
            connecting,
            tls_handshaking,
        })
    }

    /// The ALPN protocols this dialer offers.
    pub fn alpn(version: crate::tls::HttpVersion) -> &'static [&'static [u8]] {
        match version {
            crate::tls::HttpVersion::Auto => &[b"h2", b"http/1.1"],
            crate::tls::HttpVersion::Http1 => &[b"http/1.1"],
            crate::tls::HttpVersion::Http2 => &[b"h2"],
        }
    }
}

async fn h1<T>(io: T) -> Result<H1, hyper::Error>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

async fn h2<T>(io: T) -> Result<H2, hyper::Error>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(io))
        .await?;
    tokio::spawn(conn);
    Ok(sender)
}

impl Sender {
    pub fn proto(&self) -> Proto {
        match self {
            Sender::H1(_) => Proto::Http1,
            Sender::H2(_) => Proto::Http2,
        }
    }
}
