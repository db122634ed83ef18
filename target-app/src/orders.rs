//! `POST /api/orders`: the incident's order path.
//!
//! One transaction: `SELECT … FOR UPDATE` on the product's inventory row (pessimistic lock),
//! then the simulated external call *inside* the transaction, then decrement and insert. The
//! connection is held for lock wait + external call, which is what exhausted the pool.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::error::{parse_json, ApiError};
use crate::AppState;

/// Largest quantity one order may ask for.
pub const MAX_QUANTITY: u32 = 1_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderRequest {
    user_id: u64,
    product_id: u64,
    quantity: u32,
}

#[derive(Debug, Serialize)]
pub struct OrderCreated {
    pub order_id: u64,
    pub product_id: u64,
    pub quantity: u32,
    pub total_amount: i64,
    pub remaining_stock: i64,
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<(StatusCode, Json<OrderCreated>), ApiError> {
    let req: OrderRequest = parse_json(&body)?;
    if req.user_id == 0 || req.product_id == 0 {
        return Err(ApiError::bad_request(
            "user_id and product_id must be positive",
        ));
    }
    if req.quantity == 0 || req.quantity > MAX_QUANTITY {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_quantity",
            format!("quantity must be between 1 and {MAX_QUANTITY}"),
        ));
    }
    let db = &state.db;
    let mut tx = db.begin().await?;
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT i.stock_quantity, p.price FROM inventories i JOIN products p ON p.id = i.product_id \
         WHERE i.product_id = ? FOR UPDATE",
    )
    .bind(req.product_id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(|e| db.classify(e))?;
    let Some((stock, price)) = row else {
        return Err(ApiError::not_found(
            "unknown_product",
            format!("product {} does not exist", req.product_id),
        ));
    };
    let qty = i64::from(req.quantity);
    if stock < qty {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "out_of_stock",
            format!("product {} has {stock} left", req.product_id),
        ));
    }
    // The incident's external API call, made while the row lock and the connection are held.
    let hold = state.config.external_call_ms + state.faults.order_hold_ms.load(Relaxed);
    if hold > 0 {
        tokio::time::sleep(Duration::from_millis(hold)).await;
    }
    sqlx::query("UPDATE inventories SET stock_quantity = stock_quantity - ? WHERE product_id = ?")
        .bind(qty)
        .bind(req.product_id)
        .execute(&mut *tx)
        .await
        .map_err(|e| db.classify(e))?;
    let total = price * qty;
    let done = sqlx::query(
        "INSERT INTO orders (user_id, product_id, quantity, total_amount) VALUES (?, ?, ?, ?)",
    )
    .bind(req.user_id)
    .bind(req.product_id)
    .bind(req.quantity)
    .bind(total)
    .execute(&mut *tx)
    .await
    .map_err(|e| db.classify(e))?;
    tx.commit().await.map_err(|e| db.classify(e))?;
    Ok((
        StatusCode::CREATED,
        Json(OrderCreated {
            order_id: done.last_insert_id(),
            product_id: req.product_id,
            quantity: req.quantity,
            total_amount: total,
            remaining_stock: stock - qty,
        }),
    ))
}
