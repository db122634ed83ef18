//! The external dependency's stand-in: every request is answered `status` (200 by default)
//! with a tiny JSON after `delay`, and `GET /_stub/stats` (answered at once, not counted)
//! reports how many were answered. The `dependency-stub` binary serves it; tests spawn `run`
//! on `127.0.0.1:0`.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

/// The stub's own endpoint; every other path is the dependency.
pub const STATS_PATH: &str = "/_stub/stats";

#[derive(Debug, Clone, Copy)]
pub struct StubConfig {
    pub delay: Duration,
    pub status: StatusCode,
}

/// What `GET /_stub/stats` answers.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct StubStats {
    /// Requests received (counted on arrival, before the delay).
    pub requests: u64,
    pub delay_ms: u64,
    pub status: u16,
}

struct Stub {
    config: StubConfig,
    requests: AtomicU64,
}

/// Serves the stub on `listener` until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    config: StubConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stub = Arc::new(Stub {
        config,
        requests: AtomicU64::new(0),
    });
    let app = Router::new()
        .route(STATS_PATH, get(stats))
        .fallback(answer)
        .with_state(stub);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn answer(State(stub): State<Arc<Stub>>) -> (StatusCode, Json<serde_json::Value>) {
    let n = stub.requests.fetch_add(1, Relaxed) + 1;
    tokio::time::sleep(stub.config.delay).await;
    let ok = stub.config.status.is_success();
    let body = serde_json::json!({ "ok": ok, "request": n });
    (stub.config.status, Json(body))
}

async fn stats(State(stub): State<Arc<Stub>>) -> Json<StubStats> {
    Json(StubStats {
        requests: stub.requests.load(Relaxed),
        delay_ms: stub.config.delay.as_millis() as u64,
        status: stub.config.status.as_u16(),
    })
}
