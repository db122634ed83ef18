//! The one HTTP client both executors send through, so a request's latency and outcome mean
//! the same thing whichever load model produced it. hyper directly (keep-alive pool, no
//! redirects, no decompression): the cheapest client per request we can build on.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

use crate::metrics::{ErrorKind, Outcome};

#[derive(Clone)]
pub struct HttpClient {
    inner: Client<HttpConnector, Full<Bytes>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient {
    pub fn new() -> HttpClient {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let inner = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector);
        HttpClient { inner }
    }

    /// Sends `req` and reads the whole body. The latency runs from `started` (the intended
    /// start for open-model arrivals) to the last body byte; `expect` decides `ok` (empty:
    /// 200–399, as k6's default expected statuses).
    pub async fn send(&self, req: http::Request<Full<Bytes>>, timeout: Duration, started: Instant, expect: &[u16]) -> Outcome {
        let result = tokio::time::timeout(timeout, async {
            let resp = self.inner.request(req).await?;
            let status = resp.status().as_u16();
            // Drain the body (without keeping it) so the connection goes back to the pool.
            let mut body = resp.into_body();
            while let Some(frame) = body.frame().await {
                if frame.is_err() {
                    break;
                }
            }
            Ok::<u16, hyper_util::client::legacy::Error>(status)
        })
        .await;
        let latency = started.elapsed();
        match result {
            Ok(Ok(status)) => {
                let ok = if expect.is_empty() { (200..400).contains(&status) } else { expect.contains(&status) };
                Outcome { status: Some(status), error: None, latency, ok }
            }
            Ok(Err(e)) => {
                let kind = if e.is_connect() { ErrorKind::Connect } else { ErrorKind::Other };
                Outcome { status: None, error: Some(kind), latency, ok: false }
            }
            Err(_) => Outcome { status: None, error: Some(ErrorKind::Timeout), latency, ok: false },
        }
    }

    /// True when something answers HTTP at `url` (any status), within `timeout`.
    pub async fn reachable(&self, url: &str, timeout: Duration) -> Result<u16, String> {
        let uri: http::Uri = url.parse().map_err(|e| format!("bad URL {url}: {e}"))?;
        let req = http::Request::get(uri).body(Full::new(Bytes::new())).expect("valid request");
        match tokio::time::timeout(timeout, self.inner.request(req)).await {
            Ok(Ok(r)) => Ok(r.status().as_u16()),
            Ok(Err(e)) => Err(format!("{e}{}", source_chain(&e))),
            Err(_) => Err(format!("no answer within {} s", timeout.as_secs())),
        }
    }
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut out = String::new();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}
