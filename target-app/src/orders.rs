//! `POST /api/orders`: the incident's order path.
//!
//! One transaction: `SELECT … FOR UPDATE` on the product's inventory row (pessimistic lock),
//! decrement and insert, then the external call (`external.rs`) *inside* the transaction, then
//! commit. The connection is held for lock wait + external call, which is what exhausted the
//! pool. A failed call rolls the order back and answers 502.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use sqlx::{MySql, Transaction};

use crate::db::Db;
use crate::error::{parse_json, ApiError};
use crate::external::OrderCall;
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
    validate(&req)?;
    let db = &state.db;
    let mut tx = db.begin().await?;
    let (stock, price) = lock_stock(db, &mut tx, req.product_id).await?;
    let qty = i64::from(req.quantity);
    if stock < qty {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "out_of_stock",
            format!("product {} has {stock} left", req.product_id),
        ));
    }
    let total = price * qty;
    let order_id = write_order(db, &mut tx, &req, total).await?;
    // The incident's external API call, made while the row lock and the connection are held.
    // It comes after the writes so it can name the order; a failure rolls both back.
    let call = OrderCall {
        order_id,
        product_id: req.product_id,
        quantity: req.quantity,
    };
    if let Err(e) = state.external.call(&call).await {
        if let Err(r) = tx.rollback().await {
            tracing::warn!(error = %r, "rollback after a failed external call");
        }
        return Err(e);
    }
    let hold = state.faults.order_hold_ms.load(Relaxed);
    if hold > 0 {
        tokio::time::sleep(Duration::from_millis(hold)).await;
    }
    tx.commit().await.map_err(|e| db.classify(e))?;
    Ok((
        StatusCode::CREATED,
        Json(OrderCreated {
            order_id,
            product_id: req.product_id,
            quantity: req.quantity,
            total_amount: total,
            remaining_stock: stock - qty,
        }),
    ))
}

fn validate(req: &OrderRequest) -> Result<(), ApiError> {
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
    Ok(())
}

/// The pessimistic lock: (stock, price) of the product, its inventory row locked until the
/// transaction ends.
async fn lock_stock(
    db: &Db,
    tx: &mut Transaction<'static, MySql>,
    product_id: u64,
) -> Result<(i64, i64), ApiError> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT i.stock_quantity, p.price FROM inventories i JOIN products p ON p.id = i.product_id \
         WHERE i.product_id = ? FOR UPDATE",
    )
    .bind(product_id)
    .fetch_optional(&mut **tx)
    .await
    .map_err(|e| db.classify(e))?;
    row.ok_or_else(|| {
        ApiError::not_found(
            "unknown_product",
            format!("product {product_id} does not exist"),
        )
    })
}

/// Decrements the stock and inserts the order; returns the order's id.
async fn write_order(
    db: &Db,
    tx: &mut Transaction<'static, MySql>,
    req: &OrderRequest,
    total: i64,
) -> Result<u64, ApiError> {
    sqlx::query("UPDATE inventories SET stock_quantity = stock_quantity - ? WHERE product_id = ?")
        .bind(i64::from(req.quantity))
        .bind(req.product_id)
        .execute(&mut **tx)
        .await
        .map_err(|e| db.classify(e))?;
    let done = sqlx::query(
        "INSERT INTO orders (user_id, product_id, quantity, total_amount) VALUES (?, ?, ?, ?)",
    )
    .bind(req.user_id)
    .bind(req.product_id)
    .bind(req.quantity)
    .bind(total)
    .execute(&mut **tx)
    .await
    .map_err(|e| db.classify(e))?;
    Ok(done.last_insert_id())
}
