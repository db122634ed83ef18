//! Toxiproxy's toxics as data: what each one does to a stream, in Toxiproxy's JSON shape
//! (`{"name","type","stream","toxicity","attributes":{…}}`) so its clients work unchanged.
//!
//! Extension (Toxiproxy issue #50): `http_status`, `http_latency` and `http_abort` act on the
//! HTTP/1.1 requests of a proxy created with `"protocol": "http"`, each limited to a `route`
//! (`"/api/cart"`: a path prefix, any method; `"POST /api/cart"`: method and prefix; empty:
//! every request). Their `toxicity` is the share of matching *requests* affected, rolled per
//! request; their `stream` only names them (they act on requests and their answers).

use serde::{Deserialize, Serialize};

use super::http::{HttpError, Route};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Client → upstream.
    Upstream,
    /// Upstream → client (Toxiproxy's default).
    #[default]
    Downstream,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "attributes", rename_all = "snake_case")]
pub enum Kind {
    /// Delay each chunk by `latency` ± `jitter` ms (pipelined: chunks are not serialised).
    Latency {
        #[serde(default)]
        latency: u64,
        #[serde(default)]
        jitter: u64,
    },
    /// At most `rate` KB/s.
    Bandwidth { rate: u64 },
    /// Delay the close by `delay` ms.
    SlowClose { delay: u64 },
    /// Stop all data; close after `timeout` ms (0: never, until the toxic is removed).
    Timeout { timeout: u64 },
    /// Reset the connection (TCP RST) after `timeout` ms.
    ResetPeer {
        #[serde(default)]
        timeout: u64,
    },
    /// Slice data into `average_size` ± `size_variation` byte pieces, `delay` µs apart.
    Slicer {
        average_size: u64,
        #[serde(default)]
        size_variation: u64,
        #[serde(default)]
        delay: u64,
    },
    /// Close the connection after `bytes` bytes.
    LimitData { bytes: u64 },
    /// HTTP proxies only: answer a matching request with `status` without forwarding it.
    HttpStatus {
        #[serde(default)]
        route: String,
        status: u16,
    },
    /// HTTP proxies only: forward a matching request `latency` ± `jitter` ms late.
    HttpLatency {
        #[serde(default)]
        route: String,
        #[serde(default)]
        latency: u64,
        #[serde(default)]
        jitter: u64,
    },
    /// HTTP proxies only: forward a matching request, then reset the connection (TCP RST) once
    /// `bytes` bytes of its response (head included) have passed.
    HttpAbort {
        #[serde(default)]
        route: String,
        #[serde(default)]
        bytes: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Toxic {
    pub name: String,
    #[serde(flatten)]
    pub kind: Kind,
    #[serde(default)]
    pub stream: Stream,
    #[serde(default = "one")]
    pub toxicity: f32,
}

fn one() -> f32 {
    1.0
}

impl Kind {
    pub fn type_name(&self) -> &'static str {
        match self {
            Kind::Latency { .. } => "latency",
            Kind::Bandwidth { .. } => "bandwidth",
            Kind::SlowClose { .. } => "slow_close",
            Kind::Timeout { .. } => "timeout",
            Kind::ResetPeer { .. } => "reset_peer",
            Kind::Slicer { .. } => "slicer",
            Kind::LimitData { .. } => "limit_data",
            Kind::HttpStatus { .. } => "http_status",
            Kind::HttpLatency { .. } => "http_latency",
            Kind::HttpAbort { .. } => "http_abort",
        }
    }

    /// The route of an HTTP toxic; `None` for the TCP ones.
    pub fn route(&self) -> Option<&str> {
        match self {
            Kind::HttpStatus { route, .. }
            | Kind::HttpLatency { route, .. }
            | Kind::HttpAbort { route, .. } => Some(route),
            _ => None,
        }
    }

    /// Whether this toxic acts on HTTP requests (and so needs an `http` proxy).
    pub fn is_http(&self) -> bool {
        self.route().is_some()
    }

    pub fn validate(&self) -> Result<(), ToxicError> {
        match self {
            Kind::Bandwidth { rate: 0 } => Err(ToxicError::ZeroRate),
            Kind::Slicer {
                average_size: 0, ..
            } => Err(ToxicError::ZeroAverageSize),
            Kind::Slicer {
                average_size,
                size_variation,
                ..
            } if size_variation >= average_size => Err(ToxicError::VariationTooLarge),
            // A 1xx is interim: the client would wait for a final answer that never comes.
            Kind::HttpStatus { status, .. } if !(200..=599).contains(status) => {
                Err(ToxicError::Status(*status))
            }
            _ => match self.route() {
                Some(route) => Route::parse(route).map(|_| ()).map_err(ToxicError::Route),
                None => Ok(()),
            },
        }
    }
}

/// Why a toxic is not one Toxiproxy would accept.
#[derive(Debug, thiserror::Error)]
pub enum ToxicError {
    #[error("bandwidth rate must be at least 1 KB/s")]
    ZeroRate,
    #[error("slicer average_size must be at least 1")]
    ZeroAverageSize,
    #[error("slicer size_variation must be smaller than average_size")]
    VariationTooLarge,
    #[error("http_status status {0} must be a final status, 200 to 599")]
    Status(u16),
    #[error("{0}")]
    Route(HttpError),
    /// A [`ToxicSpec`](super::action::ToxicSpec) direction other than upstream/downstream.
    #[error("toxic {toxic}: direction `{direction}` (use upstream or downstream)")]
    Direction { toxic: String, direction: String },
    /// A spec whose type or attributes are not Toxiproxy's JSON shape.
    #[error("toxic {toxic}: {source}")]
    Shape {
        toxic: String,
        source: serde_json::Error,
    },
    /// A spec that parsed but fails [`Kind::validate`] (`source` is one of the variants above).
    #[error("toxic {toxic}: {source}")]
    Invalid {
        toxic: String,
        source: Box<ToxicError>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toxiproxy_json_round_trips() {
        let t: Toxic = serde_json::from_str(r#"{"name":"lat","type":"latency","stream":"upstream","toxicity":0.5,"attributes":{"latency":200,"jitter":10}}"#).unwrap();
        assert_eq!(
            t.kind,
            Kind::Latency {
                latency: 200,
                jitter: 10
            }
        );
        assert_eq!(t.stream, Stream::Upstream);
        let back = serde_json::to_value(&t).unwrap();
        assert_eq!(back["type"], "latency");
        assert_eq!(back["attributes"]["latency"], 200);
        let d: Toxic =
            serde_json::from_str(r#"{"name":"r","type":"reset_peer","attributes":{}}"#).unwrap();
        assert_eq!((d.stream, d.toxicity), (Stream::Downstream, 1.0));
        assert!(
            serde_json::from_str::<Toxic>(r#"{"name":"x","type":"melt","attributes":{}}"#).is_err()
        );
    }

    #[test]
    fn http_toxics_have_toxiproxys_shape_and_are_validated() {
        let t: Toxic = serde_json::from_str(r#"{"name":"no_orders","type":"http_status","stream":"upstream","toxicity":0.1,"attributes":{"status":503,"route":"POST /api/orders"}}"#).unwrap();
        assert_eq!(
            t.kind,
            Kind::HttpStatus {
                route: "POST /api/orders".into(),
                status: 503
            }
        );
        assert_eq!(
            (t.kind.type_name(), t.kind.is_http()),
            ("http_status", true)
        );
        let back = serde_json::to_value(&t).unwrap();
        assert_eq!(back["attributes"]["route"], "POST /api/orders");
        let all: Toxic =
            serde_json::from_str(r#"{"name":"a","type":"http_abort","attributes":{}}"#).unwrap();
        assert_eq!(all.kind.route(), Some(""));
        assert!(all.kind.validate().is_ok());
        let bad = |kind: Kind| kind.validate().unwrap_err().to_string();
        let status = |status| Kind::HttpStatus {
            route: String::new(),
            status,
        };
        assert!(bad(status(99)).contains("200 to 599"));
        assert!(bad(status(100)).contains("200 to 599"));
        assert!(bad(status(600)).contains("200 to 599"));
        assert!(status(200).validate().is_ok() && status(599).validate().is_ok());
        let latency = |route: &str| Kind::HttpLatency {
            route: route.into(),
            latency: 10,
            jitter: 0,
        };
        assert!(bad(latency("api/orders")).contains("route"));
        assert!(bad(latency("POST")).contains("route"));
        assert!(latency("GET /").validate().is_ok());
        assert!(!Kind::LimitData { bytes: 1 }.is_http());
    }
}
