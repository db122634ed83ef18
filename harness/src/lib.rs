//! The load-and-chaos harness as a library: the CLI in `main.rs` is a thin shell over it, and
//! the end-to-end tests drive it directly. Every module is private; what callers may use is
//! re-exported below, grouped by what it is for, so the surface stays narrow and typed.

mod alerts;
mod clock;
mod db;
mod demo;
mod event;
mod fault;
mod k8s;
mod load;
mod metrics;
mod plugin;
mod probe;
mod prom;
mod report;
mod run;
mod scenario;
mod serve;
mod stack;
mod tls;
mod verdict;

/// k6 threshold rules (shared with the k6-thresholds plugin; see plugins/k6-rules).
use k6_rules as threshold;

pub use event::{Event, Observer, Progress, Silent, StackStep};
pub use run::{
    prepare, run, run_observed, start_plugins, RunError, RunOptions, RunOutcome, StartError,
};
pub use scenario::{Located, Scenario, ScenarioError, Segment, SegmentError, Vars};

/// Beyond one machine: a coordinator, its workers, and merging their windows offline.
pub mod distributed {
    pub use crate::metrics::window::{Cumulative, Delta, Scalars};
    pub use crate::metrics::TagFilter;
    pub use crate::run::{merge, work, CoordinateSpec, MergeError, WorkerEnd, WorkerSpec};
}
pub use serve::ListenSpec;

/// `harness demo`: both presets, ST-001 and peak, the verdict and reproduction tables.
pub mod demos {
    pub use crate::demo::{reproduction_table, run, verdict_table, DemoOptions, DemoOutcome};
}

/// What a run leaves behind and how it is shown.
pub mod reports {
    pub use crate::report::console::{describe, Console};
    pub use crate::report::regen::{load_summary, regenerate, Format, UnknownFormat};
    pub use crate::report::summary::RunStatus;
    pub use crate::report::{compare::render as compare, table::render as table, Summary};
}

/// `harness stack`: the local database, broker, fault relay and target app.
pub mod local_stack {
    /// Starts a tansu broker on its own (tests that make a broker vanish need their own).
    pub use crate::stack::broker::{start as start_broker, Broker};
    /// Starts (or finds) a MySQL-compatible server on its own.
    pub use crate::stack::mariadb::start as start_database;
    pub use crate::stack::mariadb::{answers, create_database, with_database};
    pub use crate::stack::process::free_port;
    pub use crate::stack::{
        default_rules, down, status_lines, up, StackError, StackState, UpOptions, DEFAULT_LIVE,
    };
}

/// `harness k8s render`: a scenario as Kubernetes manifests (Secret, ConfigMap, the
/// coordinator's Job and Service, the workers' Indexed Job), one YAML stream.
pub mod kube {
    pub use crate::k8s::{render, K8sError, RenderOptions, IMAGE_PLUGINS, MOUNT, REPORTS};
}

/// The fault relay, its Toxiproxy-compatible API and our client for any Toxiproxy API.
pub mod faults {
    pub use crate::fault::agent::{serve as serve_agent, AgentSpec, Log as AgentLog};
    pub use crate::fault::api::run as serve_api;
    pub use crate::fault::client::{ToxiproxyClient, ToxiproxyError};
    pub use crate::fault::ledger::{recover, unreverted, Open, Reading};
    pub use crate::fault::relay::Relay;
    pub use crate::fault::toxic::{Kind, Stream, Toxic, ToxicError};
}

/// The WebAssembly plugin host, for benchmarks and plugin tests.
pub mod plugins {
    pub use crate::plugin::fault::{FaultPlugin, TickState};
    pub use crate::plugin::summary::from_run as summary_of;
    pub use crate::plugin::threshold::ThresholdPlugin;
    pub use crate::plugin::{Limits, PluginError};
    pub use crate::verdict::defs as threshold_defs;
}

/// Recording requests and reading vital signs, for benchmarks and probe tests.
pub mod probes {
    pub use crate::metrics::{Outcome, Recorder};
    pub use crate::probe::kafka::{KafkaLagProbe, LagError};
}

/// Process exit codes (k6-compatible where k6 has one); see DESIGN.md §6. Only this module
/// and `main.rs` decide them.
pub mod exit {
    use crate::report::summary::RunStatus;

    pub const PASS: i32 = 0;
    pub const USAGE: i32 = 2;
    pub const RUNTIME: i32 = 3;
    pub const THRESHOLDS_FAILED: i32 = 99;
    pub const INTERRUPTED: i32 = 130;

    impl RunStatus {
        /// The code of a finished run, as `summary.json` records it (and `harness run` exits with).
        pub fn exit_code(self) -> i32 {
            match self {
                RunStatus::Passed => PASS,
                RunStatus::Failed | RunStatus::Aborted => THRESHOLDS_FAILED,
                RunStatus::Interrupted => INTERRUPTED,
                RunStatus::Error => RUNTIME,
            }
        }
    }
}
