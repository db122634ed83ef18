//! Checks on responses (k6's `check`, Gatling's `check`): `[[requests.checks]]` entries, compiled
//! once into [`Check`]s and judged on each response. Each result is a sample of the `checks`
//! rate metric tagged `check:<name>`; with `fail_request = true` a failed check also fails the
//! request in `http_req_failed`.

use std::time::Duration;

use serde::Deserialize;
use serde_json_path::JsonPath;
use toml::Spanned;

use super::Dur;

/// One `[[requests.checks]]` entry as written: a `name`, one subject (`status`, `header`,
/// `body_contains`, `body_matches`, `jsonpath` or `duration_below`) and, for `header` and
/// `jsonpath`, an optional condition (`equals`, `matches`, `compare`); without one the check
/// is "present" / "exists".
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    pub name: String,
    pub status: Option<StatusList>,
    pub header: Option<String>,
    pub body_contains: Option<String>,
    pub body_matches: Option<Spanned<String>>,
    pub jsonpath: Option<Spanned<String>>,
    pub equals: Option<toml::Value>,
    pub matches: Option<Spanned<String>>,
    /// `"> 0"`, `">= 10"`, `"< 5.5"`, `"<= 3"`, `"== 1"`, `"!= 0"` on a JSON number.
    pub compare: Option<Spanned<String>>,
    pub duration_below: Option<Dur>,
    #[serde(default)]
    pub fail_request: bool,
}

/// `status = 201` or `status = [200, 201]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StatusList {
    One(u16),
    Many(Vec<u16>),
}

/// What a check looks at and what it wants.
#[derive(Debug, Clone)]
pub enum Rule {
    Status(Vec<u16>),
    Header(http::HeaderName, Want),
    BodyContains(String),
    BodyMatches(regex::Regex),
    Json(JsonPath, Want),
    DurationBelow(Duration),
}

/// The condition on a header value or the JSON values a path selects.
#[derive(Debug, Clone)]
pub enum Want {
    Present,
    Equals(serde_json::Value),
    Matches(regex::Regex),
    /// k6's comparison operators, on a JSON number.
    Compare(k6_rules::Op, f64),
}

/// A compiled check.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub rule: Rule,
    pub fail_request: bool,
}

/// A check that does not compile: the field and, where serde kept one, its span.
#[derive(Debug)]
pub struct CheckError {
    pub field: &'static str,
    pub span: Option<std::ops::Range<usize>>,
    pub message: String,
}

/// The response a check is judged on; `body` is None when the request read none.
pub struct Answer<'a> {
    pub status: u16,
    pub headers: &'a http::HeaderMap,
    pub body: Option<&'a [u8]>,
    pub duration: Duration,
}

fn fail(field: &'static str, span: Option<std::ops::Range<usize>>, m: String) -> CheckError {
    CheckError {
        field,
        span,
        message: m,
    }
}

fn regex(s: &Spanned<String>, field: &'static str) -> Result<regex::Regex, CheckError> {
    regex::Regex::new(s.get_ref())
        .map_err(|e| fail(field, Some(s.span()), format!("invalid regex: {e}")))
}

fn compare(s: &Spanned<String>) -> Result<(k6_rules::Op, f64), CheckError> {
    let t = s.get_ref().trim();
    // k6's threshold operators, with an empty left side.
    let parsed = k6_rules::split_op(t)
        .filter(|(lhs, _, _)| lhs.is_empty())
        .and_then(|(_, op, rhs)| rhs.parse::<f64>().ok().map(|n| (op, n)));
    parsed.ok_or_else(|| {
        fail(
            "requests.checks.compare",
            Some(s.span()),
            format!("`{t}` is not `<op> <number>` (op: <, <=, >, >=, ==, !=)"),
        )
    })
}

