//! Tag-filtered thresholds (k6 sub-metrics) judge exactly the samples carrying every tag, on a
//! real server: one scenario's every tenth answer is a 503, another's are all 200.

mod common;

use common::web::{Options, WebServer};
use common::{summary, temp_dir, verdict};

fn file(url: &str, thresholds: &str) -> String {
    format!(
        r#"
name = "tags"
[target]
url = "{url}"
timeout = "3s"

[scenarios.flaky]
executor = "constant-arrival-rate"
rate = 50
duration = "2s"
preAllocatedVUs = 20
tags = {{ team = "payments" }}
[[scenarios.flaky.requests]]
name = "pay"
path = "/flaky"

[scenarios.steady]
executor = "constant-arrival-rate"
rate = 25
duration = "2s"
preAllocatedVUs = 20
[[scenarios.steady.requests]]
name = "browse"
method = "POST"
path = "/ok"

[thresholds]
{thresholds}
"#
    )
}

fn request<'s>(sum: &'s serde_json::Value, name: &str) -> &'s serde_json::Value {
    sum["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap()
}

#[tokio::test]
async fn a_tag_filtered_threshold_judges_exactly_the_samples_with_every_tag() {
    let dir = temp_dir("tags");
    let server = WebServer::start(Options::plain()).await;
    let gates = r#"
"http_reqs{status:503}" = ["count>0"]
"http_reqs{error_code:1503}" = ["count>0"]
"http_req_failed{scenario:flaky,status:200}" = ["rate==0"]
"http_req_failed{team:payments}" = ["rate<0.05"]
"http_req_duration{expected_response:true,scenario:steady}" = ["max<3000"]
'http_reqs{method:"POST",proto:HTTP/1.1}' = ["count>0"]
"http_reqs{status:500}" = ["count==0"]
"http_req_duration{status:500}" = ["p(95)<1000"]
"#;
    let (o, out) = common::run_named(&dir, "tags", &file(&server.url, gates)).await;
    assert_eq!(
        o.status.code(),
        Some(99),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s = summary(&out);
    let pay = request(&s, "pay");
    let (pays, fives) = (
        pay["count"].as_f64().unwrap(),
        pay["statuses"]["503"].as_f64().unwrap(),
    );
    let browses = request(&s, "browse")["count"].as_f64().unwrap();
    assert!(
        fives >= 5.0 && pays >= 90.0 && browses >= 45.0,
        "{pays} {fives} {browses}"
    );

    assert_eq!(verdict(&s, "http_reqs{status:503}"), (Some(fives), true));
    assert_eq!(
        verdict(&s, "http_reqs{error_code:1503}"),
        (Some(fives), true)
    );
    assert_eq!(
        verdict(&s, "http_req_failed{scenario:flaky,status:200}"),
        (Some(0.0), true)
    );
    // The scenario's own tag: its every sample, a tenth of them failed.
    let (rate, passed) = verdict(&s, "http_req_failed{team:payments}");
    assert!(
        !passed && (rate.unwrap() - fives / pays).abs() < 1e-9,
        "{rate:?}"
    );
    let (max, passed) = verdict(
        &s,
        "http_req_duration{expected_response:true,scenario:steady}",
    );
    assert!(passed && max.unwrap() > 0.0);
    // Quoted values are k6's too; the steady scenario's POSTs over HTTP/1.1, not the GETs.
    assert_eq!(
        verdict(&s, "http_reqs{method:POST,proto:HTTP/1.1}"),
        (Some(browses), true)
    );
    // No 500s: a count of 0 (so "no 500s" is a gate that works) and a trend with no data (a
    // failed gate), never the whole metric.
    assert_eq!(verdict(&s, "http_reqs{status:500}"), (Some(0.0), true));
    assert_eq!(verdict(&s, "http_req_duration{status:500}"), (None, false));
}

/// k6-summary.json: k6's handleSummary shape, checked by its schema, and the numbers summary.json
/// and the verdicts hold.
#[tokio::test]
async fn k6_summary_json_is_k6s_shape_with_the_judged_numbers() {
    let dir = temp_dir("k6-summary");
    let server = WebServer::start(Options::plain()).await;
    let gates = r#"
http_req_duration = ["p(95)<3000"]
iteration_duration = ["max<3000"]
"http_req_duration{status:500}" = ["p(95)<1000"]
"http_reqs{status:503}" = ["count>1000"]
"http_req_failed{scenario:flaky}" = ["rate<0.5"]
"#;
    let (o, out) = common::run_named(&dir, "k6s", &file(&server.url, gates)).await;
    assert_eq!(
        o.status.code(),
        Some(99),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let k6: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::run_dir(&out).join("k6-summary.json")).unwrap(),
    )
    .unwrap();
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../schema/k6-summary.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&k6)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let mut broken = k6.clone();
    broken["metrics"]["http_reqs"]["type"] = serde_json::json!("histogram");
    assert!(
        !validator.is_valid(&broken),
        "the schema is not a rubber stamp"
    );

    let s = summary(&out);
    let m = &k6["metrics"];
    assert_eq!(m["http_reqs"]["type"], "counter");
    assert_eq!(m["http_reqs"]["values"]["count"], s["totals"]["http_reqs"]);
    let d = &m["http_req_duration"];
    assert_eq!(
        (d["type"].as_str(), d["contains"].as_str()),
        (Some("trend"), Some("time"))
    );
    assert_eq!(d["values"]["p(95)"], s["totals"]["p95_ms"]);
    assert_eq!(d["thresholds"]["p(95)<3000"]["ok"], true);
    // One iteration per request in a mix, timed from its actual start (the request's latency
    // runs from its scheduled start, so it may be the longer of the two).
    let it = &m["iteration_duration"];
    assert_eq!(it["thresholds"]["max<3000"]["ok"], true);
    let (it_max, req_max) = (it["values"]["max"].as_f64(), d["values"]["max"].as_f64());
    assert!(
        it_max > Some(0.0) && it_max < req_max.map(|r| r + 50.0),
        "{it_max:?} {req_max:?}"
    );
    assert_eq!(
        m["iterations"]["values"]["count"],
        s["totals"]["iterations"]
    );
    let failed = &m["http_req_failed"]["values"];
    assert_eq!(
        failed["passes"], s["totals"]["http_req_failed"],
        "passes are failures"
    );
    let fives = request(&s, "pay")["statuses"]["503"].as_u64().unwrap();
    let sub = &m["http_reqs{status:503}"];
    assert_eq!(sub["values"]["count"].as_u64(), Some(fives));
    assert_eq!(sub["thresholds"]["count>1000"]["ok"], false);
    let flaky = &m["http_req_failed{scenario:flaky}"];
    assert_eq!(flaky["type"], "rate");
    assert_eq!(flaky["values"]["passes"].as_u64(), Some(fives));
    assert_eq!(flaky["thresholds"]["rate<0.5"]["ok"], true);
    // A gate on samples that never came is still in the file, failed, with k6's zeros.
    let none = &m["http_req_duration{status:500}"];
    assert_eq!(none["thresholds"]["p(95)<1000"]["ok"], false);
    assert_eq!(
        (none["type"].as_str(), none["values"]["max"].as_f64()),
        (Some("trend"), Some(0.0))
    );
    // k6's default sub-metric: the expected responses only.
    let expected = &m["http_req_duration{expected_response:true}"]["values"];
    assert!(expected["max"].as_f64().unwrap() <= d["values"]["max"].as_f64().unwrap());
    assert_eq!(k6["root_group"]["id"], "d41d8cd98f00b204e9800998ecf8427e");
}

