//! Kafka plumbing shared by the producer, the consumer and the lag monitor: client settings,
//! creating the coupon topic, and reading a group's lag (high watermark − committed offset).

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

#[derive(Debug, thiserror::Error)]
pub enum KafkaSetupError {
    #[error("Kafka client error ({bootstrap}): {source}")]
    Client {
        bootstrap: String,
        source: KafkaError,
    },
    #[error("cannot create topic {topic} on {bootstrap}: {code:?}")]
    CreateTopic {
        topic: String,
        bootstrap: String,
        code: RDKafkaErrorCode,
    },
    #[error("topic {topic} not visible in metadata from {bootstrap}")]
    NoTopic { topic: String, bootstrap: String },
}

pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        // Fail fast and loudly when the broker is gone instead of retrying silently forever.
        .set("socket.timeout.ms", "10000")
        .set("log_level", "4");
    c
}

/// Creates the topic with `partitions` if it is missing and returns the partition count the
/// broker reports (an existing topic keeps its own count; the caller decides what that means).
pub async fn ensure_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
) -> Result<i32, KafkaSetupError> {
    let err = |source| KafkaSetupError::Client {
        bootstrap: bootstrap.to_owned(),
        source,
    };
    let admin: AdminClient<DefaultClientContext> =
        client_config(bootstrap).create().map_err(err)?;
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin.create_topics(&[new], &opts).await.map_err(err)?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => {
                return Err(KafkaSetupError::CreateTopic {
                    topic: topic.to_owned(),
                    bootstrap: bootstrap.to_owned(),
                    code,
                })
            }
        }
    }
    let (bootstrap, topic) = (bootstrap.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || partition_count(&bootstrap, &topic))
        .await
        .expect("metadata task panicked")
}

fn partition_count(bootstrap: &str, topic: &str) -> Result<i32, KafkaSetupError> {
    let err = |source| KafkaSetupError::Client {
        bootstrap: bootstrap.to_owned(),
        source,
    };
    let consumer: BaseConsumer = client_config(bootstrap).create().map_err(err)?;
    // A just-created topic can take a moment to show up in metadata.
    for _ in 0..50 {
        let md = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .map_err(err)?;
        if let Some(t) = md.topics().iter().find(|t| t.name() == topic) {
            if !t.partitions().is_empty() {
                return Ok(t.partitions().len() as i32);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(KafkaSetupError::NoTopic {
        topic: topic.to_owned(),
        bootstrap: bootstrap.to_owned(),
    })
}

/// Lag per partition of `group` on `topic`. A partition the group never committed counts from
/// the low watermark: everything still stored there is unconsumed. Blocking; call off the runtime.
pub fn group_lag(
    consumer: &BaseConsumer,
    topic: &str,
    partitions: i32,
    timeout: Duration,
) -> Result<BTreeMap<i32, i64>, KafkaError> {
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let committed = consumer.committed_offsets(tpl, timeout)?;
    let mut lag = BTreeMap::new();
    for p in 0..partitions {
        let (low, high) = consumer.fetch_watermarks(topic, p, timeout)?;
        let done = match committed.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o,
            _ => low,
        };
        lag.insert(p, (high - done).max(0));
    }
    Ok(lag)
}
