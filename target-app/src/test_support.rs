//! Test support (feature `test-support`): runs the real app in-process on 127.0.0.1:0 against
//! a fresh database on the stack's MariaDB and a fresh topic on the stack's broker, so tests
//! never share state. Used by this crate's tests and by the harness's end-to-end tests.
//!
//! The stack comes from `make test` (`harness stack up --no-app`); without it these tests fail
//! with a message instead of silently skipping.

use std::time::{Duration, Instant};

use crate::{Config, Preset};
use sqlx::mysql::MySqlPool;
use sqlx::{Connection, MySqlConnection};
use tokio::sync::oneshot;

pub fn stack_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with `make test` (it starts MariaDB and the broker), or export it from `harness stack env`")
    })
}

pub struct TestApp {
    pub url: String,
    pub db: MySqlPool,
    pub config: Config,
    pub http: reqwest::Client,
    server_url: String,
    db_name: String,
    stop: Option<oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<Result<(), crate::StartError>>,
}

/// Server URL with the database path swapped.
pub fn with_db(url: &str, db: &str) -> String {
    let base = url.split('?').next().unwrap();
    let host_end = base[8..].find('/').map(|i| i + 8).unwrap_or(base.len());
    format!("{}/{}", &base[..host_end], db)
}

impl TestApp {
    pub async fn start(preset: Preset, tweak: impl FnOnce(&mut Config)) -> TestApp {
        let server_url = stack_env("HARNESS_DATABASE_URL");
        let kafka = stack_env("HARNESS_KAFKA");
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let db_name = format!("t_{id}");
        let mut admin = MySqlConnection::connect(&with_db(&server_url, ""))
            .await
            .expect("connect to the stack's MariaDB");
        sqlx::query(&format!("CREATE DATABASE `{db_name}`"))
            .execute(&mut admin)
            .await
            .unwrap();
        let mut config = Config::preset(preset, &with_db(&server_url, &db_name), &kafka);
        config.coupon_topic = format!("coupons-{id}");
        config.consumer_group = format!("group-{id}");
        config.seed_products = 10;
        config.insert_cost_ms = 0;
        // Tests that need the incident's external call inside the order transaction set it.
        config.external_call_ms = 0;
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(crate::run(listener, config.clone(), async move {
            let _ = rx.await;
        }));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if handle.is_finished() {
                panic!("target-app stopped during start-up: {:?}", handle.await);
            }
            if let Ok(r) = http.get(format!("{url}/actuator/health")).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "target-app not healthy within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let db = MySqlPool::connect(&config.database_url).await.unwrap();
        TestApp {
            url,
            db,
            config,
            http,
            server_url,
            db_name,
            stop: Some(tx),
            handle,
        }
    }

    pub async fn post(&self, path: &str, body: &str) -> (u16, serde_json::Value) {
        let r = self
            .http
            .post(format!("{}{}", self.url, path))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    /// Value of an unlabelled metric in `/metrics`.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self
            .http
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix(' '))
                    .map(|v| v.trim().parse::<f64>().unwrap())
            })
            .unwrap_or_else(|| panic!("metric {name} missing in:\n{text}"))
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&self.db)
            .await
            .unwrap()
    }

    /// Shuts the app down and drops its database.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let result = tokio::time::timeout(Duration::from_secs(30), &mut self.handle).await;
        assert!(
            matches!(result, Ok(Ok(Ok(())))),
            "target-app did not stop cleanly: {result:?}"
        );
        self.db.close().await;
        let mut admin = MySqlConnection::connect(&with_db(&self.server_url, ""))
            .await
            .unwrap();
        sqlx::query(&format!("DROP DATABASE `{}`", self.db_name))
            .execute(&mut admin)
            .await
            .unwrap();
    }
}

/// The external dependency's stub (`crate::stub`) in-process on 127.0.0.1:0.
pub struct TestStub {
    /// Where orders call it (any path but the stats path is the dependency).
    pub url: String,
    base: String,
    http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestStub {
    /// A stub answering `status` after `delay_ms`.
    pub async fn start(delay_ms: u64, status: u16) -> TestStub {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let config = crate::stub::StubConfig {
            delay: Duration::from_millis(delay_ms),
            status: axum::http::StatusCode::from_u16(status).unwrap(),
        };
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(crate::stub::run(listener, config, async move {
            let _ = rx.await;
        }));
        TestStub {
            url: format!("{base}/orders"),
            base,
            http: reqwest::Client::new(),
            stop: Some(tx),
            handle,
        }
    }

    /// The stub's own count of the requests it received.
    pub async fn stats(&self) -> crate::stub::StubStats {
        let url = format!("{}{}", self.base, crate::stub::STATS_PATH);
        let r = self.http.get(url).send().await.expect("stub stats");
        r.json().await.expect("stub stats JSON")
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let result = tokio::time::timeout(Duration::from_secs(10), &mut self.handle).await;
        assert!(
            matches!(result, Ok(Ok(Ok(())))),
            "stub did not stop cleanly: {result:?}"
        );
    }
}

/// Polls `check` every 100 ms until it returns true or `secs` pass.
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
