//! The control requests of the live endpoint, parsed and bounded here; the run applies them
//! (`run/live.rs`), journals each with its time, and answers. A request that names no known
//! scenario, or asks for a negative, non-finite or absurd value, is refused with the reason.

use serde::Deserialize;

/// The highest arrival rate or VU count a control request may ask for. A scenario's own
/// `[limits]` still applies on top (checked by the run, which knows them).
const ABSURD: f64 = 10_000_000.0;

/// One control request as the endpoint took it.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Rate { scenario: Option<String>, rate: f64 },
    Vus { scenario: Option<String>, vus: u32 },
    Pause { scenario: Option<String> },
    Resume { scenario: Option<String> },
    Rollback,
    Abort,
}

/// A request with who sent it (the peer address), for the journal.
#[derive(Debug, Clone)]
pub struct Command {
    pub req: Request,
    pub from: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Body {
    scenario: Option<String>,
    rate: Option<f64>,
    vus: Option<f64>,
}

impl Request {
    /// `action` is the path's last segment; `body` is JSON (empty allowed where nothing is
    /// needed).
    pub fn parse(action: &str, body: &[u8]) -> Result<Request, String> {
        let b: Body = match body.iter().all(u8::is_ascii_whitespace) {
            true => Body::default(),
            false => serde_json::from_slice(body).map_err(|e| format!("body: {e}"))?,
        };
        let scenario = b.scenario.clone();
        match action {
            "rate" => {
                let rate = b.rate.ok_or("`rate` (arrivals per second) is required")?;
                Ok(Request::Rate {
                    scenario,
                    rate: bounded("rate", rate)?,
                })
            }
            "vus" => {
                let vus = b.vus.ok_or("`vus` (a VU count) is required")?;
                let vus = bounded("vus", vus)?;
                if vus.fract() != 0.0 {
                    return Err(format!("`vus` must be a whole number, got {vus}"));
                }
                Ok(Request::Vus {
                    scenario,
                    vus: vus as u32,
                })
            }
            "pause" => Ok(Request::Pause { scenario }),
            "resume" => Ok(Request::Resume { scenario }),
            "rollback" => Ok(Request::Rollback),
            "abort" => Ok(Request::Abort),
            other => Err(format!(
                "unknown control `{other}`: rate, vus, pause, resume, rollback or abort"
            )),
        }
    }

    /// The scenario and value it names, for the journal.
    pub fn target(&self) -> (Option<String>, Option<f64>) {
        match self {
            Request::Rate { scenario, rate } => (scenario.clone(), Some(*rate)),
            Request::Vus { scenario, vus } => (scenario.clone(), Some(f64::from(*vus))),
            Request::Pause { scenario } | Request::Resume { scenario } => (scenario.clone(), None),
            Request::Rollback | Request::Abort => (None, None),
        }
    }

    /// The journal's name for it.
    pub fn action(&self) -> &'static str {
        match self {
            Request::Rate { .. } => "rate",
            Request::Vus { .. } => "vus",
            Request::Pause { .. } => "pause",
            Request::Resume { .. } => "resume",
            Request::Rollback => "rollback",
            Request::Abort => "abort",
        }
    }
}

fn bounded(what: &str, v: f64) -> Result<f64, String> {
    if !v.is_finite() || v < 0.0 {
        return Err(format!("`{what}` must be a number ≥ 0, got {v}"));
    }
    if v > ABSURD {
        return Err(format!(
            "`{what}` {v} is absurd (more than {ABSURD}); refused"
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_vus_are_bounded() {
        let r = Request::parse("rate", br#"{"scenario":"a","rate":150}"#).unwrap();
        assert_eq!(
            r,
            Request::Rate {
                scenario: Some("a".into()),
                rate: 150.0
            }
        );
        assert!(Request::parse("rate", br#"{"rate":-1}"#)
            .unwrap_err()
            .contains("≥ 0"));
        assert!(Request::parse("rate", br#"{"rate":1e12}"#)
            .unwrap_err()
            .contains("absurd"));
        assert!(Request::parse("vus", br#"{"vus":2.5}"#)
            .unwrap_err()
            .contains("whole"));
        assert!(Request::parse("rate", b"")
            .unwrap_err()
            .contains("required"));
        assert!(Request::parse("rate", br#"{"rat":1}"#)
            .unwrap_err()
            .contains("unknown field"));
        assert!(Request::parse("faster", b"").is_err());
        assert_eq!(Request::parse("abort", b" ").unwrap(), Request::Abort);
    }
}
