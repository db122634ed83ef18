//! The live endpoint of `harness run --listen ADDR` (k6's REST API port, 6565): the dashboard
//! at `/`, `/metrics` in Prometheus text, `/api/run` and `/api/series` as JSON, the final
//! `report.html`, and the controls under `/api/control/`. The run publishes what the endpoint
//! serves once a second ([`Live`]); the endpoint never reads the recorder on a request, so a
//! scraper or an open dashboard costs the load nothing per request. Control requests become
//! [`control::Command`]s the run applies and journals (`run/live.rs`): this module changes
//! nothing itself.

pub mod control;
pub mod exposition;
pub mod status;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::{mpsc, oneshot, watch};

use control::{Command, Request};

/// `--listen ADDR` and the token that guards it.
#[derive(Debug, Clone)]
pub struct ListenSpec {
    pub addr: SocketAddr,
    /// `--listen-token`; generated when the address is not loopback and none was given.
    pub token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("--listen {addr}: {reason} (is another run or program using that port? pick another with --listen HOST:PORT)")]
    Bind { addr: SocketAddr, reason: String },
}

/// The bound listener and the token requests must carry (None: loopback without a token).
pub struct Bound {
    pub listener: tokio::net::TcpListener,
    pub addr: SocketAddr,
    pub token: Option<String>,
    /// Whether the token was generated here (then it is printed for the operator).
    pub generated: bool,
}

/// Binds `spec.addr` now, before anything else of the run happens, so a taken port is a usage
/// error that sends nothing. Any address other than loopback requires a token.
pub fn bind(spec: &ListenSpec) -> Result<Bound, ServeError> {
    let err = |e: std::io::Error| ServeError::Bind {
        addr: spec.addr,
        reason: e.to_string(),
    };
    let std = std::net::TcpListener::bind(spec.addr).map_err(err)?;
    std.set_nonblocking(true).map_err(err)?;
    let listener = tokio::net::TcpListener::from_std(std).map_err(err)?;
    let addr = listener.local_addr().map_err(err)?;
    let (token, generated) = match (&spec.token, addr.ip().is_loopback()) {
        (Some(t), _) => (Some(t.clone()), false),
        (None, true) => (None, false),
        (None, false) => (Some(new_token()), true),
    };
    Ok(Bound {
        listener,
        addr,
        token,
        generated,
    })
}

/// 32 hex digits from the OS's randomness (via fastrand's seed from it).
fn new_token() -> String {
    let mut rng = fastrand::Rng::new();
    (0..4).map(|_| format!("{:08x}", rng.u32(..))).collect()
}

/// What the endpoint serves, replaced by the run once a second.
#[derive(Default)]
pub struct Published {
    /// `/api/run`, serialised.
    pub status: Arc<String>,
    /// `/metrics`.
    pub metrics: Arc<String>,
    /// One JSON object per complete second, in order (`/api/series`).
    pub rows: Vec<(u64, Arc<String>)>,
    /// The probe series the dashboard charts.
    pub probe_series: Arc<String>,
    /// The final `report.html`, once written.
    pub report: Option<PathBuf>,
}

/// Shared between the run (which publishes and takes commands) and the endpoint.
pub struct Live {
    pub published: Mutex<Published>,
    token: Option<String>,
    commands: mpsc::Sender<(Command, oneshot::Sender<Result<String, String>>)>,
}

/// The run's end of the channel: commands with the place to answer each.
pub type Commands = mpsc::Receiver<(Command, oneshot::Sender<Result<String, String>>)>;

impl Live {
    pub fn new(token: Option<String>) -> (Arc<Live>, Commands) {
        let (tx, rx) = mpsc::channel(64);
        let live = Live {
            published: Mutex::default(),
            token,
            commands: tx,
        };
        (Arc::new(live), rx)
    }

    pub fn publish(&self, f: impl FnOnce(&mut Published)) {
        f(&mut self.published.lock().expect("published lock"));
    }

    fn authorized(&self, headers: &HeaderMap, query: Option<&str>) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        bearer.or(query).is_some_and(|t| same(t.trim(), token))
    }
}

/// Compares without stopping at the first difference, so timing tells nothing of the token.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0, |d, (x, y)| d | (x ^ y)) == 0
}

