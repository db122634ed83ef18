//! Threshold expressions (`p(95)<2000`, `rate<0.05`) and metric references
//! (`http_req_duration{name:create_order}`, or a probe series written as a PromQL selector such
//! as `node_cpu_seconds_total{mode="idle"}`): parsing, kind checks, and judging one value.

use std::fmt;
use std::str::FromStr;

/// How a metric aggregates, which decides the aggregations a threshold may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// `count`, `rate` (per second).
    Counter,
    /// `rate` (share of true samples).
    Rate,
    /// `avg`, `min`, `max`, `med`, `p(N)`.
    Trend,
    /// `value` (last), `min`, `max`, `avg`, `med`, `p(N)` over the 1 s samples.
    Gauge,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Agg {
    Avg,
    Min,
    Max,
    Med,
    Count,
    Rate,
    Value,
    /// Percentile 0..=100.
    P(f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

/// One parsed threshold expression, e.g. `p(95) < 2000`.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub agg: Agg,
    pub op: Op,
    pub value: f64,
    /// The text as written, for reports.
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThresholdError {
    Syntax(String),
    UnknownAgg(String),
    BadPercentile(String),
    BadMetric(String),
    WrongAgg {
        agg: String,
        kind: MetricKind,
        metric: String,
        allowed: &'static str,
    },
}

impl fmt::Display for ThresholdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThresholdError::Syntax(t) => write!(f, "invalid threshold `{t}`: expected `<aggregation> <operator> <number>`, e.g. `p(95)<2000` or `rate<0.05`"),
            ThresholdError::UnknownAgg(a) => write!(f, "unknown aggregation `{a}` (use avg, min, max, med, count, rate, value or p(N))"),
            ThresholdError::BadPercentile(p) => write!(f, "percentile `{p}` must be a number from 0 to 100"),
            ThresholdError::BadMetric(m) => write!(f, "invalid metric reference `{m}`: expected `name`, `name{{tag:value,…}}` or a probe series selector such as `name{{label=\"v\"}}` or `sum(name{{…}})`"),
            ThresholdError::WrongAgg { agg, kind, metric, allowed } => {
                write!(f, "aggregation `{agg}` does not apply to {kind:?} metric `{metric}` (allowed: {allowed})")
            }
        }
    }
}

impl std::error::Error for ThresholdError {}

impl Op {
    /// `lhs op rhs`.
    pub fn holds(self, lhs: f64, rhs: f64) -> bool {
        match self {
            Op::Lt => lhs < rhs,
            Op::Le => lhs <= rhs,
            Op::Gt => lhs > rhs,
            Op::Ge => lhs >= rhs,
            Op::Eq => lhs == rhs,
            Op::Ne => lhs != rhs,
        }
    }
}

/// Splits `lhs op rhs` at the first (longest) comparison operator outside `{…}` and
/// double quotes (so `x{mode!="idle"} > 5` splits at `>`); both sides trimmed.
pub fn split_op(text: &str) -> Option<(&str, Op, &str)> {
    let ops = [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("===", Op::Eq),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];
    let (mut depth, mut quoted, mut escaped) = (0usize, false, false);
    for (pos, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            _ if quoted => {}
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            _ if depth > 0 => {}
            _ => {
                if let Some((t, op)) = ops.iter().find(|(t, _)| text[pos..].starts_with(t)) {
                    return Some((text[..pos].trim(), *op, text[pos + t.len()..].trim()));
                }
            }
        }
    }
    None
}

impl fmt::Display for Agg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Agg::Avg => f.write_str("avg"),
            Agg::Min => f.write_str("min"),
            Agg::Max => f.write_str("max"),
            Agg::Med => f.write_str("med"),
            Agg::Count => f.write_str("count"),
            Agg::Rate => f.write_str("rate"),
            Agg::Value => f.write_str("value"),
            Agg::P(p) => write!(f, "p({p})"),
        }
    }
}

