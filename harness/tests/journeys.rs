//! User journeys on the real stack: flows with extracted values against the target app (MariaDB
//! and the broker), several scenarios at once with their own start times and thresholds,
//! setup and teardown, data files, and k6's executors counted server-side.

mod common;

use std::time::Duration;

use common::*;
use target_app::test_support::TestApp;
use target_app::Preset;

/// One load at a time: these tests count requests and time scenarios on 2 shared cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn app() -> TestApp {
    TestApp::start(Preset::Remediated, |c| {
        c.external_call_ms = 0;
        c.insert_cost_ms = 0;
        c.seed_products = 20;
    })
    .await
}

/// create order → extract its id → read it back → check the quantity, on `executor`.
fn order_flow(url: &str, executor: &str, extract: &str) -> String {
    format!(
        r#"
name = "journey"
[target]
url = "{url}"
timeout = "5s"
[generators]
user = {{ type = "sequence", start = 1 }}
product = {{ type = "uniform", min = 2, max = 20 }}
[scenarios.orders]
{executor}
[[scenarios.orders.flow]]
name = "create"
method = "POST"
path = "/api/orders"
body = '{{"user_id": {{{{user}}}}, "product_id": {{{{product}}}}, "quantity": 3}}'
expect_status = [201]
[[scenarios.orders.flow.extract]]
var = "order_id"
jsonpath = "{extract}"
[[scenarios.orders.flow]]
name = "read_back"
path = "/api/orders/{{{{order_id}}}}"
[[scenarios.orders.flow.checks]]
name = "same quantity"
jsonpath = "$.quantity"
equals = 3
[[scenarios.orders.flow.checks]]
name = "same order"
jsonpath = "$.order_id"
"#
    )
}

