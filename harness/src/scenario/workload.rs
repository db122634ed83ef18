//! k6's scenarios: `[scenarios.NAME]` tables, each an executor (named as k6 names them, with
//! k6's options) driving a weighted `requests` mix or a `flow` of steps, from `start_time`.
//! A file with the older top-level `[executor]` + `[[requests]]` is one scenario, `default`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{Dur, RequestSpec, Stage};

/// The executors, by k6's names; `vus` and `arrival-rate` are this tool's older names for
/// `ramping-vus` and `ramping-arrival-rate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExecutorKind {
    Vus,
    ArrivalRate,
    ConstantVus,
    RampingVus,
    ConstantArrivalRate,
    RampingArrivalRate,
    SharedIterations,
    PerVuIterations,
}

impl ExecutorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutorKind::Vus => "vus",
            ExecutorKind::ArrivalRate => "arrival-rate",
            ExecutorKind::ConstantVus => "constant-vus",
            ExecutorKind::RampingVus => "ramping-vus",
            ExecutorKind::ConstantArrivalRate => "constant-arrival-rate",
            ExecutorKind::RampingArrivalRate => "ramping-arrival-rate",
            ExecutorKind::SharedIterations => "shared-iterations",
            ExecutorKind::PerVuIterations => "per-vu-iterations",
        }
    }
}

/// One `[scenarios.NAME]` table (or the older `[executor]` table, where `type` names the
/// executor). A plain struct of optional fields, so type errors keep their exact location;
/// which fields an executor takes is checked in [`WorkloadSpec::executor`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    #[serde(alias = "type")]
    pub executor: ExecutorKind,
    pub stages: Option<Vec<Stage>>,
    #[serde(alias = "startVUs")]
    pub start_vus: Option<u32>,
    pub vus: Option<u32>,
    pub duration: Option<Dur>,
    pub think_time: Option<Dur>,
    pub pacing: Option<Dur>,
    #[serde(alias = "startRate")]
    pub start_rate: Option<u32>,
    pub rate: Option<u32>,
    #[serde(alias = "timeUnit")]
    pub time_unit: Option<Dur>,
    #[serde(alias = "preAllocatedVUs")]
    pub pre_allocated_vus: Option<u32>,
    #[serde(alias = "maxVUs")]
    pub max_vus: Option<u32>,
    pub max_in_flight: Option<u32>,
    pub iterations: Option<u64>,
    #[serde(alias = "maxDuration")]
    pub max_duration: Option<Dur>,
    #[serde(alias = "gracefulStop")]
    pub graceful_stop: Option<Dur>,
    #[serde(alias = "startTime")]
    pub start_time: Option<Dur>,
    /// Tags every sample of this scenario carries (besides `scenario`).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// A weighted mix of independent requests…
    pub requests: Option<Vec<RequestSpec>>,
    /// …or an ordered flow of steps, one iteration each pass.
    pub flow: Option<Vec<RequestSpec>>,
}

/// How load is offered.
#[derive(Debug, Clone, PartialEq)]
pub enum Executor {
    /// Closed model (goose): VUs each loop iteration → think time → iteration; with `pacing`, a
    /// VU starts an iteration every `pacing` (start to start) and at once when one took
    /// longer (LoadRunner/JMeter pacing), so N VUs offer N/pacing iterations/s until the
    /// server slows.
    Vus {
        start_vus: u32,
        stages: Vec<Stage>,
        think_time: Dur,
        pacing: Dur,
    },
    /// Open model: iterations start on schedule whatever the responses; `max_in_flight` (k6's
    /// `maxVUs`) bounds concurrent iterations, and an arrival beyond it is dropped and counted.
    /// Rates are per `time_unit`.
    ArrivalRate {
        start_rate: u32,
        stages: Vec<Stage>,
        max_in_flight: u32,
        time_unit: Dur,
    },
    /// `vus` VUs share `iterations` iterations: exactly that many run, fast VUs take more.
    SharedIterations {
        vus: u32,
        iterations: u64,
        max_duration: Dur,
    },
    /// Each of `vus` VUs runs `iterations` iterations.
    PerVuIterations {
        vus: u32,
        iterations: u64,
        max_duration: Dur,
    },
}

/// A scenario table whose fields do not fit its executor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecutorError {
    #[error("start_rate and max_in_flight belong to type = \"arrival-rate\"")]
    ArrivalRateFields,
    #[error("use think_time or pacing, not both")]
    ThinkTimeAndPacing,
    #[error("start_vus, think_time and pacing belong to type = \"vus\"")]
    VusFields,
    /// `field` is not an option of `executor`.
    #[error("`{field}` is not an option of the {executor} executor (its options: {options})")]
    NotAnOption {
        field: &'static str,
        executor: &'static str,
        options: &'static str,
    },
    #[error("the {executor} executor needs `{field}`")]
    Missing {
        field: &'static str,
        executor: &'static str,
    },
    #[error("`{0}` must be at least 1")]
    Zero(&'static str),
}

fn default_in_flight() -> u32 {
    1_000
}

