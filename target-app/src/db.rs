//! The connection pool, schema and seed data, and the one door to a connection.
//!
//! Every transaction goes through [`Db::begin`] so the pool's waiters ("pending", in Hikari's
//! words) and acquire timeouts are counted in one place: these are the numbers the incident
//! watched when the pool ran dry.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use sqlx::mysql::{MySqlPool, MySqlPoolOptions};
use sqlx::{MySql, Transaction};

use crate::config::Config;
use crate::error::ApiError;
use crate::metrics::{Metrics, PoolSnapshot};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot connect to the database at {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database query failed: {0}")]
    Query(#[from] sqlx::Error),
}

#[derive(Clone)]
pub struct Db {
    pub pool: MySqlPool,
    max: u32,
    metrics: Arc<Metrics>,
}

impl Db {
    pub async fn connect(config: &Config, metrics: Arc<Metrics>) -> Result<Db, DbError> {
        let pool = MySqlPoolOptions::new()
            .max_connections(config.pool_max)
            .min_connections(config.pool_min_idle.min(config.pool_max))
            .acquire_timeout(Duration::from_millis(config.acquire_timeout_ms))
            // A failed health check must not pile on top of an exhausted pool.
            .test_before_acquire(false)
            .connect(&config.database_url)
            .await
            .map_err(|source| DbError::Connect {
                url: redact(&config.database_url),
                source,
            })?;
        Ok(Db {
            pool,
            max: config.pool_max,
            metrics,
        })
    }

    /// Starts a transaction, counting the wait as pending and a give-up as an acquire timeout.
    pub async fn begin(&self) -> Result<Transaction<'static, MySql>, ApiError> {
        self.metrics.pool_pending.fetch_add(1, Relaxed);
        let result = self.pool.begin().await;
        self.metrics.pool_pending.fetch_sub(1, Relaxed);
        result.map_err(|e| self.classify(e))
    }

    /// Maps a database error to the API's answer: pool exhaustion is a 503, the rest a 500.
    pub fn classify(&self, e: sqlx::Error) -> ApiError {
        match e {
            sqlx::Error::PoolTimedOut => {
                self.metrics.acquire_timeouts.fetch_add(1, Relaxed);
                ApiError::unavailable(
                    "pool_timeout",
                    "Connection is not available, request timed out",
                )
            }
            other => {
                tracing::error!(error = %other, "database error");
                ApiError::new(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "database_error",
                    other.to_string(),
                )
            }
        }
    }

    pub fn snapshot(&self) -> PoolSnapshot {
        PoolSnapshot {
            max: self.max,
            size: self.pool.size(),
            idle: self.pool.num_idle() as u32,
        }
    }

    pub async fn prepare(&self, config: &Config) -> Result<(), DbError> {
        MIGRATOR.run(&self.pool).await?;
        if config.reset_data {
            for t in [
                "orders",
                "user_coupons",
                "coupon_requests",
                "inventories",
                "products",
                "coupons",
            ] {
                sqlx::query(&format!("DELETE FROM {t}"))
                    .execute(&self.pool)
                    .await?;
            }
        }
        self.set_coupon_index(config.coupon_index).await?;
        self.seed(config).await
    }

    /// The incident lacked this index; the remediation added it. Toggled to match the config.
    async fn set_coupon_index(&self, wanted: bool) -> Result<(), DbError> {
        let (present,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM information_schema.statistics WHERE table_schema = DATABASE() \
             AND table_name = 'user_coupons' AND index_name = 'ux_user_coupon'",
        )
        .fetch_one(&self.pool)
        .await?;
        match (wanted, present > 0) {
            (true, false) => {
                sqlx::query(
                    "CREATE UNIQUE INDEX ux_user_coupon ON user_coupons (user_id, coupon_id)",
                )
                .execute(&self.pool)
                .await?;
            }
            (false, true) => {
                sqlx::query("DROP INDEX ux_user_coupon ON user_coupons")
                    .execute(&self.pool)
                    .await?;
            }
            _ => {}
        }
        Ok(())
    }

    async fn seed(&self, config: &Config) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        for chunk in (1..=config.seed_products).collect::<Vec<_>>().chunks(500) {
            let mut products =
                sqlx::QueryBuilder::new("INSERT IGNORE INTO products (id, name, price) ");
            products.push_values(chunk, |mut b, id| {
                b.push_bind(*id)
                    .push_bind(format!("product-{id}"))
                    .push_bind(1_000 + (*id as i64 % 50) * 100);
            });
            products.build().execute(&mut *tx).await?;
            let mut stock = sqlx::QueryBuilder::new(
                "INSERT IGNORE INTO inventories (product_id, stock_quantity) ",
            );
            stock.push_values(chunk, |mut b, id| {
                b.push_bind(*id).push_bind(config.seed_stock);
            });
            stock.build().execute(&mut *tx).await?;
        }
        sqlx::query("INSERT IGNORE INTO coupons (id, total_quantity, issued) VALUES (1, ?, 0)")
            .bind(config.coupon_quantity)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Hides the password part of a URL in messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(
            super::redact("mysql://root:secret@h:1/db"),
            "mysql://root:***@h:1/db"
        );
        assert_eq!(super::redact("mysql://root@h:1/db"), "mysql://root@h:1/db");
    }
}
