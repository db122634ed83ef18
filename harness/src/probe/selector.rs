//! Which samples of a scrape a probe series means: a PromQL instant selector, optionally inside
//! one aggregation.
//!
//! ```text
//! series   = selector | agg "(" selector ")"
//! agg      = "sum" | "max" | "min" | "avg" | "count"
//! selector = metric [ "{" [ matcher { "," matcher } [ "," ] ] "}" ]
//! matcher  = label ( "=" | "!=" | "=~" | "!~" ) "\"" value "\""
//! metric   = [a-zA-Z_:][a-zA-Z0-9_:]*      label = [a-zA-Z_][a-zA-Z0-9_]*
//! ```
//!
//! Whitespace may separate the tokens. Values take the escapes `\"`, `\\`, `\n`, `\t`, `\r`.
//! Matchers mean what they mean in PromQL: a label a sample lacks is the empty string, and a
//! regex matches the whole value (`=~"idle|iowait"` is `^(?:idle|iowait)$`); `__name__`
//! matches the metric name.

use std::fmt;
use std::str::FromStr;

use prometheus_parse::Sample;
use regex::Regex;

/// How the samples a selector matches become one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agg {
    Sum,
    Max,
    Min,
    Avg,
    /// How many label sets matched.
    Count,
}

impl Agg {
    const ALL: [Agg; 5] = [Agg::Sum, Agg::Max, Agg::Min, Agg::Avg, Agg::Count];

    pub fn name(self) -> &'static str {
        match self {
            Agg::Sum => "sum",
            Agg::Max => "max",
            Agg::Min => "min",
            Agg::Avg => "avg",
            Agg::Count => "count",
        }
    }

    /// The aggregate of `values`; None when there are none (PromQL gives no result either).
    pub fn apply(self, values: &[f64]) -> Option<f64> {
        if values.is_empty() {
            return None;
        }
        let it = values.iter().copied();
        Some(match self {
            Agg::Sum => it.sum(),
            Agg::Max => it.fold(f64::NEG_INFINITY, f64::max),
            Agg::Min => it.fold(f64::INFINITY, f64::min),
            Agg::Avg => it.sum::<f64>() / values.len() as f64,
            Agg::Count => values.len() as f64,
        })
    }
}

/// A label matcher's operator, as in PromQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `=~`
    Re,
    /// `!~`
    NotRe,
}

/// `label op "value"`.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub label: String,
    pub op: MatchOp,
    pub value: String,
    /// The anchored regex of `=~` and `!~`.
    re: Option<Regex>,
}

impl Matcher {
    fn matches(&self, v: &str) -> bool {
        match (self.op, &self.re) {
            (MatchOp::Eq, _) => v == self.value,
            (MatchOp::Ne, _) => v != self.value,
            (MatchOp::Re, Some(re)) => re.is_match(v),
            (MatchOp::NotRe, Some(re)) => !re.is_match(v),
            (_, None) => unreachable!("regex matchers are built with their regex"),
        }
    }
}

/// A parsed probe series entry; it keeps its text, which names the series it records.
#[derive(Debug, Clone)]
pub struct Selector {
    text: String,
    pub metric: String,
    pub matchers: Vec<Matcher>,
    pub agg: Option<Agg>,
}