#[tokio::test]
async fn an_unknown_tag_or_a_value_no_sample_can_have_is_exit_2_naming_it() {
    let dir = temp_dir("tags-bad");
    for (gate, words) in [
        (
            r#""http_reqs{colour:red}" = ["count>0"]"#,
            "unsupported tag `colour`",
        ),
        (
            r#""http_reqs{status:ok}" = ["count>0"]"#,
            "tag `status` is a status",
        ),
        (
            r#""http_req_failed{expected_response:yes}" = ["rate<1"]"#,
            "true or false",
        ),
        (
            r#""http_reqs{status:0200}" = ["count>0"]"#,
            "tag `status` is",
        ),
        // Fixed tags no request carries: a count of 0 would judge nothing.
        (
            r#""http_reqs{method:get}" = ["count<1"]"#,
            "select no request (request `pay` carries method:GET)",
        ),
        (
            r#""http_reqs{url:/flaky}" = ["count<1"]"#,
            "carries url:http://127.0.0.1:9/flaky",
        ),
    ] {
        let (o, _) = common::run_named(&dir, "bad", &file("http://127.0.0.1:9", gate)).await;
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{gate}: {err}");
        assert!(
            err.contains(words) && err.contains("bad.toml:"),
            "{gate}: {err}"
        );
    }
}
