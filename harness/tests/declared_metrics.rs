//! Declared metrics of k6's four types fed from responses, on a real server whose every tenth
//! `/order` answer is "sold out" (no id, `ok: false`): the numbers judged are exactly what the
//! answers held.

mod common;

use common::web::{Options, WebServer};
use common::{run_dir, summary, temp_dir, verdict};

fn file(url: &str, metrics: &str, thresholds: &str) -> String {
    format!(
        r#"
name = "declared"
[target]
url = "{url}"
timeout = "3s"
[executor]
type = "arrival-rate"
start_rate = 50
max_in_flight = 50
stages = [ {{ duration = "2s", target = 50 }} ]
[[requests]]
name = "order"
path = "/order"
{metrics}
[thresholds]
{thresholds}
"#
    )
}

const METRICS: &str = r#"
[metrics.order_id]
type = "trend"
request = "order"
value = "$.id"
[metrics.last_id]
type = "gauge"
request = "order"
value = "$.id"
[metrics.order_ok]
type = "rate"
request = "order"
value = "$.ok"
[metrics.orders]
type = "counter"
request = "order"
success_status = [200]
"#;

#[tokio::test]
async fn a_trend_a_gauge_a_rate_and_a_counter_judge_what_the_responses_held() {
    let dir = temp_dir("declared");
    let server = WebServer::start(Options::plain()).await;
    let gates = r#"
order_id = ["max>0", "min==1"]
last_id = ["value>0"]
order_ok = ["rate>0.95"]
orders = ["count>0"]
"#;
    let (o, out) = common::run_named(&dir, "d", &file(&server.url, METRICS, gates)).await;
    assert_eq!(
        o.status.code(),
        Some(99),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s = summary(&out);
    let n = s["totals"]["http_reqs"].as_u64().unwrap();
    assert!(n >= 90, "{n}");
    let sold_out = n / 10;
    // Every response counted; the trend holds the ids 1..=n but the multiples of 10.
    assert_eq!(verdict(&s, "orders"), (Some(n as f64), true));
    let top = if n.is_multiple_of(10) { n - 1 } else { n };
    assert_eq!(verdict(&s, "order_id").0, Some(top as f64));
    let mins: Vec<_> = s["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["metric"] == "order_id")
        .map(|v| (v["threshold"].clone(), v["observed"].clone()))
        .collect();
    assert_eq!(
        mins[1],
        (serde_json::json!("min==1"), serde_json::json!(1.0))
    );
    let (rate, passed) = verdict(&s, "order_ok");
    let want = (n - sold_out) as f64 / n as f64;
    assert!(
        !passed && (rate.unwrap() - want).abs() < 1e-9,
        "{rate:?} vs {want}"
    );
    let (last, passed) = verdict(&s, "last_id");
    assert!(passed && last.unwrap() >= 1.0 && last.unwrap() <= n as f64);

    // k6's types in k6-summary.json.
    let k6: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run_dir(&out).join("k6-summary.json")).unwrap(),
    )
    .unwrap();
    let m = &k6["metrics"];
    assert_eq!(m["order_id"]["type"], "trend");
    assert_eq!(m["order_id"]["contains"], "default");
    assert_eq!(m["order_id"]["values"]["max"].as_f64(), Some(top as f64));
    assert_eq!(m["last_id"]["type"], "gauge");
    assert_eq!(m["order_ok"]["values"]["fails"].as_u64(), Some(sold_out));
    assert_eq!(m["orders"]["type"], "counter");
    assert_eq!(m["orders"]["values"]["count"].as_u64(), Some(n));
}

#[tokio::test]
async fn a_declared_metric_fed_wrongly_or_judged_as_k6_would_not_is_exit_2() {
    let dir = temp_dir("declared-bad");
    for (metrics, gate, words) in [
        (
            "[metrics.tr]\ntype = \"trend\"\nrequest = \"order\"",
            "tr = [\"max>0\"]",
            "needs `value`",
        ),
        (
            "[metrics.cn]\ntype = \"counter\"\nrequest = \"order\"\nvalue = \"$.id\"",
            "cn = [\"count>0\"]",
            "a counter counts responses",
        ),
        (
            "[metrics.ga]\ntype = \"gauge\"\nrequest = \"order\"\nvalue = \"$.id\"",
            "ga = [\"max>0\"]",
            "k6 judges a gauge by `value`",
        ),
        (
            "[metrics.tr]\ntype = \"trend\"\nrequest = \"order\"\nvalue = \"$[\"",
            "tr = [\"max>0\"]",
            "bad JSONPath",
        ),
        (
            "[metrics.tr]\ntype = \"trend\"\nrequest = \"order\"\nvalue = \"$.id\"",
            "tr = [\"count>0\"]",
            "count",
        ),
    ] {
        let (o, _) =
            common::run_named(&dir, "bad", &file("http://127.0.0.1:9", metrics, gate)).await;
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{metrics}: {err}");
        assert!(
            err.contains(words) && err.contains("bad.toml:"),
            "{metrics}: {err}"
        );
    }
}
