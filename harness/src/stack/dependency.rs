//! The target app's external dependency as a stack component: target-app's `dependency-stub`,
//! answering every call after the incident's 240 ms. The app reaches it only through the
//! relay's `dependency` proxy, so a latency toxic there lengthens every order transaction.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::process::{self, Child};
use super::StackError;

/// The stub's answer time: what `--external-call-ms` simulated before (see ARCHITECTURE.md's
/// departures: with the order's SQL a connection is held ≈ 250 ms).
pub const DELAY_MS: u64 = 240;
/// The relay's proxy in front of the stub.
pub const PROXY: &str = "dependency";
/// The path orders call (the stub answers any path but its stats).
const CALL_PATH: &str = "/orders";
/// The stub's own endpoint: its request count, answered at once.
const STATS_PATH: &str = "/_stub/stats";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dependency {
    /// The stub's base URL, direct (not through the relay).
    pub url: String,
    pub delay_ms: u64,
    pub child: Child,
}

pub async fn start(dir: &Path, logs: &Path) -> Result<Dependency, StackError> {
    let bin = super::app::find_sibling("dependency-stub", "HARNESS_DEPENDENCY_STUB_BIN")?;
    let port = process::free_port()?;
    let args = vec![
        "--listen".to_owned(),
        format!("127.0.0.1:{port}"),
        "--delay-ms".to_owned(),
        DELAY_MS.to_string(),
    ];
    let child = process::spawn(&bin, &args, dir, &logs.join("dependency-stub.log"), &[])?;
    let url = format!("http://127.0.0.1:{port}");
    wait_ready(&child, &url).await?;
    Ok(Dependency {
        url,
        delay_ms: DELAY_MS,
        child,
    })
}

/// Waits until the stub (`child`) at `url` answers its stats endpoint.
pub(super) async fn wait_ready(child: &Child, url: &str) -> Result<(), StackError> {
    let stats = format!("{url}{STATS_PATH}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("http client");
    process::wait_ready(child, "dependency stub", Duration::from_secs(20), || {
        let (c, s) = (client.clone(), stats.clone());
        async move { matches!(c.get(&s).send().await, Ok(r) if r.status().is_success()) }
    })
    .await
}

impl Dependency {
    /// `host:port` of the stub, the relay proxy's upstream.
    pub fn upstream(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    pub fn stop(&self) {
        self.child.stop(Duration::from_secs(5));
    }
}

/// What the app calls: the stub through the relay proxy listening on `port`.
pub fn via_relay(port: u16) -> String {
    format!("http://127.0.0.1:{port}{CALL_PATH}")
}
