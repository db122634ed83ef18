//! Async clients for Prometheus's HTTP API (instant queries, active alerts, the alerting rules
//! it evaluates) and Alertmanager's v2 API (the alerts it holds).
//!
//! Every answer is checked: an HTTP error, a body that is not the API's JSON, or a result of a
//! type the caller cannot use is an error naming the URL, and a query Prometheus refuses is
//! `Rejected` with Prometheus's own words, so a typo in a scenario's PromQL reads as one.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::{parse_rfc3339, PromError};

const PROMETHEUS: &str = "Prometheus";
const ALERTMANAGER: &str = "Alertmanager";
/// How much of an unexpected body an error quotes.
const QUOTE: usize = 300;
/// How many label sets an ambiguous answer names.
const EXAMPLES: usize = 3;

/// An instant query's result, in the two shapes a gate can judge.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryValue {
    Scalar(f64),
    /// One value per label set (`__name__` included when the series kept its name).
    Vector(Vec<(BTreeMap<String, String>, f64)>),
}

impl QueryValue {
    /// The one number of the answer: a scalar, the only element of a vector, or `None` for an
    /// empty vector (nothing matched). Several elements are an error, never a silent sum.
    pub fn single(&self) -> Result<Option<f64>, String> {
        let v = match self {
            QueryValue::Scalar(x) => return Ok(Some(*x)),
            QueryValue::Vector(v) => v,
        };
        match v.as_slice() {
            [] => Ok(None),
            [(_, x)] => Ok(Some(*x)),
            many => {
                let mut shown: Vec<String> = many
                    .iter()
                    .take(EXAMPLES)
                    .map(|(l, _)| series_name(l))
                    .collect();
                if many.len() > EXAMPLES {
                    shown.push("…".into());
                }
                Err(format!(
                    "the query returned {} series ({}) where one number is needed: aggregate \
                     them with sum(…) or max(…), or narrow the selector",
                    many.len(),
                    shown.join(", ")
                ))
            }
        }
    }
}

/// `name{a="x",b="y"}` (or `{a="x"}` without a name) for messages.
pub fn series_name(labels: &BTreeMap<String, String>) -> String {
    let name = labels.get("__name__").map(String::as_str).unwrap_or("");
    let rest: Vec<String> = labels
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    if rest.is_empty() && !name.is_empty() {
        return name.to_owned();
    }
    format!("{name}{{{}}}", rest.join(","))
}

/// Where an alert is in its rule's `for`: held (pending) or past it (firing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertPhase {
    Pending,
    Firing,
}

/// One alert of `GET /api/v1/alerts`.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveAlert {
    /// `labels.alertname`: the rule's name.
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub state: AlertPhase,
    /// When the expression first held (unix seconds): `for` counts from here.
    pub active_at: Option<f64>,
    /// The expression's value at the last evaluation.
    pub value: Option<f64>,
}

/// One alerting rule Prometheus has loaded (`GET /api/v1/rules?type=alert`).
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedRule {
    /// The rule file as Prometheus names it (the path in its config).
    pub file: String,
    pub group: String,
    pub name: String,
    /// The expression as Prometheus prints it (normalised, so not always the file's text).
    pub query: String,
    pub for_s: f64,
}

/// One alert of Alertmanager's `GET /api/v2/alerts`.
#[derive(Debug, Clone, PartialEq)]
pub struct AmAlert {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: Option<f64>,
    /// `active`, `suppressed` or `unprocessed`.
    pub state: String,
}

/// The HTTP side both clients share: one peer at one base URL.
#[derive(Debug, Clone)]
struct Peer {
    name: &'static str,
    base: String,
    http: reqwest::Client,
    timeout: Duration,
}

