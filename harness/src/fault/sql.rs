//! Database faults, done with the database's own means: row or table locks held from real
//! sessions, and connections held open. One [`Db`] speaks to MySQL/MariaDB or PostgreSQL, by
//! the URL's scheme; the sessions live in a lock agent (`harness fault-agent`, see `agent`),
//! so they outlive a killed harness exactly as a crashed chaos tool's would, until
//! `harness faults recover` ends them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::db::{Db, DbError, Flavor};

/// Why a database fault could not be carried out.
pub type SqlFaultError = DbError;

/// What a fault agent holds: locks or connections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "hold", rename_all = "kebab-case")]
pub enum Hold {
    /// `sessions` sessions lock the rows of `query` (or `table`) for `hold_ms` every
    /// `interval_ms`.
    Locks {
        query: String,
        table: String,
        hold_ms: u32,
        interval_ms: u32,
        sessions: u32,
    },
    /// `count` connections, idle or each inside an open transaction.
    Connections { count: u32, in_transaction: bool },
}

/// The statements that take the locks (in order) and the one that releases them, on `flavor`.
pub fn lock_statements(flavor: Flavor, query: &str, table: &str) -> (Vec<String>, String) {
    let query = query.trim().trim_end_matches(';');
    let begin = "BEGIN".to_owned();
    match (flavor, table.is_empty()) {
        (_, true) => (
            vec![begin, format!("{query} FOR UPDATE")],
            "ROLLBACK".into(),
        ),
        (Flavor::Mysql, false) => (
            vec![format!("LOCK TABLES {table} WRITE")],
            "UNLOCK TABLES".into(),
        ),
        (Flavor::Postgres, false) => (
            vec![
                begin,
                format!("LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"),
            ],
            "ROLLBACK".into(),
        ),
    }
}

/// Ends every session of `ids` still on the server at `url` (after an agent died or was
/// stopped). Returns the ones that were still there.
pub async fn end_sessions(url: &str, ids: &[i64]) -> Result<Vec<i64>, SqlFaultError> {
    let mut db = Db::connect(url).await?;
    // A stopped agent's sessions leave within moments; give the server that long first.
    let mut live = db.live_sessions(ids).await?;
    for _ in 0..20 {
        if live.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        live = db.live_sessions(ids).await?;
    }
    for id in &live {
        db.kill_session(*id).await?;
    }
    let left = db.live_sessions(ids).await?;
    db.close().await;
    if let Some(id) = left.first() {
        return Err(SqlFaultError::Statement {
            statement: format!("end session {id}"),
            message: "the server still lists it".into(),
        });
    }
    Ok(live)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_are_taken_the_way_each_server_takes_them() {
        let q = "SELECT id FROM inventories WHERE product_id = 1;";
        let (take, give) = lock_statements(Flavor::Mysql, q, "");
        assert_eq!(
            take,
            [
                "BEGIN",
                "SELECT id FROM inventories WHERE product_id = 1 FOR UPDATE"
            ]
        );
        assert_eq!(give, "ROLLBACK");
        let (take, give) = lock_statements(Flavor::Mysql, "", "orders");
        assert_eq!(take, ["LOCK TABLES orders WRITE"]);
        assert_eq!(give, "UNLOCK TABLES");
        let (take, _) = lock_statements(Flavor::Postgres, "", "orders");
        assert_eq!(
            take,
            ["BEGIN", "LOCK TABLE orders IN ACCESS EXCLUSIVE MODE"]
        );
    }
}