fn want(c: &CheckSpec, allow_compare: bool) -> Result<Want, CheckError> {
    let given = [c.equals.is_some(), c.matches.is_some(), c.compare.is_some()];
    if given.iter().filter(|g| **g).count() > 1 {
        let m = format!("check `{}`: give one of equals, matches, compare", c.name);
        return Err(fail("requests.checks", None, m));
    }
    if let Some(v) = &c.equals {
        let json = serde_json::to_value(v).map_err(|e| {
            fail(
                "requests.checks.equals",
                None,
                format!("check `{}`: {e}", c.name),
            )
        })?;
        return Ok(Want::Equals(json));
    }
    if let Some(m) = &c.matches {
        return Ok(Want::Matches(regex(m, "requests.checks.matches")?));
    }
    if let Some(s) = &c.compare {
        if !allow_compare {
            let m = format!("check `{}`: compare applies to jsonpath only", c.name);
            return Err(fail("requests.checks.compare", Some(s.span()), m));
        }
        let (op, n) = compare(s)?;
        return Ok(Want::Compare(op, n));
    }
    Ok(Want::Present)
}

impl Check {
    /// Compiles one entry: exactly one subject, conditions only where they apply.
    pub fn compile(c: &CheckSpec) -> Result<Check, CheckError> {
        let subjects = [
            c.status.is_some(),
            c.header.is_some(),
            c.body_contains.is_some(),
            c.body_matches.is_some(),
            c.jsonpath.is_some(),
            c.duration_below.is_some(),
        ];
        let n = subjects.iter().filter(|s| **s).count();
        if n != 1 {
            let m = format!(
                "check `{}` needs exactly one of status, header, body_contains, body_matches, \
                 jsonpath, duration_below ({n} given)",
                c.name
            );
            return Err(fail("requests.checks", None, m));
        }
        if c.name.trim().is_empty() || c.name.contains(['{', '}', ',']) {
            let m = format!(
                "check name `{}` must be non-empty, without {{, }} or ,",
                c.name
            );
            return Err(fail("requests.checks.name", None, m));
        }
        let conditioned = c.header.is_some() || c.jsonpath.is_some();
        if !conditioned && (c.equals.is_some() || c.matches.is_some() || c.compare.is_some()) {
            let m = format!(
                "check `{}`: equals, matches and compare apply to header and jsonpath",
                c.name
            );
            return Err(fail("requests.checks", None, m));
        }
        let rule = if let Some(s) = &c.status {
            let list = match s {
                StatusList::One(s) => vec![*s],
                StatusList::Many(v) => v.clone(),
            };
            if let Some(bad) = list.iter().find(|s| !(100..=599).contains(*s)) {
                let m = format!("check `{}`: {bad} is not an HTTP status (100–599)", c.name);
                return Err(fail("requests.checks.status", None, m));
            }
            Rule::Status(list)
        } else if let Some(h) = &c.header {
            let name = http::HeaderName::from_bytes(h.as_bytes()).map_err(|e| {
                fail(
                    "requests.checks.header",
                    None,
                    format!("check `{}`: `{h}`: {e}", c.name),
                )
            })?;
            Rule::Header(name, want(c, false)?)
        } else if let Some(s) = &c.body_contains {
            Rule::BodyContains(s.clone())
        } else if let Some(s) = &c.body_matches {
            Rule::BodyMatches(regex(s, "requests.checks.body_matches")?)
        } else if let Some(p) = &c.jsonpath {
            let path = JsonPath::parse(p.get_ref()).map_err(|e| {
                fail(
                    "requests.checks.jsonpath",
                    Some(p.span()),
                    format!("invalid JSONPath `{}`: {e}", p.get_ref()),
                )
            })?;
            Rule::Json(path, want(c, true)?)
        } else {
            Rule::DurationBelow(c.duration_below.expect("one subject").0)
        };
        Ok(Check {
            name: c.name.clone(),
            rule,
            fail_request: c.fail_request,
        })
    }

    /// Whether judging needs the response body.
    pub fn needs_body(&self) -> bool {
        matches!(
            self.rule,
            Rule::BodyContains(_) | Rule::BodyMatches(_) | Rule::Json(..)
        )
    }

    /// Judges one response; `json` is the body parsed once for all checks of the request.
    pub fn passes(&self, a: &Answer<'_>, json: Option<&serde_json::Value>) -> bool {
        match &self.rule {
            Rule::Status(list) => list.contains(&a.status),
            Rule::Header(name, want) => {
                let values: Vec<serde_json::Value> = a
                    .headers
                    .get_all(name)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .map(|v| serde_json::Value::String(v.to_owned()))
                    .collect();
                want.holds(values.iter())
            }
            Rule::BodyContains(s) => a
                .body
                .is_some_and(|b| b.windows(s.len().max(1)).any(|w| w == s.as_bytes())),
            Rule::BodyMatches(re) => a
                .body
                .is_some_and(|b| re.is_match(&String::from_utf8_lossy(b))),
            Rule::Json(path, want) => match json {
                Some(v) => want.holds(path.query(v).all().into_iter()),
                None => false,
            },
            Rule::DurationBelow(d) => a.duration < *d,
        }
    }
}