impl Peer {
    fn new(name: &'static str, base: &str, timeout: Duration) -> Peer {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("harness/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("http client");
        Peer {
            name,
            base: base.trim_end_matches('/').to_owned(),
            http,
            timeout,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET path?params`: the status and the body, or why there was none.
    async fn get(&self, path: &str, params: &[(&str, &str)]) -> Result<(u16, String), PromError> {
        let unreachable = |e: reqwest::Error| PromError::Unreachable {
            peer: self.name,
            url: self.base.clone(),
            reason: transport_reason(&e, self.timeout),
        };
        let resp = self
            .http
            .get(self.url(path))
            .query(params)
            .send()
            .await
            .map_err(unreachable)?;
        let status = resp.status().as_u16();
        let body = resp.text().await.map_err(unreachable)?;
        Ok((status, body))
    }

    /// `GET path` answering 200 (`/-/ready`, which is 503 while the server starts).
    async fn ready(&self) -> Result<(), PromError> {
        let (status, body) = self.get("/-/ready", &[]).await?;
        if status == 200 {
            return Ok(());
        }
        Err(PromError::Status {
            peer: self.name,
            url: self.url("/-/ready"),
            status,
            body: quote(&body),
        })
    }

    fn bad(&self, path: &str, reason: String) -> PromError {
        PromError::BadAnswer {
            peer: self.name,
            url: self.url(path),
            reason,
        }
    }
}

/// A transport error in words: a timeout as such, else its innermost cause (`Connection
/// refused (os error 111)`), which reqwest's own text hides behind "error sending request".
pub(super) fn transport_reason(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within {timeout:?}");
    }
    let mut cause: &dyn std::error::Error = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}

fn quote(body: &str) -> String {
    let t = body.trim();
    match t.char_indices().nth(QUOTE) {
        Some((i, _)) => format!("{}…", &t[..i]),
        None => t.to_owned(),
    }
}

/// Client of one Prometheus server (`http://127.0.0.1:9090`; a trailing slash is fine).
#[derive(Debug, Clone)]
pub struct PromClient {
    peer: Peer,
}

/// Prometheus's JSON envelope: `{"status":"success","data":…}` or an error.
#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Value,
    #[serde(rename = "errorType", default)]
    error_type: String,
    #[serde(default)]
    error: String,
}

/// The data of an answer, or the error it is. `query` is set for query endpoints, where a
/// `bad_data` or `execution` error is the query's fault (`Rejected`).
fn decode_envelope(
    url: &str,
    status: u16,
    body: &str,
    query: Option<&str>,
) -> Result<Value, PromError> {
    let ok = (200..300).contains(&status);
    match serde_json::from_str::<Envelope>(body) {
        Ok(e) if e.status == "success" && ok => Ok(e.data),
        Ok(e) if e.status == "error" => {
            let error = format!("{}: {}", e.error_type, e.error);
            match (query, e.error_type.as_str()) {
                (Some(q), "bad_data" | "execution") => Err(PromError::Rejected {
                    query: q.to_owned(),
                    error,
                }),
                _ => Err(PromError::Status {
                    peer: PROMETHEUS,
                    url: url.to_owned(),
                    status,
                    body: error,
                }),
            }
        }
        _ if !ok => Err(PromError::Status {
            peer: PROMETHEUS,
            url: url.to_owned(),
            status,
            body: quote(body),
        }),
        _ => Err(PromError::BadAnswer {
            peer: PROMETHEUS,
            url: url.to_owned(),
            reason: format!("not the API's JSON envelope: {}", quote(body)),
        }),
    }
}

/// A sample value as Prometheus writes it: a string, `NaN`, `+Inf` and `-Inf` included.
fn sample_value(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

#[derive(Deserialize)]
struct QueryData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Value,
}

#[derive(Deserialize)]
struct VectorElement {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: Option<(Value, String)>,
}

/// The `data` of an instant query.
fn parse_query(data: Value) -> Result<QueryValue, String> {
    let d: QueryData = serde_json::from_value(data).map_err(|e| format!("query data: {e}"))?;
    match d.result_type.as_str() {
        "scalar" => {
            let (_, v): (Value, String) =
                serde_json::from_value(d.result).map_err(|e| format!("scalar: {e}"))?;
            let x = sample_value(&v).ok_or_else(|| format!("scalar value {v:?}"))?;
            Ok(QueryValue::Scalar(x))
        }
        "vector" => {
            let elems: Vec<VectorElement> =
                serde_json::from_value(d.result).map_err(|e| format!("vector: {e}"))?;
            let mut out = Vec::with_capacity(elems.len());
            for e in elems {
                // Native histograms carry `histogram` instead of `value`.
                let Some((_, v)) = e.value else {
                    return Err(format!(
                        "{} is a histogram sample; query a float series (e.g. its _count)",
                        series_name(&e.metric)
                    ));
                };
                let x = sample_value(&v).ok_or_else(|| format!("sample value {v:?}"))?;
                out.push((e.metric, x));
            }
            Ok(QueryValue::Vector(out))
        }
        other => Err(format!(
            "the query's result is a {other}; an instant vector or a scalar is needed \
             (no range selector like [5m] outside a function, no string)"
        )),
    }
}

#[derive(Deserialize)]
struct AlertsData {
    alerts: Vec<RawAlert>,
}

#[derive(Deserialize)]
struct RawAlert {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    state: String,
    #[serde(rename = "activeAt")]
    active_at: Option<String>,
    value: Option<String>,
}

fn parse_alerts(data: Value) -> Result<Vec<ActiveAlert>, String> {
    let d: AlertsData = serde_json::from_value(data).map_err(|e| format!("alerts: {e}"))?;
    d.alerts
        .into_iter()
        .map(|a| {
            let state = match a.state.as_str() {
                "pending" => AlertPhase::Pending,
                "firing" => AlertPhase::Firing,
                other => return Err(format!("alert state {other:?}")),
            };
            Ok(ActiveAlert {
                name: a.labels.get("alertname").cloned().unwrap_or_default(),
                state,
                active_at: a.active_at.as_deref().and_then(parse_rfc3339),
                value: a.value.as_deref().and_then(sample_value),
                labels: a.labels,
                annotations: a.annotations,
            })
        })
        .collect()
}

#[derive(Deserialize)]
struct RulesData {
    groups: Vec<RuleGroup>,
}

#[derive(Deserialize)]
struct RuleGroup {
    name: String,
    #[serde(default)]
    file: String,
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
struct RawRule {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    #[serde(default)]
    query: String,
    #[serde(default)]
    duration: f64,
}

fn parse_rules(data: Value) -> Result<Vec<LoadedRule>, String> {
    let d: RulesData = serde_json::from_value(data).map_err(|e| format!("rules: {e}"))?;
    let mut out = Vec::new();
    for g in d.groups {
        for r in g.rules.into_iter().filter(|r| r.kind == "alerting") {
            out.push(LoadedRule {
                file: g.file.clone(),
                group: g.name.clone(),
                name: r.name,
                query: r.query,
                for_s: r.duration,
            });
        }
    }
    Ok(out)
}

impl PromClient {
    pub fn new(base_url: &str, timeout: Duration) -> PromClient {
        PromClient {
            peer: Peer::new(PROMETHEUS, base_url, timeout),
        }
    }