impl Selector {
    /// The entry exactly as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether `s` is one of the samples this selector means (the aggregation aside).
    pub fn matches(&self, s: &Sample) -> bool {
        s.metric == self.metric
            && self.matchers.iter().all(|m| {
                let v = match m.label.as_str() {
                    "__name__" => s.metric.as_str(),
                    l => s.labels.get(l).unwrap_or(""),
                };
                m.matches(v)
            })
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A series entry that is not a selector: what is wrong, and where (`at`, a byte offset).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid series selector `{text}`: {problem} {}", place(.text, *.at))]
pub struct SelectorError {
    pub text: String,
    pub at: usize,
    pub problem: Problem,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("expected a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)")]
    Metric,
    #[error("expected a label name ([a-zA-Z_][a-zA-Z0-9_]*)")]
    Label,
    #[error("expected a matcher operator (=, !=, =~ or !~)")]
    Op,
    #[error("expected a double-quoted value")]
    Value,
    #[error("unterminated value (no closing `\"`)")]
    Unterminated,
    #[error("unknown escape `\\{0}` (a regex backslash is written `\\\\`)")]
    Escape(char),
    #[error("expected `,` or `}}`")]
    CommaOrBrace,
    #[error("expected `(` after `{0}` (by/without grouping is not supported)")]
    Open(&'static str),
    #[error("expected `)` closing `{0}(`")]
    Close(&'static str),
    #[error("unexpected `{0}` after the selector")]
    Trailing(String),
    #[error("invalid regex: {0}")]
    Regex(String),
}

/// "at character N" (counting from 1), or "at the end".
fn place(text: &str, at: usize) -> String {
    if at >= text.len() {
        "at the end".to_owned()
    } else {
        format!("at character {}", text[..at].chars().count() + 1)
    }
}

impl FromStr for Selector {
    type Err = SelectorError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut p = Parser { text, at: 0 };
        let name = p.ident(Problem::Metric, |c| c == ':')?;
        let agg = Agg::ALL.into_iter().find(|a| a.name() == name);
        let (agg, metric, matchers) = match agg {
            Some(agg) if p.eat('(') => {
                let metric = p.ident(Problem::Metric, |c| c == ':')?;
                let matchers = p.matchers()?;
                if !p.eat(')') {
                    return Err(p.fail(Problem::Close(agg.name())));
                }
                (Some(agg), metric, matchers)
            }
            Some(agg) if p.peek().is_some_and(|c| c != '{') => {
                return Err(p.fail(Problem::Open(agg.name())));
            }
            _ => (None, name, p.matchers()?),
        };
        if p.peek().is_some() {
            let rest = p.text[p.at..].split_whitespace().next().unwrap_or_default();
            return Err(p.fail(Problem::Trailing(rest.to_owned())));
        }
        Ok(Selector {
            text: text.to_owned(),
            metric: metric.to_owned(),
            matchers,
            agg,
        })
    }
}

struct Parser<'a> {
    text: &'a str,
    /// Byte offset of the next character to read.
    at: usize,
}

impl<'a> Parser<'a> {
    fn fail(&self, problem: Problem) -> SelectorError {
        self.fail_at(self.at, problem)
    }

    fn fail_at(&self, at: usize, problem: Problem) -> SelectorError {
        SelectorError {
            text: self.text.to_owned(),
            at,
            problem,
        }
    }

    /// The next character after any whitespace (which is skipped).
    fn peek(&mut self) -> Option<char> {
        let rest = &self.text[self.at..];
        self.at += rest.len() - rest.trim_start().len();
        self.text[self.at..].chars().next()
    }

    fn eat(&mut self, c: char) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.at += c.len_utf8();
        }
        hit
    }

    /// `[a-zA-Z_]` then `[a-zA-Z0-9_]`, each also taking what `extra` accepts.
    fn ident(
        &mut self,
        missing: Problem,
        extra: fn(char) -> bool,
    ) -> Result<&'a str, SelectorError> {
        self.peek();
        let rest = &self.text[self.at..];
        let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || extra(c);
        let len = rest.find(|c: char| !ok(c)).unwrap_or(rest.len());
        if len == 0 || rest.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(self.fail(missing));
        }
        self.at += len;
        Ok(&rest[..len])
    }

    /// `{ matcher, … }`, or nothing.
    fn matchers(&mut self) -> Result<Vec<Matcher>, SelectorError> {
        let mut out = Vec::new();
        if !self.eat('{') {
            return Ok(out);
        }
        loop {
            if self.eat('}') {
                return Ok(out);
            }
            out.push(self.matcher()?);
            if self.eat('}') {
                return Ok(out);
            }
            if !self.eat(',') {
                return Err(self.fail(Problem::CommaOrBrace));
            }
        }
    }

    fn matcher(&mut self) -> Result<Matcher, SelectorError> {
        let label = self.ident(Problem::Label, |_| false)?.to_owned();
        self.peek();
        let ops = [
            ("=~", MatchOp::Re),
            ("!~", MatchOp::NotRe),
            ("!=", MatchOp::Ne),
            ("=", MatchOp::Eq),
        ];
        let rest = &self.text[self.at..];
        let (tok, op) = ops
            .into_iter()
            .find(|(t, _)| rest.starts_with(t))
            .ok_or_else(|| self.fail(Problem::Op))?;
        self.at += tok.len();
        self.peek();
        let quote = self.at;
        let value = self.string()?;
        let re = match op {
            MatchOp::Re | MatchOp::NotRe => {
                Some(anchored(&value).map_err(|e| self.fail_at(quote, e))?)
            }
            MatchOp::Eq | MatchOp::Ne => None,
        };
        Ok(Matcher {
            label,
            op,
            value,
            re,
        })
    }

    /// A double-quoted value, unescaped.
    fn string(&mut self) -> Result<String, SelectorError> {
        let open = self.at;
        if !self.text[open..].starts_with('"') {
            return Err(self.fail(Problem::Value));
        }
        let mut out = String::new();
        let mut chars = self.text[open + 1..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.at = open + 1 + i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, e @ ('"' | '\\'))) => out.push(e),
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, 'r')) => out.push('\r'),
                    Some((_, e)) => return Err(self.fail_at(open + 1 + i, Problem::Escape(e))),
                    None => break,
                },
                c => out.push(c),
            }
        }
        Err(self.fail_at(open, Problem::Unterminated))
    }
}