/// k6's default `gracefulStop`.
pub const GRACEFUL_STOP: Duration = Duration::from_secs(30);
/// k6's default `maxDuration` of the iteration executors.
const MAX_DURATION: Duration = Duration::from_secs(600);

impl WorkloadSpec {
    /// The fields set, by their names in the file.
    fn given(&self) -> Vec<&'static str> {
        let set = [
            ("stages", self.stages.is_some()),
            ("start_vus", self.start_vus.is_some()),
            ("vus", self.vus.is_some()),
            ("duration", self.duration.is_some()),
            ("think_time", self.think_time.is_some()),
            ("pacing", self.pacing.is_some()),
            ("start_rate", self.start_rate.is_some()),
            ("rate", self.rate.is_some()),
            ("time_unit", self.time_unit.is_some()),
            ("pre_allocated_vus", self.pre_allocated_vus.is_some()),
            ("max_vus", self.max_vus.is_some()),
            ("max_in_flight", self.max_in_flight.is_some()),
            ("iterations", self.iterations.is_some()),
            ("max_duration", self.max_duration.is_some()),
        ];
        set.into_iter()
            .filter(|(_, s)| *s)
            .map(|(n, _)| n)
            .collect()
    }

    /// Every field set is an option of the executor (the older names keep their older
    /// messages), and think time and pacing are not both set.
    fn check_fields(&self) -> Result<(), ExecutorError> {
        use ExecutorKind as K;
        let kind = self.executor;
        let options: &'static str = match kind {
            K::Vus => "start_vus, stages, think_time, pacing",
            K::ArrivalRate => "start_rate, stages, max_in_flight, time_unit",
            K::ConstantVus => "vus, duration, think_time, pacing",
            K::RampingVus => "startVUs, stages, think_time, pacing",
            K::ConstantArrivalRate => "rate, timeUnit, duration, preAllocatedVUs, maxVUs",
            K::RampingArrivalRate => "startRate, timeUnit, stages, preAllocatedVUs, maxVUs",
            K::SharedIterations | K::PerVuIterations => "vus, iterations, maxDuration",
        };
        let allowed: &[&str] = match kind {
            K::Vus | K::RampingVus => &["start_vus", "stages", "think_time", "pacing"],
            K::ArrivalRate => &["start_rate", "stages", "max_in_flight", "time_unit"],
            K::ConstantVus => &["vus", "duration", "think_time", "pacing"],
            K::ConstantArrivalRate => &[
                "rate",
                "time_unit",
                "duration",
                "pre_allocated_vus",
                "max_vus",
                "max_in_flight",
            ],
            K::RampingArrivalRate => &[
                "start_rate",
                "time_unit",
                "stages",
                "pre_allocated_vus",
                "max_vus",
                "max_in_flight",
            ],
            K::SharedIterations | K::PerVuIterations => &["vus", "iterations", "max_duration"],
        };
        if let Some(field) = self.given().into_iter().find(|f| !allowed.contains(f)) {
            // The older names keep their older messages.
            return Err(match (kind, field) {
                (K::Vus, "start_rate" | "max_in_flight") => ExecutorError::ArrivalRateFields,
                (K::ArrivalRate, "start_vus" | "think_time" | "pacing") => ExecutorError::VusFields,
                _ => ExecutorError::NotAnOption {
                    field,
                    executor: kind.as_str(),
                    options,
                },
            });
        }
        if self.think_time.is_some() && self.pacing.is_some() {
            return Err(ExecutorError::ThinkTimeAndPacing);
        }
        Ok(())
    }

    /// The executor this table asks for, with k6's defaults where a field is left out.
    pub fn executor(&self) -> Result<Executor, ExecutorError> {
        use ExecutorKind as K;
        self.check_fields()?;
        let kind = self.executor;
        let missing = |field| ExecutorError::Missing {
            field,
            executor: kind.as_str(),
        };
        let stages = || self.stages.clone().ok_or(missing("stages"));
        let duration = || self.duration.ok_or(missing("duration"));
        let bound = self
            .max_in_flight
            .or(self.max_vus)
            .or(self.pre_allocated_vus)
            .unwrap_or_else(default_in_flight);
        let time_unit = self.time_unit.unwrap_or(Dur(Duration::from_secs(1)));
        if time_unit.0.is_zero() {
            return Err(ExecutorError::Zero("time_unit"));
        }
        let vus_only = |start_vus, stages| Executor::Vus {
            start_vus,
            stages,
            think_time: self.think_time.unwrap_or_default(),
            pacing: self.pacing.unwrap_or_default(),
        };
        Ok(match kind {
            K::Vus => vus_only(self.start_vus.unwrap_or(0), stages()?),
            K::RampingVus => vus_only(self.start_vus.unwrap_or(1), stages()?),
            K::ConstantVus => {
                let vus = self.vus.unwrap_or(1);
                let stage = Stage {
                    duration: duration()?,
                    target: vus,
                };
                vus_only(vus, vec![stage])
            }
            K::ArrivalRate | K::RampingArrivalRate => Executor::ArrivalRate {
                start_rate: self.start_rate.unwrap_or(0),
                stages: stages()?,
                max_in_flight: bound,
                time_unit,
            },
            K::ConstantArrivalRate => {
                let rate = self.rate.ok_or(missing("rate"))?;
                Executor::ArrivalRate {
                    start_rate: rate,
                    stages: vec![Stage {
                        duration: duration()?,
                        target: rate,
                    }],
                    max_in_flight: bound,
                    time_unit,
                }
            }
            K::SharedIterations | K::PerVuIterations => {
                let vus = self.vus.unwrap_or(1);
                let iterations = self.iterations.unwrap_or(1);
                if vus == 0 {
                    return Err(ExecutorError::Zero("vus"));
                }
                if iterations == 0 {
                    return Err(ExecutorError::Zero("iterations"));
                }
                let max_duration = self.max_duration.unwrap_or(Dur(MAX_DURATION));
                match kind {
                    K::SharedIterations => Executor::SharedIterations {
                        vus,
                        iterations,
                        max_duration,
                    },
                    _ => Executor::PerVuIterations {
                        vus,
                        iterations,
                        max_duration,
                    },
                }
            }
        })
    }
}

