//! The stack's fault relay: `harness proxy` as a child process, with a proxy in front of the
//! database, the broker and (with the app) the dependency stub, so network faults hit the
//! target app's real traffic.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::process::{self, Child};
use super::StackError;
use crate::fault::client::ToxiproxyClient;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RelayProc {
    /// Toxiproxy-compatible API base URL.
    pub api: String,
    pub child: Child,
}

pub async fn start(dir: &Path, logs: &Path) -> Result<RelayProc, StackError> {
    let bin = super::app::find_sibling("harness", "HARNESS_BIN")?;
    // Absolute: `harness stack env` exports it as HARNESS_BIN for restart commands.
    let bin = std::path::absolute(&bin).map_err(|e| StackError::io(&bin, e))?;
    let port = process::free_port()?;
    let args = vec![
        "proxy".to_owned(),
        "--listen".to_owned(),
        format!("127.0.0.1:{port}"),
    ];
    let child = process::spawn(&bin, &args, dir, &logs.join("relay.log"), &[])?;
    let api = format!("http://127.0.0.1:{port}");
    let client = ToxiproxyClient::new(&api);
    process::wait_ready(&child, "fault relay", Duration::from_secs(20), || {
        let c = client.clone();
        async move { c.version().await.is_ok() }
    })
    .await?;
    Ok(RelayProc { api, child })
}

impl RelayProc {
    /// Creates TCP proxy `name` → `upstream` on a free port; returns that port.
    pub async fn add_proxy(&self, name: &str, upstream: &str) -> Result<u16, StackError> {
        self.add(name, upstream, false).await
    }

    /// Creates proxy `name` → `upstream` that parses HTTP/1.1, so the HTTP toxics
    /// (`http_status`, `http_latency`, `http_abort`) work on it; returns its port.
    pub async fn add_http_proxy(&self, name: &str, upstream: &str) -> Result<u16, StackError> {
        self.add(name, upstream, true).await
    }

    async fn add(&self, name: &str, upstream: &str, http: bool) -> Result<u16, StackError> {
        let port = process::free_port()?;
        let listen = format!("127.0.0.1:{port}");
        let client = ToxiproxyClient::new(&self.api);
        let created = match http {
            true => client.create_http_proxy(name, &listen, upstream).await,
            false => client.create_proxy(name, &listen, upstream).await,
        };
        created.map_err(|e| StackError::Command {
            what: format!("create proxy {name} at {}", self.api),
            output: e.to_string(),
        })?;
        Ok(port)
    }

    pub fn stop(&self) {
        self.child.stop(Duration::from_secs(5));
    }
}

/// The host[:port] part of a `mysql://user@host:port[/db]` URL, as written.
fn authority(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let rest = rest.rsplit_once('@').map(|(_, r)| r).unwrap_or(rest);
    rest.split(['/', '?']).next()
}

/// `host:port` of a MySQL URL (port 3306 when none is written).
pub fn host_port(url: &str) -> Option<String> {
    let hp = authority(url)?;
    Some(if hp.contains(':') {
        hp.to_owned()
    } else {
        format!("{hp}:3306")
    })
}

/// `url` with its host[:port] replaced by `127.0.0.1:port`.
pub fn via_port(url: &str, port: u16) -> String {
    match authority(url) {
        Some(hp) => {
            let at = url.find(hp).expect("authority is a slice of url");
            format!("{}127.0.0.1:{port}{}", &url[..at], &url[at + hp.len()..])
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_port_and_rewrite() {
        assert_eq!(
            super::host_port("mysql://root@127.0.0.1:3306/x").as_deref(),
            Some("127.0.0.1:3306")
        );
        assert_eq!(
            super::host_port("mysql://u:p@db/x?a=b").as_deref(),
            Some("db:3306")
        );
        assert_eq!(
            super::via_port("mysql://root@127.0.0.1:3306/harness", 9),
            "mysql://root@127.0.0.1:9/harness"
        );
        assert_eq!(
            super::via_port("mysql://root@db/harness", 9),
            "mysql://root@127.0.0.1:9/harness"
        );
    }
}
