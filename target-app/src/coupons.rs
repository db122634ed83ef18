//! `POST /api/coupons/{id}/issue`: accept a first-come-first-served coupon request.
//!
//! The API only checks the coupon exists and hands the request to Kafka keyed by user (so one
//! user's requests stay ordered on one partition); the consumer decides. A 202 means the broker
//! acknowledged the record; a producer failure or timeout is a 503, as in the incident.

use std::collections::HashSet;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::{Deserialize, Serialize};

use crate::error::{parse_json, ApiError};
use crate::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueRequest {
    user_id: u64,
}

/// The record on the topic; the consumer's input.
#[derive(Debug, Serialize, Deserialize, Clone)]
pub struct CouponRequest {
    pub request_id: String,
    pub user_id: u64,
    pub coupon_id: u64,
    /// Milliseconds since the epoch when the API accepted the request.
    pub accepted_at_ms: u64,
}

#[derive(Debug, Serialize)]
pub struct Accepted {
    pub request_id: String,
    pub status: &'static str,
}

/// Coupon ids known to exist; coupons are never deleted, so a hit never goes stale.
#[derive(Default)]
pub struct KnownCoupons(RwLock<HashSet<u64>>);

pub async fn issue(
    State(state): State<Arc<AppState>>,
    Path(coupon_id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let coupon_id: u64 = coupon_id.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "coupon id must be a positive integer, got {coupon_id:?}"
        ))
    })?;
    let req: IssueRequest = parse_json(&body)?;
    if req.user_id == 0 {
        return Err(ApiError::bad_request("user_id must be positive"));
    }
    ensure_coupon_exists(&state, coupon_id).await?;
    let record = CouponRequest {
        request_id: uuid::Uuid::new_v4().to_string(),
        user_id: req.user_id,
        coupon_id,
        accepted_at_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
    };
    produce(&state.producer, &state.config.coupon_topic, &record)
        .await
        .map_err(|e| {
            state.metrics.producer_errors.fetch_add(1, Relaxed);
            tracing::warn!(error = %e, "coupon request not delivered");
            ApiError::unavailable(
                "producer_error",
                format!("coupon request not delivered to Kafka: {e}"),
            )
        })?;
    state.metrics.producer_sent.fetch_add(1, Relaxed);
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            request_id: record.request_id,
            status: "accepted",
        }),
    ))
}

async fn ensure_coupon_exists(state: &AppState, coupon_id: u64) -> Result<(), ApiError> {
    if state
        .known_coupons
        .0
        .read()
        .expect("coupon cache")
        .contains(&coupon_id)
    {
        return Ok(());
    }
    let db = &state.db;
    let mut tx = db.begin().await?;
    let found: Option<(u64,)> = sqlx::query_as("SELECT id FROM coupons WHERE id = ?")
        .bind(coupon_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| db.classify(e))?;
    tx.commit().await.map_err(|e| db.classify(e))?;
    match found {
        Some(_) => {
            state
                .known_coupons
                .0
                .write()
                .expect("coupon cache")
                .insert(coupon_id);
            Ok(())
        }
        None => Err(ApiError::not_found(
            "unknown_coupon",
            format!("coupon {coupon_id} does not exist"),
        )),
    }
}

async fn produce(
    producer: &FutureProducer,
    topic: &str,
    record: &CouponRequest,
) -> Result<(), rdkafka::error::KafkaError> {
    let payload = serde_json::to_vec(record).expect("coupon request serialises");
    let key = record.user_id.to_string();
    producer
        .send(
            FutureRecord::to(topic).key(&key).payload(&payload),
            Duration::from_secs(0),
        )
        .await
        .map(|_| ())
        .map_err(|(e, _)| e)
}