impl FromStr for Expr {
    type Err = ThresholdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (lhs, op, rhs) = split_op(s).ok_or_else(|| ThresholdError::Syntax(s.to_owned()))?;
        let value: f64 = rhs
            .parse()
            .map_err(|_| ThresholdError::Syntax(s.to_owned()))?;
        if !value.is_finite() {
            return Err(ThresholdError::Syntax(s.to_owned()));
        }
        let agg = match lhs {
            "avg" => Agg::Avg,
            "min" => Agg::Min,
            "max" => Agg::Max,
            "med" => Agg::Med,
            "count" => Agg::Count,
            "rate" => Agg::Rate,
            "value" => Agg::Value,
            "" => return Err(ThresholdError::Syntax(s.to_owned())),
            p if p.starts_with("p(") && p.ends_with(')') => {
                let inner = &p[2..p.len() - 1];
                // As k6: the number is not trimmed, so `p( 95 )` is refused.
                let n: f64 = inner
                    .parse()
                    .map_err(|_| ThresholdError::BadPercentile(inner.to_owned()))?;
                if !(0.0..=100.0).contains(&n) {
                    return Err(ThresholdError::BadPercentile(inner.to_owned()));
                }
                Agg::P(n)
            }
            other => return Err(ThresholdError::UnknownAgg(other.to_owned())),
        };
        Ok(Expr {
            agg,
            op,
            value,
            source: s.trim().to_owned(),
        })
    }
}

impl Expr {
    /// Rejects aggregations k6 does not define for this kind of metric.
    pub fn check_kind(&self, metric: &str, kind: MetricKind) -> Result<(), ThresholdError> {
        let (ok, allowed) = match kind {
            MetricKind::Counter => (matches!(self.agg, Agg::Count | Agg::Rate), "count, rate"),
            MetricKind::Rate => (matches!(self.agg, Agg::Rate), "rate"),
            MetricKind::Trend => (
                matches!(
                    self.agg,
                    Agg::Avg | Agg::Min | Agg::Max | Agg::Med | Agg::P(_)
                ),
                "avg, min, max, med, p(N)",
            ),
            MetricKind::Gauge => (
                !matches!(self.agg, Agg::Count | Agg::Rate),
                "value, min, max, avg, med, p(N)",
            ),
        };
        if ok {
            Ok(())
        } else {
            Err(ThresholdError::WrongAgg {
                agg: self.agg.to_string(),
                kind,
                metric: metric.to_owned(),
                allowed,
            })
        }
    }

    /// True when `observed` satisfies the threshold.
    pub fn passes(&self, observed: f64) -> bool {
        self.op.holds(observed, self.value)
    }
}

/// `name` or `name{tag:value,…}` (k6 tags), or a probe series written as a PromQL selector
/// (`name{label="v"}`, `sum(…)`): then `name` is the whole text and there are no tags.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MetricRef {
    pub name: String,
    pub tags: Vec<(String, String)>,
}

impl FromStr for MetricRef {
    type Err = ThresholdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if is_promql(s.trim()) {
            return Ok(MetricRef {
                name: s.trim().to_owned(),
                tags: Vec::new(),
            });
        }
        let bad = || ThresholdError::BadMetric(s.to_owned());
        let valid_name = |n: &str| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
        };
        let (name, tags) = match s.find('{') {
            None => (s.trim(), Vec::new()),
            Some(open) => {
                let inner = s[open + 1..].strip_suffix('}').ok_or_else(bad)?;
                let mut tags = Vec::new();
                for pair in inner.split(',') {
                    let (k, v) = pair.split_once(':').ok_or_else(bad)?;
                    // k6 trims whitespace and quotes: `{status:"200"}` is `{status:200}`.
                    let unquote = |t: &str| t.trim().trim_matches(['"', '\'']).to_owned();
                    let (k, v) = (unquote(k), unquote(v));
                    let (k, v) = (k.as_str(), v.as_str());
                    if !valid_name(k) || v.is_empty() {
                        return Err(bad());
                    }
                    tags.push((k.to_owned(), v.to_owned()));
                }
                tags.sort();
                (s[..open].trim(), tags)
            }
        };
        if !valid_name(name) {
            return Err(bad());
        }
        Ok(MetricRef {
            name: name.to_owned(),
            tags,
        })
    }
}

/// Whether `t` has the shape of a PromQL selector: `name{label op "v",…}` (op `=`, `!=`, `=~`
/// or `!~`; k6 tags use `:` instead) or `sum|max|min|avg|count(selector)`. The shape only: the
/// harness parses probe selectors fully, and a threshold must name one exactly.
fn is_promql(t: &str) -> bool {
    for agg in ["sum", "max", "min", "avg", "count"] {
        let inner = t
            .strip_prefix(agg)
            .and_then(|r| r.trim_start().strip_prefix('('))
            .and_then(|r| r.strip_suffix(')'));
        if let Some(inner) = inner {
            return is_selector(inner.trim(), true);
        }
    }
    is_selector(t, false)
}

