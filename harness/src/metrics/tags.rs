//! Tag filters: k6's sub-metrics. A threshold such as
//! `http_req_duration{scenario:browse,status:200}` judges exactly the samples carrying every one
//! of its tags, so the recorder keeps, for each tag set a threshold asks for (and only those: a
//! URL's expanded ids never become sets of their own), the totals of the matching samples.
//!
//! A sample's tags are k6's system tags that apply here — `name`, `method`, `url` (the path
//! template as written, after the target URL), `scenario` and the scenario's own tags, fixed per
//! request name; `status`, `expected_response`, `proto` and `error_code`, per response.

use std::collections::HashSet;

use super::{ErrorKind, Outcome, Proto};

/// The tags that a response decides.
pub const RESPONSE_TAGS: [&str; 4] = ["status", "expected_response", "proto", "error_code"];

/// Which samples one tag set selects.
#[derive(Debug, Clone)]
pub struct TagFilter {
    /// The summary entry the samples go to (`k6_rules::tag_entry`).
    pub entry: String,
    /// The request names whose fixed tags all match.
    names: HashSet<String>,
    /// The response tags to match, parsed once: matching a sample allocates nothing.
    response: Vec<Wanted>,
}

/// A response tag's wanted value. A value no sample writes that way (`0200`) is `Never`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Wanted {
    Status(u16),
    Expected(bool),
    Proto(Proto),
    ErrorCode(u32),
    Never,
}

impl Wanted {
    fn parse(key: &str, value: &str) -> Wanted {
        // As the sample writes it: the number's own digits, k6's words.
        fn number<T: std::str::FromStr + ToString>(v: &str) -> Option<T> {
            v.parse::<T>().ok().filter(|n| n.to_string() == v)
        }
        let wanted = match (key, value) {
            ("status", v) => number(v).map(Wanted::Status),
            ("error_code", v) => number(v).map(Wanted::ErrorCode),
            ("expected_response", "true") => Some(Wanted::Expected(true)),
            ("expected_response", "false") => Some(Wanted::Expected(false)),
            ("proto", v) => [Proto::Http1, Proto::Http2]
                .into_iter()
                .find(|p| p.as_str() == v)
                .map(Wanted::Proto),
            _ => None,
        };
        wanted.unwrap_or(Wanted::Never)
    }

    fn matches(self, o: &Outcome) -> bool {
        match self {
            // k6 tags a request that got no response with status 0.
            Wanted::Status(s) => o.status.unwrap_or(0) == s,
            Wanted::Expected(ok) => o.ok == ok,
            Wanted::Proto(p) => o.proto == Some(p),
            Wanted::ErrorCode(c) => error_code(o) == Some(c),
            Wanted::Never => false,
        }
    }
}

impl TagFilter {
    /// `tags` sorted by key; `names` the requests whose fixed tags match them.
    pub fn new(tags: &[(String, String)], names: HashSet<String>) -> TagFilter {
        TagFilter {
            entry: k6_rules::tag_entry(tags),
            names,
            response: tags
                .iter()
                .filter(|(k, _)| RESPONSE_TAGS.contains(&k.as_str()))
                .map(|(k, v)| Wanted::parse(k, v))
                .collect(),
        }
    }

    pub fn matches(&self, name: &str, o: &Outcome) -> bool {
        self.names.contains(name) && self.response.iter().all(|w| w.matches(o))
    }
}

/// k6's `error_code` (lib/netext/httpext/error_codes.go): 1050 a timeout, 1210 a failed dial
/// (we do not tell refused from unreachable), 1300 a TLS failure, 1000 anything else; a 4xx or
/// 5xx response is 1000 + its status. None for a response below 400.
pub fn error_code(o: &Outcome) -> Option<u32> {
    match (o.error, o.status) {
        (Some(ErrorKind::Timeout), _) => Some(1050),
        (Some(ErrorKind::Connect), _) => Some(1210),
        (Some(ErrorKind::Tls), _) => Some(1300),
        (Some(_), _) => Some(1000),
        (None, Some(s)) if s >= 400 => Some(1000 + u32::from(s)),
        (None, _) => None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::metrics::Proto;

    fn response(status: u16, ok: bool) -> Outcome {
        Outcome {
            status: Some(status),
            error: None,
            latency: Duration::from_millis(1),
            ok,
            phases: None,
            proto: Some(Proto::Http1),
        }
    }

    #[test]
    fn a_filter_needs_every_tag() {
        let tags = vec![
            ("scenario".to_owned(), "browse".to_owned()),
            ("status".to_owned(), "200".to_owned()),
        ];
        let f = TagFilter::new(&tags, HashSet::from(["product".to_owned()]));
        assert_eq!(f.entry, "(all){scenario:browse,status:200}");
        assert!(f.matches("product", &response(200, true)));
        assert!(
            !f.matches("product", &response(503, false)),
            "status differs"
        );
        assert!(
            !f.matches("order", &response(200, true)),
            "another scenario's request"
        );
    }

    /// Whether a filter of the one tag `key:value` selects `o`.
    fn has(o: &Outcome, key: &str, value: &str) -> bool {
        let tags = [(key.to_owned(), value.to_owned())];
        TagFilter::new(&tags, HashSet::from(["r".to_owned()])).matches("r", o)
    }

    #[test]
    fn response_tags_are_k6s_values() {
        let timeout = Outcome::failed(ErrorKind::Timeout, Duration::from_secs(1));
        assert!(has(&timeout, "status", "0"));
        assert!(has(&timeout, "expected_response", "false"));
        assert!(!has(&timeout, "expected_response", "true"));
        assert!(has(&timeout, "error_code", "1050"));
        assert!(!has(&timeout, "proto", "HTTP/1.1"), "no response, no proto");
        let nf = response(404, false);
        assert!(has(&nf, "error_code", "1404"));
        assert!(has(&nf, "proto", "HTTP/1.1"));
        assert!(!has(&nf, "proto", "HTTP/2.0"));
        assert!(
            !has(&nf, "status", "0404"),
            "written as the sample writes it"
        );
        let created = response(201, true);
        assert!(has(&created, "status", "201"));
        assert!(
            !has(&created, "error_code", "1000"),
            "no error code below 400"
        );
        assert!(!has(&created, "error_code", "1201"));
    }
}
