//! The bundled target app as a stack component: the `target-app` binary built beside
//! `harness`, started on a free port against the stack's database, broker and dependency.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::process::{self, Child};
use super::StackError;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct App {
    pub url: String,
    pub preset: String,
    pub child: Child,
}

/// `$env_var`, else the binary `name` next to the running executable (or one level up, where
/// test binaries in target/<profile>/deps find the workspace's binaries).
pub fn find_sibling(name: &str, env_var: &str) -> Result<PathBuf, StackError> {
    if let Some(p) = std::env::var_os(env_var) {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| StackError::io(Path::new("current_exe"), e))?;
    for dir in exe.ancestors().skip(1).take(2) {
        let p = dir.join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(StackError::Missing {
        what: format!("{name} binary"),
        hint: format!(
            "build it with `cargo build --workspace --bins` (make does) or set {env_var}"
        ),
    })
}

/// Where the app finds the rest of the stack.
pub struct Parts<'a> {
    pub database_url: &'a str,
    pub bootstrap: &'a str,
    /// The external dependency the orders call (the stub, through the relay).
    pub external_url: &'a str,
}

pub async fn start(
    parts: &Parts<'_>,
    preset: &str,
    extra: &[String],
    dir: &Path,
    logs: &Path,
) -> Result<App, StackError> {
    let bin = find_sibling("target-app", "HARNESS_TARGET_APP_BIN")?;
    let port = process::free_port()?;
    let mut args = vec![
        "--listen".to_owned(),
        format!("127.0.0.1:{port}"),
        "--database-url".to_owned(),
        parts.database_url.to_owned(),
        "--kafka".to_owned(),
        parts.bootstrap.to_owned(),
        "--external-url".to_owned(),
        parts.external_url.to_owned(),
        "--preset".to_owned(),
        preset.to_owned(),
    ];
    args.extend(extra.iter().cloned());
    let child = process::spawn(&bin, &args, dir, &logs.join("target-app.log"), &[])?;
    let url = format!("http://127.0.0.1:{port}");
    wait_healthy(&child, &url).await?;
    Ok(App {
        url,
        preset: preset.to_owned(),
        child,
    })
}

/// Waits until the app (`child`) at `url` reports itself healthy.
pub(super) async fn wait_healthy(child: &Child, url: &str) -> Result<(), StackError> {
    let health = format!("{url}/actuator/health");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .expect("http client");
    process::wait_ready(child, "target-app", Duration::from_secs(90), || {
        let (c, h) = (client.clone(), health.clone());
        async move { matches!(c.get(&h).send().await, Ok(r) if r.status().is_success()) }
    })
    .await
}

impl App {
    pub fn stop(&self) {
        self.child.stop(Duration::from_secs(15));
    }
}
