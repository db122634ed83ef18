//! The parts of a flow step beyond its request: `extract` (a value of the answer into a
//! variable), `poll` (repeat until a check holds) — compiled here, used by `load::flow`.

use std::time::Duration;

use regex::Regex;
use serde::Deserialize;
use serde_json_path::JsonPath;
use toml::Spanned;

use super::Dur;

/// `[[…flow.extract]]`: one of `jsonpath`, `header`, `regex` (first capture group, or the
/// whole match) or `cookie`, into `var`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtractSpec {
    pub var: String,
    pub jsonpath: Option<Spanned<String>>,
    pub header: Option<String>,
    pub regex: Option<Spanned<String>>,
    pub cookie: Option<String>,
}

/// `[…flow.poll]`: send the step again every `interval` until check `until` holds or
/// `timeout` passes; the time until it held is recorded in the trend `trend`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollSpec {
    pub until: String,
    #[serde(default = "half_second")]
    pub interval: Dur,
    pub timeout: Dur,
    pub trend: Option<String>,
    /// Poll in one iteration of every `every` (the others skip the step): a sample of users.
    #[serde(default = "one")]
    pub every: u64,
}

fn half_second() -> Dur {
    Dur(Duration::from_millis(500))
}
fn one() -> u64 {
    1
}

/// Where a value comes from.
#[derive(Debug, Clone)]
pub enum Source {
    Json(JsonPath),
    Header(http::HeaderName),
    Regex(Regex),
    Cookie(String),
}

/// A compiled extraction.
#[derive(Debug, Clone)]
pub struct Extract {
    pub var: String,
    pub source: Source,
}

/// Why an extraction cannot compile: the field and the message.
pub type CompileError = (&'static str, String);

impl Extract {
    pub fn compile(e: &ExtractSpec) -> Result<Extract, CompileError> {
        let given = [
            e.jsonpath.is_some(),
            e.header.is_some(),
            e.regex.is_some(),
            e.cookie.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err((
                "extract",
                format!(
                    "extraction into `{}` needs exactly one of jsonpath, header, regex, cookie",
                    e.var
                ),
            ));
        }
        if e.var.is_empty() || e.var.contains(['.', '{', '}', ' ']) {
            return Err((
                "extract.var",
                format!(
                    "`{}` is not a variable name (letters, digits, _ and -)",
                    e.var
                ),
            ));
        }
        let source = if let Some(p) = &e.jsonpath {
            Source::Json(JsonPath::parse(p.get_ref()).map_err(|err| {
                (
                    "extract.jsonpath",
                    format!("`{}` is not a JSONPath: {err}", p.get_ref()),
                )
            })?)
        } else if let Some(h) = &e.header {
            Source::Header(http::HeaderName::from_bytes(h.as_bytes()).map_err(|err| {
                (
                    "extract.header",
                    format!("`{h}` is not a header name: {err}"),
                )
            })?)
        } else if let Some(r) = &e.regex {
            Source::Regex(Regex::new(r.get_ref()).map_err(|err| {
                (
                    "extract.regex",
                    format!("`{}` is not a regular expression: {err}", r.get_ref()),
                )
            })?)
        } else {
            Source::Cookie(e.cookie.clone().expect("one given"))
        };
        Ok(Extract {
            var: e.var.clone(),
            source,
        })
    }

    pub fn needs_body(&self) -> bool {
        matches!(self.source, Source::Json(_) | Source::Regex(_))
    }

    /// The value, or why there is none (an empty value is none: it would be sent on silently).
    pub fn apply(
        &self,
        headers: &http::HeaderMap,
        body: Option<&[u8]>,
        json: Option<&serde_json::Value>,
    ) -> Result<String, String> {
        let v = self.value(headers, body, json)?;
        match v.is_empty() {
            true => Err("the value is empty".into()),
            false => Ok(v),
        }
    }

    fn value(
        &self,
        headers: &http::HeaderMap,
        body: Option<&[u8]>,
        json: Option<&serde_json::Value>,
    ) -> Result<String, String> {
        match &self.source {
            Source::Json(p) => {
                let Some(v) = json else {
                    return Err("the body is not JSON".into());
                };
                match p.query(v).first() {
                    Some(serde_json::Value::String(s)) => Ok(s.clone()),
                    Some(serde_json::Value::Null) | None => {
                        Err("the JSONPath matched nothing".into())
                    }
                    Some(other) => Ok(other.to_string()),
                }
            }
            Source::Header(h) => headers
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .ok_or_else(|| format!("no `{h}` header")),
            Source::Regex(r) => {
                let text = String::from_utf8_lossy(body.unwrap_or_default());
                let c = r
                    .captures(&text)
                    .ok_or("the regex did not match the body")?;
                Ok(c.get(1)
                    .or_else(|| c.get(0))
                    .expect("a match")
                    .as_str()
                    .to_owned())
            }
            Source::Cookie(name) => headers
                .get_all(http::header::SET_COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .filter_map(|v| v.split(';').next()?.split_once('='))
                .find(|(k, _)| k.trim() == name)
                .map(|(_, v)| v.trim().to_owned())
                .ok_or_else(|| format!("no cookie `{name}` set")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> ExtractSpec {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn extractions_read_json_headers_regex_and_cookies() {
        let mut h = http::HeaderMap::new();
        h.insert("location", "/api/orders/7".parse().unwrap());
        h.append("set-cookie", "sid=abc; Path=/".parse().unwrap());
        let body = br#"{"id":42,"name":"x","empty":""}"#;
        let json: serde_json::Value = serde_json::from_slice(body).unwrap();
        let run = |t: &str| {
            Extract::compile(&spec(t))
                .unwrap()
                .apply(&h, Some(body), Some(&json))
        };
        assert_eq!(run("var = \"id\"\njsonpath = \"$.id\""), Ok("42".into()));
        assert_eq!(run("var = \"n\"\njsonpath = \"$.name\""), Ok("x".into()));
        assert!(run("var = \"n\"\njsonpath = \"$.nope\"").is_err());
        assert_eq!(
            run("var = \"e\"\njsonpath = \"$.empty\""),
            Err("the value is empty".into()),
            "never sent on silently"
        );
        assert_eq!(
            run("var = \"l\"\nheader = \"Location\""),
            Ok("/api/orders/7".into())
        );
        assert_eq!(run("var = \"r\"\nregex = '\"id\":(\\d+)'"), Ok("42".into()));
        assert_eq!(run("var = \"c\"\ncookie = \"sid\""), Ok("abc".into()));
        assert!(run("var = \"c\"\ncookie = \"other\"").is_err());
    }

    #[test]
    fn bad_extractions_name_their_field() {
        let e = Extract::compile(&spec("var = \"x\"\njsonpath = \"$[\"")).unwrap_err();
        assert_eq!(e.0, "extract.jsonpath");
        let e = Extract::compile(&spec("var = \"x\"\nregex = \"(\"")).unwrap_err();
        assert_eq!(e.0, "extract.regex");
        let e = Extract::compile(&spec("var = \"x\"")).unwrap_err();
        assert!(e.1.contains("exactly one"));
    }
}
