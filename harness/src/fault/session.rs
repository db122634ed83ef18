//! One run's fault actuators and journal. Carries out actions (app fault API, Toxiproxy API
//! of the relay or an external Toxiproxy, hot-key share on the load side), journals each one,
//! and rolls every one back — on pass, fail, abort, plugin error and signals alike, because
//! `run` calls [`FaultSession::rollback_all`] on every path out of the load loop.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use serde_json::{json, Value};

use super::action::{Action, ToxicSpec};
use super::app::AppFaultApi;
use super::client::ToxiproxyClient;
use super::journal::{FaultEvent, FaultRecord};
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
        key: &'static str,
    },
}

/// Where faults go; either may be absent when a scenario has no use for it.
#[derive(Debug, Clone, Default)]
pub struct Actuators {
    /// The app's fault admin endpoint (GET returns the fields, POST sets some).
    pub app_faults: Option<String>,
    /// A Toxiproxy-compatible API (our relay or an external Toxiproxy).
    pub toxiproxy: Option<String>,
}

/// How to undo one journal entry.
#[derive(Debug, Clone)]
enum Undo {
    App { field: String, original: Value },
    Toxic { proxy: String, name: String },
    Enable { proxy: String },
    HotShare { generator: String, original: f64 },
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
        }
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
            Action::RemoveToxic { proxy, name } => {
                let key = format!("toxic:{proxy}:{name}");
                let Some(i) = self.active_entry(plugin, &key) else {
                    let message =
                        format!("remove-toxic {proxy}/{name}: this plugin did not add it");
                    return Err(FaultError::Apply {
                        plugin: plugin.to_owned(),
                        message,
                    });
                };
                self.rollback_one(i).await;
                Ok(())
            }
            Action::SetHotShare { generator, share } => {
                self.set_hot_share(plugin, generator, share)
            }
        }
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
                key: "app_faults",
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
        let body = json!({ field.clone(): new.clone() });
        self.app
            .post(&url, body)
            .await
            .map_err(|e| err(e.to_string()))?;
        let change = Change {
            kind: "app",
            target: format!("{field} at {url}"),
            value: new.to_string(),
            original: original.to_string(),
            undo: Undo::App { field, original },
        };
        self.record(plugin, key, existing, change);
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
        self.record(plugin, key, existing, change);
        Ok(())
    }

    async fn add_toxic(&mut self, plugin: &str, spec: ToxicSpec) -> Result<(), FaultError> {
        let err = |message: String| FaultError::Apply {
            plugin: plugin.to_owned(),
            message,
        };
        let client = self.toxiproxy.clone().ok_or(FaultError::NoActuator {
            plugin: plugin.into(),
            what: "Toxiproxy API",
            key: "toxiproxy",
        })?;
        let api = self.actuators.toxiproxy.clone().unwrap_or_default();
        if spec.kind == "down" {
            let key = format!("down:{}", spec.proxy);
            let existing = self.active_entry(plugin, &key);
            client
                .set_enabled(&spec.proxy, false)
                .await
                .map_err(|e| err(e.to_string()))?;
            self.record(
                plugin,
                key,
                existing,
                Change {
                    kind: "proxy-down",
                    target: format!("proxy {} at {api}", spec.proxy),
                    value: "disabled".into(),
                    original: "enabled".into(),
                    undo: Undo::Enable { proxy: spec.proxy },
                },
            );
            return Ok(());
        }
        let toxic = spec.to_toxic().map_err(|e| err(e.to_string()))?;
        let key = format!("toxic:{}:{}", spec.proxy, spec.name);
        let existing = self.active_entry(plugin, &key);
        if existing.is_some() {
            // Toxiproxy updates attributes in place only; replace to change anything.
            client
                .remove_toxic(&spec.proxy, &spec.name)
                .await
                .map_err(|e| err(e.to_string()))?;
        }
        client
            .add_toxic(&spec.proxy, &toxic)
            .await
            .map_err(|e| err(e.to_string()))?;
        let value = serde_json::to_value(&toxic)
            .map(|v| v.to_string())
            .unwrap_or_default();
        let target = format!(
            "toxic {} ({}) on proxy {} at {api}",
            spec.name, spec.kind, spec.proxy
        );
        self.record(
            plugin,
            key,
            existing,
            Change {
                kind: "toxic",
                target,
                value,
                original: "removed".into(),
                undo: Undo::Toxic {
                    proxy: spec.proxy,
                    name: spec.name,
                },
            },
        );
        Ok(())
    }

    fn active_entry(&self, plugin: &str, key: &str) -> Option<usize> {
        self.entries
            .iter()
            .rposition(|e| e.key == key && e.record.plugin == plugin && e.record.active())
    }

    /// Journals `change` as a new entry, or as an update of the `existing` one.
    fn record(&mut self, plugin: &str, key: String, existing: Option<usize>, change: Change) {
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
        self.entries.push(Entry { record, undo, key });
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
            Undo::App { field, original } => match &self.actuators.app_faults {
                Some(url) => {
                    let body = json!({ field.clone(): original.clone() });
                    self.app.post(url, body).await.map_err(|e| e.to_string())
                }
                None => Err("no app fault API".into()),
            },
            Undo::Toxic { proxy, name } => match &self.toxiproxy {
                Some(c) => c.remove_toxic(proxy, name).await.map_err(|e| e.to_string()),
                None => Err("no Toxiproxy API".into()),
            },
            Undo::Enable { proxy } => match &self.toxiproxy {
                Some(c) => c.set_enabled(proxy, true).await.map_err(|e| e.to_string()),
                None => Err("no Toxiproxy API".into()),
            },
            Undo::HotShare {
                generator,
                original,
            } => self
                .plan
                .set_hot_share(generator, *original)
                .map(|_| ())
                .map_err(|e| e.to_string()),
        };
        let now_s = self.now_s();
        let r = &mut self.entries[i].record;
        match result {
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

fn keys_of(v: &Value) -> String {
    v.as_object()
        .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}
