//! Coupon path against real MariaDB and the tansu broker: first come first served, nothing
//! lost or doubled, and lag that reads exactly what was left unconsumed.

use std::collections::HashSet;

use futures::stream::{self, StreamExt};
use target_app::test_support::{eventually, TestApp};
use target_app::{ConsumerMode, Preset};

/// Sends one request per user id in `users`, 50 at a time; returns the accepted request ids.
async fn burst(app: &TestApp, users: &[u64]) -> Vec<String> {
    let results: Vec<(u16, serde_json::Value)> = stream::iter(users.iter().copied())
        .map(|u| async move {
            app.post("/api/coupons/1/issue", &format!(r#"{{"user_id":{u}}}"#))
                .await
        })
        .buffer_unordered(50)
        .collect()
        .await;
    let bad: Vec<_> = results.iter().filter(|(s, _)| *s != 202).collect();
    assert!(
        bad.is_empty(),
        "every request must be accepted: {:?}",
        &bad[..bad.len().min(5)]
    );
    results
        .into_iter()
        .map(|(_, j)| j["request_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn first_come_first_served(mode: ConsumerMode) {
    let app = TestApp::start(Preset::Incident, |c| {
        c.coupon_quantity = 1_000;
        c.consumer_mode = mode;
        c.batch_size = 50;
    })
    .await;
    // 2,000 requests from 1,500 distinct users: users 1..=500 ask twice.
    let users: Vec<u64> = (1..=1_500).chain(1..=500).collect();
    let accepted = burst(&app, &users).await;
    assert_eq!(accepted.len(), 2_000);
    assert_eq!(
        accepted.iter().collect::<HashSet<_>>().len(),
        2_000,
        "request ids are unique"
    );

    eventually(120, "every accepted request decided", || async {
        app.count("SELECT COUNT(*) FROM coupon_requests").await == 2_000
    })
    .await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM user_coupons WHERE coupon_id = 1")
            .await,
        1_000
    );
    assert_eq!(
        app.count("SELECT issued FROM coupons WHERE id = 1").await,
        1_000
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM (SELECT user_id FROM user_coupons GROUP BY user_id, coupon_id HAVING COUNT(*) > 1) d").await,
        0,
        "a user got the coupon twice"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM coupon_requests WHERE status = 'issued'")
            .await,
        1_000
    );
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM coupon_requests WHERE status = 'rejected' AND reason IS NOT NULL"
        )
        .await,
        1_000
    );
    // Every request id the API handed out is accounted for, and no other.
    let decided: HashSet<String> = sqlx::query_scalar("SELECT request_id FROM coupon_requests")
        .fetch_all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(decided, accepted.into_iter().collect::<HashSet<_>>());
    // Issued rows and request records agree user by user.
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM coupon_requests r LEFT JOIN user_coupons u ON u.user_id = r.user_id AND u.coupon_id = r.coupon_id \
             WHERE r.status = 'issued' AND u.id IS NULL"
        )
        .await,
        0
    );
    assert_eq!(
        app.metric("coupon_consumer_records_total{outcome=\"issued\"}")
            .await,
        1_000.0
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn single_inserts_issue_exactly_the_quantity() {
    first_come_first_served(ConsumerMode::Single).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batch_inserts_issue_exactly_the_quantity() {
    first_come_first_served(ConsumerMode::Batch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paused_consumer_lag_is_exactly_what_was_produced() {
    let app = TestApp::start(Preset::Incident, |_| {}).await;
    let (s, _) = app
        .post("/admin/faults", r#"{"consumer_paused":true}"#)
        .await;
    assert_eq!(s, 200);
    assert_eq!(app.metric("fault_consumer_paused").await, 1.0);
    let n = 137u64;
    burst(&app, &(1..=n).collect::<Vec<_>>()).await;
    eventually(20, "lag reads N", || async {
        app.metric("coupon_consumer_lag").await == n as f64
    })
    .await;
    // It stays N while paused: nothing is decided behind our back.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(app.metric("coupon_consumer_lag").await, n as f64);
    assert_eq!(app.count("SELECT COUNT(*) FROM coupon_requests").await, 0);

    let (s, body) = app
        .post("/admin/faults", r#"{"consumer_paused":false}"#)
        .await;
    assert_eq!((s, body["consumer_paused"].as_bool()), (200, Some(false)));
    eventually(60, "lag drains to 0", || async {
        app.metric("coupon_consumer_lag").await == 0.0
    })
    .await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM coupon_requests").await,
        n as i64
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_coupon_input_is_a_json_4xx_and_writes_nothing() {
    let app = TestApp::start(Preset::Incident, |_| {}).await;
    let cases = [
        ("/api/coupons/1/issue", "{not json", 400),
        ("/api/coupons/1/issue", r#"{"user_id":"x"}"#, 400),
        ("/api/coupons/1/issue", r#"{"user_id":-4}"#, 400),
        ("/api/coupons/1/issue", r#"{}"#, 400),
        ("/api/coupons/999/issue", r#"{"user_id":1}"#, 404),
        ("/api/coupons/abc/issue", r#"{"user_id":1}"#, 400),
        ("/admin/faults", r#"{"order_hold_ms":"slow"}"#, 400),
        ("/admin/faults", r#"{"unknown_fault":1}"#, 400),
        ("/admin/faults", r#"{"order_hold_ms":99999999}"#, 400),
    ];
    for (path, body, want) in cases {
        let (status, json) = app.post(path, body).await;
        assert_eq!(status, want, "{path} {body} → {json}");
        assert!(
            json["error"].is_string(),
            "{path} {body}: not a JSON error: {json}"
        );
    }
    assert_eq!(app.metric("kafka_producer_sent_total").await, 0.0);
    assert_eq!(app.metric("fault_order_hold_ms").await, 0.0);
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM coupon_requests").await, 0);
    app.stop().await;
}
