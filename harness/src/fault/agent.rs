//! Fault agents: the processes that hold database sessions for `sql-lock` and
//! `sql-connections`. An agent is `harness fault-agent --spec JSON`, started in its own process
//! group so it outlives the harness that started it (a chaos tool that dies must not silently
//! take its faults with it — nor leave them unknown: the journal names the agent's pid and its
//! sessions, and `harness faults recover` ends both).
//!
//! The agent prints one JSON line on stdout once every session is connected (`Ready`), then
//! holds until SIGTERM or SIGINT, when it releases its locks, closes its sessions and exits.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::sql::{end_sessions, lock_statements, Hold, SqlFaultError};
use crate::db::Db;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot start the fault agent {program}: {message}")]
    Spawn { program: String, message: String },
    #[error("the fault agent did not get ready: {0}")]
    NotReady(String),
    #[error(transparent)]
    Sql(#[from] SqlFaultError),
}

/// What one agent does, on which database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentSpec {
    pub url: String,
    #[serde(flatten)]
    pub hold: Hold,
}

/// The agent's first line: its sessions, or why it could not open them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ready {
    pub sessions: Vec<i64>,
    #[serde(default)]
    pub error: Option<String>,
}

/// A running agent as the journal records it. Before it answered, only `token` (on its command
/// line) and `url` are known: that is enough to find and stop it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRef {
    pub token: String,
    pub pid: u32,
    pub url: String,
    pub sessions: Vec<i64>,
}

/// The `harness` binary that serves `fault-agent`: `HARNESS_BIN`, this process when it is
/// `harness`, or a `harness` beside (or one up from) it — a test binary is not the CLI.
fn harness_binary() -> Result<PathBuf, AgentError> {
    if let Some(p) = std::env::var_os("HARNESS_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| AgentError::Spawn {
        program: "harness".into(),
        message: e.to_string(),
    })?;
    if exe.file_name().is_some_and(|n| n == "harness") {
        return Ok(exe);
    }
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|d| d.join("harness"))
        .find(|p| p.is_file())
        .ok_or_else(|| AgentError::Spawn {
            program: "harness".into(),
            message: "no harness binary beside this program (set HARNESS_BIN)".into(),
        })
}

/// Starts an agent for `spec` known by `token`, logging to `log`; returns once its sessions
/// are open.
pub async fn spawn(spec: &AgentSpec, token: &str, log: &Path) -> Result<AgentRef, AgentError> {
    let program = harness_binary()?;
    let fail = |message: String| AgentError::Spawn {
        program: program.display().to_string(),
        message,
    };
    let err = std::fs::File::create(log).map_err(|e| fail(format!("{}: {e}", log.display())))?;
    let json = serde_json::to_string(spec).expect("spec serialises");
    let mut child = tokio::process::Command::new(&program)
        .args(["fault-agent", "--token", token, "--spec", &json])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    let pid = child.id().unwrap_or(0);
    let stdout = child.stdout.take().expect("piped");
    let mut line = String::new();
    let mut reader = BufReader::new(stdout);
    let read = reader.read_line(&mut line);
    let ready = match tokio::time::timeout(Duration::from_secs(30), read).await {
        Ok(Ok(n)) if n > 0 => serde_json::from_str::<Ready>(&line)
            .map_err(|e| AgentError::NotReady(format!("{e}: {line}"))),
        Ok(_) => Err(AgentError::NotReady(format!(
            "it exited (see {})",
            log.display()
        ))),
        Err(_) => Err(AgentError::NotReady("no answer within 30 s".into())),
    };
    let failed = match &ready {
        Ok(r) => r.error.clone(),
        Err(e) => Some(e.to_string()),
    };
    if let Some(why) = failed {
        let _ = child.start_kill();
        let _ = child.wait().await;
        return Err(AgentError::NotReady(why));
    }
    // Reaped by tokio in the background if it exits while we run; it never needs us after this.
    drop(child);
    Ok(AgentRef {
        token: token.to_owned(),
        pid,
        url: spec.url.clone(),
        sessions: ready.expect("checked").sessions,
    })
}

/// Ends an agent and every session it had: SIGTERM (it rolls back and closes), SIGKILL after
/// 5 s, then any session the server still lists is killed there. Safe to call again.
pub async fn stop(agent: &AgentRef) -> Result<(), AgentError> {
    let pid = match is_agent(agent.pid, &agent.token) {
        true => Some(agent.pid),
        false => find(&agent.token),
    };
    if let Some(pid) = pid {
        super::process::signal(pid, libc::SIGTERM);
        for _ in 0..50 {
            if !is_agent(pid, &agent.token) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if is_agent(pid, &agent.token) {
            super::process::signal(pid, libc::SIGKILL);
        }
    }
    end_sessions(&agent.url, &agent.sessions).await?;
    Ok(())
}

/// Whether `pid` is alive and the `harness fault-agent` of `token` (pids are reused: never
/// signal a stranger).
fn is_agent(pid: u32, token: &str) -> bool {
    if pid == 0 {
        return false;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    super::process::stat(pid).is_some()
        && args.contains(&&b"fault-agent"[..])
        && args.contains(&token.as_bytes())
}

/// The pid of the agent started with `token`, if one runs.
fn find(token: &str) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|d| d.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| is_agent(*pid, token))
}

