//! What the library tells its caller while it works. `run/`, `demo/`, `stack/` and `fault/`
//! produce these values and print nothing; `report::console` words and prints every one (the
//! only printer besides `main.rs`), and a test or an embedding program can observe them instead.

use std::path::Path;

use crate::fault::journal::FaultEvent;
use crate::metrics::Window;
use crate::report::Summary;
use crate::scenario::SeriesLabel;

/// One second of a run, for the live progress line.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// Seconds since the load started.
    pub elapsed_s: f64,
    /// Planned length of the stages.
    pub planned_s: f64,
    /// (1-based stage, number of stages); past the end (n + 1, n): the run is draining.
    pub stage: (usize, usize),
    /// The executor's gauge ("vus" or "target_rate").
    pub gauge: &'a str,
    /// The last complete second, if any.
    pub window: Option<&'a Window>,
    /// Requests and failures so far.
    pub requests: u64,
    pub failed: u64,
    /// The probe series the scenario shows on the progress line.
    pub series: &'a [SeriesLabel],
    /// `[target.tls] insecure = true`: certificates are not verified (the line says so).
    pub tls_insecure: bool,
}

/// A step of `harness stack up` / `down`.
#[derive(Debug, Clone, Copy)]
pub enum StackStep<'a> {
    AlreadyUp {
        dir: &'a Path,
    },
    Restarting,
    UpFailed,
    /// A component is being started: "database", "fault relay", "broker".
    Starting {
        component: &'static str,
    },
    StartingApp {
        preset: &'a str,
    },
    /// The configured database does not answer; a private one starts.
    PrivateDatabase {
        url: &'a str,
    },
    InstallingBroker {
        version: &'a str,
    },
    /// `harness stack up` finished; one line per component.
    Up {
        lines: &'a [String],
    },
    Down,
}

#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    Progress(Progress<'a>),
    /// A fault was applied, rolled back, or could not be rolled back.
    Fault(&'a FaultEvent),
    /// An abortOnFail threshold crossed: the load stops, faults roll back.
    Aborting {
        reason: &'a str,
    },
    /// An error while the load ran (plugin, fault actuator): the load stops, faults roll back.
    Stopping {
        error: &'a str,
    },
    /// The run could not start its load (plugin, target); the report is still written.
    NotStarted {
        error: &'a str,
    },
    /// `harness coordinate`: waiting at the start barrier for `workers` workers to dial in.
    AwaitingWorkers {
        addr: &'a str,
        workers: u64,
    },
    /// `--listen`: the live endpoint answers at `url`; `token` when requests need one (printed
    /// only when the harness generated it).
    Listening {
        url: &'a str,
        token: Option<&'a str>,
    },
    /// A control request was carried out (`ok`) or refused, at `at_s` on the run's clock.
    Control {
        at_s: f64,
        action: &'a str,
        result: &'a str,
        ok: bool,
    },
    /// Ctrl-C or SIGTERM reached the run.
    Interrupted,
    /// A second one: requests still in flight are left behind.
    InterruptedAgain,
    Stack(StackStep<'a>),
    /// The demo starts a preset (a fresh stack) …
    DemoPreset {
        preset: &'a str,
    },
    /// … and a scenario on it …
    DemoScenario {
        preset: &'a str,
        scenario: &'a Path,
    },
    /// … which finished with this summary, written to `dir`.
    RunFinished {
        summary: &'a Summary,
        dir: &'a Path,
    },
}

/// Receives events as they happen.
pub trait Observer: Send {
    fn event(&mut self, event: Event<'_>);
}

/// Drops every event (tests and embedding programs that only want the returned values).
pub struct Silent;

impl Observer for Silent {
    fn event(&mut self, _: Event<'_>) {}
}
