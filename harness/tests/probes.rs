//! Probes against real peers that fail mid-run: a gate must not pass on samples it did not get.

mod common;

use std::time::Duration;

use common::*;
use harness::{local_stack, Silent};

/// A Kafka-protocol broker (tansu, our own instance) that vanishes mid-run: the lag probe's
/// readings stop, and the gate on `kafka_consumer_lag` fails with "insufficient data" instead
/// of passing on the readings taken before — a gap is not "lag 0".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_vanishes_mid_run_fails_the_lag_gate_with_insufficient_data() {
    let server = TestServer::start().await;
    let dir = temp_dir("lag-gap");
    let port = local_stack::free_port().unwrap();
    let broker = local_stack::start_broker(&dir, &dir, port, port, &mut Silent)
        .await
        .expect("tansu starts (make test installs it)");
    let bootstrap = format!("127.0.0.1:{port}");
    target_app::kafka::ensure_topic(&bootstrap, "gap-topic", 1)
        .await
        .expect("topic");
    let gate = r#"kafka_consumer_lag = ["max<5000"]"#;
    let text = format!(
        "{}\n[probes.kafka]\nbootstrap = \"{bootstrap}\"\ngroup = \"gap-group\"\ntopic = \"gap-topic\"\n",
        basic(&server.url, 20, 10, gate)
    );
    let run = run_in_temp("lag-gap-run", &text);
    tokio::pin!(run);
    tokio::select! {
        r = &mut run => panic!("the run ended before the broker went away: {:?}", r.2),
        _ = tokio::time::sleep(Duration::from_secs(3)) => {}
    }
    let stopped = tokio::task::spawn_blocking(move || broker.stop());
    let (_d, out, o) = run.await;
    stopped.await.unwrap().expect("broker stopped");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(99), "{err}");
    let sum = summary(&out);
    let v = &sum["thresholds"][0];
    assert_eq!(v["metric"], "kafka_consumer_lag");
    assert_eq!(v["passed"], false, "{v}");
    let why = v["reason"].as_str().unwrap();
    assert!(why.starts_with("insufficient data ("), "{why}");
    let probe = &sum["probes"][0];
    assert!(probe["failures"].as_u64().unwrap() > 0, "{probe}");
}
