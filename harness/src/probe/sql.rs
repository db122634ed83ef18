//! Post-run SQL checks: integrity invariants declared in the scenario (no negative stock, no
//! duplicate coupons, rows that match what the harness saw answered), and the SQL probe
//! (`[probes.sql]`: named queries sampled every second as series). MySQL/MariaDB or
//! PostgreSQL, by the URL's scheme (`crate::db`).

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::ProbeHealth;
use crate::db::{Db, DbError, Flavor};
use crate::metrics::Recorder;

use crate::metrics::RunMetrics;
use crate::scenario::{EnvError, SqlCheck, Vars};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SqlResult {
    pub name: String,
    pub query: String,
    pub expected: Option<i64>,
    pub observed: Option<i64>,
    pub passed: bool,
    pub error: Option<String>,
}

/// Why one check's query gave no value.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// The check's `database_url` names an unset `{env:…}` variable.
    #[error(transparent)]
    Url(#[from] EnvError),
    #[error("cannot connect: {0}")]
    Connect(DbError),
    #[error("query took longer than 30 s")]
    QueryTimeout,
    /// The query failed, or its value is not an integer.
    #[error(transparent)]
    Query(DbError),
    #[error("`{url}` is not a MySQL or PostgreSQL URL: {message}")]
    BadUrl { url: String, message: String },
}

pub use crate::db::redact;

/// A check's `database_url` with `{env:…}` expanded, if it parses as a MySQL URL.
pub fn database_url(raw: &str, vars: &Vars) -> Result<String, SqlError> {
    let url = crate::scenario::expand_env(raw, vars)?;
    parse_url(&url)?;
    Ok(url)
}

/// Whether `url` parses as a MySQL or PostgreSQL URL (nothing is connected).
pub fn parse_url(url: &str) -> Result<(), SqlError> {
    use std::str::FromStr;
    let bad = |message: String| SqlError::BadUrl {
        url: redact(url),
        message,
    };
    let scheme = "its scheme must be mysql://, mariadb:// or postgres://";
    match Flavor::of(url).map_err(|_| bad(scheme.to_owned()))? {
        Flavor::Mysql => sqlx::mysql::MySqlConnectOptions::from_str(url).map(|_| ()),
        Flavor::Postgres => sqlx::postgres::PgConnectOptions::from_str(url).map(|_| ()),
    }
    .map_err(|e| bad(e.to_string()))
}

/// Connects to `url` and closes the connection: the preflight of a check or probe.
pub async fn connects(url: &str) -> Result<(), SqlError> {
    Db::connect(url)
        .await
        .map_err(SqlError::Connect)?
        .close()
        .await;
    Ok(())
}

/// Values of the `delta = true` checks before the load (None for the others; an error is
/// reported by that check after the run).
pub type Baseline = Vec<Option<Result<i64, String>>>;

/// Takes the [`Baseline`] of `checks`.
pub async fn baseline(checks: &[SqlCheck], vars: &Vars) -> Baseline {
    let mut out = Vec::new();
    for c in checks {
        out.push(if c.delta {
            Some(run_one(c, vars).await.map_err(|e| e.to_string()))
        } else {
            None
        });
    }
    out
}

/// Runs every check; a `delta` check's observed value is after − `before`.
pub async fn run_checks(
    checks: &[SqlCheck],
    before: &[Option<Result<i64, String>>],
    metrics: &RunMetrics,
    vars: &Vars,
) -> Vec<SqlResult> {
    let mut out = Vec::new();
    for (i, c) in checks.iter().enumerate() {
        let expected = match (&c.expect, &c.expect_responses) {
            (Some(v), _) => Some(*v),
            (None, Some(r)) => Some(
                metrics
                    .per_name
                    .get(&r.request)
                    .and_then(|t| t.statuses.get(&r.status))
                    .copied()
                    .unwrap_or(0) as i64,
            ),
            (None, None) => None,
        };
        let observed = match before.get(i).cloned().flatten() {
            Some(Ok(b)) => run_one(c, vars)
                .await
                .map(|after| after - b)
                .map_err(|e| e.to_string()),
            Some(Err(e)) => Err(format!("before the run: {e}")),
            None => run_one(c, vars).await.map_err(|e| e.to_string()),
        };
        let (observed, error) = match observed {
            Ok(v) => (Some(v), None),
            Err(e) => (None, Some(e)),
        };
        let passed = error.is_none() && observed == expected;
        out.push(SqlResult {
            name: c.name.clone(),
            query: c.query.clone(),
            expected,
            observed,
            passed,
            error,
        });
    }
    out
}

async fn run_one(c: &SqlCheck, vars: &Vars) -> Result<i64, SqlError> {
    let url = crate::scenario::expand_env(&c.database_url, vars)?;
    let mut db = Db::connect(&url).await.map_err(SqlError::Connect)?;
    let v = tokio::time::timeout(Duration::from_secs(30), db.scalar(&c.query))
        .await
        .map_err(|_| SqlError::QueryTimeout)?
        .map_err(SqlError::Query)?;
    db.close().await;
    match v {
        Some(v) if v.fract() != 0.0 => Err(SqlError::Query(DbError::Statement {
            statement: c.query.clone(),
            message: format!("answered {v}, not an integer"),
        })),
        Some(v) => Ok(v as i64),
        None => Ok(0),
    }
}

/// `[probes.sql]`: each named query on one connection every `interval`, as a series.
pub struct SqlProbe {
    pub url: String,
    /// (series name, query returning one number).
    pub queries: Vec<(String, String)>,
    pub interval: Duration,
    pub min_coverage: f64,
}

impl SqlProbe {
    pub async fn run(
        self,
        recorder: Arc<Recorder>,
        mut stop: watch::Receiver<bool>,
    ) -> ProbeHealth {
        let name = format!("sql {}", redact(&self.url));
        let series: Vec<String> = self.queries.iter().map(|(n, _)| n.clone()).collect();
        let mut health = ProbeHealth::new(&name, &series, self.min_coverage);
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut db: Option<Db> = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => break,
            }
            let sampled = tokio::time::timeout(self.interval.max(Duration::from_secs(1)), async {
                self.sample(&mut db, &recorder, &mut health).await
            });
            match sampled.await {
                Ok(Ok(())) => health.ok(),
                Ok(Err(e)) => {
                    // A broken connection is dropped and dialled again next time.
                    db = None;
                    health.failed(e);
                }
                Err(_) => {
                    db = None;
                    health.failed(format!("no answer within {:?}", self.interval));
                }
            }
        }
        if let Some(db) = db {
            db.close().await;
        }
        health
    }

    async fn sample(
        &self,
        db: &mut Option<Db>,
        recorder: &Recorder,
        health: &mut ProbeHealth,
    ) -> Result<(), String> {
        if db.is_none() {
            *db = Some(Db::connect(&self.url).await.map_err(|e| e.to_string())?);
        }
        let conn = db.as_mut().expect("connected");
        let mut missing = Vec::new();
        for (name, q) in &self.queries {
            match conn.scalar(q).await.map_err(|e| format!("{name}: {e}"))? {
                Some(v) => {
                    recorder.set_gauge(name, v, true);
                    health.saw(name);
                }
                None => missing.push(name.as_str()),
            }
        }
        match missing.is_empty() {
            true => Ok(()),
            false => Err(format!("NULL from {}", missing.join(", "))),
        }
    }
}
