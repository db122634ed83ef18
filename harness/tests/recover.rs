//! Rollback that survives the harness: a run SIGKILLed with an app fault, a relay toxic, an
//! HTTP toxic, a paused broker and a held database lock in force leaves them all in force (a
//! killed process cannot undo anything), the next run on the same actuators is refused, and
//! `harness faults recover` undoes every one — checked through each actuator's own API, the
//! process state and the database's process list.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::faults::*;
use common::*;
use harness::faults::ToxiproxyClient;
use harness::{local_stack, Silent};
use target_app::test_support::{stack_env, TestApp};
use target_app::Preset;

/// The journal's agent sessions and token, once the agent answered.
fn agent(run: &Path) -> Option<(Vec<i64>, String)> {
    let text = std::fs::read_to_string(run.join("faults.jsonl")).ok()?;
    text.lines().find_map(|l| {
        let v: serde_json::Value = serde_json::from_str(l).ok()?;
        (v["op"] == "update" && v["undo"]["undo"] == "agent").then(|| {
            let ids = v["undo"]["sessions"].as_array().unwrap();
            let ids = ids.iter().map(|x| x.as_i64().unwrap()).collect();
            (ids, v["undo"]["token"].as_str().unwrap().to_owned())
        })
    })
}

fn intents(run: &Path) -> usize {
    std::fs::read_to_string(run.join("faults.jsonl"))
        .map(|t| {
            t.lines()
                .filter(|l| l.contains("\"op\":\"intent\""))
                .count()
        })
        .unwrap_or(0)
}