fn count(sum: &serde_json::Value, name: &str) -> u64 {
    sum["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .map_or(0, |r| r["count"].as_u64().unwrap())
}

fn check(sum: &serde_json::Value, name: &str) -> (u64, u64) {
    let c = sum["http"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {}", sum["http"]["checks"]));
    (c["passes"].as_u64().unwrap(), c["fails"].as_u64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_step_flow_reads_back_every_order_it_created_on_both_executors() {
    let _one = SERIAL.lock().await;
    let app = app().await;
    let dir = temp_dir("journey");
    for (tag, executor) in [
        ("vus", "executor = \"constant-vus\"\nvus = 4\nduration = \"3s\""),
        (
            "arrival",
            "executor = \"constant-arrival-rate\"\nrate = 20\nduration = \"3s\"\npreAllocatedVUs = 50",
        ),
    ] {
        let (o, out) = run_named(&dir, tag, &order_flow(&app.url, executor, "$.order_id")).await;
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        let sum = summary(&out);
        let (created, read) = (count(&sum, "create"), count(&sum, "read_back"));
        assert!(created >= 10, "{tag}: {created} orders");
        assert_eq!(created, read, "{tag}: every created order is read back");
        assert_eq!(check(&sum, "same quantity"), (read, 0), "{tag}");
        assert_eq!(check(&sum, "same order"), (read, 0), "{tag}");
        assert_eq!(sum["totals"]["iterations"].as_u64(), Some(created), "{tag}");
        assert!(sum["iteration_failed"].as_object().unwrap().is_empty(), "{tag}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_extraction_fails_only_the_iterations_it_hits_and_names_the_step() {
    let _one = SERIAL.lock().await;
    let app = app().await;
    let dir = temp_dir("broken");
    let executor = "executor = \"shared-iterations\"\nvus = 2\niterations = 12";
    let (o, out) = run_named(&dir, "s", &order_flow(&app.url, executor, "$.nope")).await;
    let sum = summary(&out);
    assert_eq!(
        o.status.code(),
        Some(0),
        "no threshold: the run itself passes"
    );
    assert_eq!(count(&sum, "create"), 12);
    assert_eq!(count(&sum, "read_back"), 0, "no empty id is sent on");
    assert_eq!(
        sum["iteration_failed"]["create"].as_u64(),
        Some(12),
        "{}",
        sum["iteration_failed"]
    );
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("iterations failed at step: create 12"),
        "{table}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_runs_once_and_teardown_runs_after_an_interrupted_run() {
    let _one = SERIAL.lock().await;
    let server = TestServer::start().await;
    let dir = temp_dir("setup");
    let text = format!(
        r#"
name = "once"
[target]
url = "{}"
[[setup]]
name = "login"
method = "POST"
path = "/setup"
[[setup.extract]]
var = "sid"
header = "content-length"
[scenarios.load]
executor = "constant-vus"
vus = 5
duration = "30s"
[[scenarios.load.flow]]
name = "work"
path = "/work/{{{{sid}}}}"
think_time = "100ms"
[[teardown]]
name = "logout"
method = "POST"
path = "/teardown"
"#,
        server.url
    );
    let file = scenario(&dir, "s.toml", &text);
    let out = dir.join("out");
    let o = run_then_interrupt(&file, &out, Duration::from_secs(4)).await;
    assert_eq!(
        o.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(server.count("/setup"), 1);
    assert_eq!(server.count("/teardown"), 1, "teardown after SIGINT");
    // setup's variable reached every iteration (the empty body's content-length).
    assert!(
        server.count("/work/0") > 20,
        "{:?}",
        server.state.counts.lock().unwrap()
    );
    assert_eq!(server.total(), server.count("/work/0") + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenarios_start_at_their_offsets_and_thresholds_judge_only_their_own_samples() {
    let _one = SERIAL.lock().await;
    let server = TestServer::start().await;
    let dir = temp_dir("offsets");
    let text = format!(
        r#"
name = "two"
[target]
url = "{}"
[scenarios.early]
executor = "constant-arrival-rate"
rate = 20
duration = "6s"
[[scenarios.early.requests]]
name = "e"
path = "/e"
[scenarios.late]
executor = "constant-arrival-rate"
rate = 10
duration = "2s"
start_time = "3s"
[[scenarios.late.requests]]
name = "l"
path = "/l"
[thresholds]
"http_reqs{{scenario:late}}" = ["count>=18", "count<=22"]
"http_reqs{{scenario:early}}" = ["count>=115"]
"http_req_duration{{scenario:late}}" = ["max<1000"]
"#,
        server.url
    );
    let (o, out) = run_named(&dir, "s", &text).await;
    let sum = summary(&out);
    assert_eq!(o.status.code(), Some(0), "{}", sum["thresholds"]);
    assert_eq!(server.count("/l"), 20);
    assert_eq!(server.count("/e"), 120);
    // The per-second series: `l` appears in second 3 (± 1) and nowhere before 2.
    let csv = std::fs::read_to_string(run_dir(&out).join("timeseries.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = header
        .iter()
        .position(|h| *h == "requests:l")
        .expect("requests:l column");
    let first = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|f| f[col].parse::<f64>().unwrap_or(0.0) > 0.0)
        .map(|f| f[0].parse::<f64>().unwrap())
        .unwrap();
    assert!(
        (2.0..=4.0).contains(&first),
        "late starts at second {first}"
    );
    let rows = sum["scenarios"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows
        .iter()
        .any(|r| r["name"] == "late" && r["requests"] == 20 && r["start_time_s"] == 3.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k6_executors_run_the_iterations_k6_documents() {
    let _one = SERIAL.lock().await;
    let server = TestServer::start().await;
    let dir = temp_dir("executors");
    let cases = [
        ("shared", "executor = \"shared-iterations\"\nvus = 10\niterations = 100", 100),
        ("pervu", "executor = \"per-vu-iterations\"\nvus = 10\niterations = 5", 50),
        (
            "constant",
            "executor = \"constant-arrival-rate\"\nrate = 30\ntimeUnit = \"2s\"\nduration = \"4s\"\npreAllocatedVUs = 10",
            60,
        ),
        (
            "ramping",
            "executor = \"ramping-arrival-rate\"\nstartRate = 0\nstages = [{ duration = \"4s\", target = 20 }]",
            40,
        ),
    ];
    for (tag, executor, expected) in cases {
        let text = format!(
            "name = \"{tag}\"\n[target]\nurl = \"{}\"\n[scenarios.{tag}]\n{executor}\n[[scenarios.{tag}.requests]]\nname = \"r\"\npath = \"/{tag}\"\n",
            server.url
        );
        let (o, out) = run_named(&dir, tag, &text).await;
        assert_eq!(
            o.status.code(),
            Some(0),
            "{tag}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(server.count(&format!("/{tag}")), expected, "{tag}");
        assert_eq!(
            summary(&out)["totals"]["iterations"].as_u64(),
            Some(expected),
            "{tag}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_rows_are_each_used_exactly_once() {
    let _one = SERIAL.lock().await;
    let server = TestServer::start().await;
    let dir = temp_dir("unique");
    let mut csv = String::from("id,email\n");
    for i in 0..1000 {
        csv.push_str(&format!("{i},user{i}@example.com\n"));
    }
    std::fs::write(dir.join("users.csv"), csv).unwrap();
    let text = format!(
        r#"
name = "unique"
[target]
url = "{}"
[data.users]
file = "users.csv"
select = "unique"
[scenarios.signup]
executor = "shared-iterations"
vus = 20
iterations = 1000
[[scenarios.signup.flow]]
name = "signup"
path = "/u/{{{{users.id}}}}"
"#,
        server.url
    );
    let (o, _) = run_named(&dir, "s", &text).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let counts = server.state.counts.lock().unwrap();
    let used: Vec<_> = counts
        .iter()
        .filter(|(p, _)| p.starts_with("/u/"))
        .collect();
    assert_eq!(used.len(), 1000, "every row once");
    assert!(used.iter().all(|(_, n)| **n == 1));
}

/// Peak RSS (KiB) of `harness run FILE` to its end.
// Reaped by `wait4`, which std does not know about.
#[allow(clippy::zombie_processes)]
fn max_rss_kib(file: &std::path::Path, out: &std::path::Path) -> i64 {
    let child = spawn_run(file, out, false);
    let mut status = 0;
    // SAFETY: waiting for our own child and reading its resource usage.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "status {status}"
    );
    usage.ru_maxrss
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_row_csv_adds_less_than_its_size_at_a_thousand_vus() {
    let _one = SERIAL.lock().await;
    let server = TestServer::start().await;
    let dir = temp_dir("bigcsv");
    let mut csv = String::with_capacity(40 << 20);
    csv.push_str("id,email,name\n");
    for i in 0..1_000_000 {
        csv.push_str(&format!("{i},user{i}@example.com,User Number {i}\n"));
    }
    std::fs::write(dir.join("big.csv"), &csv).unwrap();
    std::fs::write(dir.join("small.csv"), "id,email,name\n1,a@b,c\n").unwrap();
    let size_kib = csv.len() as i64 / 1024;
    drop(csv);
    let text = |file: &str| {
        format!(
            r#"
name = "rss"
[target]
url = "{}"
[data.users]
file = "{file}"
[scenarios.browse]
executor = "constant-vus"
vus = 1000
duration = "4s"
think_time = "1s"
[[scenarios.browse.requests]]
name = "r"
path = "/r/{{{{users.email}}}}"
"#,
            server.url
        )
    };
    let (small, big) = (
        scenario(&dir, "small.toml", &text("small.csv")),
        scenario(&dir, "big.toml", &text("big.csv")),
    );
    let (d1, d2) = (dir.join("o1"), dir.join("o2"));
    let base = tokio::task::spawn_blocking(move || max_rss_kib(&small, &d1))
        .await
        .unwrap();
    let with = tokio::task::spawn_blocking(move || max_rss_kib(&big, &d2))
        .await
        .unwrap();
    assert!(server.total() > 1000, "the VUs sent: {}", server.total());
    let added = with - base;
    eprintln!("1M-row CSV of {size_kib} KiB at 1,000 VUs: peak RSS {base} → {with} KiB");
    assert!(
        added < size_kib,
        "a {size_kib} KiB file added {added} KiB ({base} → {with} KiB)"
    );
}
