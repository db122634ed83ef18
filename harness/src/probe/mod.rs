//! Vital signs read while the load runs: a Prometheus scrape of the target, the consumer
//! group's lag over the Kafka protocol, and SQL checks after the run. A probe that cannot
//! reach its source records the failure for the report and keeps trying; it never stops the
//! run and never blocks it (every call has a timeout).

pub mod kafka;
pub mod prometheus;
pub mod promql;
pub mod selector;
pub mod sql;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How a probe fared over the run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ProbeHealth {
    pub name: String,
    /// Samples taken whole (every series present).
    pub samples: u64,
    /// Samples that failed or missed a series.
    pub failures: u64,
    pub last_error: Option<String>,
    /// Per series, how many samples had a value for it (of `samples + failures`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub present: BTreeMap<String, u64>,
    /// The share of samples a series needs for a threshold or alert on it to be judged.
    #[serde(default = "default_coverage")]
    pub min_coverage: f64,
}

fn default_coverage() -> f64 {
    DEFAULT_COVERAGE
}

/// A gate must not judge a series most of whose samples are missing.
pub const DEFAULT_COVERAGE: f64 = 0.9;

impl ProbeHealth {
    pub fn new(name: &str, series: &[String], min_coverage: f64) -> Self {
        ProbeHealth {
            name: name.to_owned(),
            present: series.iter().map(|s| (s.clone(), 0)).collect(),
            min_coverage,
            ..Default::default()
        }
    }

    /// `series` had a value in this sample.
    pub fn saw(&mut self, series: &str) {
        *self.present.entry(series.to_owned()).or_default() += 1;
    }

    /// Why `series` has too little data to judge: "insufficient data (n of m samples, last
    /// error …)", or None when it has enough (or is not this probe's).
    pub fn shortfall(&self, series: &str) -> Option<String> {
        let n = *self.present.get(series)?;
        let m = self.samples + self.failures;
        if m > 0 && n as f64 >= self.min_coverage * m as f64 {
            return None;
        }
        let last = self
            .last_error
            .as_deref()
            .map(|e| format!(", last error: {e}"))
            .unwrap_or_default();
        Some(format!("insufficient data ({n} of {m} samples{last})"))
    }
    pub fn ok(&mut self) {
        self.samples += 1;
    }
    pub fn failed(&mut self, e: String) {
        self.failures += 1;
        self.last_error = Some(e);
    }
}
