//! Vital signs read while the load runs: a Prometheus scrape of the target, the consumer
//! group's lag over the Kafka protocol, and SQL checks after the run. A probe that cannot
//! reach its source records the failure for the report and keeps trying; it never stops the
//! run and never blocks it (every call has a timeout).

pub mod kafka;
pub mod prometheus;
pub mod sql;

use serde::{Deserialize, Serialize};

/// How a probe fared over the run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ProbeHealth {
    pub name: String,
    pub samples: u64,
    pub failures: u64,
    pub last_error: Option<String>,
}

impl ProbeHealth {
    pub fn new(name: &str) -> Self {
        ProbeHealth {
            name: name.to_owned(),
            ..Default::default()
        }
    }
    pub fn ok(&mut self) {
        self.samples += 1;
    }
    pub fn failed(&mut self, e: String) {
        self.failures += 1;
        self.last_error = Some(e);
    }
}