impl Want {
    /// Some selected value satisfies the condition (Present: there is one).
    fn holds<'v>(&self, mut values: impl Iterator<Item = &'v serde_json::Value>) -> bool {
        match self {
            Want::Present => values.next().is_some(),
            Want::Equals(e) => values.any(|v| v == e || numbers_equal(v, e)),
            Want::Matches(re) => values.any(|v| match v {
                serde_json::Value::String(s) => re.is_match(s),
                other => re.is_match(&other.to_string()),
            }),
            Want::Compare(op, n) => values.any(|v| {
                let Some(x) = v
                    .as_f64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                else {
                    return false;
                };
                op.holds(x, *n)
            }),
        }
    }
}

/// TOML `1` and JSON `1.0` are the same number.
fn numbers_equal(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    matches!((a.as_f64(), b.as_f64()), (Some(x), Some(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(toml_text: &str) -> CheckSpec {
        toml::from_str(toml_text).unwrap()
    }

    fn judge(c: &Check, body: &str) -> bool {
        let headers = http::HeaderMap::new();
        let json: Option<serde_json::Value> = serde_json::from_str(body).ok();
        let a = Answer {
            status: 200,
            headers: &headers,
            body: Some(body.as_bytes()),
            duration: Duration::from_millis(10),
        };
        c.passes(&a, json.as_ref())
    }

    #[test]
    fn jsonpath_exists_equals_and_compares() {
        let exists = Check::compile(&spec("name = \"id\"\njsonpath = \"$.id\"")).unwrap();
        assert!(judge(&exists, r#"{"id": 7}"#));
        assert!(!judge(&exists, r#"{"other": 7}"#));
        assert!(!judge(&exists, "not json"));
        let eq = Check::compile(&spec(
            "name = \"s\"\njsonpath = \"$.state\"\nequals = \"ok\"",
        ));
        assert!(judge(&eq.unwrap(), r#"{"state": "ok"}"#));
        let one = Check::compile(&spec("name = \"n\"\njsonpath = \"$.n\"\nequals = 1")).unwrap();
        assert!(judge(&one, r#"{"n": 1.0}"#));
        let gt = Check::compile(&spec(
            "name = \"g\"\njsonpath = \"$.items[*].qty\"\ncompare = \">= 3\"",
        ))
        .unwrap();
        assert!(judge(&gt, r#"{"items": [{"qty": 1}, {"qty": 3}]}"#));
        assert!(!judge(&gt, r#"{"items": [{"qty": 1}]}"#));
    }

    #[test]
    fn bad_checks_are_refused_with_their_field() {
        let bad = |t: &str| Check::compile(&spec(t)).unwrap_err();
        assert_eq!(
            bad("name = \"x\"\njsonpath = \"$[\"").field,
            "requests.checks.jsonpath"
        );
        assert_eq!(
            bad("name = \"x\"\nbody_matches = \"(\"").field,
            "requests.checks.body_matches"
        );
        assert_eq!(
            bad("name = \"x\"\nstatus = 200\nheader = \"a\"").field,
            "requests.checks"
        );
        assert_eq!(
            bad("name = \"x\"\nstatus = 99").field,
            "requests.checks.status"
        );
        assert_eq!(
            bad("name = \"x\"\njsonpath = \"$.a\"\ncompare = \"~ 3\"").field,
            "requests.checks.compare"
        );
        assert!(bad("name = \"x\"\nbody_contains = \"a\"\nequals = 1")
            .message
            .contains("apply to"));
    }

    #[test]
    fn body_and_status_checks() {
        let c = Check::compile(&spec("name = \"b\"\nbody_contains = \"hello\"")).unwrap();
        assert!(judge(&c, "say hello"));
        assert!(!judge(&c, "bye"));
        let s = Check::compile(&spec("name = \"s\"\nstatus = [200, 201]")).unwrap();
        assert!(judge(&s, ""));
        assert!(!s.needs_body() && c.needs_body());
    }
}
