//! Starting, finding and stopping the stack's child processes.
//!
//! Children run in their own process group (a Ctrl-C meant for `harness` must not kill the
//! database under a later run) with output in a log file, and outlive the `harness stack up`
//! that started them. Before signalling a recorded pid we check it still runs the program we
//! started: pids get reused, and `down` must never kill a stranger.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::StackError;

/// A child the stack started: what to check before signalling it, where it logs, and how it
/// was started (so `harness stack restart` can start it again the same way).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Child {
    pub pid: u32,
    /// File name of the program, matched against `/proc/<pid>/cmdline`.
    pub program: String,
    pub log: PathBuf,
    /// `None` in state files written before restarts existed.
    #[serde(default)]
    pub launch: Option<Launch>,
}

/// Everything `spawn` was given.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Launch {
    pub path: PathBuf,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
    /// (uid, gid) to run as; set when root starts a server that refuses to run as root.
    pub user: Option<(u32, u32)>,
}

pub fn spawn(
    program: &Path,
    args: &[String],
    cwd: &Path,
    log: &Path,
    env: &[(&str, &str)],
) -> Result<Child, StackError> {
    spawn_as(program, args, cwd, log, env, None)
}

/// `spawn`, as `user` (uid, gid) when given.
pub fn spawn_as(
    program: &Path,
    args: &[String],
    cwd: &Path,
    log: &Path,
    env: &[(&str, &str)],
    user: Option<(u32, u32)>,
) -> Result<Child, StackError> {
    let launch = Launch {
        path: program.to_owned(),
        args: args.to_vec(),
        cwd: cwd.to_owned(),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        user,
    };
    let out = File::create(log).map_err(|e| StackError::io(log, e))?;
    launch.start(out, log)
}

/// Starts `child`'s program again as it was started, its output appended to the same log.
pub fn respawn(child: &Child) -> Result<Child, StackError> {
    let launch = child.launch.as_ref().ok_or_else(|| StackError::Missing {
        what: format!("how {} was started", child.program),
        hint: "the stack was started by an older harness; `harness stack down` and `up` again"
            .into(),
    })?;
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&child.log)
        .map_err(|e| StackError::io(&child.log, e))?;
    launch.start(out, &child.log)
}

impl Launch {
    fn start(&self, out: File, log: &Path) -> Result<Child, StackError> {
        let err = out.try_clone().map_err(|e| StackError::io(log, e))?;
        let mut cmd = Command::new(&self.path);
        cmd.args(&self.args)
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some((uid, gid)) = self.user {
            // std drops root's supplementary groups before setuid.
            cmd.uid(uid).gid(gid);
        }
        let child = cmd.spawn().map_err(|e| StackError::Spawn {
            program: self.path.display().to_string(),
            source: e,
        })?;
        Ok(Child {
            pid: child.id(),
            program: self
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            log: log.to_owned(),
            launch: Some(self.clone()),
        })
    }
}

impl Child {
    /// True when the pid is alive and still runs our program (not a zombie, not a reused pid).
    pub fn alive(&self) -> bool {
        // `comm` (the kernel's 15-byte program name) is set at exec; cmdline can still read
        // empty for a moment after it, so it is not usable right after spawn.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) else {
            return false;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            return false;
        };
        let comm = &stat[open + 1..close];
        let zombie = stat[close + 1..].trim_start().starts_with('Z');
        let ours = self.program.get(..15).unwrap_or(&self.program);
        !zombie && comm == ours
    }

    /// SIGTERM, then SIGKILL after `grace`. Returns once the process is gone.
    pub fn stop(&self, grace: Duration) {
        self.stop_with(libc::SIGTERM, grace);
    }

    /// `sig`, then SIGKILL after `grace`. Returns once the process is gone.
    pub fn stop_with(&self, sig: i32, grace: Duration) {
        if !self.alive() {
            return;
        }
        signal(self.pid, sig);
        let deadline = Instant::now() + grace;
        while self.alive() && Instant::now() < deadline {
            reap(self.pid);
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.alive() {
            signal(self.pid, libc::SIGKILL);
            while self.alive() {
                reap(self.pid);
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        reap(self.pid);
    }

    /// The last lines of the child's log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: plain syscall on a pid we verified runs our program.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// Collects the exit status when the child is ours (same process), so it does not linger as a
/// zombie; a no-op for children of an earlier `harness` process.
fn reap(pid: u32) {
    let mut status = 0;
    // SAFETY: WNOHANG never blocks; an unrelated pid just returns an error.
    unsafe {
        libc::waitpid(pid as i32, &mut status, libc::WNOHANG);
    }
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> Result<u16, StackError> {
    let l = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| StackError::io(Path::new("127.0.0.1:0"), e))?;
    Ok(l.local_addr()
        .map_err(|e| StackError::io(Path::new("127.0.0.1:0"), e))?
        .port())
}

pub fn port_open(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// Waits until `ready()` holds, failing early with the log tail if the child dies.
pub async fn wait_ready<F, Fut>(
    child: &Child,
    what: &str,
    timeout: Duration,
    mut ready: F,
) -> Result<(), StackError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if ready().await {
            return Ok(());
        }
        if !child.alive() {
            child.stop(Duration::from_secs(5));
            return Err(StackError::Died {
                what: what.to_owned(),
                log: child.log.clone(),
                tail: child.log_tail(15),
            });
        }
        if Instant::now() > deadline {
            child.stop(Duration::from_secs(10));
            return Err(StackError::NotReady {
                what: what.to_owned(),
                secs: timeout.as_secs(),
                log: child.log.clone(),
                tail: child.log_tail(15),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alive_tracks_our_child_and_stop_ends_it() {
        let dir = std::env::temp_dir();
        let log = dir.join(format!("harness-proc-test-{}.log", std::process::id()));
        let child = spawn(Path::new("/bin/sleep"), &["30".to_owned()], &dir, &log, &[]).unwrap();
        assert!(child.alive(), "fresh child not seen alive");
        let stranger = Child {
            program: "not-sleep".into(),
            ..child.clone()
        };
        assert!(
            !stranger.alive(),
            "a pid running another program is not ours"
        );
        child.stop(Duration::from_secs(5));
        assert!(!child.alive());
        let _ = std::fs::remove_file(log);
    }
}
