//! Tag filters: k6's sub-metrics. A threshold such as
//! `http_req_duration{scenario:browse,status:200}` judges exactly the samples carrying every one
//! of its tags, so the recorder keeps, for each tag set a threshold asks for (and only those: a
//! URL's expanded ids never become sets of their own), the totals of the matching samples.
//!
//! A sample's tags are k6's system tags that apply here — `name`, `method`, `url` (the path
//! template as written, after the target URL), `scenario` and the scenario's own tags, fixed per
//! request name; `status`, `expected_response`, `proto` and `error_code`, per response.

use std::collections::HashSet;

use super::{ErrorKind, Outcome};

/// The tags that a response decides.
pub const RESPONSE_TAGS: [&str; 4] = ["status", "expected_response", "proto", "error_code"];

/// Which samples one tag set selects.
#[derive(Debug, Clone)]
pub struct TagFilter {
    /// The summary entry the samples go to (`k6_rules::tag_entry`).
    pub entry: String,
    /// The request names whose fixed tags all match.
    names: HashSet<String>,
    /// The response tags to match, as (key, value).
    response: Vec<(String, String)>,
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
                .cloned()
                .collect(),
        }
    }

    pub fn matches(&self, name: &str, o: &Outcome) -> bool {
        self.names.contains(name)
            && self
                .response
                .iter()
                .all(|(k, v)| response_tag(o, k).as_deref() == Some(v.as_str()))
    }
}

/// A response tag's value on `o`, as k6 writes it (None: the sample does not carry it).
pub fn response_tag(o: &Outcome, key: &str) -> Option<String> {
    match key {
        // k6 tags a request that got no response with status 0.
        "status" => Some(o.status.unwrap_or(0).to_string()),
        "expected_response" => Some(o.ok.to_string()),
        "proto" => o.proto.map(|p| p.as_str().to_owned()),
        "error_code" => error_code(o).map(|c| c.to_string()),
        _ => None,
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

    #[test]
    fn response_tags_are_k6s_values() {
        let timeout = Outcome::failed(ErrorKind::Timeout, Duration::from_secs(1));
        assert_eq!(response_tag(&timeout, "status").as_deref(), Some("0"));
        assert_eq!(
            response_tag(&timeout, "expected_response").as_deref(),
            Some("false")
        );
        assert_eq!(
            response_tag(&timeout, "error_code").as_deref(),
            Some("1050")
        );
        assert_eq!(response_tag(&timeout, "proto"), None);
        let nf = response(404, false);
        assert_eq!(response_tag(&nf, "error_code").as_deref(), Some("1404"));
        assert_eq!(response_tag(&nf, "proto").as_deref(), Some("HTTP/1.1"));
        assert_eq!(response_tag(&response(201, true), "error_code"), None);
    }
}
