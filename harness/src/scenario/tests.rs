use super::*;

pub(crate) const VALID: &str = r#"
name = "orders"
[target]
url = "http://127.0.0.1:8080"
timeout = "5s"

[executor]
type = "arrival-rate"
max_in_flight = 200
stages = [ { duration = "2s", target = 10 }, { duration = "1m", target = 110 } ]

[generators]
user_id = { type = "sequence" }
product_id = { type = "hot-key", min = 1, max = 100, hot = 1, share = 0.2 }

[[requests]]
name = "create_order"
method = "POST"
path = "/api/orders"
body = '{"user_id": {{user_id}}, "product_id": {{product_id}}, "quantity": 1}'
weight = 3

[[requests]]
name = "issue_coupon"
method = "POST"
path = "/api/coupons/1/issue"
body = '{"user_id": {{user_id}}}'

[metrics.coupon_issue_success]
type = "rate"
request = "issue_coupon"
success_status = [202]

[thresholds]
http_req_failed = ["rate<0.05"]
http_req_duration = ["p(95)<2000", { threshold = "p(99)<5000", abortOnFail = true, delayAbortEval = "10s" }]
"http_req_duration{name:create_order}" = ["p(95)<1500"]
coupon_issue_success = ["rate>0.97"]

[probes.prometheus]
url = "{target}/metrics"
series = ["db_pool_pending"]

[[alerts]]
name = "pool pending"
expr = "db_pool_pending > 5"
for = "2m"
severity = "critical"

[[sql_checks]]
name = "no negative stock"
database_url = "mysql://root@127.0.0.1/test"
query = "SELECT COUNT(*) FROM inventories WHERE stock_quantity < 0"
expect = 0

[[sql_checks]]
name = "orders match 201s"
database_url = "mysql://root@127.0.0.1/test"
query = "SELECT COUNT(*) FROM orders"
expect_responses = { request = "create_order", status = 201 }
"#;

fn invalid(text: &str) -> Located {
    match Scenario::from_str(text, "s.toml", &[]) {
        Err(ScenarioError::Invalid(l)) => l,
        other => panic!("expected a located error, got {other:?}"),
    }
}

#[test]
fn the_example_loads() {
    let s = Scenario::from_str(VALID, "s.toml", &[]).unwrap();
    assert_eq!(s.requests.len(), 2);
    assert_eq!(s.total_duration(), std::time::Duration::from_secs(62));
    assert_eq!(s.thresholds.len(), 4);
    let full = &s
        .thresholds
        .iter()
        .find(|(k, _)| k.get_ref().name == "http_req_duration" && k.get_ref().tags.is_empty())
        .unwrap()
        .1[1];
    assert!(full.abort_on_fail);
    assert_eq!(full.delay_abort_eval.0, std::time::Duration::from_secs(10));
}

#[test]
fn unknown_field_names_line_column_and_field() {
    let text = VALID.replace("timeout = \"5s\"", "timeout = \"5s\"\nretries = 3");
    let e = invalid(&text);
    assert_eq!(
        (e.file.as_str(), e.line, e.field.as_str()),
        ("s.toml", 6, "retries")
    );
    assert!(e.message.contains("unknown field `retries`"), "{e}");
}

#[test]
fn wrong_type_and_bad_duration() {
    let e = invalid(&VALID.replace("max_in_flight = 200", "max_in_flight = \"lots\""));
    assert_eq!((e.line, e.field.as_str()), (9, "max_in_flight"));
    let e = invalid(&VALID.replace("timeout = \"5s\"", "timeout = \"5 seconds\""));
    assert_eq!((e.line, e.column, e.field.as_str()), (5, 11, "timeout"));
    assert!(e.message.contains("invalid duration"), "{e}");
}

