//! Fault plugins (`harness:plugin/faults`): configure once, `on-tick` each second; the actions
//! they return are validated here and carried out (and journaled) by `crate::fault`.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use wasmtime::Store;

use super::{arm, describe_trap, start, CallStats, HostState, Limits, Loaded, PluginError};
use crate::fault::action::{Action, HttpToxicSpec, SqlFault, ToxicSpec};
use crate::fault::sql::Hold;

mod bindings {
    wasmtime::component::bindgen!({ world: "fault", path: "../plugins/wit" });
}
use bindings::harness::plugin::types as wit;

/// What a fault plugin sees each second.
#[derive(Debug, Clone, Default)]
pub struct TickState {
    pub elapsed_s: f64,
    pub stage: u32,
    pub requests: u64,
    pub failed: u64,
    pub gauges: Vec<(String, f64)>,
}

pub struct FaultPlugin {
    loaded: Arc<Loaded>,
    store: Store<HostState>,
    bindings: bindings::Fault,
    limits: Limits,
    pub stats: CallStats,
}

impl FaultPlugin {
    pub fn start(path: &Path, config: &str, limits: Limits) -> Result<FaultPlugin, PluginError> {
        let (loaded, store, bindings) = start(
            path,
            "faults",
            "fault",
            config,
            &limits,
            |s, c, l| bindings::Fault::instantiate(s, c, l),
            |b, store, config| b.harness_plugin_faults().call_configure(store, config),
        )?;
        Ok(FaultPlugin {
            loaded,
            store,
            bindings,
            limits,
            stats: CallStats::default(),
        })
    }

    pub fn name(&self) -> &str {
        &self.loaded.name
    }

    pub fn on_tick(&mut self, st: &TickState) -> Result<Vec<Action>, PluginError> {
        let arg = wit::RunState {
            elapsed_s: st.elapsed_s,
            stage: st.stage,
            requests: st.requests,
            failed: st.failed,
            gauges: st.gauges.clone(),
        };
        arm(&mut self.store, &self.limits);
        let started = Instant::now();
        let r = self
            .bindings
            .harness_plugin_faults()
            .call_on_tick(&mut self.store, &arg);
        self.stats.add(started.elapsed());
        let actions = r.map_err(|e| PluginError::Trap {
            plugin: self.loaded.name.clone(),
            call: "on-tick",
            message: describe_trap(&e, &self.limits),
        })?;
        actions
            .into_iter()
            .map(|a| {
                convert(a).map_err(|e| PluginError::Malformed {
                    plugin: self.loaded.name.clone(),
                    call: "on-tick",
                    message: e.to_string(),
                })
            })
            .collect()
    }
}

/// A fault action the run will not carry out (the message of [`PluginError::Malformed`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
enum Malformed {
    #[error("set-app-fault with an empty field name")]
    EmptyField,
    #[error("set-app-fault {field} = {value}: values must not be negative")]
    NegativeValue { field: String, value: i64 },
    #[error("toxic {name}: toxicity {toxicity} is outside 0..1")]
    Toxicity { name: String, toxicity: f64 },
    #[error("add-toxic needs a proxy and a toxic name")]
    ToxicTarget,
    #[error("set-hot-share {generator}: share {share} is outside 0..1")]
    HotShare { generator: String, share: f64 },
    #[error("{action} needs a name and a {what}")]
    Unnamed {
        action: &'static str,
        what: &'static str,
    },
    #[error("sql-lock {name}: {message}")]
    SqlLock { name: String, message: String },
    #[error("sql-connections {name}: count {count} is outside 1..=10000")]
    Connections { name: String, count: u32 },
    #[error("add-http-toxic {name}: {message}")]
    HttpToxic { name: String, message: String },
}

