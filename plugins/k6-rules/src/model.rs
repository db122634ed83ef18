//! The measured run as plain values (the Rust twin of the WIT `run-summary` record).

/// One request name's totals; `name == "(all)"` for every request together.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestStats {
    pub name: String,
    pub count: u64,
    pub failed: u64,
    /// (value in ms, samples), ascending: HDR buckets at their middle value (within 0.1%), the
    /// smallest and the largest sample as entries of their own with their exact values.
    pub latency_ms: Vec<(f64, u64)>,
    pub statuses: Vec<(u16, u64)>,
}

/// A custom rate metric: `good` of `total`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RateMetric {
    pub name: String,
    pub good: u64,
    pub total: u64,
}

/// (seconds since start, value) samples in time order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub elapsed_s: f64,
    pub requests: Vec<RequestStats>,
    pub dropped_iterations: u64,
    pub rates: Vec<RateMetric>,
    pub series: Vec<Series>,
}

pub const ALL: &str = "(all)";

/// k6's timing phases of an HTTP request, each a trend.
pub const PHASES: [&str; 6] = [
    "http_req_blocked",
    "http_req_connecting",
    "http_req_tls_handshaking",
    "http_req_sending",
    "http_req_waiting",
    "http_req_receiving",
];

/// The `requests` entry carrying a metric other than a request's own totals, within ABI 1.0's
/// record shape: a timing phase's trend (`(http_req_waiting)`, per request
/// `(http_req_waiting){name:order}`) or a byte counter (`(data_sent)`, in `count`).
pub fn entry_name(metric: &str, request: Option<&str>) -> String {
    match request {
        Some(r) => format!("({metric}){{name:{r}}}"),
        None => format!("({metric})"),
    }
}

/// The `requests` entry of one scenario's requests together (`{scenario:browse}`).
pub fn scenario_entry(scenario: &str) -> String {
    tag_entry(&[("scenario".to_owned(), scenario.to_owned())])
}

/// The `requests` entry of the HTTP samples matching every tag of `tags` (sorted by key, as
/// `MetricRef` keeps them): `(all){method:GET,status:200}`. The harness fills one for each tag
/// set a threshold asks for, so a filter is always applied, never ignored.
pub fn tag_entry(tags: &[(String, String)]) -> String {
    let inner: Vec<String> = tags.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    format!("{ALL}{{{}}}", inner.join(","))
}

/// The `rates` entry of the `checks` metric, overall or for one check name.
pub fn checks_name(check: Option<&str>) -> String {
    match check {
        Some(c) => format!("checks{{check:{c}}}"),
        None => "checks".to_owned(),
    }
}

impl Summary {
    pub fn request(&self, name: Option<&str>) -> Option<&RequestStats> {
        let name = name.unwrap_or(ALL);
        self.requests.iter().find(|r| r.name == name)
    }
    pub fn series(&self, name: &str) -> Option<&Series> {
        self.series.iter().find(|s| s.name == name)
    }
}
