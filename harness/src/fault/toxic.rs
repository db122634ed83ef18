//! Toxiproxy's toxics as data: what each one does to a stream, in Toxiproxy's JSON shape
//! (`{"name","type","stream","toxicity","attributes":{…}}`) so its clients work unchanged.

use serde::{Deserialize, Serialize};

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
        }
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
            _ => Ok(()),
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
}