fn convert(a: wit::FaultAction) -> Result<Action, Malformed> {
    Ok(match a {
        wit::FaultAction::SetAppFault((field, value)) => {
            if field.trim().is_empty() {
                return Err(Malformed::EmptyField);
            }
            if value < 0 {
                return Err(Malformed::NegativeValue { field, value });
            }
            Action::SetAppFault { field, value }
        }
        wit::FaultAction::AddToxic(t) => {
            if !(0.0..=1.0).contains(&t.toxicity) {
                return Err(Malformed::Toxicity {
                    name: t.name,
                    toxicity: t.toxicity,
                });
            }
            if t.proxy.is_empty() || t.name.is_empty() {
                return Err(Malformed::ToxicTarget);
            }
            Action::AddToxic(ToxicSpec {
                proxy: t.proxy,
                name: t.name,
                kind: t.kind,
                direction: t.direction,
                toxicity: t.toxicity,
                attributes: t.attributes,
            })
        }
        wit::FaultAction::RemoveToxic((proxy, name)) => Action::RemoveToxic { proxy, name },
        wit::FaultAction::SetHotShare((generator, share)) => {
            if !(0.0..=1.0).contains(&share) {
                return Err(Malformed::HotShare { generator, share });
            }
            Action::SetHotShare { generator, share }
        }
        wit::FaultAction::RestoreAll => Action::RestoreAll,
        wit::FaultAction::SqlLock(l) => sql_lock(l)?,
        wit::FaultAction::SqlConnections(c) => {
            named("sql-connections", "database", &c.name, &c.database)?;
            if !(1..=10_000).contains(&c.count) {
                return Err(Malformed::Connections {
                    name: c.name,
                    count: c.count,
                });
            }
            Action::Sql(SqlFault {
                name: c.name,
                database: c.database,
                hold: Hold::Connections {
                    count: c.count,
                    in_transaction: c.in_transaction,
                },
            })
        }
        wit::FaultAction::ProcessFault(p) => {
            named("process-fault", "process", &p.name, &p.process)?;
            Action::Process {
                name: p.name,
                process: p.process,
                kill: p.kill,
            }
        }
        wit::FaultAction::AddHttpToxic(t) => http_toxic(t)?,
        wit::FaultAction::EndFault(name) => Action::EndFault { name },
    })
}

fn named(action: &'static str, what: &'static str, name: &str, of: &str) -> Result<(), Malformed> {
    match name.trim().is_empty() || of.trim().is_empty() {
        true => Err(Malformed::Unnamed { action, what }),
        false => Ok(()),
    }
}

fn sql_lock(l: wit::SqlLock) -> Result<Action, Malformed> {
    named("sql-lock", "database", &l.name, &l.database)?;
    let bad = |message: &str| Malformed::SqlLock {
        name: l.name.clone(),
        message: message.to_owned(),
    };
    if l.query.trim().is_empty() == l.table.trim().is_empty() {
        return Err(bad("set exactly one of query (rows to lock) and table"));
    }
    if !l
        .table
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    {
        return Err(bad("table must be a plain (schema.)name"));
    }
    if l.hold_ms == 0 || l.interval_ms < l.hold_ms {
        return Err(bad("hold-ms must be > 0 and interval-ms ≥ hold-ms"));
    }
    if !(1..=1000).contains(&l.sessions) {
        return Err(bad("sessions must be 1..=1000"));
    }
    Ok(Action::Sql(SqlFault {
        name: l.name,
        database: l.database,
        hold: Hold::Locks {
            query: l.query,
            table: l.table,
            hold_ms: l.hold_ms,
            interval_ms: l.interval_ms,
            sessions: l.sessions,
        },
    }))
}

fn http_toxic(t: wit::HttpToxic) -> Result<Action, Malformed> {
    named("add-http-toxic", "proxy", &t.name, &t.proxy)?;
    let bad = |message: String| Malformed::HttpToxic {
        name: t.name.clone(),
        message,
    };
    if !(0.0..=1.0).contains(&t.toxicity) {
        return Err(bad(format!("toxicity {} is outside 0..1", t.toxicity)));
    }
    match t.kind.as_str() {
        "status" if !(200..=599).contains(&t.status) => {
            return Err(bad(format!("status {} is not an HTTP status", t.status)))
        }
        "status" | "latency" | "abort" => {}
        other => {
            return Err(bad(format!(
                "kind `{other}` (use status, latency or abort)"
            )))
        }
    }
    Ok(Action::AddHttpToxic(HttpToxicSpec {
        proxy: t.proxy,
        name: t.name,
        kind: t.kind,
        route: t.route,
        toxicity: t.toxicity,
        status: t.status,
        latency_ms: t.latency_ms,
        bytes: t.bytes,
    }))
}
