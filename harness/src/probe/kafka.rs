//! Consumer-group lag over the Kafka protocol, as `kafka-consumer-groups --describe` shows it:
//! per partition, the group's committed offset against the partition's high watermark. Works
//! against any Kafka-compatible cluster; needs no access to the consumers themselves.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::ProbeHealth;
use crate::metrics::Recorder;

const CALL_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PartitionLag {
    pub partition: i32,
    /// None when the group never committed on this partition (lag counts from the low watermark).
    pub committed: Option<i64>,
    pub high_watermark: i64,
    pub lag: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LagSummary {
    pub peak: i64,
    pub peak_at_s: f64,
    pub last: Option<i64>,
    /// First time (s since start) after the peak that the lag read 0.
    pub drained_at_s: Option<f64>,
    /// Records drained per second from the peak to 0 (peak / (drained − peak time)).
    pub drain_rate_per_s: Option<f64>,
    /// The last reading per partition (committed offset, high watermark, lag).
    pub partitions: Vec<PartitionLag>,
}

/// The series the lag probe records.
pub const SERIES: &str = "kafka_consumer_lag";

pub struct KafkaLagProbe {
    consumer: Arc<BaseConsumer>,
    pub topic: String,
    pub interval: Duration,
    /// Share of readings a gate on `kafka_consumer_lag` needs (see `ProbeHealth::shortfall`).
    pub min_coverage: f64,
}

#[derive(Debug, thiserror::Error)]
#[error("Kafka lag probe ({bootstrap}): {source}")]
pub struct LagProbeError {
    bootstrap: String,
    source: rdkafka::error::KafkaError,
}

/// Why one lag reading failed.
#[derive(Debug, thiserror::Error)]
pub enum LagError {
    /// The blocking read panicked or was cancelled.
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
    /// Metadata, committed offsets or watermarks could not be fetched.
    #[error(transparent)]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("topic {0} not found")]
    NoTopic(String),
    #[error("topic {0} has no partitions (does it exist?)")]
    NoPartitions(String),
}

impl KafkaLagProbe {
    pub fn new(
        bootstrap: &str,
        group: &str,
        topic: &str,
        interval: Duration,
    ) -> Result<KafkaLagProbe, LagProbeError> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("socket.timeout.ms", "3000")
            .set("log_level", "3")
            .create()
            .map_err(|source| LagProbeError {
                bootstrap: bootstrap.to_owned(),
                source,
            })?;
        Ok(KafkaLagProbe {
            consumer: Arc::new(consumer),
            topic: topic.to_owned(),
            interval,
            min_coverage: super::DEFAULT_COVERAGE,
        })
    }

    /// One reading, off the async runtime (librdkafka calls block).
    pub async fn read(&self) -> Result<Vec<PartitionLag>, LagError> {
        let (c, topic) = (self.consumer.clone(), self.topic.clone());
        tokio::task::spawn_blocking(move || read_blocking(&c, &topic)).await?
    }

    /// Samples until `stop`, then (when `drain` is set) keeps sampling until the lag is 0 or
    /// `drain` has passed; records `kafka_consumer_lag` and returns peak and drain figures.
    pub async fn run(
        self,
        recorder: Arc<Recorder>,
        mut stop: watch::Receiver<bool>,
        drain: Duration,
    ) -> (ProbeHealth, LagSummary) {
        let name = format!("kafka lag {}", self.topic);
        let mut health = ProbeHealth::new(&name, &[SERIES.to_owned()], self.min_coverage);
        let mut summary = LagSummary::default();
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut drain_deadline: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                r = stop.changed(), if drain_deadline.is_none() => {
                    let _ = r;
                    if drain.is_zero() { return (health, summary); }
                    drain_deadline = Some(tokio::time::Instant::now() + drain);
                    continue;
                }
            }
            match self.read().await {
                Ok(parts) => {
                    health.ok();
                    health.saw(SERIES);
                    let total: i64 = parts.iter().map(|p| p.lag).sum();
                    let t = recorder.elapsed_secs();
                    recorder.set_gauge(SERIES, total as f64, true);
                    if total > summary.peak {
                        summary.peak = total;
                        summary.peak_at_s = t;
                        summary.drained_at_s = None;
                    }
                    if total == 0 && summary.peak > 0 && summary.drained_at_s.is_none() {
                        summary.drained_at_s = Some(t);
                        summary.drain_rate_per_s =
                            Some(summary.peak as f64 / (t - summary.peak_at_s).max(1e-3));
                    }
                    summary.last = Some(total);
                    summary.partitions = parts;
                    if drain_deadline.is_some() && total == 0 {
                        return (health, summary);
                    }
                }
                Err(e) => health.failed(e.to_string()),
            }
            if drain_deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                return (health, summary);
            }
        }
    }
}

fn read_blocking(c: &BaseConsumer, topic: &str) -> Result<Vec<PartitionLag>, LagError> {
    let md = c.fetch_metadata(Some(topic), CALL_TIMEOUT)?;
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| LagError::NoTopic(topic.to_owned()))?;
    if t.partitions().is_empty() {
        return Err(LagError::NoPartitions(topic.to_owned()));
    }
    let mut tpl = TopicPartitionList::new();
    for p in t.partitions() {
        tpl.add_partition(topic, p.id());
    }
    let committed = c.committed_offsets(tpl, CALL_TIMEOUT)?;
    let mut out = Vec::new();
    let mut by_id: BTreeMap<i32, Option<i64>> = BTreeMap::new();
    for p in t.partitions() {
        let off = match committed.find_partition(topic, p.id()).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => Some(o),
            _ => None,
        };
        by_id.insert(p.id(), off);
    }
    for (id, off) in by_id {
        let (low, high) = c.fetch_watermarks(topic, id, CALL_TIMEOUT)?;
        let lag = (high - off.unwrap_or(low)).max(0);
        out.push(PartitionLag {
            partition: id,
            committed: off,
            high_watermark: high,
            lag,
        });
    }
    Ok(out)
}
