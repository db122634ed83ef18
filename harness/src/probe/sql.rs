//! Post-run SQL checks: integrity invariants declared in the scenario (no negative stock, no
//! duplicate coupons, rows that match what the harness saw answered).

use serde::{Deserialize, Serialize};
use sqlx::{Connection, MySqlConnection};

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
    Connect(sqlx::Error),
    #[error("cannot connect: no answer within 5 s")]
    ConnectTimeout,
    #[error("query took longer than 30 s")]
    QueryTimeout,
    /// The query failed, or its value is not an integer.
    #[error(transparent)]
    Query(sqlx::Error),
    #[error("`{url}` is not a MySQL URL: {message}")]
    BadUrl { url: String, message: String },
}

/// `url` with any password replaced by `***`, for messages and reports.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((auth, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// A check's `database_url` with `{env:…}` expanded, if it parses as a MySQL URL.
pub fn database_url(raw: &str, vars: &Vars) -> Result<String, SqlError> {
    let url = crate::scenario::expand_env(raw, vars)?;
    parse_url(&url)?;
    Ok(url)
}

/// Whether `url` parses as a MySQL URL (nothing is connected).
pub fn parse_url(url: &str) -> Result<(), SqlError> {
    use std::str::FromStr;
    sqlx::mysql::MySqlConnectOptions::from_str(url)
        .map(|_| ())
        .map_err(|e| SqlError::BadUrl {
            url: redact(url),
            message: e.to_string(),
        })
}

/// Connects to `url` (5 s at most) and closes the connection: the preflight of a check.
pub async fn connects(url: &str) -> Result<(), SqlError> {
    connect(url).await?.close().await.map_err(SqlError::Connect)
}

async fn connect(url: &str) -> Result<MySqlConnection, SqlError> {
    let connect = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        MySqlConnection::connect(url),
    );
    match connect.await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(SqlError::Connect(e)),
        Err(_) => Err(SqlError::ConnectTimeout),
    }
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
    let mut conn = connect(&url).await?;
    // Casting makes SUM()/COUNT()/NULL all come back as one integer.
    let sql = format!(
        "SELECT CAST(({}) AS SIGNED)",
        c.query.trim().trim_end_matches(';')
    );
    let v: Option<i64> = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        sqlx::query_scalar(&sql).fetch_one(&mut conn),
    )
    .await
    .map_err(|_| SqlError::QueryTimeout)?
    .map_err(SqlError::Query)?;
    let _ = conn.close().await;
    Ok(v.unwrap_or(0))
}