async fn hold_ms(app: &TestApp) -> serde_json::Value {
    let v: serde_json::Value = app
        .http
        .get(format!("{}/admin/faults", app.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["order_hold_ms"].clone()
}

async fn toxic_count(relay: &ToxiproxyClient, proxy: &str) -> usize {
    relay.proxy(proxy).await.unwrap().toxics.len()
}

#[allow(clippy::too_many_arguments)]
fn scenario_text(app: &TestApp, tcp: &str, http: &str, pid_file: &Path, api: &str) -> String {
    format!(
        r#"
name = "crash"
[target]
url = "{url}"
[executor]
type = "arrival-rate"
start_rate = 5
stages = [ {{ duration = "60s", target = 5 }} ]
[[requests]]
name = "product"
path = "/api/products/2"
[actuators]
app_faults = "{{target}}/admin/faults"
toxiproxy = "{api}"
[actuators.sql.shop]
url = "{db}"
[actuators.processes.broker]
pid_file = "{pid}"
[[faults]]
plugin = "{plugin}"
[[faults.config.steps]]
action = "app"
field = "order_hold_ms"
value = 100
[[faults.config.steps]]
action = "toxic"
proxy = "{tcp}"
kind = "latency"
attributes = {{ latency = 200 }}
[[faults.config.steps]]
action = "http-toxic"
proxy = "{http}"
kind = "status"
status = 503
route = "/api/orders"
[[faults.config.steps]]
action = "pause"
process = "broker"
[[faults.config.steps]]
action = "sql-lock"
database = "shop"
query = "SELECT product_id FROM inventories WHERE product_id = 1"
hold_ms = 60000
"#,
        url = app.url,
        db = app.config.database_url,
        pid = pid_file.display(),
        plugin = built_plugin("chaos-schedule.wasm"),
    )
}

async fn harness_in(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut a = vec!["--out".to_owned(), dir.join("out").display().to_string()];
    a.splice(0..0, args.iter().map(|s| s.to_string()));
    harness(a).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_harness_leaves_its_faults_in_force_until_faults_recover_undoes_every_one() {
    let app = TestApp::start(Preset::Incident, |_| {}).await;
    let dir = temp_dir("crash");
    let port = local_stack::free_port().unwrap();
    let broker = local_stack::start_broker(&dir, &dir, port, port, &mut Silent)
        .await
        .expect("tansu starts (make test installs it)");
    let pid_file = dir.join("broker.pid");
    std::fs::write(&pid_file, broker.child.pid.to_string()).unwrap();
    let api = stack_env("HARNESS_PROXY_API");
    let relay = ToxiproxyClient::new(&api);
    let id = std::process::id();
    let (tcp, http) = (format!("crash-tcp-{id}"), format!("crash-http-{id}"));
    let upstream = app.url.trim_start_matches("http://").to_owned();
    relay
        .create_proxy(&tcp, "127.0.0.1:0", &upstream)
        .await
        .unwrap();
    relay
        .create_http_proxy(&http, "127.0.0.1:0", &upstream)
        .await
        .unwrap();
    let file = scenario(
        &dir,
        "crash.toml",
        &scenario_text(&app, &tcp, &http, &pid_file, &api),
    );
    let out = dir.join("out");
    let mut child = spawn_run(&file, &out, false);
    let started = Instant::now();
    let run = loop {
        let runs: Vec<PathBuf> = std::fs::read_dir(&out)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        if let Some(r) = runs.iter().find(|r| intents(r) == 5 && agent(r).is_some()) {
            break r.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "faults never all applied"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Let the last apply settle (the sql-lock's agent answered; nothing is mid-change).
    tokio::time::sleep(Duration::from_millis(500)).await;
    child.kill().unwrap(); // SIGKILL: no rollback can run
    child.wait().unwrap();
    let (ids, token) = agent(&run).unwrap();
    let db = app.config.database_url.clone();
    assert_eq!(hold_ms(&app).await, 100, "app fault");
    assert_eq!(toxic_count(&relay, &tcp).await, 1, "relay toxic");
    assert_eq!(toxic_count(&relay, &http).await, 1, "http toxic");
    assert_eq!(state_of(broker.child.pid), 'T', "broker paused");
    assert!(agent_runs(&token), "lock agent");
    assert_eq!(mysql_sessions_left(&db, &ids).await, 1, "lock session");

    let refused = harness_in(&dir, &["run", &file.display().to_string(), "--quiet"]).await;
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&run.display().to_string()),
        "names the run: {err}"
    );
    assert!(
        err.contains("sql-lock") && err.contains("process-pause"),
        "names the faults: {err}"
    );
    assert!(
        err.contains("harness faults recover"),
        "says what to do: {err}"
    );

    let rec = harness_in(&dir, &["faults", "recover"]).await;
    let said = String::from_utf8_lossy(&rec.stdout);
    assert_eq!(
        rec.status.code(),
        Some(0),
        "{said}{}",
        String::from_utf8_lossy(&rec.stderr)
    );
    assert_eq!(said.matches("undone").count(), 5, "{said}");
    assert_eq!(hold_ms(&app).await, 0);
    assert_eq!(toxic_count(&relay, &tcp).await, 0);
    assert_eq!(toxic_count(&relay, &http).await, 0);
    assert_ne!(state_of(broker.child.pid), 'T');
    assert!(!agent_runs(&token));
    assert_eq!(mysql_sessions_left(&db, &ids).await, 0);
    let again = harness_in(&dir, &["faults", "recover"]).await;
    assert!(String::from_utf8_lossy(&again.stdout).contains("no fault left"));
    relay.delete_proxy(&tcp).await.unwrap();
    relay.delete_proxy(&http).await.unwrap();
    broker.child.stop(Duration::from_secs(5));
    app.stop().await;
}

/// `harness run --recover` undoes what a killed run left on its actuators, then runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_with_recover_undoes_a_killed_runs_faults_first_and_then_runs() {
    let server = TestServer::start().await;
    let dir = temp_dir("recover-run");
    let api = stack_env("HARNESS_PROXY_API");
    let relay = ToxiproxyClient::new(&api);
    let name = format!("recover-run-{}", std::process::id());
    let upstream = server.url.trim_start_matches("http://").to_owned();
    relay
        .create_proxy(&name, "127.0.0.1:0", &upstream)
        .await
        .unwrap();
    let step = |secs: u32| {
        format!(
            "{}\n[actuators]\ntoxiproxy = \"{api}\"\n[[faults]]\nplugin = \"{}\"\n\
             [[faults.config.steps]]\naction = \"toxic\"\nproxy = \"{name}\"\nkind = \"latency\"\n\
             attributes = {{ latency = 50 }}\n",
            basic(&server.url, 10, secs, r#"http_req_failed = ["rate<0.5"]"#),
            built_plugin("chaos-schedule.wasm")
        )
    };
    let long = scenario(&dir, "long.toml", &step(60));
    let out = dir.join("out");
    let mut child = spawn_run(&long, &out, false);
    let started = Instant::now();
    while toxic_count(&relay, &name).await == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the toxic never went in"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        toxic_count(&relay, &name).await,
        1,
        "a killed run undoes nothing"
    );
    let short = scenario(&dir, "short.toml", &step(3));
    let o = harness_in(
        &dir,
        &["run", &short.display().to_string(), "--quiet", "--recover"],
    )
    .await;
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("recovered"), "the recovery is reported: {err}");
    assert_eq!(
        toxic_count(&relay, &name).await,
        0,
        "left behind after the new run"
    );
    let status = harness_in(&dir, &["faults", "status"]).await;
    assert!(String::from_utf8_lossy(&status.stdout).contains("no fault left"));
    relay.delete_proxy(&name).await.unwrap();
}
