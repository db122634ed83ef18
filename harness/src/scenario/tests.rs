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

/// A two-scenario file with a flow, for the journey validation tests; `{extra}` goes at the
/// end, `{step}` into the flow's second step.
fn journey(step: &str, extra: &str) -> String {
    format!(
        r#"
name = "journey"
[target]
url = "http://127.0.0.1:8080"

[scenarios.shop]
executor = "shared-iterations"
vus = 2
iterations = 10

[[scenarios.shop.flow]]
name = "create"
method = "POST"
path = "/api/orders"
body = '{{"quantity": 1}}'
[[scenarios.shop.flow.extract]]
var = "order_id"
jsonpath = "$.order_id"

[[scenarios.shop.flow]]
name = "read"
{step}

[scenarios.browse]
executor = "constant-arrival-rate"
rate = 5
duration = "10s"
[[scenarios.browse.requests]]
name = "product"
path = "/api/products/1"
{extra}
"#
    )
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

fn invalid_in(dir: &std::path::Path, text: &str) -> Located {
    let file = dir.join("s.toml");
    match Scenario::from_str(text, &file.display().to_string(), &[]) {
        Err(ScenarioError::Invalid(l)) => l,
        other => panic!("expected a located error, got {other:?}"),
    }
}

fn data_dir(tag: &str, csv: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("harness-jv-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("users.csv"), csv).unwrap();
    d
}

#[test]
fn a_journey_file_loads_with_its_scenarios_and_the_older_form_is_one_named_default() {
    let s = Scenario::from_str(
        &journey("path = \"/api/orders/{{order_id}}\"", ""),
        "s.toml",
        &[],
    )
    .unwrap();
    let names: Vec<&str> = s.workloads.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["browse", "shop"]);
    assert_eq!(s.executor_kind(), "constant-arrival-rate+shared-iterations");
    let old = Scenario::from_str(VALID, "s.toml", &[]).unwrap();
    assert_eq!(old.workloads.len(), 1);
    assert_eq!(old.workloads[0].name, "default");
}

#[test]
fn an_unknown_variable_is_named_with_its_step_and_placed() {
    let text = journey("path = \"/api/orders/{{order}}\"", "");
    let e = invalid(&text);
    assert_eq!(e.field, "scenarios.shop.flow.path");
    assert!(e.message.contains("step `read`"), "{e}");
    assert!(e.message.contains("unknown variable `order`"), "{e}");
    assert!(e.message.contains("order_id"), "lists what is known: {e}");
    assert_eq!(e.line, line_of(&text, "{{order}}"));
}

#[test]
fn bad_extractions_are_placed_at_their_expression() {
    let text = journey(
        "path = \"/x\"\n[[scenarios.shop.flow.extract]]\nvar = \"v\"\njsonpath = \"$[\"",
        "",
    );
    let e = invalid(&text);
    assert_eq!(e.field, "scenarios.shop.flow.extract.jsonpath");
    assert!(e.message.contains("not a JSONPath"), "{e}");
    assert_eq!(e.line, line_of(&text, "$["));
    let text = journey(
        "path = \"/x\"\n[[scenarios.shop.flow.extract]]\nvar = \"v\"\nregex = \"(\"",
        "",
    );
    let e = invalid(&text);
    assert_eq!(e.field, "scenarios.shop.flow.extract.regex");
    assert!(e.message.contains("not a regular expression"), "{e}");
}

#[test]
fn data_files_missing_empty_ragged_or_without_a_column_are_refused() {
    let step = "path = \"/u/{{users.email}}\"";
    let data = "[data.users]\nfile = \"users.csv\"";
    let d = data_dir("missing", "");
    std::fs::remove_file(d.join("users.csv")).unwrap();
    let e = invalid_in(&d, &journey(step, data));
    assert_eq!(e.field, "data.users.file");
    assert!(e.message.contains("cannot read users.csv"), "{e}");
    let d = data_dir("empty", "");
    assert!(invalid_in(&d, &journey(step, data))
        .message
        .contains("is empty"));
    let d = data_dir("ragged", "id,email\n1,a@x\n2\n");
    let e = invalid_in(&d, &journey(step, data));
    assert!(
        e.message
            .contains("users.csv:3: 1 fields where the header has 2"),
        "{e}"
    );
    let d = data_dir("column", "id,mail\n1,a@x\n");
    let e = invalid_in(&d, &journey(step, data));
    assert!(
        e.message
            .contains("has no column `email` (its header: id, mail)"),
        "{e}"
    );
    assert_eq!(e.field, "scenarios.shop.flow.path");
}

#[test]
fn unique_rows_fewer_than_the_iterations_that_need_them_are_refused() {
    let d = data_dir("few", "id,email\n1,a@x\n2,b@x\n");
    let data = "[data.users]\nfile = \"users.csv\"\nselect = \"unique\"";
    let e = invalid_in(&d, &journey("path = \"/u/{{users.email}}\"", data));
    assert_eq!(e.field, "data.users.select");
    assert!(
        e.message.contains("runs 10 iterations, `users` has 2 rows"),
        "{e}"
    );
}

#[test]
fn scenario_names_start_times_and_executor_options_are_checked() {
    let step = "path = \"/api/orders/{{order_id}}\"";
    // One name twice: TOML itself refuses the second table, at its line.
    let twice = journey(
        step,
        "[scenarios.browse]\nexecutor = \"constant-vus\"\nduration = \"1s\"",
    );
    let e = invalid(&twice);
    assert!(e.message.contains("duplicate"), "{e}");
    let late = journey(step, "").replace(
        "duration = \"10s\"",
        "duration = \"10s\"\nstart_time = \"20m\"",
    );
    let e = invalid(&late);
    assert_eq!(e.field, "scenarios.browse.start_time");
    assert!(
        e.message.contains("after every other scenario has ended"),
        "{e}"
    );
    let wrong = journey(step, "").replace("rate = 5", "rate = 5\nstages = []");
    let e = invalid(&wrong);
    assert!(
        e.message
            .contains("`stages` is not an option of the constant-arrival-rate executor"),
        "{e}"
    );
    let missing = journey(step, "").replace("duration = \"10s\"\n", "");
    let e = invalid(&missing);
    assert_eq!(e.field, "scenarios.browse.duration");
    assert!(e.message.contains("needs `duration`"), "{e}");
    let both = format!(
        "{}\n[executor]\ntype = \"vus\"\nstages = []",
        journey(step, "")
    );
    assert!(invalid(&both).message.contains("not both"));
}

#[test]
fn scenario_tags_and_flow_fields_in_a_mix_are_checked() {
    let step = "path = \"/api/orders/{{order_id}}\"";
    let tag = journey(
        step,
        "[thresholds]\n\"http_req_duration{scenario:shopping}\" = [\"p(95)<100\"]",
    );
    let e = invalid(&tag);
    assert!(
        e.message
            .contains("no scenario named `shopping` (scenarios: browse, shop)"),
        "{e}"
    );
    let ok = journey(
        step,
        "[thresholds]\n\"http_req_duration{scenario:shop}\" = [\"p(95)<100\"]",
    );
    Scenario::from_str(&ok, "s.toml", &[]).unwrap();
    let mix = journey(step, "think_time = \"1s\"");
    let e = invalid(&mix);
    assert!(
        e.message.contains("`think_time` belongs to a flow step"),
        "{e}"
    );
    let poll = journey(
        &format!("{step}\n[scenarios.shop.flow.poll]\nuntil = \"done\"\ntimeout = \"1m\""),
        "",
    );
    let e = invalid(&poll);
    assert!(
        e.message
            .contains("`until` names no check of this step: `done`"),
        "{e}"
    );
}

#[test]
fn metric_names_k6_would_refuse_are_refused() {
    let e = invalid(&VALID.replace("[metrics.coupon_issue_success]", "[metrics.c]"));
    assert_eq!(e.field, "metrics.c");
    assert!(e.message.contains("k6's rule"), "{e}");
    let bad = VALID.replace(
        "[metrics.coupon_issue_success]",
        "[metrics.\"issue-success\"]",
    );
    assert!(invalid(&bad).message.contains("invalid metric name"));
    let step = "path = \"/api/orders/{{order_id}}\"\n[[scenarios.shop.flow.checks]]\nname = \"done\"\nstatus = 200\n[scenarios.shop.flow.poll]\nuntil = \"done\"\ninterval = \"1s\"\ntimeout = \"10s\"\ntrend = \"order wait\"";
    let e = invalid(&journey(step, ""));
    assert_eq!(e.field, "scenarios.shop.flow.poll.trend", "{e}");
    assert!(
        e.message.contains("invalid metric name \"order wait\""),
        "{e}"
    );
}
