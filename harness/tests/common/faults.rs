//! Helpers of the fault tests: built plugins, `timeseries.csv` columns, and what a fault left
//! in the world (process states, fault agents, database sessions).

use std::path::{Path, PathBuf};

use sqlx::Connection;

/// A plugin of `plugins/build` by file name; fails (never skips) with how to build it.
pub fn built_plugin(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/build")
        .join(name);
    assert!(
        p.is_file(),
        "{} is missing: build the plugins with `make plugins` (make test does)",
        p.display()
    );
    p.canonicalize().unwrap().display().to_string()
}

/// One column of a run's `timeseries.csv` by header name (empty cells as NaN).
pub fn column(run: &Path, name: &str) -> Vec<f64> {
    let csv = std::fs::read_to_string(run.join("timeseries.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let i = header
        .iter()
        .position(|h| h.trim_matches('"') == name)
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    lines
        .map(|l| {
            l.split(',')
                .nth(i)
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN)
        })
        .collect()
}

/// The state letter of `/proc/<pid>/stat` (`T` stopped), `?` when gone.
pub fn state_of(pid: u32) -> char {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    s.rfind(')')
        .and_then(|i| s[i + 1..].trim_start().chars().next())
        .unwrap_or('?')
}

/// Whether a `harness fault-agent` started with `token` still runs.
pub fn agent_runs(token: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|d| {
        std::fs::read(d.path().join("cmdline")).is_ok_and(|c| {
            let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
            args.contains(&&b"fault-agent"[..]) && args.contains(&token.as_bytes())
        })
    })
}

/// How many of `ids` the MySQL/MariaDB server at `url` still lists as sessions.
pub async fn mysql_sessions_left(url: &str, ids: &[i64]) -> i64 {
    let mut c = sqlx::MySqlConnection::connect(url).await.unwrap();
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let q = format!("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID IN ({list})");
    sqlx::query_scalar(&q).fetch_one(&mut c).await.unwrap()
}
