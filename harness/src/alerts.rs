//! Alert rules (`expr` held `for` a while) evaluated once per second on the run's series, so
//! the report can say when each rule fired and how long after the fault or first breach.

use serde::{Deserialize, Serialize};

use crate::threshold::Op;

/// `series op number`, e.g. `http_req_failed > 0.05` or `queue_depth >= 100`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub series: String,
    pub op: Op,
    pub value: f64,
}

/// An alert expression that is not `<series> <op> <number>` (the text as written).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid alert expression `{0}`: expected `<series> <op> <number>` with op one of < <= > >= == !=")]
pub struct AlertError(pub String);

impl Condition {
    pub fn parse(text: &str) -> Result<Condition, AlertError> {
        let err = || AlertError(text.to_owned());
        let (series, op, rhs) = crate::threshold::split_op(text).ok_or_else(err)?;
        let value: f64 = rhs.parse().map_err(|_| err())?;
        // Whitespace only inside a probe selector: `sum(x{a="b", c!="d"}) > 1`, not `a b > 1`.
        let selector = || series.parse::<crate::probe::selector::Selector>().is_ok();
        if series.is_empty() || (series.contains(char::is_whitespace) && !selector()) {
            return Err(err());
        }
        Ok(Condition {
            series: series.to_owned(),
            op,
            value,
        })
    }

    pub fn holds(&self, v: f64) -> bool {
        self.op.holds(v, self.value)
    }
}

/// When a rule fired and resolved, in seconds since the run started.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct AlertState {
    pub name: String,
    pub expr: String,
    pub severity: String,
    pub for_secs: f64,
    /// Who evaluated the rule: empty for the harness, `prometheus <rule file>` for a rule the
    /// team's Prometheus evaluated (its times read from Prometheus's alerts API).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// First second the condition held in the current streak.
    #[serde(skip)]
    pending_since: Option<f64>,
    /// When it went pending: the streak that fired, or the latest one when it never fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_at: Option<f64>,
    pub fired_at: Option<f64>,
    pub resolved_at: Option<f64>,
    /// Seconds from the first threshold breach (or fault injection) to firing.
    #[serde(default)]
    pub time_to_detect_s: Option<f64>,
    /// When Alertmanager first listed it as active (only with `alertmanager_url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notified_at: Option<f64>,
    /// Set when the rule's probe series had too few samples to say it did not fire: the run
    /// then fails rather than report a quiet system it did not see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insufficient_data: Option<String>,
}

impl AlertState {
    pub fn new(name: &str, expr: &str, severity: &str, for_secs: f64) -> Self {
        AlertState {
            name: name.into(),
            expr: expr.into(),
            severity: severity.into(),
            for_secs,
            ..Default::default()
        }
    }

    /// Feeds one sample at time `t` (s). Records the first firing and the first resolution
    /// after it, as Prometheus does: pending once the condition holds, firing when it held `for`.
    pub fn observe(&mut self, cond: &Condition, t: f64, v: Option<f64>) {
        let holds = v.is_some_and(|v| cond.holds(v));
        if holds {
            let since = *self.pending_since.get_or_insert(t);
            if self.fired_at.is_none() {
                self.pending_at = Some(since);
            }
            if self.fired_at.is_none() && t - since >= self.for_secs {
                self.fired_at = Some(t);
            }
        } else {
            self.pending_since = None;
            if self.fired_at.is_some() && self.resolved_at.is_none() {
                self.resolved_at = Some(t);
            }
        }
    }
}

impl AlertState {
    /// `harness`, or the Prometheus that evaluated the rule.
    pub fn source(&self) -> &str {
        match self.source.is_empty() {
            true => "harness",
            false => &self.source,
        }
    }

    /// Takes one reading of a rule someone else evaluates, at `t`: `pending` is when its
    /// current activity began (Prometheus's `activeAt`, on the run's clock), `firing` whether
    /// it fires now. Records the first firing and the first resolution after it.
    pub fn observe_external(&mut self, t: f64, pending: Option<f64>, firing: bool) {
        match pending {
            Some(p) => {
                if self.fired_at.is_none() {
                    self.pending_at = Some(p);
                }
                if firing && self.fired_at.is_none() {
                    self.fired_at = Some(t);
                }
            }
            None => {
                if self.fired_at.is_some() && self.resolved_at.is_none() {
                    self.resolved_at = Some(t);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_after_holding_for_and_resolves() {
        let c = Condition::parse("lag > 1000").unwrap();
        let mut a = AlertState::new("lag", "lag > 1000", "warning", 3.0);
        for (t, v) in [
            (0.0, 10.0),
            (1.0, 2000.0),
            (2.0, 2000.0),
            (3.0, 500.0),
            (4.0, 3000.0),
            (5.0, 3000.0),
            (6.0, 3000.0),
            (7.0, 3000.0),
            (8.0, 0.0),
        ] {
            a.observe(&c, t, Some(v));
        }
        assert_eq!(a.fired_at, Some(7.0), "streak 4..7 lasts 3 s");
        assert_eq!(a.resolved_at, Some(8.0));
    }

    #[test]
    fn parse_errors() {
        assert!(Condition::parse("x >").is_err());
        assert!(Condition::parse("> 5").is_err());
        assert!(Condition::parse("a b > 5").is_err());
        assert_eq!(Condition::parse("a>=5").unwrap().op, Op::Ge);
    }

    #[test]
    fn probe_selectors_keep_their_operators() {
        let c = Condition::parse(r#"node_cpu_seconds_total{mode!="idle"} > 5"#).unwrap();
        assert_eq!(
            (c.series.as_str(), c.op, c.value),
            (r#"node_cpu_seconds_total{mode!="idle"}"#, Op::Gt, 5.0)
        );
        let c = Condition::parse(r#"sum(x{a=~"<|>", b!="c d"}) <= 1"#).unwrap();
        assert_eq!(
            (c.series.as_str(), c.op),
            (r#"sum(x{a=~"<|>", b!="c d"})"#, Op::Le)
        );
        assert!(
            Condition::parse(r#"x{a!="b"}"#).is_err(),
            "no comparison outside the braces"
        );
        assert!(Condition::parse(r#"x{a="b"} y > 1"#).is_err());
    }
}
