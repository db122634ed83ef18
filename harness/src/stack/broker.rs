//! The stack's Kafka-protocol broker: tansu 0.6.0 with sqlite storage, installed once per
//! machine when missing.
//!
//! Why sqlite: tansu's `memory://` engine reports a wrong high watermark (lag computed from it
//! is wrong) and the default build stores nothing; see DESIGN.md's measured facts.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::process::{self, Child};
use super::StackError;
use crate::event::{Event, Observer, StackStep};

pub const TANSU_VERSION: &str = "0.6.0";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Broker {
    /// What clients use: the advertised listener (the fault relay's port).
    pub bootstrap: String,
    /// Where tansu itself listens.
    pub direct: String,
    pub child: Child,
    pub dir: PathBuf,
}

/// `HARNESS_TANSU_BIN`, else `tansu` on PATH, else `~/.cargo/bin/tansu`.
pub fn find_tansu() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HARNESS_TANSU_BIN") {
        return Some(PathBuf::from(p));
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
    {
        dirs.push(home.join("bin"));
    }
    dirs.into_iter()
        .map(|d| d.join("tansu"))
        .find(|p| p.is_file())
}

/// Installs tansu with the sqlite engine. A debug build: it compiles in a fraction of the
/// release build's ~50 min on 2 cores and is fast enough for a local test broker.
pub fn install_tansu(observer: &mut dyn Observer) -> Result<PathBuf, StackError> {
    observer.event(Event::Stack(StackStep::InstallingBroker {
        version: TANSU_VERSION,
    }));
    let status = Command::new("cargo")
        .args([
            "install",
            "tansu",
            "--version",
            TANSU_VERSION,
            "--locked",
            "--debug",
            "--features",
            "libsql",
        ])
        .env("CARGO_PROFILE_DEV_DEBUG", "0")
        .status()
        .map_err(|e| StackError::Spawn {
            program: "cargo".into(),
            source: e,
        })?;
    if !status.success() {
        return Err(StackError::Command {
            what: format!("cargo install tansu --version {TANSU_VERSION}"),
            output: format!("exit status {status}"),
        });
    }
    find_tansu().ok_or_else(|| StackError::Missing {
        what: "tansu".into(),
        hint: "cargo install finished but no tansu binary was found".into(),
    })
}

/// Starts tansu on `port`, advertising `advertised` (the relay's port in front of it) so every
/// client connection, including the ones metadata redirects, goes through the relay.
pub async fn start(
    dir: &Path,
    logs: &Path,
    port: u16,
    advertised: u16,
    observer: &mut dyn Observer,
) -> Result<Broker, StackError> {
    let tansu = match find_tansu() {
        Some(p) => p,
        None => install_tansu(observer)?,
    };
    let dir = dir.join("broker");
    std::fs::create_dir_all(&dir).map_err(|e| StackError::io(&dir, e))?;
    let args = vec![
        "broker".to_owned(),
        "--listener-url".to_owned(),
        format!("tcp://127.0.0.1:{port}"),
        "--advertised-listener-url".to_owned(),
        format!("tcp://127.0.0.1:{advertised}"),
        // Relative to the working directory, which is `dir`.
        "--storage-engine".to_owned(),
        "sqlite://tansu.db".to_owned(),
    ];
    let child = process::spawn(
        &tansu,
        &args,
        &dir,
        &logs.join("tansu.log"),
        &[("RUST_LOG", "warn")],
    )?;
    wait_ready(&child, port).await?;
    Ok(Broker {
        bootstrap: format!("127.0.0.1:{advertised}"),
        direct: format!("127.0.0.1:{port}"),
        child,
        dir,
    })
}

/// Waits until tansu (`child`) listens on `port`.
pub(super) async fn wait_ready(child: &Child, port: u16) -> Result<(), StackError> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    process::wait_ready(
        child,
        "tansu broker",
        Duration::from_secs(60),
        || async move { process::port_open(addr) },
    )
    .await
}

impl Broker {
    /// The port tansu itself listens on.
    pub fn port(&self) -> Option<u16> {
        self.direct.rsplit_once(':')?.1.parse().ok()
    }

    pub fn stop(&self) -> Result<(), StackError> {
        self.child.stop(Duration::from_secs(10));
        std::fs::remove_dir_all(&self.dir)
            .or_else(super::mariadb::ignore_missing)
            .map_err(|e| StackError::io(&self.dir, e))
    }
}
