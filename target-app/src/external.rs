//! The order's external dependency, called inside the order transaction.
//!
//! With `--external-url` every order POSTs its id, product and quantity there and fails with
//! 502 unless the answer is 2xx; without it the call is simulated by sleeping
//! `--external-call-ms`. Either way the stock lock and the connection are held for the call's
//! whole duration, which is what the incident's pool could not afford.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde::Serialize;

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::Config;

#[derive(Debug, thiserror::Error)]
pub enum ExternalSetupError {
    #[error("--external-url {url}: {reason}")]
    Url { url: String, reason: String },
    #[error("HTTP client for the external dependency: {0}")]
    Client(#[from] reqwest::Error),
}

/// What the dependency is told about an order.
#[derive(Debug, Serialize)]
pub struct OrderCall {
    pub order_id: u64,
    pub product_id: u64,
    pub quantity: u32,
}

pub struct External {
    target: Target,
    metrics: Arc<Metrics>,
}

enum Target {
    Simulated(Duration),
    Http {
        client: reqwest::Client,
        url: reqwest::Url,
    },
}

impl External {
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> Result<Self, ExternalSetupError> {
        let target = match &config.external_url {
            None => Target::Simulated(Duration::from_millis(config.external_call_ms)),
            Some(url) => Target::Http {
                // A bad URL is a start-up error, not a 502 on every order.
                url: reqwest::Url::parse(url).map_err(|e| ExternalSetupError::Url {
                    url: url.clone(),
                    reason: e.to_string(),
                })?,
                client: reqwest::Client::builder()
                    .timeout(Duration::from_millis(config.external_timeout_ms))
                    .build()?,
            },
        };
        Ok(Self { target, metrics })
    }

    /// Makes the call (or its simulation); an `Err` is the order's answer.
    pub async fn call(&self, order: &OrderCall) -> Result<(), ApiError> {
        let (client, url) = match &self.target {
            Target::Simulated(d) => {
                if !d.is_zero() {
                    tokio::time::sleep(*d).await;
                }
                return Ok(());
            }
            Target::Http { client, url } => (client, url),
        };
        let started = Instant::now();
        let result = post(client, url, order).await;
        self.metrics
            .observe_external(started.elapsed(), result.is_ok());
        result.map_err(|message| {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "external_dependency_failed",
                message,
            )
        })
    }
}

/// One POST; the body is read to its end so the connection goes back to the pool.
async fn post(
    client: &reqwest::Client,
    url: &reqwest::Url,
    order: &OrderCall,
) -> Result<(), String> {
    let failed = |e: reqwest::Error| format!("{url}: {}", describe(&e.without_url()));
    let r = client
        .post(url.clone())
        .json(order)
        .send()
        .await
        .map_err(failed)?;
    let status = r.status();
    let body = r.text().await.map_err(failed)?;
    if status.is_success() {
        return Ok(());
    }
    let body: String = body.chars().take(200).collect();
    Err(format!("{url} answered {status}: {body}"))
}

/// reqwest's error with its causes, which hold the useful part ("connection refused").
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out (--external-timeout-ms)".to_owned();
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
