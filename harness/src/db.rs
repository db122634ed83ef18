//! One connection to MySQL/MariaDB or PostgreSQL, picked by the URL's scheme: what the SQL
//! probe, the post-run checks and the database fault agents share (sqlx's `Any` driver would
//! hide the session ids and lock statements that differ between the two).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::{Connection, MySqlConnection, PgConnection};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("`{0}` is neither a mysql://, mariadb:// nor a postgres:// URL")]
    Scheme(String),
    #[error("cannot connect to {url}: {message}")]
    Connect { url: String, message: String },
    #[error("{statement}: {message}")]
    Statement { statement: String, message: String },
}

/// Which server a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    Mysql,
    Postgres,
}

impl Flavor {
    pub fn of(url: &str) -> Result<Flavor, DbError> {
        let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("");
        match scheme {
            "mysql" | "mariadb" => Ok(Flavor::Mysql),
            "postgres" | "postgresql" => Ok(Flavor::Postgres),
            _ => Err(DbError::Scheme(redact(url))),
        }
    }
}

/// One connection of either kind.
pub enum Db {
    My(MySqlConnection),
    Pg(PgConnection),
}

impl Db {
    /// Connects to `url` within 10 s.
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        let fail = |message: String| DbError::Connect {
            url: redact(url),
            message,
        };
        let wait = Duration::from_secs(10);
        let db = match Flavor::of(url)? {
            Flavor::Mysql => tokio::time::timeout(wait, MySqlConnection::connect(url))
                .await
                .map_err(|_| fail("no answer within 10 s".into()))?
                .map(Db::My),
            Flavor::Postgres => tokio::time::timeout(wait, PgConnection::connect(url))
                .await
                .map_err(|_| fail("no answer within 10 s".into()))?
                .map(Db::Pg),
        };
        db.map_err(|e| fail(e.to_string()))
    }

    /// The server's id of this session (`CONNECTION_ID()`, `pg_backend_pid()`), which its
    /// process list shows and `KILL` / `pg_terminate_backend` take.
    pub async fn session_id(&mut self) -> Result<i64, DbError> {
        let r = match self {
            Db::My(c) => {
                sqlx::query_scalar::<_, i64>("SELECT CAST(CONNECTION_ID() AS SIGNED)")
                    .fetch_one(c)
                    .await
            }
            Db::Pg(c) => sqlx::query_scalar::<_, i32>("SELECT pg_backend_pid()")
                .fetch_one(c)
                .await
                .map(i64::from),
        };
        r.map_err(|e| statement_error("session id", e))
    }

    /// Runs `sql` (one statement, simple protocol). Boxed: sqlx's executor futures are not
    /// `Send` for every lifetime, which a spawned session task needs.
    pub fn run<'a>(
        &'a mut self,
        sql: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), DbError>> + Send + 'a>> {
        Box::pin(async move {
            let r = match self {
                // A bare `&str` goes as a simple (text) query: LOCK TABLES cannot be prepared.
                Db::My(c) => sqlx::Executor::execute(&mut *c, sql).await.map(|_| ()),
                Db::Pg(c) => sqlx::Executor::execute(&mut *c, sql).await.map(|_| ()),
            };
            r.map_err(|e| statement_error(sql, e))
        })
    }

    /// How many of `ids` the server still lists as sessions.
    pub async fn live_sessions(&mut self, ids: &[i64]) -> Result<Vec<i64>, DbError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let r = match self {
            // ID is BIGINT UNSIGNED on MySQL and signed on MariaDB: cast to one type.
            Db::My(c) => {
                sqlx::query_scalar::<_, i64>(&format!(
                "SELECT CAST(ID AS SIGNED) FROM information_schema.PROCESSLIST WHERE ID IN ({list})"
            ))
                .fetch_all(c)
                .await
            }
            Db::Pg(c) => sqlx::query_scalar::<_, i32>(&format!(
                "SELECT pid FROM pg_stat_activity WHERE pid IN ({list})"
            ))
            .fetch_all(c)
            .await
            .map(|v| v.into_iter().map(i64::from).collect()),
        };
        r.map_err(|e| statement_error("session list", e))
    }

    /// Ends session `id` on the server (its transaction rolls back, its locks go).
    pub async fn kill_session(&mut self, id: i64) -> Result<(), DbError> {
        let sql = match self {
            Db::My(_) => format!("KILL CONNECTION {id}"),
            Db::Pg(_) => format!("SELECT pg_terminate_backend({id})"),
        };
        self.run(&sql).await
    }

    pub fn flavor(&self) -> Flavor {
        match self {
            Db::My(_) => Flavor::Mysql,
            Db::Pg(_) => Flavor::Postgres,
        }
    }

    /// The one value `query` returns, as a number (NULL: None). Read as text, so any numeric
    /// type of either server (BIGINT, DECIMAL, COUNT, SUM) reads the same.
    pub async fn scalar(&mut self, query: &str) -> Result<Option<f64>, DbError> {
        let q = query.trim().trim_end_matches(';');
        let text: Result<Option<String>, sqlx::Error> = match self {
            Db::My(c) => {
                let sql = format!("SELECT CAST(({q}) AS CHAR)");
                sqlx::query_scalar(&sql).fetch_one(c).await
            }
            Db::Pg(c) => {
                let sql = format!("SELECT (({q}))::text");
                sqlx::query_scalar(&sql).fetch_one(c).await
            }
        };
        let text = text.map_err(|e| statement_error(q, e))?;
        match text {
            None => Ok(None),
            Some(t) => t
                .trim()
                .parse::<f64>()
                .map(Some)
                .map_err(|_| DbError::Statement {
                    statement: q.to_owned(),
                    message: format!("answered `{t}`, not a number"),
                }),
        }
    }

    pub async fn close(self) {
        let _ = match self {
            Db::My(c) => c.close().await,
            Db::Pg(c) => c.close().await,
        };
    }
}

fn statement_error(statement: &str, e: sqlx::Error) -> DbError {
    DbError::Statement {
        statement: statement.to_owned(),
        message: e.to_string(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_scheme_picks_the_server() {
        assert_eq!(Flavor::of("mysql://root@h/db").unwrap(), Flavor::Mysql);
        assert_eq!(Flavor::of("mariadb://root@h/db").unwrap(), Flavor::Mysql);
        assert_eq!(Flavor::of("postgres://u@h/db").unwrap(), Flavor::Postgres);
        assert_eq!(Flavor::of("postgresql://u@h/db").unwrap(), Flavor::Postgres);
        let e = Flavor::of("redis://u:secret@h").unwrap_err().to_string();
        assert!(e.contains("redis://u:***@h"), "{e}");
    }
}
