//! What a fault schedule can ask for, independent of who asked (a plugin today): the
//! vocabulary between `plugin::fault` (which validates plugin output into it) and `session`
//! (which carries it out).

use super::sql::Hold;
use super::toxic::{Kind, Stream, Toxic, ToxicError};

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Set a field of the app's fault admin API.
    SetAppFault {
        field: String,
        value: i64,
    },
    AddToxic(ToxicSpec),
    RemoveToxic {
        proxy: String,
        name: String,
    },
    SetHotShare {
        generator: String,
        share: f64,
    },
    /// Undo everything the asking plugin applied.
    RestoreAll,
    /// Hold locks or connections in `[actuators.sql.<database>]` (a fault agent does).
    Sql(SqlFault),
    /// Pause or kill a process of `[actuators.processes.<process>]`.
    Process {
        name: String,
        process: String,
        kill: bool,
    },
    /// An HTTP toxic on an http proxy of the relay.
    AddHttpToxic(HttpToxicSpec),
    /// End the sql or process fault `name` of the asking plugin.
    EndFault {
        name: String,
    },
}

/// A database fault: which database, and what the agent holds there.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlFault {
    pub name: String,
    pub database: String,
    pub hold: Hold,
}

/// An HTTP toxic as a plugin describes it (`kind`: status, latency or abort).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpToxicSpec {
    pub proxy: String,
    pub name: String,
    pub kind: String,
    pub route: String,
    pub toxicity: f64,
    pub status: u16,
    pub latency_ms: u32,
    pub bytes: u32,
}

impl HttpToxicSpec {
    /// The relay's toxic (`http_status`, `http_latency`, `http_abort` on the upstream stream),
    /// parsed by the same code as the relay API.
    pub fn to_toxic(&self) -> Result<Toxic, ToxicError> {
        let (kind, attributes) = match self.kind.as_str() {
            "status" => (
                "http_status",
                serde_json::json!({ "status": self.status, "route": self.route }),
            ),
            "latency" => (
                "http_latency",
                serde_json::json!({ "latency": self.latency_ms, "route": self.route }),
            ),
            "abort" => (
                "http_abort",
                serde_json::json!({ "bytes": self.bytes, "route": self.route }),
            ),
            other => (other, serde_json::json!({})),
        };
        toxic(
            &self.name,
            kind,
            attributes,
            Stream::Upstream,
            self.toxicity,
        )
    }
}

/// A Toxiproxy-shaped toxic `{type, attributes}` parsed and validated by the relay API's own
/// code, so a plugin's toxic is valid exactly when the API would accept it.
fn toxic(
    name: &str,
    kind: &str,
    attributes: serde_json::Value,
    stream: Stream,
    toxicity: f64,
) -> Result<Toxic, ToxicError> {
    let kind: Kind =
        serde_json::from_value(serde_json::json!({ "type": kind, "attributes": attributes }))
            .map_err(|source| ToxicError::Shape {
                toxic: name.to_owned(),
                source,
            })?;
    kind.validate().map_err(|e| ToxicError::Invalid {
        toxic: name.to_owned(),
        source: Box::new(e),
    })?;
    Ok(Toxic {
        name: name.to_owned(),
        kind,
        stream,
        toxicity: toxicity as f32,
    })
}

/// A toxic as a plugin describes it; `kind = "down"` disables the proxy instead.
#[derive(Debug, Clone, PartialEq)]
pub struct ToxicSpec {
    pub proxy: String,
    pub name: String,
    pub kind: String,
    pub direction: String,
    pub toxicity: f64,
    pub attributes: Vec<(String, i64)>,
}

impl ToxicSpec {
    /// Toxiproxy's JSON shape, parsed by the same code as the relay API (so the two agree on
    /// what a valid toxic is).
    pub fn to_toxic(&self) -> Result<Toxic, ToxicError> {
        let stream = match self.direction.as_str() {
            "upstream" => Stream::Upstream,
            "downstream" | "" => Stream::Downstream,
            other => {
                return Err(ToxicError::Direction {
                    toxic: self.name.clone(),
                    direction: other.to_owned(),
                })
            }
        };
        let attributes: serde_json::Map<String, serde_json::Value> = self
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), (*v).max(0).into()))
            .collect();
        let attributes = serde_json::Value::Object(attributes);
        toxic(&self.name, &self.kind, attributes, stream, self.toxicity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toxic_specs_become_toxiproxy_toxics() {
        let spec = ToxicSpec {
            proxy: "db".into(),
            name: "lat".into(),
            kind: "latency".into(),
            direction: "upstream".into(),
            toxicity: 0.5,
            attributes: vec![("latency".into(), 200)],
        };
        let t = spec.to_toxic().unwrap();
        assert_eq!(
            t.kind,
            Kind::Latency {
                latency: 200,
                jitter: 0
            }
        );
        assert_eq!(t.stream, Stream::Upstream);
        let bad = ToxicSpec {
            kind: "melt".into(),
            ..spec.clone()
        };
        assert!(bad.to_toxic().is_err());
        let bad = ToxicSpec {
            direction: "sideways".into(),
            ..spec
        };
        assert!(bad.to_toxic().unwrap_err().to_string().contains("sideways"));
    }
}