impl Executor {
    /// The stages (none for the iteration executors).
    pub fn stages(&self) -> &[Stage] {
        match self {
            Executor::Vus { stages, .. } | Executor::ArrivalRate { stages, .. } => stages,
            _ => &[],
        }
    }

    /// How long the executor runs at most (its stages, or `maxDuration`).
    pub fn total_duration(&self) -> Duration {
        match self {
            Executor::SharedIterations { max_duration, .. }
            | Executor::PerVuIterations { max_duration, .. } => max_duration.0,
            _ => self.stages().iter().map(|s| s.duration.0).sum(),
        }
    }

    /// Multiplies its durations by `factor` (`--time-scale`).
    pub fn scale_time(&mut self, factor: f64) {
        match self {
            Executor::Vus { stages, .. } | Executor::ArrivalRate { stages, .. } => {
                for s in stages {
                    s.duration = s.duration.scaled(factor);
                }
            }
            Executor::SharedIterations { max_duration, .. }
            | Executor::PerVuIterations { max_duration, .. } => {
                *max_duration = max_duration.scaled(factor)
            }
        }
    }

    /// Open model or closed (the gauge it publishes: `target_rate` or `vus`).
    pub fn is_arrival_rate(&self) -> bool {
        matches!(self, Executor::ArrivalRate { .. })
    }

    /// The most VUs (closed model) or arrivals per second (open model) any stage reaches.
    pub fn peak(&self) -> f64 {
        match self {
            Executor::Vus {
                start_vus, stages, ..
            } => stages
                .iter()
                .map(|s| f64::from(s.target))
                .fold(f64::from(*start_vus), f64::max),
            Executor::ArrivalRate {
                start_rate,
                stages,
                time_unit,
                ..
            } => {
                stages
                    .iter()
                    .map(|s| f64::from(s.target))
                    .fold(f64::from(*start_rate), f64::max)
                    / time_unit.0.as_secs_f64()
            }
            Executor::SharedIterations { vus, .. } | Executor::PerVuIterations { vus, .. } => {
                f64::from(*vus)
            }
        }
    }
}

/// One scenario of the file, ready to run.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The `[scenarios.NAME]` key (`default` for the older top-level form).
    pub name: String,
    /// The executor's name as written (`vus`, `constant-arrival-rate`, …).
    pub kind: ExecutorKind,
    pub executor: Executor,
    /// Offset from the run's start (k6's `startTime`).
    pub start_time: Dur,
    /// How long iterations still running at the end may take before they are cut off.
    pub graceful_stop: Dur,
    pub tags: BTreeMap<String, String>,
    /// The weighted mix (empty for a flow).
    pub requests: Vec<RequestSpec>,
    /// The steps of one iteration (empty for a mix).
    pub flow: Vec<RequestSpec>,
    /// Written as the older top-level `[executor]` + `[[requests]]`.
    pub legacy: bool,
}

impl Workload {
    /// When its executor ends, counted from the run's start.
    pub fn end(&self) -> Duration {
        self.start_time.0 + self.executor.total_duration()
    }

    /// Its requests: the mix's, or the flow's steps.
    pub fn steps(&self) -> &[RequestSpec] {
        if self.flow.is_empty() {
            &self.requests
        } else {
            &self.flow
        }
    }

    /// The field path of an executor option, for errors.
    pub fn exec_field(&self, option: &str) -> String {
        match self.legacy {
            true => format!("executor.{option}"),
            false => format!("scenarios.{}.{option}", self.name),
        }
    }

    /// The field path of a field of its requests or steps, for errors.
    pub fn step_field(&self, field: &str) -> String {
        let list = if self.flow.is_empty() {
            "requests"
        } else {
            "flow"
        };
        match self.legacy {
            true => format!("{list}.{field}"),
            false => format!("scenarios.{}.{list}.{field}", self.name),
        }
    }
}
