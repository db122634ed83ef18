//! Application-level fault knobs and the `/admin/faults` API that sets them.
//!
//! The harness's fault actuators drive these over HTTP: extra hold time inside the order
//! transaction (the incident's external call under the stock lock), extra delay per coupon
//! insert, and pausing the coupon consumer. `DELETE` restores all of them, which is what
//! rollback relies on.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::error::{parse_json, ApiError};
use crate::metrics::FaultSnapshot;
use crate::AppState;

#[derive(Default)]
pub struct Faults {
    pub order_hold_ms: AtomicU64,
    pub consumer_insert_delay_ms: AtomicU64,
    pub consumer_paused: AtomicBool,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FaultView {
    pub order_hold_ms: u64,
    pub consumer_insert_delay_ms: u64,
    pub consumer_paused: bool,
}

/// A partial update: fields left out keep their value.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultPatch {
    order_hold_ms: Option<u64>,
    consumer_insert_delay_ms: Option<u64>,
    consumer_paused: Option<bool>,
}

/// Upper bound on any injected delay, so a typo cannot wedge the app for hours.
const MAX_DELAY_MS: u64 = 600_000;

impl Faults {
    pub fn view(&self) -> FaultView {
        FaultView {
            order_hold_ms: self.order_hold_ms.load(Relaxed),
            consumer_insert_delay_ms: self.consumer_insert_delay_ms.load(Relaxed),
            consumer_paused: self.consumer_paused.load(Relaxed),
        }
    }
    pub fn snapshot(&self) -> FaultSnapshot {
        let v = self.view();
        FaultSnapshot {
            order_hold_ms: v.order_hold_ms,
            consumer_insert_delay_ms: v.consumer_insert_delay_ms,
            consumer_paused: v.consumer_paused,
        }
    }
    pub fn clear(&self) {
        self.order_hold_ms.store(0, Relaxed);
        self.consumer_insert_delay_ms.store(0, Relaxed);
        self.consumer_paused.store(false, Relaxed);
    }
}

pub async fn get(State(state): State<Arc<AppState>>) -> Json<FaultView> {
    Json(state.faults.view())
}

pub async fn post(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Json<FaultView>, ApiError> {
    let patch: FaultPatch = parse_json(&body)?;
    for (name, v) in [
        ("order_hold_ms", patch.order_hold_ms),
        ("consumer_insert_delay_ms", patch.consumer_insert_delay_ms),
    ] {
        if v.is_some_and(|v| v > MAX_DELAY_MS) {
            return Err(ApiError::bad_request(format!(
                "{name} must be at most {MAX_DELAY_MS}"
            )));
        }
    }
    let f = &state.faults;
    if let Some(v) = patch.order_hold_ms {
        f.order_hold_ms.store(v, Relaxed);
    }
    if let Some(v) = patch.consumer_insert_delay_ms {
        f.consumer_insert_delay_ms.store(v, Relaxed);
    }
    if let Some(v) = patch.consumer_paused {
        f.consumer_paused.store(v, Relaxed);
    }
    tracing::warn!(faults = ?f.view(), "faults changed");
    Ok(Json(f.view()))
}

pub async fn delete(State(state): State<Arc<AppState>>) -> Json<FaultView> {
    state.faults.clear();
    tracing::warn!("faults cleared");
    Json(state.faults.view())
}
