//! Publishes the coupon group's consumer lag in `/metrics` once a second, read from the broker
//! the way an operator would (committed offsets vs. high watermarks), not from the consumer's
//! own position, so a paused or dead consumer shows up as growing lag.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::BaseConsumer;
use tokio::sync::watch;

use crate::AppState;

pub fn spawn(
    state: Arc<AppState>,
    partitions: i32,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let reader: Option<BaseConsumer> = crate::kafka::client_config(&state.config.kafka)
            .set("group.id", &state.config.consumer_group)
            .set("enable.auto.commit", "false")
            .create()
            .map_err(|e| tracing::error!(error = %e, "lag monitor cannot create its client"))
            .ok();
        let Some(reader) = reader else { return };
        let reader = Arc::new(reader);
        loop {
            let (r, s) = (reader.clone(), state.clone());
            let read = tokio::task::spawn_blocking(move || {
                crate::kafka::group_lag(
                    &r,
                    &s.config.coupon_topic,
                    partitions,
                    Duration::from_secs(2),
                )
            })
            .await;
            match read {
                Ok(Ok(lag)) => state.metrics.set_lag(lag),
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot read consumer lag"),
                Err(e) => tracing::error!(error = %e, "lag task failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => break,
            }
        }
    })
}