/// Where an agent's notes go (`main.rs` writes them to its stderr, the agent's log file).
pub type Log = std::sync::Arc<dyn Fn(String) + Send + Sync>;

/// The agent's body (`harness fault-agent`): opens the sessions, says `Ready` on stdout, holds
/// until `stop` resolves, then releases and closes. Returns the process's exit code.
pub async fn serve(spec: AgentSpec, stop: impl std::future::Future<Output = ()>, log: Log) -> i32 {
    let opened = open_sessions(&spec, &log).await;
    let (dbs, ready) = match opened {
        Ok((dbs, sessions)) => (
            dbs,
            Ready {
                sessions,
                error: None,
            },
        ),
        Err(e) => (
            Vec::new(),
            Ready {
                sessions: Vec::new(),
                error: Some(e.to_string()),
            },
        ),
    };
    let line = serde_json::to_string(&ready).expect("ready serialises") + "\n";
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(line.as_bytes()).and_then(|_| out.flush());
    }
    if ready.error.is_some() {
        return 3;
    }
    let (tx, rx) = tokio::sync::watch::channel(false);
    let tasks: Vec<_> = dbs
        .into_iter()
        .map(|db| tokio::spawn(hold(db, spec.hold.clone(), rx.clone(), log.clone())))
        .collect();
    stop.await;
    let _ = tx.send(true);
    // A session stuck in a lock wait cannot roll back before the wait ends; exiting closes
    // its socket, and the server rolls it back then.
    let all = async {
        for t in tasks {
            let _ = t.await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(3), all).await;
    0
}

async fn open_sessions(spec: &AgentSpec, log: &Log) -> Result<(Vec<Db>, Vec<i64>), SqlFaultError> {
    let n = match spec.hold {
        Hold::Locks { sessions, .. } => sessions,
        Hold::Connections { count, .. } => count,
    };
    let (mut dbs, mut ids) = (Vec::new(), Vec::new());
    for i in 0..n.max(1) {
        match Db::connect(&spec.url).await {
            Ok(mut db) => {
                ids.push(db.session_id().await?);
                dbs.push(db);
            }
            // Pushing toward max_connections: the server refusing more is the point, not an
            // error, once at least one is held.
            Err(e) if i > 0 && matches!(spec.hold, Hold::Connections { .. }) => {
                log(format!("connection {} refused, holding {i}: {e}", i + 1));
                break;
            }
            Err(e) => return Err(e),
        }
    }
    Ok((dbs, ids))
}

/// One session's loop: take the locks (or open a transaction), hold, release, until stopped.
async fn hold(mut db: Db, hold: Hold, mut stop: tokio::sync::watch::Receiver<bool>, log: Log) {
    match hold {
        Hold::Connections { in_transaction, .. } => {
            if in_transaction {
                if let Err(e) = db.run("BEGIN").await {
                    log(e.to_string());
                }
                let _ = db.run("SELECT 1").await;
            }
            let _ = stop.wait_for(|s| *s).await;
            if in_transaction {
                let _ = db.run("ROLLBACK").await;
            }
        }
        Hold::Locks {
            query,
            table,
            hold_ms,
            interval_ms,
            ..
        } => {
            let (take, give) = lock_statements(db.flavor(), &query, &table);
            let hold = Duration::from_millis(hold_ms.into());
            let every = Duration::from_millis(interval_ms.max(hold_ms).into());
            while !*stop.borrow() {
                let started = tokio::time::Instant::now();
                if let Err(e) = lock_once(&mut db, &take, &give, hold, &mut stop).await {
                    log(e.to_string());
                }
                let next = started + every;
                tokio::select! {
                    _ = tokio::time::sleep_until(next) => {}
                    _ = stop.wait_for(|s| *s) => {}
                }
            }
        }
    }
    db.close().await;
}

/// Takes the locks, holds them `hold` (or until stopped), releases them. A lock wait that
/// ends in a timeout or deadlock is contention doing its work: the error is logged and the
/// next round starts over.
async fn lock_once(
    db: &mut Db,
    take: &[String],
    give: &str,
    hold: Duration,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<(), SqlFaultError> {
    for s in take {
        if let Err(e) = db.run(s).await {
            let _ = db.run(give).await;
            return Err(e);
        }
    }
    tokio::select! {
        _ = tokio::time::sleep(hold) => {}
        _ = stop.wait_for(|s| *s) => {}
    }
    db.run(give).await
}
