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
    let connect = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        MySqlConnection::connect(&url),
    )
    .await;
    let mut conn = match connect {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => return Err(SqlError::Connect(e)),
        Err(_) => return Err(SqlError::ConnectTimeout),
    };
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
