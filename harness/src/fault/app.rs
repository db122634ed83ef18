//! A target's fault admin API, as `[actuators].app_faults` names it: GET answers a JSON object
//! of fault fields, POST sets some of them. Every status is checked.

use std::time::Duration;

use serde_json::Value;

/// Why a call to the app fault API failed; `request` is e.g. `GET http://…/faults`.
#[derive(Debug, thiserror::Error)]
pub enum ActuatorError {
    #[error("{request}: {message}")]
    Unreachable { request: String, message: String },
    #[error("{request} answered {status}: {body}")]
    Status {
        request: String,
        status: reqwest::StatusCode,
        body: String,
    },
    #[error("{request}: not JSON ({message})")]
    NotJson { request: String, message: String },
    #[error("{request}: expected a JSON object of fault fields, got {got}")]
    NotObject { request: String, got: Value },
}

#[derive(Clone)]
pub struct AppFaultApi {
    http: reqwest::Client,
}

impl AppFaultApi {
    pub fn new() -> AppFaultApi {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("http client");
        AppFaultApi { http }
    }

    /// The fault fields at `url`.
    pub async fn get(&self, url: &str) -> Result<Value, ActuatorError> {
        let request = format!("GET {url}");
        let unreachable = |e: reqwest::Error| ActuatorError::Unreachable {
            request: request.clone(),
            message: e.to_string(),
        };
        let resp = self.http.get(url).send().await.map_err(unreachable)?;
        let status = resp.status();
        let body = resp.text().await.map_err(unreachable)?;
        if !status.is_success() {
            return Err(ActuatorError::Status {
                request,
                status,
                body,
            });
        }
        let v: Value = serde_json::from_str(&body).map_err(|e| ActuatorError::NotJson {
            request: request.clone(),
            message: e.to_string(),
        })?;
        if !v.is_object() {
            return Err(ActuatorError::NotObject { request, got: v });
        }
        Ok(v)
    }

    /// Sets the fields in `body` (a partial update).
    pub async fn post(&self, url: &str, body: Value) -> Result<(), ActuatorError> {
        let resp = self.http.post(url).json(&body).send().await.map_err(|e| {
            ActuatorError::Unreachable {
                request: format!("POST {url}"),
                message: e.to_string(),
            }
        })?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            let request = format!("POST {url} {body}");
            return Err(ActuatorError::Status {
                request,
                status,
                body: text,
            });
        }
        Ok(())
    }
}
