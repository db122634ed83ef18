//! The load-and-chaos harness as a library: the CLI in `main.rs` is a thin shell over these
//! modules, and the end-to-end tests drive them directly.

pub mod alerts;
pub mod demo;
pub mod fault;
pub mod load;
pub mod metrics;
pub mod plugin;
pub mod probe;
pub mod report;
pub mod run;
pub mod scenario;
pub mod stack;
/// k6 threshold rules (shared with the k6-thresholds plugin; see plugins/k6-rules).
pub use k6_rules as threshold;
pub mod verdict;

/// Process exit codes (k6-compatible where k6 has one); see DESIGN.md §6.
pub mod exit {
    pub const PASS: i32 = 0;
    pub const USAGE: i32 = 2;
    pub const RUNTIME: i32 = 3;
    pub const THRESHOLDS_FAILED: i32 = 99;
    pub const INTERRUPTED: i32 = 130;
}
