//! The one HTTP client both executors send through, so a request's latency and outcome mean
//! the same thing whichever load model produced it. HTTP/1.1 on hyper's connection API with
//! our own keep-alive pool (a stack of ready connections per host): no redirects, no
//! decompression, no per-request pool bookkeeping beyond a mutex-guarded pop and push.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use crate::metrics::{ErrorKind, Outcome};

type Conn = SendRequest<Full<Bytes>>;

#[derive(Clone, Default)]
pub struct HttpClient {
    idle: Arc<Mutex<HashMap<String, Vec<Conn>>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("connect to {0}: {1}")]
    Connect(String, String),
    #[error("{0}")]
    Http(#[from] hyper::Error),
    #[error("{0}")]
    Request(String),
}

/// Why [`HttpClient::reachable`] got no HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum ReachError {
    #[error("bad URL {url}: {source}")]
    Url {
        url: String,
        source: http::uri::InvalidUri,
    },
    /// Connecting or the HTTP exchange failed.
    #[error(transparent)]
    Send(#[from] SendError),
    #[error("no answer within {secs} s")]
    Timeout { secs: u64 },
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl HttpClient {
    pub fn new() -> HttpClient {
        HttpClient::default()
    }

    fn checkout(&self, authority: &str) -> Option<Conn> {
        let mut idle = self.idle.lock().expect("pool lock");
        let list = idle.get_mut(authority)?;
        while let Some(c) = list.pop() {
            if !c.is_closed() {
                return Some(c);
            }
        }
        None
    }

    fn checkin(&self, authority: &str, c: Conn) {
        if !c.is_closed() {
            self.idle
                .lock()
                .expect("pool lock")
                .entry(authority.to_owned())
                .or_default()
                .push(c);
        }
    }

    async fn connect(authority: &str) -> Result<Conn, SendError> {
        let err = |e: String| SendError::Connect(authority.to_owned(), e);
        let stream =
            tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(authority))
                .await
                .map_err(|_| {
                    err(format!(
                        "no connection within {} s",
                        CONNECT_TIMEOUT.as_secs()
                    ))
                })?
                .map_err(|e| err(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| err(e.to_string()))?;
        tokio::spawn(conn);
        Ok(sender)
    }

    /// One request on a pooled (or new) connection; the body is drained so the connection can
    /// be reused, then it goes back to the pool.
    async fn roundtrip(&self, mut req: http::Request<Full<Bytes>>) -> Result<u16, SendError> {
        let uri = req.uri().clone();
        let authority = uri
            .authority()
            .ok_or_else(|| SendError::Request(format!("URL {uri} has no host")))?
            .to_string();
        let authority = if uri.port().is_some() {
            authority
        } else {
            format!("{authority}:80")
        };
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
        let mut conn = match self.checkout(&authority) {
            Some(c) => c,
            None => Self::connect(&authority).await?,
        };
        conn.ready().await?;
        let resp = conn.send_request(req).await?;
        let status = resp.status().as_u16();
        let mut body = resp.into_body();
        while let Some(frame) = body.frame().await {
            frame?;
        }
        self.checkin(&authority, conn);
        Ok(status)
    }

    /// Sends `req` and reads the whole body. The latency runs from `started` (the intended
    /// start for open-model arrivals) to the last body byte; `expect` decides `ok` (empty:
    /// 200–399, as k6's default expected statuses).
    pub async fn send(
        &self,
        req: http::Request<Full<Bytes>>,
        timeout: Duration,
        started: Instant,
        expect: &[u16],
    ) -> Outcome {
        let result = tokio::time::timeout(timeout, self.roundtrip(req)).await;
        let latency = started.elapsed();
        match result {
            Ok(Ok(status)) => {
                let ok = if expect.is_empty() {
                    (200..400).contains(&status)
                } else {
                    expect.contains(&status)
                };
                Outcome {
                    status: Some(status),
                    error: None,
                    latency,
                    ok,
                }
            }
            Ok(Err(SendError::Connect(..))) => Outcome {
                status: None,
                error: Some(ErrorKind::Connect),
                latency,
                ok: false,
            },
            Ok(Err(_)) => Outcome {
                status: None,
                error: Some(ErrorKind::Other),
                latency,
                ok: false,
            },
            Err(_) => Outcome {
                status: None,
                error: Some(ErrorKind::Timeout),
                latency,
                ok: false,
            },
        }
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
        match tokio::time::timeout(timeout, self.roundtrip(req)).await {
            Ok(Ok(status)) => Ok(status),
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
        let c = HttpClient::new();
        let req = http::Request::get(format!("http://127.0.0.1:{port}/"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let o = c
            .send(req, Duration::from_secs(2), Instant::now(), &[])
            .await;
        assert_eq!(o.error, Some(ErrorKind::Connect));
        let e = c
            .reachable(&format!("http://127.0.0.1:{port}"), Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("refused"), "{e}");
    }
}