/// `name{…}` whose first matcher is PromQL's (or `name{}`); a bare `name` if `bare_ok`.
fn is_selector(t: &str, bare_ok: bool) -> bool {
    let (name, braces) = match t.find('{') {
        None => (t, None),
        Some(i) => (t[..i].trim_end(), Some(&t[i + 1..])),
    };
    let name_ok = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    let Some(inner) = braces.and_then(|b| b.strip_suffix('}')) else {
        return name_ok && bare_ok && braces.is_none();
    };
    let r = inner.trim_start();
    let label = r
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(r.len());
    let after_op = ["=~", "!~", "!=", "="]
        .iter()
        .find_map(|op| r[label..].trim_start().strip_prefix(op));
    name_ok
        && (r.is_empty()
            || (label > 0 && after_op.is_some_and(|v| v.trim_start().starts_with('"'))))
}

impl fmt::Display for MetricRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if !self.tags.is_empty() {
            let t: Vec<String> = self.tags.iter().map(|(k, v)| format!("{k}:{v}")).collect();
            write!(f, "{{{}}}", t.join(","))?;
        }
        Ok(())
    }
}

pub fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else if v.abs() < 1.0 {
        format!("{v:.4}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expressions and outcomes as k6's threshold documentation describes them.
    #[test]
    fn k6_documented_expressions() {
        let cases: &[(&str, f64, bool)] = &[
            ("rate<0.05", 0.049, true),
            ("rate<0.05", 0.05, false),
            ("rate<0.01", 0.125, false),
            ("p(95)<2000", 1999.9, true),
            ("p(95)<2000", 3500.0, false),
            ("p(99.9) < 3000", 2000.0, true),
            ("avg<200", 200.0, false),
            ("avg<=200", 200.0, true),
            ("max<=1000", 1000.0, true),
            ("med<150", 149.0, true),
            ("min>=10", 9.0, false),
            ("count>=500", 500.0, true),
            ("count<10", 10.0, false),
            ("rate>0.97", 0.962, false),
            ("rate>0.97", 0.98, true),
            ("value<5000", 6850.0, false),
            ("max==0", 0.0, true),
            ("max===0", 1.0, false),
            ("count!=0", 3.0, true),
        ];
        for (text, observed, want) in cases {
            let e: Expr = text.parse().unwrap_or_else(|err| panic!("{text}: {err}"));
            assert_eq!(e.passes(*observed), *want, "{text} with {observed}");
        }
    }

    #[test]
    fn syntax_errors_are_named() {
        for bad in [
            "p95<2000", "rate", "<5", "rate<", "rate<abc", "p(101)<5", "p(x)<5", "avg<<5",
            "mean<5", "rate<inf",
        ] {
            assert!(bad.parse::<Expr>().is_err(), "{bad} should not parse");
        }
        assert_eq!(
            "mean<5".parse::<Expr>().unwrap_err(),
            ThresholdError::UnknownAgg("mean".into())
        );
    }

    #[test]
    fn metric_refs_with_tags() {
        let m: MetricRef = "http_req_duration{name:create_order}".parse().unwrap();
        assert_eq!(m.name, "http_req_duration");
        assert_eq!(m.tags, vec![("name".to_owned(), "create_order".to_owned())]);
        assert_eq!(m.to_string(), "http_req_duration{name:create_order}");
        let two: MetricRef = "http_reqs{status:201, name:x}".parse().unwrap();
        assert_eq!(two.to_string(), "http_reqs{name:x,status:201}");
        // k6 trims quotes and whitespace around keys and values; a value keeps its colons.
        let quoted: MetricRef = r#"http_reqs{ status : "200", a:'1', url:http://h/x }"#
            .parse()
            .unwrap();
        assert_eq!(
            quoted.to_string(),
            "http_reqs{a:1,status:200,url:http://h/x}"
        );
        for bad in ["", "a{", "a{b}", "a{b:}", "sp ace", "a{b:c"] {
            assert!(
                bad.parse::<MetricRef>().is_err(),
                "{bad:?} should not parse"
            );
        }
    }

    #[test]
    fn promql_selectors_are_whole_names() {
        for text in [
            r#"node_cpu_seconds_total{mode="idle"}"#,
            r#"node_cpu_seconds_total{cpu="0",mode!="idle"}"#,
            r#"x{path=~"/api/.*", code!~"5.."}"#,
            r#"x{ a = "b" }"#,
            "x{}",
            "sum(x)",
            r#"max(node_cpu_seconds_total{mode="idle"})"#,
            r#"avg (x{a="b"})"#,
            "count(x{})",
            "min(job:rate5m)",
        ] {
            let m: MetricRef = format!("  {text} ")
                .parse()
                .unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!((m.name.as_str(), m.tags.len()), (text, 0), "{text}");
            assert_eq!(m.to_string(), text);
        }
        let k6: MetricRef = "http_req_duration{name:a=\"b\"}".parse().unwrap();
        assert_eq!(
            k6.name, "http_req_duration",
            "a k6 tag value may hold `=\"`"
        );
        for bad in [
            "sum(",
            "sum(x",
            "sum()",
            "x{a=\"b\"",
            "9x{a=\"b\"}",
            "a b{c=\"d\"}",
        ] {
            assert!(
                bad.parse::<MetricRef>().is_err(),
                "{bad:?} should not parse"
            );
        }
    }

    #[test]
    fn split_op_skips_braces_and_quotes() {
        let cases = [
            (
                r#"node_cpu_seconds_total{mode!="idle"} > 5"#,
                r#"node_cpu_seconds_total{mode!="idle"}"#,
                Op::Gt,
                "5",
            ),
            (r#"x{a=~"<=|>"}<=1"#, r#"x{a=~"<=|>"}"#, Op::Le, "1"),
            (
                r#"sum(x{a!="b", c="d}"}) != 0"#,
                r#"sum(x{a!="b", c="d}"})"#,
                Op::Ne,
                "0",
            ),
            (r#"x{a="q\"<"} == 2"#, r#"x{a="q\"<"}"#, Op::Eq, "2"),
            ("p(95)<2000", "p(95)", Op::Lt, "2000"),
            ("max===0", "max", Op::Eq, "0"),
            ("a>=5", "a", Op::Ge, "5"),
        ];
        for (text, lhs, op, rhs) in cases {
            assert_eq!(split_op(text), Some((lhs, op, rhs)), "{text}");
        }
        assert_eq!(split_op(r#"x{a!="b"}"#), None);
    }

    #[test]
    fn aggregations_must_fit_the_metric_kind() {
        let p95: Expr = "p(95)<1".parse().unwrap();
        assert!(p95
            .check_kind("http_req_duration", MetricKind::Trend)
            .is_ok());
        assert!(p95.check_kind("http_req_failed", MetricKind::Rate).is_err());
        let rate: Expr = "rate<1".parse().unwrap();
        assert!(rate.check_kind("http_reqs", MetricKind::Counter).is_ok());
        assert!(rate
            .check_kind("http_req_duration", MetricKind::Trend)
            .is_err());
        let value: Expr = "value<1".parse().unwrap();
        assert!(value
            .check_kind("coupon_consumer_lag", MetricKind::Gauge)
            .is_ok());
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for MetricRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Expr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// k6's rule for a metric a user declares (`metrics/registry.go`: `^[a-zA-Z_][a-zA-Z0-9_]{1,128}$`),
/// with k6's message when it is broken.
pub fn check_metric_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest = name.len().saturating_sub(1);
    if first_ok && (1..=128).contains(&rest) && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Ok(());
    }
    Err(format!(
        "invalid metric name {name:?}: metric names start with a letter or an underscore and \
         hold 2 to 129 ASCII letters, numbers or underscores (k6's rule)"
    ))
}

#[cfg(test)]
mod name_tests {
    use super::check_metric_name;

    #[test]
    fn metric_names_follow_k6s_registry_rule() {
        for ok in ["coupon_issue_success", "_x", "ab", &"a".repeat(129)] {
            assert!(check_metric_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "1ab",
            "a-b",
            "a b",
            "a\tb",
            "caf\u{e9}",
            &"a".repeat(130),
        ] {
            assert!(check_metric_name(bad).is_err(), "{bad:?}");
        }
    }
}
