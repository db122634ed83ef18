//! Database and process faults end to end, on real MariaDB and PostgreSQL: `sql-lock` makes
//! the application's own transactions wait on real row locks inside the fault window only, and
//! leaves no session behind; the SQL probe sees the locks in `pg_locks`; a harness killed with
//! every kind of fault in force leaves them in force, refuses the next run, and
//! `harness faults recover` undoes them all. Needs `make plugins` and the test stack.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::faults::*;
use common::*;
use sqlx::Connection;
use target_app::test_support::{stack_env, with_db, TestApp};
use target_app::Preset;

/// The PostgreSQL the tests use (`harness stack env` exports it).
fn postgres_url() -> String {
    stack_env("HARNESS_POSTGRES_URL")
}

/// The seconds of `timeseries.csv` before a fault, inside it (from one second after it went in
/// to its rollback) and after it (two seconds after the rollback on).
fn seconds(
    fault: &serde_json::Value,
    len: usize,
) -> (
    std::ops::Range<usize>,
    std::ops::Range<usize>,
    std::ops::Range<usize>,
) {
    let on = fault["applied_s"].as_f64().unwrap();
    let off = fault["rolled_back_s"].as_f64().unwrap();
    let before = 0..on.floor() as usize;
    let inside = on.ceil() as usize + 1..off.floor() as usize;
    let after = (off.ceil() as usize + 2).min(len)..len;
    (before, inside, after)
}

fn max_of(v: &[f64]) -> f64 {
    v.iter()
        .copied()
        .filter(|x| !x.is_nan())
        .fold(0.0, f64::max)
}

/// The sessions and pid the journal recorded for the run's fault agents.
fn agent_sessions(run: &Path) -> (Vec<i64>, Vec<String>) {
    let text = std::fs::read_to_string(run.join("faults.jsonl")).expect("faults.jsonl");
    let (mut ids, mut tokens) = (Vec::new(), Vec::new());
    for l in text.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        if v["op"] == "update" && v["undo"]["undo"] == "agent" {
            ids.extend(
                v["undo"]["sessions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_i64().unwrap()),
            );
            tokens.push(v["undo"]["token"].as_str().unwrap().to_owned());
        }
    }
    (ids, tokens)
}

/// lock-contention's sql-lock mode on the hot product's inventory row, the app's external call
/// at 0 and no app fault:
/// orders on that row wait for the lock while it is held, so the pool's pending count and the
/// order latency rise inside the window only; afterwards the server lists none of the agent's
/// sessions and the agent is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_lock_on_the_hot_row_raises_pool_pending_only_inside_the_window_and_leaves_no_session()
{
    let app = TestApp::start(Preset::Incident, |_| {}).await;
    let db = app.config.database_url.clone();
    let text = format!(
        r#"
name = "sql-lock"
[target]
url = "{url}"
timeout = "20s"
[executor]
type = "arrival-rate"
start_rate = 40
max_in_flight = 2000
stages = [ {{ duration = "16s", target = 40 }} ]
[generators]
user_id = {{ type = "sequence", start = 1 }}
product = {{ type = "hot-key", min = 2, max = 10, hot = 1, share = 0.5 }}
[[requests]]
name = "create_order"
method = "POST"
path = "/api/orders"
body = '{{"user_id": {{{{user_id}}}}, "product_id": {{{{product}}}}, "quantity": 1}}'
expect_status = [201]
[probes.prometheus]
url = "{{target}}/metrics"
series = ["db_pool_pending"]
[actuators.sql.shop]
url = "{db}"
[[faults]]
plugin = "{plugin}"
config = {{ mode = "sql-lock", database = "shop", query = "SELECT product_id FROM inventories WHERE product_id = 1", hold_ms = 1500, at_s = 5, duration_s = 5 }}
"#,
        url = app.url,
        plugin = built_plugin("lock-contention.wasm"),
    );
    let (_dir, out, o) = run_in_temp("sql-lock", &text).await;
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    let run = run_dir(&out);
    let sum = summary(&out);
    let faults = sum["faults"].as_array().unwrap();
    assert_eq!(faults.len(), 1, "{faults:?}");
    assert_eq!(faults[0]["kind"], "sql-lock");
    assert!(faults[0]["rolled_back_at"].is_string(), "{faults:?}");
    let pending = column(&run, "db_pool_pending");
    let p95 = column(&run, "p95_ms");
    let (before, inside, after) = seconds(&faults[0], pending.len());
    assert!(
        max_of(&pending[before.clone()]) <= 2.0,
        "pending before: {pending:?}"
    );
    assert!(
        max_of(&pending[inside.clone()]) >= 5.0,
        "pending inside: {pending:?}"
    );
    assert!(
        max_of(&pending[after.clone()]) <= 2.0,
        "pending after: {pending:?}"
    );
    assert!(max_of(&p95[before]) < 300.0, "p95 before: {p95:?}");
    assert!(max_of(&p95[inside]) > 600.0, "p95 inside: {p95:?}");
    assert!(max_of(&p95[after]) < 300.0, "p95 after: {p95:?}");
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(
        md.contains("Left behind: nothing — all 1 fault(s) rolled back."),
        "{md}"
    );
    let (ids, tokens) = agent_sessions(&run);
    assert_eq!(ids.len(), 1, "one session recorded");
    assert_eq!(
        mysql_sessions_left(&db, &ids).await,
        0,
        "the agent's session is still listed"
    );
    assert!(!agent_runs(&tokens[0]), "the fault agent still runs");
    app.stop().await;
}

