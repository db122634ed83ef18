//! How to undo one fault, self-contained: every undo carries the address of its actuator, so
//! the run's rollback and `harness faults recover` (which has only the journal file) carry out
//! the same code. Undos are idempotent: a toxic already gone or a process already resumed is
//! success, so a recovery can be repeated.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::agent::{self, AgentRef};
use super::app::AppFaultApi;
use super::client::{ToxiproxyClient, ToxiproxyError};
use super::process::{self, Faulted};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "undo", rename_all = "kebab-case")]
pub enum Undo {
    /// POST `{field: original}` to the app fault API at `url`.
    App {
        url: String,
        field: String,
        original: Value,
    },
    /// Remove toxic `name` from `proxy` of the Toxiproxy API at `api`.
    Toxic {
        api: String,
        proxy: String,
        name: String,
    },
    /// Enable `proxy` again.
    Enable { api: String, proxy: String },
    /// Put the hot key's share back: load-side state, gone with the process that had it.
    HotShare { generator: String, original: f64 },
    /// Stop a fault agent and end its database sessions.
    Agent(AgentRef),
    /// Resume (or restart) a process.
    Process(Faulted),
}

impl Undo {
    /// What `faults recover` lists: the actuator this undo talks to.
    pub fn actuator(&self) -> String {
        match self {
            Undo::App { url, .. } => url.clone(),
            Undo::Toxic { api, .. } | Undo::Enable { api, .. } => api.clone(),
            Undo::HotShare { .. } => "load generator".into(),
            Undo::Agent(a) => crate::probe::sql::redact(&a.url),
            Undo::Process(f) => f.target.pid_file.display().to_string(),
        }
    }

    /// Carries out the undo. `HotShare` needs the running load and is done by the session;
    /// here it is nothing (the process that held the share is gone). `logs` is where a
    /// restarted process writes.
    pub async fn run(&self, logs: &Path) -> Result<(), String> {
        match self {
            Undo::App {
                url,
                field,
                original,
            } => AppFaultApi::new()
                .post(url, json!({ field.clone(): original.clone() }))
                .await
                .map_err(|e| e.to_string()),
            Undo::Toxic { api, proxy, name } => {
                let r = ToxiproxyClient::new(api).remove_toxic(proxy, name).await;
                gone_is_fine(r)
            }
            Undo::Enable { api, proxy } => ToxiproxyClient::new(api)
                .set_enabled(proxy, true)
                .await
                .map_err(|e| e.to_string()),
            Undo::HotShare { .. } => Ok(()),
            Undo::Agent(a) => agent::stop(a).await.map_err(|e| e.to_string()),
            Undo::Process(f) => {
                let log = logs.join(format!("restart-{}.log", f.target.name));
                process::undo(f, &log).await.map_err(|e| e.to_string())
            }
        }
    }
}

/// A 404 for a toxic means it is not there any more: the undo's goal.
fn gone_is_fine(r: Result<(), ToxiproxyError>) -> Result<(), String> {
    match r {
        Err(ToxiproxyError::Status {
            status: 404, body, ..
        }) if body.contains("toxic") => Ok(()),
        other => other.map_err(|e| e.to_string()),
    }
}