/// The regex of `=~"value"`, anchored at both ends as PromQL does.
fn anchored(value: &str) -> Result<Regex, Problem> {
    Regex::new(&format!("^(?:{value})$")).map_err(|e| {
        let why = e.to_string();
        let last = why.lines().last().unwrap_or_default();
        Problem::Regex(last.trim_start_matches("error: ").to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(metric: &str, labels: &[(&str, &str)]) -> Sample {
        let text = if labels.is_empty() {
            format!("{metric} 1\n")
        } else {
            let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            format!("{metric}{{{}}} 1\n", l.join(","))
        };
        let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())));
        scrape.unwrap().samples.remove(0)
    }

    fn sel(text: &str) -> Selector {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn err(text: &str) -> SelectorError {
        match text.parse::<Selector>() {
            Ok(s) => panic!("{text} parsed as {s:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn parses_names_matchers_and_aggregations() {
        let s = sel(r#"node_cpu_seconds_total{cpu="0",mode!="idle",dev=~"sd.*",fs!~"tmp|proc"}"#);
        assert_eq!((s.metric.as_str(), s.agg), ("node_cpu_seconds_total", None));
        let m: Vec<(&str, MatchOp, &str)> = s
            .matchers
            .iter()
            .map(|m| (m.label.as_str(), m.op, m.value.as_str()))
            .collect();
        assert_eq!(
            m,
            [
                ("cpu", MatchOp::Eq, "0"),
                ("mode", MatchOp::Ne, "idle"),
                ("dev", MatchOp::Re, "sd.*"),
                ("fs", MatchOp::NotRe, "tmp|proc"),
            ]
        );
        for (text, agg) in [
            ("sum(x)", Agg::Sum),
            ("max(x{a=\"b\"})", Agg::Max),
            ("min (x)", Agg::Min),
            ("avg( x { a = \"b\" , } )", Agg::Avg),
            ("count(x{})", Agg::Count),
        ] {
            let s = sel(text);
            assert_eq!((s.agg, s.metric.as_str(), s.text()), (Some(agg), "x", text));
        }
        let plain = sel("process_cpu:rate5m");
        assert!(plain.matchers.is_empty() && plain.agg.is_none());
        assert_eq!(
            sel("sum{a=\"b\"}").metric,
            "sum",
            "a metric may be named like an aggregation"
        );
        assert_eq!(sel(r#"x{path="a\"b\\c"}"#).matchers[0].value, r#"a"b\c"#);
    }

    #[test]
    fn matches_like_promql() {
        let idle0 = sample("node_cpu_seconds_total", &[("cpu", "0"), ("mode", "idle")]);
        let user1 = sample("node_cpu_seconds_total", &[("cpu", "1"), ("mode", "user")]);
        let other = sample("node_load1", &[]);
        let cases = [
            ("node_cpu_seconds_total", [true, true, false]),
            (
                r#"node_cpu_seconds_total{mode="idle"}"#,
                [true, false, false],
            ),
            (
                r#"node_cpu_seconds_total{mode!="idle"}"#,
                [false, true, false],
            ),
            (
                r#"node_cpu_seconds_total{mode=~"id"}"#,
                [false, false, false],
            ),
            (
                r#"node_cpu_seconds_total{mode=~"id.*|user"}"#,
                [true, true, false],
            ),
            (
                r#"node_cpu_seconds_total{mode!~"i.*"}"#,
                [false, true, false],
            ),
            (
                r#"node_cpu_seconds_total{cpu="1",mode="user"}"#,
                [false, true, false],
            ),
            (r#"node_cpu_seconds_total{missing=""}"#, [true, true, false]),
            (
                r#"node_cpu_seconds_total{missing!=""}"#,
                [false, false, false],
            ),
            (r#"node_load1{__name__=~"node_.*"}"#, [false, false, true]),
            (
                r#"sum(node_cpu_seconds_total{cpu="0"})"#,
                [true, false, false],
            ),
        ];
        for (text, want) in cases {
            let s = sel(text);
            let got = [&idle0, &user1, &other].map(|x| s.matches(x));
            assert_eq!(got, want, "{text}");
        }
    }

    #[test]
    fn aggregations() {
        let v = [1.0, 4.0, 2.5];
        let got = Agg::ALL.map(|a| a.apply(&v));
        assert_eq!(got, [Some(7.5), Some(4.0), Some(1.0), Some(2.5), Some(3.0)]);
        assert!(Agg::ALL.iter().all(|a| a.apply(&[]).is_none()));
    }

    #[test]
    fn errors_say_what_and_where() {
        let cases: &[(&str, usize, Problem)] = &[
            ("", 0, Problem::Metric),
            ("   ", 3, Problem::Metric),
            ("9lives", 0, Problem::Metric),
            ("a b", 2, Problem::Trailing("b".into())),
            ("a{", 2, Problem::Label),
            (r#"a{b="c""#, 7, Problem::CommaOrBrace),
            (r#"a{b="c" d="e"}"#, 8, Problem::CommaOrBrace),
            (r#"a{b:"c"}"#, 3, Problem::Op),
            (r#"a{b==c}"#, 4, Problem::Value),
            ("a{b='c'}", 4, Problem::Value),
            (r#"a{b="c}"#, 4, Problem::Unterminated),
            (r#"a{b=~"5\d"}"#, 7, Problem::Escape('d')),
            (r#"a{b=~"(x"}"#, 5, Problem::Regex("unclosed group".into())),
            ("sum(a", 5, Problem::Close("sum")),
            ("sum by (x) (a)", 4, Problem::Open("sum")),
            ("avg(a))", 6, Problem::Trailing(")".into())),
            ("a{,}", 2, Problem::Label),
        ];
        for (text, at, problem) in cases {
            let e = err(text);
            assert_eq!((e.at, &e.problem), (*at, problem), "{text}: {e}");
        }
        assert_eq!(
            err(r#"up{job="api" env="prod"}"#).to_string(),
            r#"invalid series selector `up{job="api" env="prod"}`: expected `,` or `}` at character 14"#
        );
        assert_eq!(
            err("sum(up").to_string(),
            "invalid series selector `sum(up`: expected `)` closing `sum(` at the end"
        );
        assert_eq!(
            err(r#"x{code=~"5\d\d"}"#).to_string(),
            r#"invalid series selector `x{code=~"5\d\d"}`: unknown escape `\d` (a regex backslash is written `\\`) at character 11"#
        );
    }

    #[test]
    fn regexes_are_anchored_and_escapes_reach_them() {
        let s = sel(r#"x{code=~"5\\d\\d"}"#);
        assert!(s.matches(&sample("x", &[("code", "503")])));
        assert!(!s.matches(&sample("x", &[("code", "5030")])));
        assert!(!s.matches(&sample("x", &[("code", "1503")])));
    }
}