/// The same actuator on PostgreSQL, watched by a SQL probe on `pg_locks`: the agent's row lock
/// shows only inside the window; afterwards `pg_stat_activity` lists none of its sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_lock_in_postgresql_shows_in_pg_locks_only_inside_the_window_and_leaves_no_session() {
    let server = TestServer::start().await;
    let pg = postgres_url();
    let table = format!("lock_{}", std::process::id());
    let mut c = sqlx::PgConnection::connect(&pg).await.unwrap();
    sqlx::raw_sql(&format!(
        "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id int primary key, n int); \
         INSERT INTO {table} VALUES (1, 0), (2, 0)"
    ))
    .execute(&mut c)
    .await
    .unwrap();
    let locked = format!(
        "SELECT COUNT(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
         WHERE c.relname = '{table}' AND l.mode = 'RowShareLock'"
    );
    let text = format!(
        "{}\n[probes.sql]\nurl = \"{pg}\"\nqueries = {{ locked = \"{locked}\" }}\n\
         [actuators.sql.pg]\nurl = \"{pg}\"\n[[faults]]\nplugin = \"{plugin}\"\n\
         [[faults.config.steps]]\naction = \"sql-lock\"\ndatabase = \"pg\"\n\
         query = \"SELECT id FROM {table} WHERE id = 1\"\nhold_ms = 800\ninterval_ms = 1000\n\
         sessions = 2\nat_s = 3\nduration_s = 4\n\
         [[sql_checks]]\nname = \"rows in postgres\"\ndatabase_url = \"{pg}\"\n\
         query = \"SELECT COUNT(*) FROM {table}\"\nexpect = 2\n",
        basic(&server.url, 20, 10, r#"locked = ["max>=1"]"#),
        plugin = built_plugin("chaos-schedule.wasm"),
    );
    let (_dir, out, o) = run_in_temp("pg-lock", &text).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let run = run_dir(&out);
    let series = column(&run, "locked");
    let (before, inside, after) = seconds(&summary(&out)["faults"][0], series.len());
    assert!(max_of(&series[before]) == 0.0, "locks before: {series:?}");
    assert!(
        max_of(&series[inside]) >= 1.0,
        "no lock inside the window: {series:?}"
    );
    assert!(max_of(&series[after]) == 0.0, "locks after: {series:?}");
    let check = &summary(&out)["sql_checks"][0];
    assert_eq!(
        check["passed"], true,
        "the post-run check on PostgreSQL: {check}"
    );
    let (ids, tokens) = agent_sessions(&run);
    assert_eq!(ids.len(), 2);
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let left: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE pid IN ({list})"
    ))
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert_eq!(left, 0, "the agent's sessions are still listed");
    assert!(!agent_runs(&tokens[0]));
    sqlx::raw_sql(&format!("DROP TABLE {table}"))
        .execute(&mut c)
        .await
        .unwrap();
}

