//! The fault journal: every fault applied during a run, when, and when (and whether) it was
//! rolled back. It is what the report's fault table and chart shading are drawn from, and what
//! rollback walks (newest first).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FaultRecord {
    /// The plugin that asked for it.
    pub plugin: String,
    /// `app`, `toxic`, `proxy-down` or `hot-share`.
    pub kind: String,
    /// What was changed, e.g. `hold_ms at http://…/faults` (field at fault API).
    pub target: String,
    /// The value in force (the last one, when the plugin changed it several times).
    pub value: String,
    /// How many times the value was changed after it was first applied.
    pub updates: u32,
    /// What rollback puts back, e.g. `0`, `removed`, `enabled`.
    pub original: String,
    pub applied_at: String,
    /// Seconds on the run's clock: the `second` of `timeseries.csv` (the recorder starts just
    /// before the preflight, so the load's first second may be a few seconds in).
    pub applied_s: f64,
    pub rolled_back_at: Option<String>,
    pub rolled_back_s: Option<f64>,
    /// Why rollback failed, when it did (the report shows it in red: a fault may still be live).
    pub rollback_error: Option<String>,
}

impl FaultRecord {
    pub fn active(&self) -> bool {
        self.rolled_back_at.is_none() && self.rollback_error.is_none()
    }
}

/// What happened to a fault, in the order it happened; the run hands these to its observer
/// (the console prints them) because `fault/` prints nothing itself.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultEvent {
    Applied {
        plugin: String,
        kind: String,
        target: String,
        value: String,
    },
    RolledBack {
        kind: String,
        target: String,
        original: String,
    },
    RollbackFailed {
        kind: String,
        target: String,
        error: String,
    },
}
