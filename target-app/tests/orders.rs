//! Order path against real MariaDB: the stock lock holds, and the pool runs dry the way the
//! incident's did.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use target_app::test_support::TestApp;
use target_app::Preset;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_orders_for_stock_of_one_hundred() {
    let app = TestApp::start(Preset::Incident, |c| c.pool_max = 20).await;
    sqlx::query("UPDATE inventories SET stock_quantity = 100 WHERE product_id = 1")
        .execute(&app.db)
        .await
        .unwrap();

    // Watch the stock from outside while the burst runs: it must never go below zero.
    let done = Arc::new(AtomicBool::new(false));
    let lowest = Arc::new(AtomicI64::new(i64::MAX));
    let watcher = {
        let (db, done, lowest) = (app.db.clone(), done.clone(), lowest.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                let s: i64 = sqlx::query_scalar(
                    "SELECT stock_quantity FROM inventories WHERE product_id = 1",
                )
                .fetch_one(&db)
                .await
                .unwrap();
                lowest.fetch_min(s, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let results = join_all((0..200).map(|i| {
        let app = &app;
        async move {
            app.post(
                "/api/orders",
                &format!(r#"{{"user_id":{},"product_id":1,"quantity":1}}"#, i + 1),
            )
            .await
            .0
        }
    }))
    .await;
    done.store(true, Ordering::Relaxed);
    watcher.await.unwrap();

    let created = results.iter().filter(|s| **s == 201).count();
    let conflicts = results.iter().filter(|s| **s == 409).count();
    assert_eq!(created, 100, "statuses: {results:?}");
    assert_eq!(conflicts, 100, "statuses: {results:?}");
    assert_eq!(
        app.count("SELECT stock_quantity FROM inventories WHERE product_id = 1")
            .await,
        0
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM orders WHERE product_id = 1")
            .await,
        100
    );
    assert!(lowest.load(Ordering::Relaxed) >= 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pool_exhaustion_answers_503_and_shows_in_metrics() {
    let app = TestApp::start(Preset::Incident, |c| {
        c.pool_max = 2;
        c.pool_min_idle = 0;
        c.acquire_timeout_ms = 1_000;
        c.external_call_ms = 500;
    })
    .await;
    let done = Arc::new(AtomicBool::new(false));
    let peak_pending = Arc::new(AtomicI64::new(0));
    let watcher = {
        let (done, peak, url, http) = (
            done.clone(),
            peak_pending.clone(),
            app.url.clone(),
            app.http.clone(),
        );
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                let text = http
                    .get(format!("{url}/metrics"))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                let pending = text
                    .lines()
                    .find_map(|l| l.strip_prefix("db_pool_pending "))
                    .unwrap()
                    .trim()
                    .parse::<f64>()
                    .unwrap();
                peak.fetch_max(pending as i64, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    // Distinct products: the waits are for connections, not for one row lock.
    let results = join_all((0..20).map(|i| {
        let app = &app;
        async move {
            app.post(
                "/api/orders",
                &format!(
                    r#"{{"user_id":{},"product_id":{},"quantity":1}}"#,
                    i + 1,
                    1 + i % 10
                ),
            )
            .await
        }
    }))
    .await;
    done.store(true, Ordering::Relaxed);
    watcher.await.unwrap();
    let unavailable: Vec<_> = results.iter().filter(|(s, _)| *s == 503).collect();
    let created = results.iter().filter(|(s, _)| *s == 201).count();
    assert!(
        !unavailable.is_empty(),
        "no 503 with pool 2 and 500 ms hold: {results:?}"
    );
    assert!(
        created >= 2,
        "some orders must still get through: {results:?}"
    );
    assert_eq!(
        unavailable.len() + created,
        20,
        "only 201 or 503 expected: {results:?}"
    );
    assert_eq!(unavailable[0].1["error"], "pool_timeout");
    assert!(
        peak_pending.load(Ordering::Relaxed) > 0,
        "pending never rose above 0 during the burst"
    );
    let timeouts = app.metric("db_pool_acquire_timeouts_total").await;
    assert_eq!(
        timeouts as usize,
        unavailable.len(),
        "every 503 is one counted acquire timeout"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM orders").await as usize,
        created
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_order_input_is_a_json_4xx_and_writes_nothing() {
    let app = TestApp::start(Preset::Incident, |_| {}).await;
    let stock_before = app
        .count("SELECT CAST(SUM(stock_quantity) AS SIGNED) FROM inventories")
        .await;
    let cases = [
        ("{not json", 400),
        (r#"{"user_id":1,"product_id":999999,"quantity":1}"#, 404),
        (r#"{"user_id":1,"product_id":1,"quantity":-1}"#, 400),
        (r#"{"user_id":1,"product_id":1,"quantity":0}"#, 422),
        (r#"{"user_id":1,"product_id":1,"quantity":1000000}"#, 422),
        (r#"{"user_id":"one","product_id":1,"quantity":1}"#, 400),
        (r#"{"user_id":1,"product_id":1}"#, 400),
        (
            r#"{"user_id":1,"product_id":1,"quantity":1,"discount":5}"#,
            400,
        ),
        (r#"{"user_id":0,"product_id":1,"quantity":1}"#, 400),
    ];
    for (body, want) in cases {
        let (status, json) = app.post("/api/orders", body).await;
        assert_eq!(status, want, "body {body} → {json}");
        assert!(
            json["error"].is_string() && json["message"].is_string(),
            "body {body}: not a JSON error: {json}"
        );
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM orders").await, 0);
    assert_eq!(
        app.count("SELECT CAST(SUM(stock_quantity) AS SIGNED) FROM inventories")
            .await,
        stock_before
    );
    app.stop().await;
}
