//! The incident's e-commerce service, as a library so tests can run it on `127.0.0.1:0`.
//!
//! It is the harness's demo and test bed: every knob of the post-mortem (pool size, acquire
//! timeout, external call inside the stock-lock transaction, partitions, single vs. batch
//! inserts) is configurable, and faults can be switched on at run time via `/admin/faults`.
//! `stub` is the external dependency's stand-in (the `dependency-stub` binary).

pub mod config;
pub mod consumer;
pub mod coupons;
pub mod db;
pub mod error;
pub mod external;
pub mod faults;
pub mod health;
pub mod kafka;
pub mod lag;
pub mod metrics;
pub mod orders;
pub mod reads;
pub mod signal;
pub mod stub;
#[cfg(feature = "test-support")]
pub mod test_support;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use rdkafka::consumer::BaseConsumer;
use rdkafka::producer::FutureProducer;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use config::{Args, Config, ConsumerMode, Preset};

/// Everything a request handler or background task needs.
pub struct AppState {
    pub config: Config,
    pub db: db::Db,
    pub metrics: Arc<metrics::Metrics>,
    pub faults: faults::Faults,
    pub external: external::External,
    pub producer: FutureProducer,
    pub known_coupons: coupons::KnownCoupons,
    health_client: BaseConsumer,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Db(#[from] db::DbError),
    #[error(transparent)]
    Kafka(#[from] kafka::KafkaSetupError),
    #[error(transparent)]
    External(#[from] external::ExternalSetupError),
    #[error("Kafka client error: {0}")]
    KafkaClient(#[from] rdkafka::error::KafkaError),
    #[error("server error: {0}")]
    Serve(#[from] std::io::Error),
}

/// Connects to the database and broker, prepares schema, seed data and topic, starts the
/// consumer group and serves HTTP on `listener` until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let metrics = Arc::new(metrics::Metrics::new());
    let external = external::External::new(&config, metrics.clone())?;
    let db = db::Db::connect(&config, metrics.clone()).await?;
    db.prepare(&config).await?;
    let partitions =
        kafka::ensure_topic(&config.kafka, &config.coupon_topic, config.topic_partitions).await?;
    if partitions != config.topic_partitions {
        tracing::warn!(
            topic = %config.coupon_topic,
            existing = partitions,
            wanted = config.topic_partitions,
            "topic already exists with another partition count; using the existing one"
        );
    }
    let producer: FutureProducer = kafka::client_config(&config.kafka)
        .set("message.timeout.ms", config.producer_timeout_ms.to_string())
        .set("linger.ms", config.producer_linger_ms.to_string())
        .create()?;
    let health_client: BaseConsumer = kafka::client_config(&config.kafka).create()?;
    let state = Arc::new(AppState {
        config,
        db,
        metrics,
        faults: faults::Faults::default(),
        external,
        producer,
        known_coupons: Default::default(),
        health_client,
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = consumer::spawn(state.clone(), stop_rx.clone())?;
    tasks.push(lag::spawn(state.clone(), partitions, stop_rx));

    tracing::info!(addr = %listener.local_addr()?, config = ?state.config, "target-app listening");
    let served = axum::serve(listener, router(state.clone()))
        .with_graceful_shutdown(shutdown)
        .await;
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    state.db.pool.close().await;
    Ok(served?)
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/api/orders", post(orders::create))
        .route("/api/orders/{id}", get(reads::order))
        .route("/api/products/{id}", get(reads::product))
        .route("/api/coupons/{id}/issue", post(coupons::issue))
        .route("/api/coupons/requests/{id}", get(reads::coupon_request))
        .route("/actuator/health", get(health::health))
        .route("/metrics", get(health::metrics))
        .route(
            "/admin/faults",
            get(faults::get).post(faults::post).delete(faults::delete),
        )
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Records every request in the HTTP metrics under its route pattern (not its raw path, so
/// ids do not explode the series count).
async fn observe(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let resp = next.run(req).await;
    state
        .metrics
        .observe_http(&route, resp.status().as_u16(), started.elapsed());
    resp
}
