//! The order's external dependency over real HTTP (the stub) and real MariaDB: its delay is
//! inside every order, and a failing dependency fails the order with 502 and writes nothing.

use std::time::{Duration, Instant};

use target_app::test_support::{TestApp, TestStub};
use target_app::Preset;

const ORDER: &str = r#"{"user_id":1,"product_id":3,"quantity":2}"#;

async fn stock(app: &TestApp) -> i64 {
    app.count("SELECT stock_quantity FROM inventories WHERE product_id = 3")
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_order_waits_for_one_call_to_the_dependency() {
    let stub = TestStub::start(200, 200).await;
    let url = stub.url.clone();
    let app = TestApp::start(Preset::Incident, |c| c.external_url = Some(url)).await;
    let before = stock(&app).await;
    for i in 0..3 {
        let started = Instant::now();
        let (status, body) = app.post("/api/orders", ORDER).await;
        let took = started.elapsed();
        assert_eq!(status, 201, "{body}");
        assert!(
            took >= Duration::from_millis(200),
            "order {i} took {took:?}, less than the stub's 200 ms"
        );
    }
    let stats = stub.stats().await;
    assert_eq!(stats.requests, 3, "one call per order: {stats:?}");
    assert_eq!(stock(&app).await, before - 6);
    assert_eq!(app.metric("external_calls_total").await, 3.0);
    assert_eq!(app.metric("external_call_failures_total").await, 0.0);
    let sum = app.metric("external_call_duration_seconds_sum").await;
    assert!(sum >= 0.6, "three calls of ≥ 200 ms sum to {sum} s");
    app.stop().await;
    stub.stop().await;
}

/// Every order must fail with 502 `external_dependency_failed` naming `what`, and leave stock
/// and orders as they were (the same product each time: its row lock is released).
async fn orders_fail(app: &TestApp, what: &str) {
    let before = stock(app).await;
    for _ in 0..2 {
        let (status, body) = app.post("/api/orders", ORDER).await;
        assert_eq!(status, 502, "{body}");
        assert_eq!(body["error"], "external_dependency_failed", "{body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(what), "message {message:?} lacks {what:?}");
    }
    assert_eq!(stock(app).await, before, "a failed order decremented stock");
    assert_eq!(app.count("SELECT COUNT(*) FROM orders").await, 0);
    assert_eq!(app.metric("external_calls_total").await, 2.0);
    assert_eq!(app.metric("external_call_failures_total").await, 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependency_answering_500_fails_the_order_with_502_and_rolls_back() {
    let stub = TestStub::start(0, 500).await;
    let url = stub.url.clone();
    let app = TestApp::start(Preset::Incident, |c| c.external_url = Some(url)).await;
    orders_fail(&app, "500 Internal Server Error").await;
    assert_eq!(stub.stats().await.requests, 2);
    app.stop().await;
    stub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_or_slow_dependency_fails_the_order_with_502() {
    // Nothing listens on a port just released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/orders", closed.local_addr().unwrap());
    drop(closed);
    let app = TestApp::start(Preset::Incident, |c| c.external_url = Some(url)).await;
    orders_fail(&app, "onnect").await;
    app.stop().await;

    let stub = TestStub::start(5_000, 200).await;
    let url = stub.url.clone();
    let app = TestApp::start(Preset::Incident, |c| {
        c.external_url = Some(url);
        c.external_timeout_ms = 300;
    })
    .await;
    let started = Instant::now();
    orders_fail(&app, "timed out").await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "two orders with a 300 ms timeout took {took:?}"
    );
    app.stop().await;
    stub.stop().await;
}
