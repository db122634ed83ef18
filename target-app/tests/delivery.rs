//! A delivery timeout is ambiguous: the broker may have stored the record the producer gave up
//! on. A 503 must never become a decision and every 202 must get exactly one.
//!
//! The broker's answers are slowed on the stack's fault relay (its `kafka` proxy), past the
//! producer's delivery timeout, so records are stored after the API answered. Its own test
//! binary: cargo runs test binaries one at a time, so no other test sees the slow broker.

use std::time::Duration;

use futures::stream::{self, StreamExt};
use target_app::test_support::{eventually, stack_env, TestApp};
use target_app::Preset;

const TOXIC: &str = "slow_broker_acks";

/// Removes the toxic however the test ends, so later test binaries get a normal broker.
struct SlowBroker {
    api: String,
}

impl SlowBroker {
    async fn start(api: String) -> SlowBroker {
        let r = reqwest::Client::new()
            .post(format!("{api}/proxies/kafka/toxics"))
            .json(&serde_json::json!({
                "name": TOXIC,
                "type": "latency",
                "stream": "downstream",
                "attributes": { "latency": 1200, "jitter": 600 }
            }))
            .send()
            .await
            .expect("fault relay API");
        assert!(r.status().is_success(), "add toxic: {}", r.status());
        SlowBroker { api }
    }
}

impl Drop for SlowBroker {
    fn drop(&mut self) {
        let url = format!("{}/proxies/kafka/toxics/{TOXIC}", self.api);
        // Drop cannot await; a thread with its own runtime can.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async { reqwest::Client::new().delete(url).send().await })
        })
        .join();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_late_delivery_is_a_503_that_is_never_decided() {
    let app = TestApp::start(Preset::Remediated, |c| c.producer_timeout_ms = 1000).await;
    let slow = SlowBroker::start(stack_env("HARNESS_PROXY_API")).await;
    let results: Vec<(u16, serde_json::Value)> = stream::iter(1..=300u64)
        .map(|u| {
            let app = &app;
            async move {
                app.post("/api/coupons/1/issue", &format!(r#"{{"user_id":{u}}}"#))
                    .await
            }
        })
        .buffer_unordered(50)
        .collect()
        .await;
    drop(slow);
    let accepted = results.iter().filter(|(s, _)| *s == 202).count();
    let refused = results.iter().filter(|(s, _)| *s == 503).count();
    assert_eq!(accepted + refused, 300, "only 202 or 503");
    assert!(refused > 0, "acks later than the delivery timeout are 503s");
    // Read the lag afresh from the broker (the app's lag metric may still hold the 0 it read
    // before the burst: its reads time out while acks are slow). Offsets are committed after
    // the decisions' transaction, so a lag of 0 means every stored record was decided or
    // skipped, including those stored after the producer gave up.
    let (kafka, group, topic) = (
        stack_env("HARNESS_KAFKA"),
        app.config.consumer_group.clone(),
        app.config.coupon_topic.clone(),
    );
    let partitions = app.config.topic_partitions;
    eventually(60, "consumer drained (lag read from the broker)", || {
        let (kafka, group, topic) = (kafka.clone(), group.clone(), topic.clone());
        async move {
            tokio::task::spawn_blocking(move || {
                let reader: rdkafka::consumer::BaseConsumer =
                    target_app::kafka::client_config(&kafka)
                        .set("group.id", &group)
                        .set("enable.auto.commit", "false")
                        .create()
                        .unwrap();
                target_app::kafka::group_lag(&reader, &topic, partitions, Duration::from_secs(5))
                    .is_ok_and(|lag| lag.values().all(|l| *l == 0))
            })
            .await
            .unwrap()
        }
    })
    .await;
    let count = |status: &'static str| {
        let app = &app;
        async move {
            app.count(&format!(
                "SELECT COUNT(*) FROM coupon_requests WHERE status {status}"
            ))
            .await
        }
    };
    assert_eq!(
        count("<> 'withdrawn'").await,
        accepted as i64,
        "{accepted} 202s"
    );
    assert_eq!(
        count("= 'withdrawn'").await,
        refused as i64,
        "{refused} 503s"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM user_coupons").await,
        count("= 'issued'").await,
        "coupons only for decided requests"
    );
    app.stop().await;
}