    /// Ok once Prometheus serves queries (`/-/ready` is 503 while it replays its WAL).
    pub async fn ready(&self) -> Result<(), PromError> {
        self.peer.ready().await
    }

    async fn data(
        &self,
        path: &str,
        params: &[(&str, &str)],
        query: Option<&str>,
    ) -> Result<Value, PromError> {
        let (status, body) = self.peer.get(path, params).await?;
        decode_envelope(&self.peer.url(path), status, &body, query)
    }

    /// An instant query at the server's current time.
    pub async fn query(&self, promql: &str) -> Result<QueryValue, PromError> {
        let path = "/api/v1/query";
        let data = self.data(path, &[("query", promql)], Some(promql)).await?;
        parse_query(data).map_err(|r| self.peer.bad(path, format!("`{promql}`: {r}")))
    }

    /// The alerts pending or firing now.
    pub async fn alerts(&self) -> Result<Vec<ActiveAlert>, PromError> {
        let path = "/api/v1/alerts";
        let data = self.data(path, &[], None).await?;
        parse_alerts(data).map_err(|r| self.peer.bad(path, r))
    }

    /// The alerting rules Prometheus evaluates, with their files and groups.
    pub async fn alert_rules(&self) -> Result<Vec<LoadedRule>, PromError> {
        let path = "/api/v1/rules";
        let data = self.data(path, &[("type", "alert")], None).await?;
        parse_rules(data).map_err(|r| self.peer.bad(path, r))
    }

    /// The names of the alerting rules Prometheus evaluates.
    pub async fn rule_names(&self) -> Result<Vec<String>, PromError> {
        Ok(self
            .alert_rules()
            .await?
            .into_iter()
            .map(|r| r.name)
            .collect())
    }
}

/// Client of one Alertmanager (`http://127.0.0.1:9093`).
#[derive(Debug, Clone)]
pub struct AlertmanagerClient {
    peer: Peer,
}

#[derive(Deserialize)]
struct RawAmAlert {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    starts_at: Option<String>,
    status: AmStatus,
}

#[derive(Deserialize)]
struct AmStatus {
    state: String,
}

/// Alertmanager's v2 answer: a bare JSON array of alerts (no envelope).
fn parse_am_alerts(body: &str) -> Result<Vec<AmAlert>, String> {
    let raw: Vec<RawAmAlert> = serde_json::from_str(body)
        .map_err(|e| format!("not a list of alerts ({e}): {}", quote(body)))?;
    Ok(raw
        .into_iter()
        .map(|a| AmAlert {
            name: a.labels.get("alertname").cloned().unwrap_or_default(),
            starts_at: a.starts_at.as_deref().and_then(parse_rfc3339),
            state: a.status.state,
            labels: a.labels,
            annotations: a.annotations,
        })
        .collect())
}

impl AlertmanagerClient {
    pub fn new(base_url: &str, timeout: Duration) -> AlertmanagerClient {
        AlertmanagerClient {
            peer: Peer::new(ALERTMANAGER, base_url, timeout),
        }
    }

