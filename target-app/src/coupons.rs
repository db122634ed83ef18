//! `POST /api/coupons/{id}/issue`: accept a first-come-first-served coupon request.
//!
//! The API only checks the coupon exists and hands the request to Kafka keyed by user (so one
//! user's requests stay ordered on one partition); the consumer decides. A 202 means the broker
//! acknowledged the record; a producer failure or timeout is a 503, as in the incident, and the
//! request is recorded as withdrawn so a late copy on the topic is never decided.

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
    if let Err(e) = produce(&state.producer, &state.config.coupon_topic, &record).await {
        state.metrics.producer_errors.fetch_add(1, Relaxed);
        tracing::warn!(error = %e, "coupon request not delivered");
        if !decided_before_withdrawn(&state, &record).await {
            return Err(ApiError::unavailable(
                "producer_error",
                format!("coupon request not delivered to Kafka: {e}"),
            ));
        }
    }
    state.metrics.producer_sent.fetch_add(1, Relaxed);
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            request_id: record.request_id,
            status: "accepted",
        }),
    ))
}

/// A delivery timeout is ambiguous: the broker may have stored the record and the consumer
/// may decide it later (or already has). Before answering 503 the request is recorded as
/// `withdrawn`, which the consumer's already-decided check then skips; if the consumer got
/// there first, the request was delivered and decided, and the API answers 202 after all. So a
/// 503 never becomes a coupon, and every 202 has exactly one decision.
async fn decided_before_withdrawn(state: &AppState, record: &CouponRequest) -> bool {
    let (pool, r) = (state.db.pool.clone(), record.clone());
    // Its own task: the withdrawal completes even if the client hangs up and this handler is
    // dropped; retried, because a lock wait behind the consumer's batch can time out.
    let task = tokio::spawn(async move {
        let mut last = None;
        for attempt in 0..5u64 {
            let withdrawn = sqlx::query(
                "INSERT IGNORE INTO coupon_requests \
                 (request_id, user_id, coupon_id, status, reason, accepted_at) \
                 VALUES (?, ?, ?, 'withdrawn', 'not_delivered', FROM_UNIXTIME(?))",
            )
            .bind(&r.request_id)
            .bind(r.user_id)
            .bind(r.coupon_id)
            .bind(r.accepted_at_ms as f64 / 1000.0)
            .execute(&pool)
            .await;
            match withdrawn {
                Ok(done) => return Ok(done.rows_affected() == 0),
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100 * (attempt + 1))).await;
        }
        Err(last.expect("five attempts failed"))
    });
    match task.await {
        Ok(Ok(decided)) => decided,
        Ok(Err(e)) => {
            // Unrecorded: a late copy may still be decided; the integrity check will tell.
            tracing::warn!(error = %e, "could not record a withdrawn coupon request");
            false
        }
        Err(e) => {
            tracing::error!(error = %e, "withdrawal task failed");
            false
        }
    }
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