#[test]
fn threshold_syntax_and_kind_errors() {
    let e = invalid(&VALID.replace(r#"["rate<0.05"]"#, r#"["rate<<0.05"]"#));
    assert_eq!(e.field, "http_req_failed");
    assert!(e.message.contains("invalid threshold"), "{e}");
    let e = invalid(&VALID.replace(
        r#"http_req_failed = ["rate<0.05"]"#,
        r#"http_req_failed = ["p(95)<1"]"#,
    ));
    assert!(e.message.contains("does not apply"), "{e}");
    let e = invalid(&VALID.replace("{name:create_order}", "{name:nope}"));
    assert!(e.message.contains("no request named `nope`"), "{e}");
    assert_eq!(e.line, 37);
    let e = invalid(&VALID.replace("coupon_issue_success = [", "coupon_success = ["));
    assert!(e.message.contains("unknown metric `coupon_success`"), "{e}");
}

#[test]
fn dangling_references_are_errors() {
    let e = invalid(&VALID.replace("{{product_id}}", "{{sku}}"));
    assert_eq!((e.line, e.field.as_str()), (20, "requests.body"));
    assert!(e.message.contains("unknown generator `sku`"));
    let e = invalid(&VALID.replace("request = \"issue_coupon\"", "request = \"issue\""));
    assert!(e.message.contains("no request named `issue`"), "{e}");
    let e = invalid(&VALID.replace(
        "expr = \"db_pool_pending > 5\"",
        "expr = \"db_pool_waiting > 5\"",
    ));
    assert!(e.message.contains("unknown series"), "{e}");
}

#[test]
fn plugin_specs_need_a_wasm_path_and_known_fields() {
    let s = Scenario::from_str(
        &format!("{VALID}\n[[faults]]\nplugin = \"x.wasm\"\nconfig = {{ at_s = 5 }}\n"),
        "s.toml",
        &[],
    )
    .unwrap();
    assert_eq!(s.faults[0].config["at_s"].as_integer(), Some(5));
    assert_eq!(
        s.actuators.app_faults, None,
        "no default: the harness knows no app's routes"
    );
    let e = invalid(&format!("{VALID}\n[[faults]]\nplugin = \"x.so\"\n"));
    assert_eq!(e.field, "faults.plugin");
    assert!(e.message.contains("not a .wasm"), "{e}");
    let e = invalid(&format!(
        "{VALID}\n[[threshold_plugins]]\nplugin = \"x.wasm\"\nconfg = {{}}\n"
    ));
    assert!(e.message.contains("unknown field `confg`"), "{e}");
}

#[test]
fn set_overrides_existing_keys_only() {
    let s = Scenario::from_str(
        VALID,
        "s.toml",
        &[
            "target.url=\"http://127.0.0.1:9\"".into(),
            "executor.max_in_flight=7".into(),
        ],
    )
    .unwrap();
    assert_eq!(s.target.url, "http://127.0.0.1:9");
    assert!(matches!(
        s.workloads[0].executor,
        Executor::ArrivalRate {
            max_in_flight: 7,
            ..
        }
    ));
    let e = Scenario::from_str(VALID, "s.toml", &["target.nope=1".into()]).unwrap_err();
    assert!(e.to_string().contains("no `target.nope`"), "{e}");
    let e =
        Scenario::from_str(VALID, "s.toml", &["executor.max_in_flight=\"x\"".into()]).unwrap_err();
    assert!(matches!(e, ScenarioError::Override { .. }), "{e}");
}

#[test]
fn time_scale_shrinks_stages() {
    let mut s = Scenario::from_str(VALID, "s.toml", &[]).unwrap();
    s.scale_time(0.5);
    assert_eq!(s.total_duration(), std::time::Duration::from_secs(31));
    assert_eq!(s.alerts[0].for_.0, std::time::Duration::from_secs(60));
}

#[test]
fn report_series_default_to_every_probe_series_and_must_be_probe_series() {
    // VALID probes `db_pool_pending`; give it two series.
    let valid = VALID.replace(
        r#"series = ["db_pool_pending"]"#,
        r#"series = ["db_pool_pending", "b"]"#,
    );
    let s = Scenario::from_str(&valid, "s.toml", &[]).unwrap();
    let labels: Vec<_> = s
        .progress_series()
        .into_iter()
        .map(|p| (p.series, p.label))
        .collect();
    assert_eq!(
        labels,
        [
            ("db_pool_pending".into(), "db_pool_pending".into()),
            ("b".into(), "b".into())
        ]
    );
    let titles: Vec<_> = s.charts().into_iter().map(|c| c.title).collect();
    assert_eq!(
        titles,
        ["db_pool_pending", "b"],
        "one chart per probe series"
    );

    let report = "[report]\nprogress = [{ series = \"b\", label = \"bee\" }]\n\
                  [[report.charts]]\ntitle = \"B\"\nunit = \"n\"\nseries = [{ series = \"b\" }]\n";
    let s = Scenario::from_str(&format!("{valid}\n{report}"), "s.toml", &[]).unwrap();
    assert_eq!(s.progress_series()[0].label, "bee");
    let charts = s.charts();
    assert_eq!((charts.len(), charts[0].series[0].label.as_str()), (1, "b"));

    let e = invalid(&format!(
        "{valid}\n[report]\nprogress = [{{ series = \"nope\" }}]\n"
    ));
    assert_eq!(e.field, "report.progress");
    assert!(
        e.message
            .contains("`nope` is not a probe series (probe series: db_pool_pending, b)"),
        "{e}"
    );
    let e = invalid(&format!(
        "{valid}\n[[report.charts]]\ntitle = \"x\"\nseries = [{{ series = \"c\" }}]\n"
    ));
    assert_eq!(
        (e.field.as_str(), e.line > 0),
        ("report.charts", true),
        "{e}"
    );
}

#[test]
fn probe_series_are_selectors_and_gates_name_them_as_written() {
    let series = r#"series = ["db_pool_pending", 'node_cpu_seconds_total{mode="idle"}', 'sum(node_cpu_seconds_total{mode!="idle"})']"#;
    let valid = VALID
        .replace(r#"series = ["db_pool_pending"]"#, series)
        .replace(
            "coupon_issue_success = [\"rate>0.97\"]",
            "coupon_issue_success = [\"rate>0.97\"]\n\"node_cpu_seconds_total{mode=\\\"idle\\\"}\" = [\"max<100\"]\n'sum(node_cpu_seconds_total{mode!=\"idle\"})' = [\"value<5\"]",
        );
    let valid = format!(
        "{valid}\n[[alerts]]\nname = \"busy\"\nexpr = 'sum(node_cpu_seconds_total{{mode!=\"idle\"}}) > 5'\nfor = \"1s\"\n"
    );
    let s = Scenario::from_str(&valid, "s.toml", &[]).unwrap_or_else(|e| panic!("{e}"));
    let idle = r#"node_cpu_seconds_total{mode="idle"}"#;
    assert_eq!(s.metric_kind(idle), Some(MetricKind::Gauge));
    let names: Vec<String> = s
        .thresholds
        .keys()
        .map(|m| m.get_ref().to_string())
        .collect();
    assert!(names.iter().any(|n| n == idle), "{names:?}");
    assert!(names
        .iter()
        .any(|n| n == r#"sum(node_cpu_seconds_total{mode!="idle"})"#));
    assert_eq!(s.probe_series()[1], idle, "recorded as written");

    // A selector the probes do not record is an unknown metric, not a k6 tag.
    let e = invalid(&valid.replace(
        "\"node_cpu_seconds_total{mode=\\\"idle\\\"}\" = [",
        "\"node_cpu_seconds_total{mode=\\\"user\\\"}\" = [",
    ));
    assert!(
        e.message
            .contains(r#"unknown metric `node_cpu_seconds_total{mode="user"}`"#),
        "{e}"
    );

    let bad = VALID.replace(
        r#"series = ["db_pool_pending"]"#,
        r#"series = ["db_pool_pending", 'node_cpu_seconds_total{mode="idle"']"#,
    );
    let e = invalid(&bad);
    let line = bad
        .lines()
        .position(|l| l.starts_with("series = "))
        .unwrap()
        + 1;
    assert_eq!(
        (e.field.as_str(), e.line),
        ("probes.prometheus.series", line),
        "{e}"
    );
    assert_eq!(
        e.message,
        r#"invalid series selector `node_cpu_seconds_total{mode="idle"`: expected `,` or `}` at the end"#
    );
    let e = invalid(&VALID.replace(
        r#"series = ["db_pool_pending"]"#,
        r#"series = ['x{code=~"(5"}']"#,
    ));
    assert!(e.message.contains("invalid regex"), "{e}");
}

#[test]
fn probe_addresses_must_be_urls_and_host_ports() {
    let bad_url = VALID.replace(r#"url = "{target}/metrics""#, r#"url = "not a url""#);
    let e = invalid(&bad_url);
    assert_eq!(e.field, "probes.prometheus.url");
    assert!(
        e.message
            .contains("`not a url` is not an http:// or https:// URL"),
        "{e}"
    );
    let kafka =
        "[probes.kafka]\nbootstrap = \"127.0.0.1:9092,broker\"\ngroup = \"g\"\ntopic = \"t\"\n";
    let e = invalid(&format!("{VALID}\n{kafka}"));
    assert_eq!(e.field, "probes.kafka.bootstrap");
    assert!(e.message.contains("`broker` is not host:port"), "{e}");
}
