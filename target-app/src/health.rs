//! `GET /actuator/health` (Spring's shape: overall status plus `db` and `kafka` components) and
//! `GET /metrics`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use rdkafka::consumer::Consumer;
use serde_json::json;

use crate::AppState;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn health(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let db = match tokio::time::timeout(
        CHECK_TIMEOUT,
        sqlx::query("SELECT 1").execute(&state.db.pool),
    )
    .await
    {
        Ok(Ok(_)) => json!({ "status": "UP" }),
        Ok(Err(e)) => json!({ "status": "DOWN", "error": e.to_string() }),
        Err(_) => json!({ "status": "DOWN", "error": "no connection within 2 s" }),
    };
    let s = state.clone();
    let kafka = tokio::task::spawn_blocking(move || {
        s.health_client
            .fetch_metadata(Some(&s.config.coupon_topic), CHECK_TIMEOUT)
            .map(|md| md.brokers().len())
    })
    .await;
    let kafka = match kafka {
        Ok(Ok(brokers)) => json!({ "status": "UP", "brokers": brokers }),
        Ok(Err(e)) => json!({ "status": "DOWN", "error": e.to_string() }),
        Err(e) => json!({ "status": "DOWN", "error": e.to_string() }),
    };
    let up = db["status"] == "UP" && kafka["status"] == "UP";
    let code = if up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if up { "UP" } else { "DOWN" },
        "components": { "db": db, "kafka": kafka },
        "config": &state.config,
    });
    (code, Json(body))
}

pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let text = state
        .metrics
        .render(&state.db.snapshot(), &state.faults.snapshot());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}
