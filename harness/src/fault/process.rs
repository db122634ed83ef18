//! Process faults: pause a process (SIGSTOP, and SIGCONT to undo) or kill it (SIGKILL, and its
//! `restart` command to undo). The process is named by a pid file, read when the fault starts,
//! and identified by its pid *and* start time, so an undo never signals a reused pid.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("pid file {path}: {message}")]
    PidFile { path: String, message: String },
    #[error("process {pid} (from {pid_file}) is not running")]
    NotRunning { pid: u32, pid_file: String },
    #[error("{what}: no `restart` command configured for process {name}")]
    NoRestart { what: String, name: String },
    #[error("restart of {name} (`{command}`): {message}")]
    Restart {
        name: String,
        command: String,
        message: String,
    },
    #[error("process {pid} did not {what} within 5 s")]
    Stuck { pid: u32, what: &'static str },
}

/// A process the scenario may fault (`[actuators.processes.NAME]`, expanded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessTarget {
    pub name: String,
    pub pid_file: PathBuf,
    /// argv that starts it again after a kill (it must rewrite the pid file).
    #[serde(default)]
    pub restart: Vec<String>,
}

/// One faulted process as the journal records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Faulted {
    pub target: ProcessTarget,
    pub pid: u32,
    /// `/proc/<pid>/stat` field 22, in clock ticks since boot.
    pub started: u64,
    pub killed: bool,
}

/// The pid in `target`'s pid file and that process's start time.
fn running(target: &ProcessTarget) -> Result<(u32, u64), ProcessError> {
    let path = target.pid_file.display().to_string();
    let text = std::fs::read_to_string(&target.pid_file).map_err(|e| ProcessError::PidFile {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let pid: u32 = text.trim().parse().map_err(|_| ProcessError::PidFile {
        path: path.clone(),
        message: format!("`{}` is not a pid", text.trim()),
    })?;
    match stat(pid) {
        Some((_, started)) => Ok((pid, started)),
        None => Err(ProcessError::NotRunning {
            pid,
            pid_file: path,
        }),
    }
}

/// (state letter, start time) of a live process (None: gone or a zombie).
pub(super) fn stat(pid: u32) -> Option<(char, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the comm: state is field 3 of stat, starttime field 22 → indices 0 and 19 here.
    let state = fields.first()?.chars().next()?;
    let started = fields.get(19)?.parse().ok()?;
    (state != 'Z' && state != 'X').then_some((state, started))
}

/// Whether `f`'s process is still the one we faulted.
fn same(f: &Faulted) -> bool {
    stat(f.pid).is_some_and(|(_, started)| started == f.started)
}

/// kill(2); callers check the pid is the process they mean just before.
pub(super) fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) takes no memory; which process is the caller's check.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// The process `target` names now, to pause (or, with `kill`, to kill): what the journal
/// records before [`apply`] signals it.
pub fn find(target: &ProcessTarget, kill: bool) -> Result<Faulted, ProcessError> {
    if kill && target.restart.is_empty() {
        return Err(ProcessError::NoRestart {
            what: "kill".into(),
            name: target.name.clone(),
        });
    }
    let (pid, started) = running(target)?;
    Ok(Faulted {
        target: target.clone(),
        pid,
        started,
        killed: kill,
    })
}

/// Pauses (SIGSTOP) or kills (SIGKILL) the process `f` found.
pub async fn apply(f: &Faulted) -> Result<(), ProcessError> {
    if !same(f) {
        return Err(ProcessError::NotRunning {
            pid: f.pid,
            pid_file: f.target.pid_file.display().to_string(),
        });
    }
    if f.killed {
        signal(f.pid, libc::SIGKILL);
        wait(|| !same(f), f.pid, "exit").await
    } else {
        signal(f.pid, libc::SIGSTOP);
        wait(|| matches!(stat(f.pid), Some(('T', _))), f.pid, "stop").await
    }
}

/// Undoes `f`: SIGCONT for a pause, the restart command for a kill (unless the process is
/// running again already). Safe to call twice.
pub async fn undo(f: &Faulted, log: &Path) -> Result<(), ProcessError> {
    if !f.killed {
        if same(f) {
            signal(f.pid, libc::SIGCONT);
            wait(|| !matches!(stat(f.pid), Some(('T', _))), f.pid, "resume").await?;
        }
        return Ok(());
    }
    if let Ok((pid, _)) = running(&f.target) {
        if pid != f.pid {
            return Ok(());
        }
    }
    restart(&f.target, log).await
}

async fn restart(target: &ProcessTarget, log: &Path) -> Result<(), ProcessError> {
    let command = target.restart.join(" ");
    let fail = |message: String| ProcessError::Restart {
        name: target.name.clone(),
        command: command.clone(),
        message,
    };
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| fail(format!("{}: {e}", log.display())))?;
    let err = out.try_clone().map_err(|e| fail(e.to_string()))?;
    // Its own process group: it must outlive this harness like the original did.
    let status = tokio::process::Command::new(&target.restart[0])
        .args(&target.restart[1..])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .status();
    let status = tokio::time::timeout(Duration::from_secs(60), status)
        .await
        .map_err(|_| fail("did not finish within 60 s".into()))?
        .map_err(|e| fail(e.to_string()))?;
    if !status.success() {
        return Err(fail(format!("exited with {status}")));
    }
    for _ in 0..100 {
        if running(target).is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(fail(format!(
        "it finished, but {} names no running process",
        target.pid_file.display()
    )))
}

async fn wait(done: impl Fn() -> bool, pid: u32, what: &'static str) -> Result<(), ProcessError> {
    for _ in 0..100 {
        if done() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(ProcessError::Stuck { pid, what })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleeper(dir: &Path) -> (std::process::Child, ProcessTarget) {
        let child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid_file = dir.join("sleep.pid");
        std::fs::write(&pid_file, child.id().to_string()).unwrap();
        let target = ProcessTarget {
            name: "sleeper".into(),
            pid_file,
            restart: Vec::new(),
        };
        (child, target)
    }

    #[tokio::test]
    async fn a_paused_process_is_stopped_until_the_undo() {
        let dir = std::env::temp_dir().join(format!("harness-proc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (mut child, target) = sleeper(&dir);
        let f = find(&target, false).unwrap();
        apply(&f).await.unwrap();
        assert_eq!(stat(f.pid).unwrap().0, 'T');
        undo(&f, &dir.join("log")).await.unwrap();
        assert_ne!(stat(f.pid).unwrap().0, 'T');
        // Twice is harmless.
        undo(&f, &dir.join("log")).await.unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[tokio::test]
    async fn a_kill_needs_a_restart_command_and_a_reused_pid_is_left_alone() {
        let dir = std::env::temp_dir().join(format!("harness-proc2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (mut child, target) = sleeper(&dir);
        let e = find(&target, true).unwrap_err().to_string();
        assert!(e.contains("no `restart` command"), "{e}");
        let mut f = find(&target, false).unwrap();
        apply(&f).await.unwrap();
        f.started += 1; // as if the pid now ran another process
        undo(&f, &dir.join("log")).await.unwrap();
        assert_eq!(stat(f.pid).unwrap().0, 'T', "a stranger was signalled");
        signal(f.pid, libc::SIGCONT);
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
