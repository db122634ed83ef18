//! Fault plugins (`harness:plugin/faults`): configure once, `on-tick` each second; the actions
//! they return are validated here and carried out (and journaled) by `crate::fault`.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use wasmtime::Store;

use super::{arm, describe_trap, start, CallStats, HostState, Limits, Loaded, PluginError};
use crate::fault::action::{Action, ToxicSpec};

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
    })
}