/// sql-connections holds N server connections (in a transaction) for its window: the server's
/// own session count rises by N inside it and falls back after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_connections_hold_server_connections_for_the_window_on_mariadb() {
    let server = TestServer::start().await;
    // Its own database, so the count is of this test's sessions whatever else runs.
    let name = format!("conns_{}", std::process::id());
    let server_url = stack_env("HARNESS_DATABASE_URL");
    let mut admin = sqlx::MySqlConnection::connect(&with_db(&server_url, ""))
        .await
        .unwrap();
    sqlx::raw_sql(&format!("CREATE DATABASE IF NOT EXISTS {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let db = with_db(&server_url, &name);
    let user = name.clone();
    let count = format!("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = '{name}'");
    let text = format!(
        "{}\n[probes.sql]\nurl = \"{db}\"\nqueries = {{ sessions = \"{count}\" }}\n\
         [actuators.sql.db]\nurl = \"{db}\"\n[[faults]]\nplugin = \"{plugin}\"\n\
         [[faults.config.steps]]\naction = \"sql-connections\"\nname = \"{user}\"\n\
         database = \"db\"\ncount = 25\nin_transaction = true\nat_s = 3\nduration_s = 4\n",
        basic(&server.url, 10, 10, r#"sessions = ["max>=25"]"#),
        plugin = built_plugin("chaos-schedule.wasm"),
    );
    let (_dir, out, o) = run_in_temp("sql-conns", &text).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let run = run_dir(&out);
    let s = column(&run, "sessions");
    let (before, inside, after) = seconds(&summary(&out)["faults"][0], s.len());
    // The probe's own session is the one before and after.
    assert!(max_of(&s[before]) <= 1.0, "sessions before: {s:?}");
    assert!(max_of(&s[inside]) >= 26.0, "sessions inside: {s:?}");
    assert!(max_of(&s[after]) <= 1.0, "sessions after: {s:?}");
    let (ids, _) = agent_sessions(&run);
    assert_eq!(ids.len(), 25);
    assert_eq!(mysql_sessions_left(&db, &ids).await, 0);
    sqlx::raw_sql(&format!("DROP DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
}

/// A pid file for `pid` in `dir`.
fn pid_file(dir: &Path, name: &str, pid: u32) -> PathBuf {
    let p = dir.join(format!("{name}.pid"));
    std::fs::write(&p, pid.to_string()).unwrap();
    p
}

/// A paused process stays paused for its window and is resumed after; a killed one is started
/// again by its restart command (which rewrites the pid file).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_faults_pause_then_resume_and_kill_then_restart() {
    let server = TestServer::start().await;
    let dir = temp_dir("procs");
    let mut paused = std::process::Command::new("sleep")
        .arg("120")
        .spawn()
        .unwrap();
    let pause_pid = pid_file(&dir, "paused", paused.id());
    let mut killed = std::process::Command::new("sleep")
        .arg("120")
        .spawn()
        .unwrap();
    let kill_pid = pid_file(&dir, "killed", killed.id());
    let restart = format!("sleep 120 & echo $! > {}", kill_pid.display());
    let text = format!(
        "{}\n[actuators.processes.p]\npid_file = \"{}\"\n[actuators.processes.k]\npid_file = \"{}\"\n\
         restart = [\"sh\", \"-c\", \"{restart}\"]\n[[faults]]\nplugin = \"{plugin}\"\n\
         [[faults.config.steps]]\naction = \"pause\"\nprocess = \"p\"\nat_s = 1\nduration_s = 3\n\
         [[faults.config.steps]]\naction = \"kill\"\nprocess = \"k\"\nat_s = 1\nduration_s = 3\n",
        basic(&server.url, 10, 5, r#"http_req_failed = ["rate<0.5"]"#),
        pause_pid.display(),
        kill_pid.display(),
        plugin = built_plugin("chaos-schedule.wasm"),
    );
    let file = scenario(&dir, "procs.toml", &text);
    let out = dir.join("out");
    let mut run = spawn_run(&file, &out, false);
    let t = std::time::Instant::now();
    while state_of(paused.id()) != 'T' {
        assert!(t.elapsed() < Duration::from_secs(10), "never paused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = tokio::task::spawn_blocking(move || run.wait().unwrap());
    assert_eq!(status.await.unwrap().code(), Some(0));
    let _ = killed.wait();
    assert_ne!(state_of(paused.id()), 'T', "still paused after the run");
    let new: u32 = std::fs::read_to_string(&kill_pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_ne!(new, killed.id(), "the killed process was not restarted");
    assert!(Path::new(&format!("/proc/{new}")).exists());
    let sum = summary(&out);
    let kinds: Vec<&str> = sum["faults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["process-pause", "process-kill"]);
    unsafe { libc::kill(new as i32, libc::SIGKILL) };
    paused.kill().unwrap();
    let _ = paused.wait();
}
