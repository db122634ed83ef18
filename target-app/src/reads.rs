//! The read side: `GET /api/orders/{id}`, `GET /api/products/{id}` (stock read through the same
//! pool as orders, so browsing stalls when orders exhaust it — "every API stopped answering")
//! and `GET /api/coupons/requests/{id}` (pending until the consumer decided, then issued or
//! rejected with the decision time: what a user waiting for a coupon sees).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;

use crate::error::ApiError;
use crate::AppState;

#[derive(Debug, Serialize)]
pub struct Order {
    pub order_id: u64,
    pub user_id: u64,
    pub product_id: u64,
    pub quantity: u32,
    pub total_amount: i64,
}

#[derive(Debug, Serialize)]
pub struct Product {
    pub product_id: u64,
    pub name: String,
    pub price: i64,
    pub stock: i64,
}

#[derive(Debug, Serialize)]
pub struct CouponRequestState {
    pub request_id: String,
    /// `pending`, `issued` or `rejected`.
    pub status: String,
    pub reason: Option<String>,
    /// Accepted → decided, in milliseconds (None while pending).
    pub decision_ms: Option<i64>,
}

fn id(raw: &str, what: &str) -> Result<u64, ApiError> {
    raw.parse().ok().filter(|v| *v > 0).ok_or_else(|| {
        ApiError::bad_request(format!("{what} id must be a positive integer, got {raw:?}"))
    })
}

pub async fn order(
    State(state): State<Arc<AppState>>,
    Path(raw): Path<String>,
) -> Result<Json<Order>, ApiError> {
    let order_id = id(&raw, "order")?;
    let db = &state.db;
    let mut tx = db.begin().await?;
    let row: Option<(u64, u64, u32, i64)> = sqlx::query_as(
        "SELECT user_id, product_id, quantity, total_amount FROM orders WHERE id = ?",
    )
    .bind(order_id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(|e| db.classify(e))?;
    tx.commit().await.map_err(|e| db.classify(e))?;
    let (user_id, product_id, quantity, total_amount) = row.ok_or_else(|| {
        ApiError::not_found("unknown_order", format!("order {order_id} does not exist"))
    })?;
    Ok(Json(Order {
        order_id,
        user_id,
        product_id,
        quantity,
        total_amount,
    }))
}

pub async fn product(
    State(state): State<Arc<AppState>>,
    Path(raw): Path<String>,
) -> Result<Json<Product>, ApiError> {
    let product_id = id(&raw, "product")?;
    let db = &state.db;
    let mut tx = db.begin().await?;
    let row: Option<(String, i64, i64)> = sqlx::query_as(
        "SELECT p.name, p.price, i.stock_quantity FROM products p \
         JOIN inventories i ON i.product_id = p.id WHERE p.id = ?",
    )
    .bind(product_id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(|e| db.classify(e))?;
    tx.commit().await.map_err(|e| db.classify(e))?;
    let (name, price, stock) = row.ok_or_else(|| {
        ApiError::not_found(
            "unknown_product",
            format!("product {product_id} does not exist"),
        )
    })?;
    Ok(Json(Product {
        product_id,
        name,
        price,
        stock,
    }))
}

pub async fn coupon_request(
    State(state): State<Arc<AppState>>,
    Path(request_id): Path<String>,
) -> Result<Json<CouponRequestState>, ApiError> {
    if uuid::Uuid::parse_str(&request_id).is_err() {
        return Err(ApiError::bad_request(format!(
            "request id must be a UUID, got {request_id:?}"
        )));
    }
    let db = &state.db;
    let mut tx = db.begin().await?;
    let row: Option<(String, Option<String>, i64)> = sqlx::query_as(
        "SELECT status, reason, \
         CAST(TIMESTAMPDIFF(MICROSECOND, accepted_at, decided_at) DIV 1000 AS SIGNED) \
         FROM coupon_requests WHERE request_id = ?",
    )
    .bind(&request_id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(|e| db.classify(e))?;
    tx.commit().await.map_err(|e| db.classify(e))?;
    // Not decided yet (or never accepted: the API cannot tell a lost request from a slow one,
    // which is what the user saw too).
    let state = match row {
        None => CouponRequestState {
            request_id,
            status: "pending".into(),
            reason: None,
            decision_ms: None,
        },
        Some((status, reason, ms)) => CouponRequestState {
            request_id,
            status,
            reason,
            decision_ms: Some(ms),
        },
    };
    Ok(Json(state))
}