/// Serves the endpoint until `shutdown` flips.
pub async fn run(
    listener: tokio::net::TcpListener,
    live: Arc<Live>,
    mut shutdown: watch::Receiver<bool>,
) {
    let app = Router::new()
        .route("/", get(dashboard))
        .route("/metrics", get(metrics))
        .route("/api/run", get(status))
        .route("/api/series", get(series))
        .route("/report.html", get(report))
        .route("/api/control/{action}", post(command))
        .with_state(live);
    let stop = async move {
        let _ = shutdown.wait_for(|s| *s).await;
    };
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await;
}

#[derive(serde::Deserialize, Default)]
struct Params {
    since: Option<u64>,
    token: Option<String>,
}

const DASHBOARD: &str = include_str!("dashboard.html");

async fn dashboard() -> Response {
    let headers = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        // The page fetches only its own origin; nothing else may load.
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:",
        ),
    ];
    (headers, DASHBOARD).into_response()
}

fn unauthorized() -> Response {
    let body = r#"{"error":"missing or wrong bearer token (Authorization: Bearer TOKEN)"}"#;
    let headers = [
        (header::CONTENT_TYPE, "application/json"),
        (header::WWW_AUTHENTICATE, "Bearer"),
    ];
    (StatusCode::UNAUTHORIZED, headers, body).into_response()
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn metrics(State(live): State<Arc<Live>>, q: Query<Params>, h: HeaderMap) -> Response {
    if !live.authorized(&h, q.token.as_deref()) {
        return unauthorized();
    }
    let text = live
        .published
        .lock()
        .expect("published lock")
        .metrics
        .clone();
    let ct = "text/plain; version=0.0.4; charset=utf-8";
    ([(header::CONTENT_TYPE, ct)], text.to_string()).into_response()
}

async fn status(State(live): State<Arc<Live>>, q: Query<Params>, h: HeaderMap) -> Response {
    if !live.authorized(&h, q.token.as_deref()) {
        return unauthorized();
    }
    let body = live
        .published
        .lock()
        .expect("published lock")
        .status
        .clone();
    json(StatusCode::OK, body.to_string())
}

async fn series(State(live): State<Arc<Live>>, q: Query<Params>, h: HeaderMap) -> Response {
    if !live.authorized(&h, q.token.as_deref()) {
        return unauthorized();
    }
    let since = q.since.unwrap_or(0);
    let p = live.published.lock().expect("published lock");
    let rows: Vec<&str> = p
        .rows
        .iter()
        .filter(|(s, _)| *s >= since)
        .map(|(_, r)| r.as_str())
        .collect();
    let body = format!(
        r#"{{"rows":[{}],"probe_series":{}}}"#,
        rows.join(","),
        match p.probe_series.is_empty() {
            true => "[]",
            false => p.probe_series.as_str(),
        }
    );
    drop(p);
    json(StatusCode::OK, body)
}

async fn report(State(live): State<Arc<Live>>, q: Query<Params>, h: HeaderMap) -> Response {
    if !live.authorized(&h, q.token.as_deref()) {
        return unauthorized();
    }
    let path = live
        .published
        .lock()
        .expect("published lock")
        .report
        .clone();
    let Some(path) = path else {
        let msg = r#"{"error":"the run has not written its report yet"}"#;
        return json(StatusCode::NOT_FOUND, msg.to_owned());
    };
    match tokio::fs::read_to_string(&path).await {
        Ok(html) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response(),
        Err(e) => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({ "error": format!("{}: {e}", path.display()) }).to_string(),
        ),
    }
}

async fn command(
    State(live): State<Arc<Live>>,
    axum::extract::Path(action): axum::extract::Path<String>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
    q: Query<Params>,
    h: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !live.authorized(&h, q.token.as_deref()) {
        return unauthorized();
    }
    let from = peer.to_string();
    let bad = |e: String| {
        json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({ "error": e }).to_string(),
        )
    };
    let cmd = match Request::parse(&action, &body) {
        Ok(req) => Command { req, from },
        Err(e) => return bad(e),
    };
    let (tx, rx) = oneshot::channel();
    if live.commands.send((cmd, tx)).await.is_err() {
        return json(
            StatusCode::CONFLICT,
            r#"{"error":"the run is no longer taking commands"}"#.to_owned(),
        );
    }
    match tokio::time::timeout(std::time::Duration::from_secs(10), rx).await {
        Ok(Ok(Ok(done))) => json(
            StatusCode::OK,
            serde_json::json!({ "ok": true, "done": done }).to_string(),
        ),
        Ok(Ok(Err(e))) => bad(e),
        _ => json(
            StatusCode::CONFLICT,
            r#"{"error":"the run ended before it took the command"}"#.to_owned(),
        ),
    }
}
