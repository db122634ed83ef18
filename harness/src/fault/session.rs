//! One run's fault actuators and journal. Carries out actions (app fault API, Toxiproxy API
//! of the relay or an external Toxiproxy, hot-key share on the load side), journals each one,
//! and rolls every one back — on pass, fail, abort, plugin error and signals alike, because
//! `run` calls [`FaultSession::rollback_all`] on every path out of the load loop.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use serde_json::{json, Value};

use super::action::{Action, HttpToxicSpec, SqlFault, ToxicSpec};
use super::agent::{self, AgentRef, AgentSpec};
use super::app::AppFaultApi;
use super::client::ToxiproxyClient;
use super::journal::{FaultEvent, FaultRecord};
use super::ledger::{Ledger, Line};
use super::process::{self, ProcessTarget};
use super::undo::Undo;
use crate::clock::rfc3339;
use crate::load::plan::LoadPlan;

#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    #[error("fault from {plugin}: {message}")]
    Apply { plugin: String, message: String },
    #[error("fault from {plugin}: no {what} configured for this scenario (set [actuators].{key})")]
    NoActuator {
        plugin: String,
        what: &'static str,
        key: String,
    },
    /// The journal file could not be written: no fault is applied without its intent on disk.
    #[error(transparent)]
    Ledger(#[from] super::ledger::LedgerError),
}

/// Where faults go; each may be absent when a scenario has no use for it.
#[derive(Debug, Clone, Default)]
pub struct Actuators {
    /// The app's fault admin endpoint (GET returns the fields, POST sets some).
    pub app_faults: Option<String>,
    /// A Toxiproxy-compatible API (our relay or an external Toxiproxy).
    pub toxiproxy: Option<String>,
    /// `[actuators.sql.NAME]`: database URLs the sql faults may use.
    pub sql: BTreeMap<String, String>,
    /// `[actuators.processes.NAME]`: processes the process faults may pause or kill.
    pub processes: BTreeMap<String, ProcessTarget>,
}

impl Actuators {
    /// What each actuator is called in journals: a run is refused while another journal has
    /// faults open on one of these.
    pub fn names(&self) -> Vec<String> {
        let mut out: Vec<String> = self.app_faults.iter().cloned().collect();
        out.extend(self.toxiproxy.iter().cloned());
        out.extend(self.sql.values().map(|u| crate::probe::sql::redact(u)));
        out.extend(
            self.processes
                .values()
                .map(|p| p.pid_file.display().to_string()),
        );
        out
    }
}

/// One change as journaled: what it is, its value, and how to undo it.
struct Change {
    kind: &'static str,
    target: String,
    value: String,
    original: String,
    undo: Undo,
}

struct Entry {
    record: FaultRecord,
    undo: Undo,
    /// Identity for updates: the same plugin setting the same thing again.
    key: String,
    /// Its id in the journal file.
    id: u32,
}

pub struct FaultSession {
    actuators: Actuators,
    app: AppFaultApi,
    toxiproxy: Option<ToxiproxyClient>,
    plan: Arc<LoadPlan>,
    started: Instant,
    entries: Vec<Entry>,
    /// What happened since the last `take_events`, for the run's observer.
    events: Vec<FaultEvent>,
    /// The run directory: the journal file (created at the first fault) and agent and restart
    /// logs go there.
    dir: Option<PathBuf>,
    ledger: Option<Ledger>,
    /// The id the next intent gets.
    next_id: u32,
}

impl FaultSession {
    /// A session whose clock starts now; [`FaultSession::start_clock`] moves it to the load's start.
    pub fn new(actuators: Actuators, plan: Arc<LoadPlan>) -> FaultSession {
        let started = Instant::now();
        let toxiproxy = actuators.toxiproxy.as_deref().map(ToxiproxyClient::new);
        FaultSession {
            actuators,
            app: AppFaultApi::new(),
            toxiproxy,
            plan,
            started,
            entries: Vec::new(),
            events: Vec::new(),
            dir: None,
            ledger: None,
            next_id: 0,
        }
    }

    /// Journals every fault to `dir/faults.jsonl` before applying it (see `ledger`).
    pub fn with_ledger(mut self, dir: &std::path::Path) -> FaultSession {
        self.dir = Some(dir.to_owned());
        self
    }

    /// Journal times count from `started` (when the load began).
    pub fn start_clock(&mut self, started: Instant) {
        self.started = started;
    }

    /// Events since the last call, oldest first.
    pub fn take_events(&mut self) -> Vec<FaultEvent> {
        std::mem::take(&mut self.events)
    }

