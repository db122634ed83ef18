//! Toxiproxy's HTTP API over our relay, so Toxiproxy clients (toxiproxy_rust, toxiproxy-cli,
//! the Go and Python clients) drive it unchanged: `/version`, `/proxies`, `/populate`,
//! `/reset`, `/proxies/{name}/toxics/…`, with Toxiproxy's status codes (201 created, 204 no
//! content, 404 unknown, 409 duplicate, 400 bad input). Served with `run(listener, shutdown)`.
//!
//! Extensions (clients that do not know them are unaffected): a proxy's JSON may carry
//! `"protocol": "http"` (default `"tcp"`, shown in every proxy view), and an http proxy takes
//! the toxic types `http_status`, `http_latency` and `http_abort` with a `route` attribute,
//! e.g. `{"name":"no_cart","type":"http_status","stream":"upstream","toxicity":0.1,
//! "attributes":{"status":503,"route":"POST /api/cart"}}`; on a tcp proxy they are a 400.

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;

use super::relay::{Protocol, Relay, RelayError};
use super::toxic::Toxic;

pub const VERSION: &str = "2.12.0";

impl IntoResponse for RelayError {
    fn into_response(self) -> Response {
        let status = match self {
            RelayError::ProxyExists(_) | RelayError::ToxicExists(_) => StatusCode::CONFLICT,
            RelayError::NoProxy(_) | RelayError::NoToxic(_) => StatusCode::NOT_FOUND,
            RelayError::Listen { .. } | RelayError::BadToxic(_) | RelayError::NotHttp { .. } => {
                StatusCode::BAD_REQUEST
            }
        };
        (
            status,
            Json(json!({ "error": self.to_string(), "status": status.as_u16() })),
        )
            .into_response()
    }
}

fn bad(message: impl std::fmt::Display) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": message.to_string(), "status": 400 })),
    )
        .into_response()
}

/// A request body as `T`; the error is the 400 to answer with (boxed: a `Response` is large).
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| Box::new(bad(format!("invalid JSON: {e}"))))
}

#[derive(Deserialize)]
struct NewProxy {
    name: String,
    listen: String,
    upstream: String,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    protocol: Protocol,
}

impl NewProxy {
    async fn create(&self, r: &Relay) -> Result<super::relay::ProxyView, RelayError> {
        r.create(
            &self.name,
            &self.listen,
            &self.upstream,
            self.enabled,
            self.protocol,
        )
        .await
    }
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct ProxyUpdate {
    enabled: Option<bool>,
}

#[derive(Deserialize)]
struct ToxicUpdate {
    attributes: Option<serde_json::Value>,
    toxicity: Option<f32>,
}

pub fn router(relay: Arc<Relay>) -> Router {
    Router::new()
        .route(
            "/version",
            get(|| async { Json(json!({ "version": VERSION })) }),
        )
        .route("/reset", post(reset))
        .route("/populate", post(populate))
        .route("/proxies", get(list).post(create))
        .route("/proxies/{proxy}", get(show).post(update).delete(remove))
        .route("/proxies/{proxy}/toxics", get(toxics).post(add_toxic))
        .route(
            "/proxies/{proxy}/toxics/{toxic}",
            get(show_toxic).post(update_toxic).delete(remove_toxic),
        )
        .with_state(relay)
}

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    relay: Arc<Relay>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(relay))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn reset(State(r): State<Arc<Relay>>) -> Result<StatusCode, RelayError> {
    r.reset().await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list(State(r): State<Arc<Relay>>) -> Response {
    Json(r.list()).into_response()
}

async fn create(State(r): State<Arc<Relay>>, body: Bytes) -> Response {
    let p: NewProxy = match parse(&body) {
        Ok(p) => p,
        Err(e) => return *e,
    };
    match p.create(&r).await {
        Ok(v) => (StatusCode::CREATED, Json(v)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Creates the proxies that do not exist yet; existing ones with the same name are kept.
async fn populate(State(r): State<Arc<Relay>>, body: Bytes) -> Response {
    let list: Vec<NewProxy> = match parse(&body) {
        Ok(l) => l,
        Err(e) => return *e,
    };
    let mut created = Vec::new();
    for p in list {
        match p.create(&r).await {
            Ok(v) => created.push(v),
            Err(RelayError::ProxyExists(_)) => created.push(r.get(&p.name).expect("exists").view()),
            Err(e) => return e.into_response(),
        }
    }
    (StatusCode::CREATED, Json(json!({ "proxies": created }))).into_response()
}

async fn show(State(r): State<Arc<Relay>>, Path(name): Path<String>) -> Response {
    match r.get(&name) {
        Ok(p) => Json(p.view()).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn update(State(r): State<Arc<Relay>>, Path(name): Path<String>, body: Bytes) -> Response {
    let u: ProxyUpdate = match parse(&body) {
        Ok(u) => u,
        Err(e) => return *e,
    };
    let p = match r.get(&name) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    if let Some(enabled) = u.enabled {
        if let Err(e) = p.set_enabled(enabled).await {
            return e.into_response();
        }
    }
    Json(p.view()).into_response()
}

async fn remove(
    State(r): State<Arc<Relay>>,
    Path(name): Path<String>,
) -> Result<StatusCode, RelayError> {
    r.delete(&name)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn toxics(State(r): State<Arc<Relay>>, Path(name): Path<String>) -> Response {
    match r.get(&name) {
        Ok(p) => Json(p.view().toxics).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn add_toxic(State(r): State<Arc<Relay>>, Path(name): Path<String>, body: Bytes) -> Response {
    let mut value: serde_json::Value = match parse(&body) {
        Ok(v) => v,
        Err(e) => return *e,
    };
    if value.get("name").is_none() {
        value["name"] = json!("");
    }
    if value.get("attributes").is_none() {
        value["attributes"] = json!({});
    }
    let t: Toxic = match serde_json::from_value(value) {
        Ok(t) => t,
        Err(e) => return bad(format!("invalid toxic: {e}")),
    };
    match r.get(&name).and_then(|p| p.add_toxic(t)) {
        Ok(t) => Json(t).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn show_toxic(
    State(r): State<Arc<Relay>>,
    Path((name, toxic)): Path<(String, String)>,
) -> Response {
    match r.get(&name).and_then(|p| p.toxic(&toxic)) {
        Ok(t) => Json(t).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn update_toxic(
    State(r): State<Arc<Relay>>,
    Path((name, toxic)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let u: ToxicUpdate = match parse(&body) {
        Ok(u) => u,
        Err(e) => return *e,
    };
    match r
        .get(&name)
        .and_then(|p| p.update_toxic(&toxic, u.attributes, u.toxicity))
    {
        Ok(t) => Json(t).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn remove_toxic(
    State(r): State<Arc<Relay>>,
    Path((name, toxic)): Path<(String, String)>,
) -> Result<StatusCode, RelayError> {
    r.get(&name)?.remove_toxic(&toxic)?;
    Ok(StatusCode::NO_CONTENT)
}