    /// Every alert Alertmanager holds (active, silenced or inhibited).
    pub async fn alerts(&self) -> Result<Vec<AmAlert>, PromError> {
        let path = "/api/v2/alerts";
        let (status, body) = self.peer.get(path, &[]).await?;
        if !(200..300).contains(&status) {
            return Err(PromError::Status {
                peer: ALERTMANAGER,
                url: self.peer.url(path),
                status,
                body: quote(&body),
            });
        }
        parse_am_alerts(&body).map_err(|r| self.peer.bad(path, r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Answers copied from Debian's Prometheus 2.42 and Alertmanager 0.25.
    const VECTOR: &str = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","instance":"127.0.0.1:19090","job":"self"},"value":[1796227475.524,"1"]}]}}"#;
    const SCALAR: &str =
        r#"{"status":"success","data":{"resultType":"scalar","result":[1796227475.537,"2"]}}"#;
    const INF: &str = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"instance":"127.0.0.1:19090","job":"self"},"value":[1796227475.562,"+Inf"]}]}}"#;
    const STRING: &str =
        r#"{"status":"success","data":{"resultType":"string","result":[1796227475.572,"x"]}}"#;
    const MATRIX: &str = r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"up","instance":"127.0.0.1:19090","job":"self"},"values":[[1796227480.369,"1"],[1796227481.369,"1"]]}]}}"#;
    const TWO: &str = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"self","x":"a"},"value":[1796227482.301,"1"]},{"metric":{"__name__":"up","job":"self","x":"b"},"value":[1796227482.301,"NaN"]}]}}"#;
    const BAD_DATA: &str = r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:7: parse error: unclosed left parenthesis"}"#;
    const EXECUTION: &str = r#"{"status":"error","errorType":"execution","error":"multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"}"#;
    const ALERTS: &str = r#"{"status":"success","data":{"alerts":[{"labels":{"alertname":"AlwaysUp","instance":"127.0.0.1:19090","job":"self","severity":"critical"},"annotations":{"summary":"up 1"},"state":"firing","activeAt":"2026-12-02T16:04:35.848398514Z","value":"1e+00"}]}}"#;
    const RULES: &str = r#"{"status":"success","data":{"groups":[{"name":"t","file":"/tmp/promprobe/rules.yml","rules":[{"state":"inactive","name":"AlwaysUp","query":"up \u003e 0","duration":2,"keepFiringFor":0,"labels":{"severity":"critical"},"annotations":{"summary":"up {{ $value }}"},"alerts":[],"health":"ok","evaluationTime":0.000158987,"lastEvaluation":"2026-12-02T16:04:34.849748094Z","type":"alerting"},{"state":"inactive","name":"Never","query":"up \u003e 5","duration":0,"keepFiringFor":0,"labels":{},"annotations":{},"alerts":[],"health":"ok","evaluationTime":0.000051157,"lastEvaluation":"2026-12-02T16:04:34.849908994Z","type":"alerting"}],"interval":1,"limit":0,"evaluationTime":0.000256072,"lastEvaluation":"2026-12-02T16:04:34.849732961Z"}]}}"#;
    const AM: &str = r#"[{"annotations":{"summary":"s"},"endsAt":"2026-12-02T16:09:51.491Z","fingerprint":"d5e08c84ef09a8b8","receivers":[{"name":"none"}],"startsAt":"2026-12-02T16:04:51.491Z","status":{"inhibitedBy":[],"silencedBy":[],"state":"active"},"updatedAt":"2026-12-02T16:04:51.491Z","labels":{"alertname":"X","severity":"critical"}}]"#;

    fn query_of(body: &str) -> Result<QueryValue, String> {
        let data = decode_envelope("u", 200, body, Some("q")).map_err(|e| e.to_string())?;
        parse_query(data)
    }

    #[test]
    fn vectors_and_scalars_read_as_numbers_infinities_and_nan_included() {
        let v = query_of(VECTOR).unwrap();
        let QueryValue::Vector(elems) = &v else {
            panic!("{v:?}")
        };
        assert_eq!(elems[0].0["job"], "self");
        assert_eq!(v.single(), Ok(Some(1.0)));
        assert_eq!(query_of(SCALAR).unwrap(), QueryValue::Scalar(2.0));
        assert_eq!(query_of(INF).unwrap().single(), Ok(Some(f64::INFINITY)));
        let empty = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert_eq!(query_of(empty).unwrap().single(), Ok(None));
        assert_eq!(sample_value("-Inf"), Some(f64::NEG_INFINITY));
        assert!(sample_value("NaN").unwrap().is_nan());
        assert_eq!(sample_value("1e+00"), Some(1.0));
    }

    #[test]
    fn several_series_are_an_error_naming_them_never_a_sum() {
        let err = query_of(TWO).unwrap().single().unwrap_err();
        assert!(err.contains("2 series"), "{err}");
        assert!(err.contains(r#"up{job="self",x="a"}"#), "{err}");
        assert!(err.contains("sum("), "{err}");
        let many = QueryValue::Vector(
            (0..5)
                .map(|i| (BTreeMap::from([("i".to_owned(), i.to_string())]), 1.0))
                .collect(),
        );
        let err = many.single().unwrap_err();
        assert!(err.contains("5 series") && err.contains("…"), "{err}");
        assert!(!err.contains(r#"i="4""#), "{err}");
    }

    #[test]
    fn strings_and_matrices_are_bad_answers() {
        assert!(query_of(STRING).unwrap_err().contains("string"));
        let err = query_of(MATRIX).unwrap_err();
        assert!(err.contains("matrix") && err.contains("[5m]"), "{err}");
    }

    #[test]
    fn refused_queries_quote_prometheus_and_other_failures_quote_the_body() {
        match decode_envelope("u", 400, BAD_DATA, Some("sum(up")) {
            Err(PromError::Rejected { query, error }) => {
                assert_eq!(query, "sum(up");
                assert!(error.starts_with("bad_data: "), "{error}");
                assert!(error.contains("1:7: parse error"), "{error}");
            }
            other => panic!("{other:?}"),
        }
        let e = decode_envelope("u", 422, EXECUTION, Some("a + on(j) b")).unwrap_err();
        assert!(matches!(e, PromError::Rejected { .. }), "{e:?}");
        // On an endpoint that takes no query an error envelope is the server's failure.
        let e = decode_envelope("http://p/api/v1/alerts", 400, BAD_DATA, None).unwrap_err();
        assert!(matches!(e, PromError::Status { status: 400, .. }), "{e:?}");
        let e = decode_envelope("http://p/x", 502, "<html>bad gateway</html>", None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Prometheus at http://p/x answered HTTP 502: <html>bad gateway</html>"
        );
        let e = decode_envelope("http://p/x", 200, "hello", None).unwrap_err();
        assert!(matches!(e, PromError::BadAnswer { .. }), "{e:?}");
        assert!(quote(&"x".repeat(1000)).chars().count() == QUOTE + 1);
    }

    #[test]
    fn alerts_rules_and_alertmanager_answers_parse() {
        let data = decode_envelope("u", 200, ALERTS, None).unwrap();
        let alerts = parse_alerts(data).unwrap();
        assert_eq!(alerts.len(), 1);
        let a = &alerts[0];
        assert_eq!((a.name.as_str(), a.state), ("AlwaysUp", AlertPhase::Firing));
        assert_eq!(a.labels["severity"], "critical");
        assert_eq!(a.annotations["summary"], "up 1");
        assert_eq!(a.value, Some(1.0));
        assert!((a.active_at.unwrap() - 1_796_227_475.848).abs() < 1e-3);

        let rules = parse_rules(decode_envelope("u", 200, RULES, None).unwrap()).unwrap();
        let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["AlwaysUp", "Never"]);
        assert_eq!(rules[0].file, "/tmp/promprobe/rules.yml");
        assert_eq!((rules[0].group.as_str(), rules[0].for_s), ("t", 2.0));
        assert_eq!(rules[0].query, "up > 0");

        let am = parse_am_alerts(AM).unwrap();
        assert_eq!((am[0].name.as_str(), am[0].state.as_str()), ("X", "active"));
        assert_eq!(am[0].starts_at, parse_rfc3339("2026-12-02T16:04:51.491Z"));
        assert!(parse_am_alerts(ALERTS).unwrap_err().contains("not a list"));
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable_with_its_cause() {
        let port = crate::stack::process::free_port().unwrap();
        let c = PromClient::new(&format!("http://127.0.0.1:{port}/"), Duration::from_secs(2));
        let e = c.query("up").await.unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, PromError::Unreachable { .. }), "{e:?}");
        assert!(
            text.starts_with(&format!(
                "Prometheus at http://127.0.0.1:{port} does not answer"
            )),
            "{text}"
        );
        assert!(text.to_lowercase().contains("refused"), "{text}");
        let am =
            AlertmanagerClient::new(&format!("http://127.0.0.1:{port}"), Duration::from_secs(2));
        let text = am.alerts().await.unwrap_err().to_string();
        assert!(text.starts_with("Alertmanager at "), "{text}");
    }

    const RULE_FILE: &str = r#"groups:
  - name: harness-test
    interval: 1s
    rules:
      - alert: AlwaysOn
        expr: vector(1) > 0
        for: 2s
        labels:
          severity: critical
        annotations:
          summary: "value {{ $value }}"
      - alert: NeverOn
        expr: vector(0) > 1
      - record: job:up:sum
        expr: sum(up)
"#;

    #[tokio::test]
    async fn a_rule_file_loaded_by_prometheus_fires_its_alert_and_the_client_reads_it() {
        let prom = super::super::tests::start(&[("t.rules.yml", RULE_FILE)], "").await;
        let c = PromClient::new(&format!("{}/", prom.url), Duration::from_secs(5));
        c.ready().await.unwrap();
        let rules = c.alert_rules().await.unwrap();
        let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["AlwaysOn", "NeverOn"], "only alerting rules");
        assert!(rules[0].file.ends_with("t.rules.yml"), "{rules:?}");
        assert_eq!(rules[0].for_s, 2.0);
        assert_eq!(c.rule_names().await.unwrap(), ["AlwaysOn", "NeverOn"]);

        let (mut phases, started) = (Vec::new(), std::time::Instant::now());
        let fired = loop {
            let alerts = c.alerts().await.unwrap();
            assert!(alerts.iter().all(|a| a.name == "AlwaysOn"), "{alerts:?}");
            if let Some(a) = alerts.into_iter().next() {
                phases.push(a.state);
                if a.state == AlertPhase::Firing {
                    break a;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "never fired: {phases:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(
            phases.first(),
            Some(&AlertPhase::Pending),
            "held `for` first"
        );
        assert_eq!(fired.labels["severity"], "critical");
        assert_eq!(fired.annotations["summary"], "value 1");
        assert_eq!(fired.value, Some(1.0));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let active_at = fired.active_at.unwrap();
        assert!(
            now - active_at >= 2.0 && now - active_at < 30.0,
            "{now} {active_at}"
        );
    }

    #[tokio::test]
    async fn queries_answer_numbers_refusals_and_ambiguities_from_a_real_prometheus() {
        let prom = super::super::tests::start(&[], "").await;
        let c = PromClient::new(&prom.url, Duration::from_secs(5));
        assert_eq!(c.query("1 + 1").await.unwrap(), QueryValue::Scalar(2.0));
        let v = c.query("vector(1) / 0").await.unwrap();
        assert_eq!(v.single(), Ok(Some(f64::INFINITY)));
        assert_eq!(
            c.query("absent_here_total").await.unwrap().single(),
            Ok(None)
        );
        match c.query("sum(up").await {
            Err(PromError::Rejected { query, error }) => {
                assert_eq!(query, "sum(up");
                assert!(error.starts_with("bad_data: ") && error.contains("parse error"));
            }
            other => panic!("{other:?}"),
        }
        let two = r#"label_replace(vector(1), "x", "a", "", "") or label_replace(vector(2), "x", "b", "", "")"#;
        let err = c.query(two).await.unwrap().single().unwrap_err();
        assert!(
            err.contains("2 series") && err.contains(r#"{x="a"}"#),
            "{err}"
        );
        let e = c.query("vector(1)[1m]").await;
        assert!(matches!(e, Err(PromError::Rejected { .. })), "{e:?}");
        let e = c.query("up[1m]").await.unwrap_err();
        assert!(e.to_string().contains("matrix"), "{e}");
        let e = c.query(r#""text""#).await.unwrap_err();
        assert!(matches!(e, PromError::BadAnswer { .. }), "{e:?}");
    }
}