    pub fn journal(&self) -> Vec<FaultRecord> {
        self.entries.iter().map(|e| e.record.clone()).collect()
    }

    fn now_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    fn logs(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(std::env::temp_dir)
    }

    fn write(&mut self, line: Line) -> Result<(), FaultError> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        if self.ledger.is_none() {
            self.ledger = Some(Ledger::create(&dir.join(super::ledger::FILE))?);
        }
        self.ledger.as_mut().expect("created").write(&line)?;
        Ok(())
    }

    /// Carries out `action` for `plugin`, journaling it. An error leaves the journal as it was
    /// for this action (nothing half-applied is recorded as applied).
    pub async fn apply(&mut self, plugin: &str, action: Action) -> Result<(), FaultError> {
        match action {
            Action::RestoreAll => {
                self.restore_all(plugin).await;
                Ok(())
            }
            Action::SetAppFault { field, value } => self.set_app_fault(plugin, field, value).await,
            Action::AddToxic(spec) => self.add_toxic(plugin, spec).await,
            Action::AddHttpToxic(spec) => self.add_http_toxic(plugin, spec).await,
            Action::RemoveToxic { proxy, name } => {
                self.end(plugin, &format!("toxic:{proxy}:{name}"), &name)
                    .await
            }
            Action::EndFault { name } => {
                let key = self
                    .entries
                    .iter()
                    .rev()
                    .find(|e| e.record.plugin == plugin && e.key.ends_with(&format!(":{name}")))
                    .map(|e| e.key.clone())
                    .unwrap_or_default();
                self.end(plugin, &key, &name).await
            }
            Action::SetHotShare { generator, share } => {
                self.set_hot_share(plugin, generator, share)
            }
            Action::Sql(f) => self.sql_fault(plugin, f).await,
            Action::Process {
                name,
                process,
                kill,
            } => self.process_fault(plugin, name, process, kill).await,
        }
    }

    /// Rolls back the active entry `key` of `plugin` (`name` for the message).
    async fn end(&mut self, plugin: &str, key: &str, name: &str) -> Result<(), FaultError> {
        let Some(i) = self.active_entry(plugin, key) else {
            return Err(FaultError::Apply {
                plugin: plugin.to_owned(),
                message: format!("{name}: this plugin has no such fault in force"),
            });
        };
        self.rollback_one(i).await;
        Ok(())
    }

    /// Rolls back every active entry of `plugin`, newest first.
    async fn restore_all(&mut self, plugin: &str) {
        let mine: Vec<usize> = (0..self.entries.len())
            .rev()
            .filter(|i| {
                self.entries[*i].record.plugin == plugin && self.entries[*i].record.active()
            })
            .collect();
        for i in mine {
            self.rollback_one(i).await;
        }
    }

    /// Writes the intent of a new fault before it is applied; returns its id.
    fn intend(
        &mut self,
        plugin: &str,
        kind: &str,
        target: &str,
        undo: &Undo,
    ) -> Result<u32, FaultError> {
        let id = self.next_id;
        self.next_id += 1;
        self.write(Line::Intent {
            id,
            plugin: plugin.to_owned(),
            kind: kind.to_owned(),
            target: target.to_owned(),
            undo: undo.clone(),
        })?;
        Ok(id)
    }

    /// After an apply failed: its undo runs at once (the apply may have half-happened) and the
    /// journal says so; the error goes back to the caller.
    async fn abandon(&mut self, id: u32, undo: &Undo, error: FaultError) -> FaultError {
        let line = match undo.run(&self.logs()).await {
            Ok(()) => Line::Reverted {
                id,
                at: rfc3339(SystemTime::now()),
            },
            Err(e) => Line::Failed { id, error: e },
        };
        let _ = self.write(line);
        error
    }

    /// Sets `field` through the app fault API; the value it had first is what rollback restores.
    async fn set_app_fault(
        &mut self,
        plugin: &str,
        field: String,
        value: i64,
    ) -> Result<(), FaultError> {
        let err = |message: String| FaultError::Apply {
            plugin: plugin.to_owned(),
            message,
        };
        let url = self
            .actuators
            .app_faults
            .clone()
            .ok_or(FaultError::NoActuator {
                plugin: plugin.into(),
                what: "app fault API",
                key: "app_faults".into(),
            })?;
        let key = format!("app:{url}:{field}");
        let existing = self.active_entry(plugin, &key);
        let original = match existing.map(|i| &self.entries[i].undo) {
            Some(Undo::App { original, .. }) => original.clone(),
            _ => {
                let current = self.app.get(&url).await.map_err(|e| err(e.to_string()))?;
                current.get(&field).cloned().ok_or_else(|| {
                    err(format!(
                        "{url} has no field `{field}` (it has: {})",
                        keys_of(&current)
                    ))
                })?
            }
        };
        let new = if original.is_boolean() {
            json!(value != 0)
        } else {
            json!(value)
        };
        let change = Change {
            kind: "app",
            target: format!("{field} at {url}"),
            value: new.to_string(),
            original: original.to_string(),
            undo: Undo::App {
                url: url.clone(),
                field: field.clone(),
                original,
            },
        };
        let body = json!({ field: new });
        let app = self.app.clone();
        self.carry_out(plugin, key, existing, change, async move {
            app.post(&url, body).await.map_err(|e| err(e.to_string()))
        })
        .await
    }

    /// Journals the intent (for a new entry), runs `effect`, records the change; on failure
    /// the effect's undo runs and the error is returned.
    async fn carry_out(
        &mut self,
        plugin: &str,
        key: String,
        existing: Option<usize>,
        change: Change,
        effect: impl std::future::Future<Output = Result<(), FaultError>>,
    ) -> Result<(), FaultError> {
        let id = match existing {
            Some(i) => self.entries[i].id,
            None => self.intend(plugin, change.kind, &change.target, &change.undo)?,
        };
        if let Err(e) = effect.await {
            if existing.is_none() {
                return Err(self.abandon(id, &change.undo, e).await);
            }
            return Err(e);
        }
        self.record(plugin, key, existing, id, change);
        Ok(())
    }

    /// Moves the hot key's share of `generator` on the load side.
    fn set_hot_share(
        &mut self,
        plugin: &str,
        generator: String,
        share: f64,
    ) -> Result<(), FaultError> {
        let key = format!("hot:{generator}");
        let existing = self.active_entry(plugin, &key);
        let old = self
            .plan
            .set_hot_share(&generator, share)
            .map_err(|e| FaultError::Apply {
                plugin: plugin.to_owned(),
                message: e.to_string(),
            })?;
        let original = match existing.map(|i| &self.entries[i].undo) {
            Some(Undo::HotShare { original, .. }) => *original,
            _ => old,
        };
        let change = Change {
            kind: "hot-share",
            target: format!("generator {generator}"),
            value: format!("{share}"),
            original: format!("{original}"),
            undo: Undo::HotShare {
                generator,
                original,
            },
        };
        let id = match existing {
            Some(i) => self.entries[i].id,
            None => self.intend(plugin, change.kind, &change.target, &change.undo)?,
        };
        self.record(plugin, key, existing, id, change);
        Ok(())
    }

    fn toxiproxy(&self, plugin: &str) -> Result<(ToxiproxyClient, String), FaultError> {
        let client = self.toxiproxy.clone().ok_or(FaultError::NoActuator {
            plugin: plugin.into(),
            what: "Toxiproxy API",
            key: "toxiproxy".into(),
        })?;
        Ok((client, self.actuators.toxiproxy.clone().unwrap_or_default()))
    }

    async fn add_toxic(&mut self, plugin: &str, spec: ToxicSpec) -> Result<(), FaultError> {
        let err = |message: String| FaultError::Apply {
            plugin: plugin.to_owned(),
            message,
        };
        let (client, api) = self.toxiproxy(plugin)?;
        if spec.kind == "down" {
            let key = format!("down:{}", spec.proxy);
            let existing = self.active_entry(plugin, &key);
            let change = Change {
                kind: "proxy-down",
                target: format!("proxy {} at {api}", spec.proxy),
                value: "disabled".into(),
                original: "enabled".into(),
                undo: Undo::Enable {
                    api,
                    proxy: spec.proxy.clone(),
                },
            };
            let effect = async move {
                let r = client.set_enabled(&spec.proxy, false).await;
                r.map_err(|e| err(e.to_string()))
            };
            return self.carry_out(plugin, key, existing, change, effect).await;
        }
        let toxic = spec.to_toxic().map_err(|e| err(e.to_string()))?;
        let target = format!(
            "toxic {} ({}) on proxy {} at {api}",
            spec.name, spec.kind, spec.proxy
        );
        self.put_toxic(plugin, &spec.proxy, toxic, target).await
    }

    async fn add_http_toxic(
        &mut self,
        plugin: &str,
        spec: HttpToxicSpec,
    ) -> Result<(), FaultError> {
        let toxic = spec.to_toxic().map_err(|e| FaultError::Apply {
            plugin: plugin.to_owned(),
            message: e.to_string(),
        })?;
        let (_, api) = self.toxiproxy(plugin)?;
        let route = if spec.route.is_empty() {
            "every route"
        } else {
            &spec.route
        };
        let target = format!(
            "http toxic {} ({} on {route}) on proxy {} at {api}",
            spec.name, spec.kind, spec.proxy
        );
        self.put_toxic(plugin, &spec.proxy, toxic, target).await
    }

    /// Adds `toxic` to `proxy`, or replaces this plugin's toxic of that name.
    async fn put_toxic(
        &mut self,
        plugin: &str,
        proxy: &str,
        toxic: super::toxic::Toxic,
        target: String,
    ) -> Result<(), FaultError> {
        let err = |message: String| FaultError::Apply {
            plugin: plugin.to_owned(),
            message,
        };
        let (client, api) = self.toxiproxy(plugin)?;
        let key = format!("toxic:{proxy}:{}", toxic.name);
        let existing = self.active_entry(plugin, &key);
        let value = serde_json::to_value(&toxic)
            .map(|v| v.to_string())
            .unwrap_or_default();
        let change = Change {
            kind: "toxic",
            target,
            value,
            original: "removed".into(),
            undo: Undo::Toxic {
                api,
                proxy: proxy.to_owned(),
                name: toxic.name.clone(),
            },
        };
        let proxy = proxy.to_owned();
        let replace = existing.is_some();
        let effect = async move {
            if replace {
                // Toxiproxy updates attributes in place only; replace to change anything.
                let r = client.remove_toxic(&proxy, &toxic.name).await;
                r.map_err(|e| err(e.to_string()))?;
            }
            let r = client.add_toxic(&proxy, &toxic).await;
            r.map(|_| ()).map_err(|e| err(e.to_string()))
        };
        self.carry_out(plugin, key, existing, change, effect).await
    }

    /// Starts (or replaces) a fault agent holding locks or connections.
    async fn sql_fault(&mut self, plugin: &str, f: SqlFault) -> Result<(), FaultError> {
        let url = self
            .actuators
            .sql
            .get(&f.database)
            .cloned()
            .ok_or_else(|| FaultError::NoActuator {
                plugin: plugin.into(),
                what: "database",
                key: format!("sql.{}.url", f.database),
            })?;
        let key = format!("sql:{}:{}", f.database, f.name);
        let existing = self.active_entry(plugin, &key);
        if let Some(i) = existing {
            // A new shape of the same fault: the old agent goes first.
            self.rollback_one(i).await;
        }
        let (kind, value) = describe_hold(&f.hold);
        let token = format!("{}-{}", std::process::id(), self.next_id);
        let pending = AgentRef {
            token: token.clone(),
            pid: 0,
            url: url.clone(),
            sessions: Vec::new(),
        };
        let target = format!("{} in {}", f.name, crate::probe::sql::redact(&url));
        let undo = Undo::Agent(pending);
        let id = self.intend(plugin, kind, &target, &undo)?;
        let spec = AgentSpec { url, hold: f.hold };
        let log = self.logs().join(format!("agent-{}.log", f.name));
        let agent = match agent::spawn(&spec, &token, &log).await {
            Ok(a) => a,
            Err(e) => {
                let e = FaultError::Apply {
                    plugin: plugin.to_owned(),
                    message: e.to_string(),
                };
                return Err(self.abandon(id, &undo, e).await);
            }
        };
        let undo = Undo::Agent(agent.clone());
        self.write(Line::Update {
            id,
            undo: undo.clone(),
        })?;
        let change = Change {
            kind,
            target,
            value: format!(
                "{value}; sessions {:?} (agent pid {})",
                agent.sessions, agent.pid
            ),
            original: "no sessions".into(),
            undo,
        };
        self.record(plugin, key, None, id, change);
        Ok(())
    }

    /// Pauses or kills a named process; a second ask for the same fault changes nothing.
    async fn process_fault(
        &mut self,
        plugin: &str,
        name: String,
        process: String,
        kill: bool,
    ) -> Result<(), FaultError> {
        let err = |message: String| FaultError::Apply {
            plugin: plugin.to_owned(),
            message,
        };
        let target = self
            .actuators
            .processes
            .get(&process)
            .cloned()
            .ok_or_else(|| FaultError::NoActuator {
                plugin: plugin.into(),
                what: "process",
                key: format!("processes.{process}.pid_file"),
            })?;
        let key = format!("process:{process}:{name}");
        if self.active_entry(plugin, &key).is_some() {
            return Ok(());
        }
        let faulted = process::find(&target, kill).map_err(|e| err(e.to_string()))?;
        let (kind, original) = match kill {
            true => ("process-kill", "restarted"),
            false => ("process-pause", "resumed"),
        };
        let change = Change {
            kind,
            target: format!("{name}: process {} (pid {})", target.name, faulted.pid),
            value: if kill { "killed" } else { "paused (SIGSTOP)" }.into(),
            original: original.into(),
            undo: Undo::Process(faulted.clone()),
        };
        let effect = async move {
            process::apply(&faulted)
                .await
                .map_err(|e| err(e.to_string()))
        };
        self.carry_out(plugin, key, None, change, effect).await
    }

    fn active_entry(&self, plugin: &str, key: &str) -> Option<usize> {
        self.entries
            .iter()
            .rposition(|e| e.key == key && e.record.plugin == plugin && e.record.active())
    }

    /// Journals `change` as a new entry, or as an update of the `existing` one.
    fn record(
        &mut self,
        plugin: &str,
        key: String,
        existing: Option<usize>,
        id: u32,
        change: Change,
    ) {
        let Change {
            kind,
            target,
            value,
            original,
            undo,
        } = change;
        if let Some(i) = existing {
            let r = &mut self.entries[i].record;
            r.value = value;
            r.updates += 1;
            return;
        }
        let record = FaultRecord {
            plugin: plugin.to_owned(),
            kind: kind.to_owned(),
            target,
            value,
            updates: 0,
            original,
            applied_at: rfc3339(SystemTime::now()),
            applied_s: self.now_s(),
            rolled_back_at: None,
            rolled_back_s: None,
            rollback_error: None,
        };
        self.events.push(FaultEvent::Applied {
            plugin: record.plugin.clone(),
            kind: record.kind.clone(),
            target: record.target.clone(),
            value: record.value.clone(),
        });
        self.entries.push(Entry {
            record,
            undo,
            key,
            id,
        });
    }

    /// Undoes every active entry, newest first; failures are recorded on the entry and retried
    /// once, never abandoned silently. Returns how many could not be rolled back.
    pub async fn rollback_all(&mut self) -> usize {
        for i in (0..self.entries.len()).rev() {
            if self.entries[i].record.active() {
                self.rollback_one(i).await;
            }
        }
        for i in (0..self.entries.len()).rev() {
            if self.entries[i].record.rollback_error.is_some() {
                self.entries[i].record.rollback_error = None;
                self.rollback_one(i).await;
            }
        }
        self.entries
            .iter()
            .filter(|e| e.record.rollback_error.is_some())
            .count()
    }

    async fn rollback_one(&mut self, i: usize) {
        let undo = self.entries[i].undo.clone();
        let result: Result<(), String> = match &undo {
            Undo::HotShare {
                generator,
                original,
            } => self
                .plan
                .set_hot_share(generator, *original)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            other => other.run(&self.logs()).await,
        };
        let now_s = self.now_s();
        let id = self.entries[i].id;
        let line = match &result {
            Ok(()) => Line::Reverted {
                id,
                at: rfc3339(SystemTime::now()),
            },
            Err(e) => Line::Failed {
                id,
                error: e.clone(),
            },
        };
        let written = self.write(line).map_err(|e| e.to_string());
        let r = &mut self.entries[i].record;
        match result.and(written) {
            Ok(()) => {
                r.rolled_back_at = Some(rfc3339(SystemTime::now()));
                r.rolled_back_s = Some(now_s);
                self.events.push(FaultEvent::RolledBack {
                    kind: r.kind.clone(),
                    target: r.target.clone(),
                    original: r.original.clone(),
                });
            }
            Err(e) => {
                self.events.push(FaultEvent::RollbackFailed {
                    kind: r.kind.clone(),
                    target: r.target.clone(),
                    error: e.clone(),
                });
                r.rollback_error = Some(e);
            }
        }
    }
}

/// The journal kind and value of an agent's hold.
fn describe_hold(hold: &super::sql::Hold) -> (&'static str, String) {
    match hold {
        super::sql::Hold::Locks {
            query,
            table,
            hold_ms,
            interval_ms,
            sessions,
        } => {
            let what = if table.is_empty() {
                format!("rows of `{query}`")
            } else {
                format!("table {table}")
            };
            let value = format!(
                "{what} locked {hold_ms} ms every {interval_ms} ms from {sessions} session(s)"
            );
            ("sql-lock", value)
        }
        super::sql::Hold::Connections {
            count,
            in_transaction,
        } => {
            let how = if *in_transaction {
                "in a transaction"
            } else {
                "idle"
            };
            (
                "sql-connections",
                format!("{count} connection(s) held {how}"),
            )
        }
    }
}

fn keys_of(v: &Value) -> String {
    v.as_object()
        .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}
