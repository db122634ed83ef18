//! The harness against the real target app (MariaDB + tansu): client counts equal the app's own
//! counters, SQL checks see exactly the 201s the harness saw, and the Kafka lag probe reads
//! exactly what was left unconsumed.

use std::time::Duration;

use harness::probes::KafkaLagProbe;
use harness::{run, RunOptions};
use target_app::test_support::{eventually, stack_env, TestApp};
use target_app::Preset;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lag_probe_reads_exactly_the_unconsumed_records() {
    let app = TestApp::start(Preset::Incident, |_| {}).await;
    let probe = KafkaLagProbe::new(
        &stack_env("HARNESS_KAFKA"),
        &app.config.consumer_group,
        &app.config.coupon_topic,
        Duration::from_secs(1),
    )
    .unwrap();
    app.post("/admin/faults", r#"{"consumer_paused":true}"#)
        .await;
    let n = 73;
    for u in 1..=n {
        let (s, _) = app
            .post("/api/coupons/1/issue", &format!(r#"{{"user_id":{u}}}"#))
            .await;
        assert_eq!(s, 202);
    }
    let read = probe.read().await.unwrap();
    assert_eq!(read.len(), 3, "incident preset: 3 partitions");
    assert_eq!(read.iter().map(|p| p.lag).sum::<i64>(), n, "{read:?}");
    assert_eq!(read.iter().map(|p| p.high_watermark).sum::<i64>(), n);
    app.post("/admin/faults", r#"{"consumer_paused":false}"#)
        .await;
    eventually(60, "lag probe reads 0 after resume", || async {
        probe
            .read()
            .await
            .unwrap()
            .iter()
            .map(|p| p.lag)
            .sum::<i64>()
            == 0
    })
    .await;
    let after = probe.read().await.unwrap();
    assert!(
        after.iter().all(|p| p.committed == Some(p.high_watermark)),
        "{after:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_against_the_app_matches_its_own_counters_and_database() {
    let app = TestApp::start(Preset::Incident, |c| c.insert_cost_ms = 5).await;
    let dir = std::env::temp_dir().join(format!("harness-appRun-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = app.config.database_url.clone();
    let scenario = format!(
        r#"
name = "app"
[target]
url = "http://127.0.0.1:1"
[executor]
type = "arrival-rate"
start_rate = 60
stages = [ {{ duration = "3s", target = 60 }} ]
[generators]
user = {{ type = "sequence" }}
product = {{ type = "hot-key", min = 1, max = 10, hot = 1, share = 0.3 }}
[[requests]]
name = "create_order"
method = "POST"
path = "/api/orders"
body = '{{"user_id": {{{{user}}}}, "product_id": {{{{product}}}}, "quantity": 1}}'
expect_status = [201]
[[requests]]
name = "issue_coupon"
method = "POST"
path = "/api/coupons/1/issue"
body = '{{"user_id": {{{{user}}}}}}'
[metrics.coupon_issue_success]
type = "rate"
request = "issue_coupon"
success_status = [202]
[thresholds]
http_req_failed = ["rate<0.01"]
coupon_issue_success = ["rate>0.97"]
kafka_consumer_lag = ["value==0"]
[probes.prometheus]
url = "{{target}}/metrics"
series = ["db_pool_active", "db_pool_pending", "coupon_consumer_lag"]
[probes.kafka]
bootstrap = "{kafka}"
group = "{group}"
topic = "{topic}"
drain_timeout = "30s"
[[sql_checks]]
name = "orders equal the 201s"
database_url = "{db}"
query = "SELECT COUNT(*) FROM orders"
expect_responses = {{ request = "create_order", status = 201 }}
[[sql_checks]]
name = "no negative stock"
database_url = "{db}"
query = "SELECT COUNT(*) FROM inventories WHERE stock_quantity < 0"
expect = 0
[[sql_checks]]
name = "every accepted coupon request decided"
database_url = "{db}"
query = "SELECT COUNT(*) FROM coupon_requests WHERE status <> 'withdrawn'"
expect_responses = {{ request = "issue_coupon", status = 202 }}
"#,
        kafka = stack_env("HARNESS_KAFKA"),
        group = app.config.consumer_group,
        topic = app.config.coupon_topic,
    );
    let file = dir.join("app.toml");
    std::fs::write(&file, scenario).unwrap();
    let opts = RunOptions {
        scenario: file,
        sets: vec![],
        target: Some(app.url.clone()),
        out_dir: dir.join("out"),
        time_scale: 1.0,
        progress: false,
        vars: Default::default(),
        allow_huge: false,
        hurry: None,
        recover: false,
        listen: None,
        segment: Default::default(),
        coordinate: None,
    };
    let outcome = run(&opts, std::future::pending()).await.unwrap();
    let s = &outcome.summary;
    assert_eq!(s.status, "passed", "{:#?}", s);
    assert_eq!(s.totals.http_reqs, 180);
    for (name, route) in [
        ("create_order", "/api/orders"),
        ("issue_coupon", "/api/coupons/{id}/issue"),
    ] {
        let ours = s.requests.iter().find(|r| r.name == name).unwrap().count;
        let metrics = app
            .http
            .get(format!("{}/metrics", app.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let theirs: f64 = metrics
            .lines()
            .filter(|l| l.starts_with(&format!("http_server_requests_total{{route=\"{route}\"")))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum();
        assert_eq!(
            ours as f64, theirs,
            "{name}: harness counted {ours}, the app counted {theirs}"
        );
    }
    assert!(s.sql_checks.iter().all(|c| c.passed), "{:#?}", s.sql_checks);
    assert_eq!(s.sql_checks[0].expected, Some(90));
    let lag = s.kafka_lag.as_ref().unwrap();
    assert_eq!(lag.last, Some(0));
    assert!(s.series_peaks.contains_key("db_pool_active"));
    assert_eq!(lag.partitions.len(), 3, "{:?}", lag.partitions);
    // A summary with every section filled in still matches its schema.
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../schema/summary.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let value = serde_json::to_value(s).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    std::fs::remove_dir_all(&dir).unwrap();
    app.stop().await;
}
