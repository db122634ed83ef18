//! Our async Toxiproxy client: drives an external Toxiproxy (or our own relay's API) and checks
//! every status code, so a rejected toxic (409 duplicate, 404 unknown proxy, 400 bad input) is
//! an error the journal sees, never a silently lost fault. Unlike `toxiproxy_rust` it is async
//! and safe to create and drop inside tokio.
//!
//! `create_http_proxy` uses our relay's extension (`"protocol": "http"`, which HTTP toxics
//! need); a real Toxiproxy ignores the field and makes a TCP proxy.

use std::time::Duration;

use serde_json::{json, Value};

use super::relay::{Protocol, ProxyView};
use super::toxic::Toxic;

#[derive(Debug, thiserror::Error)]
pub enum ToxiproxyError {
    #[error("Toxiproxy at {api} does not answer: {message}")]
    Unreachable { api: String, message: String },
    #[error("Toxiproxy {method} {path} answered {status}: {body}")]
    Status {
        method: &'static str,
        path: String,
        status: u16,
        body: String,
    },
    #[error("Toxiproxy {path}: unexpected answer: {message}")]
    Decode { path: String, message: String },
}

#[derive(Clone)]
pub struct ToxiproxyClient {
    api: String,
    http: reqwest::Client,
}

impl ToxiproxyClient {
    pub fn new(api: &str) -> ToxiproxyClient {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("http client");
        ToxiproxyClient {
            api: api.trim_end_matches('/').to_owned(),
            http,
        }
    }

    /// Sends one call; any status other than `ok` is an error carrying the body.
    async fn call(
        &self,
        method: &'static str,
        path: &str,
        body: Option<Value>,
        ok: u16,
    ) -> Result<Value, ToxiproxyError> {
        let url = format!("{}{path}", self.api);
        let req = match method {
            "GET" => self.http.get(&url),
            "DELETE" => self.http.delete(&url),
            _ => self.http.post(&url),
        };
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        let resp = req.send().await.map_err(|e| ToxiproxyError::Unreachable {
            api: self.api.clone(),
            message: e.to_string(),
        })?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        if status != ok {
            return Err(ToxiproxyError::Status {
                method,
                path: path.to_owned(),
                status,
                body: text,
            });
        }
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| ToxiproxyError::Decode {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    fn decode<T: serde::de::DeserializeOwned>(path: &str, v: Value) -> Result<T, ToxiproxyError> {
        serde_json::from_value(v).map_err(|e| ToxiproxyError::Decode {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    pub async fn version(&self) -> Result<String, ToxiproxyError> {
        let v = self.call("GET", "/version", None, 200).await?;
        Ok(v.get("version")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| v.to_string()))
    }

    /// Creates an enabled TCP proxy; returns the address it listens on.
    pub async fn create_proxy(
        &self,
        name: &str,
        listen: &str,
        upstream: &str,
    ) -> Result<String, ToxiproxyError> {
        let body = json!({ "name": name, "listen": listen, "upstream": upstream, "enabled": true });
        self.create(body, listen).await
    }

    /// Creates an enabled proxy whose upstream speaks HTTP/1.1, so HTTP toxics can act on its
    /// requests (our relay's extension); returns the address it listens on.
    pub async fn create_http_proxy(
        &self,
        name: &str,
        listen: &str,
        upstream: &str,
    ) -> Result<String, ToxiproxyError> {
        let body = json!({
            "name": name, "listen": listen, "upstream": upstream, "enabled": true,
            "protocol": Protocol::Http,
        });
        self.create(body, listen).await
    }

    async fn create(&self, body: Value, listen: &str) -> Result<String, ToxiproxyError> {
        let v = self.call("POST", "/proxies", Some(body), 201).await?;
        Ok(v.get("listen")
            .and_then(Value::as_str)
            .unwrap_or(listen)
            .to_owned())
    }

    pub async fn proxy(&self, name: &str) -> Result<ProxyView, ToxiproxyError> {
        let path = format!("/proxies/{name}");
        let v = self.call("GET", &path, None, 200).await?;
        Self::decode(&path, v)
    }

    pub async fn set_enabled(&self, name: &str, enabled: bool) -> Result<(), ToxiproxyError> {
        self.call(
            "POST",
            &format!("/proxies/{name}"),
            Some(json!({ "enabled": enabled })),
            200,
        )
        .await
        .map(|_| ())
    }

    /// Adds a toxic; Toxiproxy answers 200 with the toxic as stored.
    pub async fn add_toxic(&self, proxy: &str, toxic: &Toxic) -> Result<Toxic, ToxiproxyError> {
        let path = format!("/proxies/{proxy}/toxics");
        let body = serde_json::to_value(toxic).expect("toxic serialises");
        let v = self.call("POST", &path, Some(body), 200).await?;
        Self::decode(&path, v)
    }

    pub async fn remove_toxic(&self, proxy: &str, toxic: &str) -> Result<(), ToxiproxyError> {
        self.call(
            "DELETE",
            &format!("/proxies/{proxy}/toxics/{toxic}"),
            None,
            204,
        )
        .await
        .map(|_| ())
    }

    pub async fn delete_proxy(&self, name: &str) -> Result<(), ToxiproxyError> {
        self.call("DELETE", &format!("/proxies/{name}"), None, 204)
            .await
            .map(|_| ())
    }

    /// Every proxy enabled, every toxic removed.
    pub async fn reset(&self) -> Result<(), ToxiproxyError> {
        self.call("POST", "/reset", None, 204).await.map(|_| ())
    }
}
