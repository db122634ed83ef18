//! The stack's PostgreSQL: the server at `--postgres-url` when it answers, otherwise a private
//! `postgres` from Debian's `postgresql` package (`/usr/lib/postgresql/<newest>/bin`) in
//! `<stack dir>/postgres` on a free port, trust auth for user `postgres`.

use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::{Connection, PgConnection};

use super::mariadb::{with_database, PrivateServer};
use super::process;
use super::StackError;
use crate::event::{Event, Observer, StackStep};

pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// Where Debian's `postgresql-<version>` packages put their binaries.
const DEBIAN_LIB: &str = "/usr/lib/postgresql";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Postgres {
    /// What runs use, with the database: `postgres://postgres@127.0.0.1:PORT/test`.
    pub url: String,
    /// Set when the stack started its own server; `down` stops it and removes `datadir`.
    pub private: Option<PrivateServer>,
}

/// `POSTGRES_URL`, else [`DEFAULT_URL`] (what `harness stack up --postgres-url` defaults to).
pub fn url_from_env() -> String {
    std::env::var("POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// True when a PostgreSQL server accepts a login at `url` within 3 s.
pub async fn answers(url: &str) -> bool {
    match tokio::time::timeout(Duration::from_secs(3), PgConnection::connect(url)).await {
        Ok(Ok(c)) => c.close().await.is_ok(),
        _ => false,
    }
}

/// Uses `url` when it answers, else starts a private server under `dir` with `url`'s database.
pub async fn start(
    url: &str,
    dir: &Path,
    logs: &Path,
    observer: &mut dyn Observer,
) -> Result<Postgres, StackError> {
    if answers(url).await {
        return Ok(Postgres {
            url: url.to_owned(),
            private: None,
        });
    }
    observer.event(Event::Stack(StackStep::Starting {
        component: "private postgres (nothing answers at --postgres-url)",
    }));
    let bin = bin_dir()?;
    let datadir = dir.join("postgres");
    let user = run_as()?;
    init(&bin, &datadir, user)?;
    let port = process::free_port()?;
    let args: Vec<String> = vec![
        "-D".into(),
        datadir.display().to_string(),
        // The socket goes in the data directory, which the server's user owns.
        "-k".into(),
        datadir.display().to_string(),
        "-p".into(),
        port.to_string(),
        "-h".into(),
        "127.0.0.1".into(),
    ];
    let program = bin.join("postgres");
    let log = logs.join("postgres.log");
    let child = process::spawn_as(&program, &args, dir, &log, &[], user)?;
    let server = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let probe = server.clone();
    process::wait_ready(&child, "postgres", Duration::from_secs(60), || {
        answers(&probe)
    })
    .await?;
    let private = PrivateServer { child, datadir };
    let name = database_of(url);
    if let Err(e) = create_database(&server, &name).await {
        stop_private(&private);
        return Err(e);
    }
    Ok(Postgres {
        url: with_database(&server, &name),
        private: Some(private),
    })
}

/// `initdb` into `datadir` (created, and owned by `user` when one is given).
fn init(bin: &Path, datadir: &Path, user: Option<(u32, u32)>) -> Result<(), StackError> {
    // A failed `up` leaves its files for the user to read; initdb wants an empty directory.
    std::fs::remove_dir_all(datadir)
        .or_else(super::mariadb::ignore_missing)
        .map_err(|e| StackError::io(datadir, e))?;
    std::fs::create_dir_all(datadir).map_err(|e| StackError::io(datadir, e))?;
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(datadir, Some(uid), Some(gid))
            .map_err(|e| StackError::io(datadir, e))?;
    }
    let initdb = bin.join("initdb");
    let mut cmd = Command::new(&initdb);
    cmd.arg("-D")
        .arg(datadir)
        .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C"])
        // A throwaway cluster: no fsync of the fresh files.
        .arg("--no-sync");
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid);
    }
    let out = cmd.output().map_err(|e| StackError::Spawn {
        program: initdb.display().to_string(),
        source: e,
    })?;
    if out.status.success() {
        return Ok(());
    }
    let whom = match user {
        Some((uid, _)) => format!(" as uid {uid}, which must be able to reach the directory"),
        None => String::new(),
    };
    Err(StackError::Command {
        what: format!("{} -D {}{whom}", initdb.display(), datadir.display()),
        output: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// The newest `/usr/lib/postgresql/<version>/bin` that has both `initdb` and `postgres`.
fn bin_dir() -> Result<PathBuf, StackError> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(DEBIAN_LIB)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            let complete = bin.join("initdb").is_file() && bin.join("postgres").is_file();
            complete.then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| StackError::Missing {
            what: format!("PostgreSQL's initdb and postgres under {DEBIAN_LIB}/*/bin"),
            hint: "install them (`scripts/setup.sh`, or `apt-get install postgresql`) or pass \
               --postgres-url (POSTGRES_URL) of a server that answers"
                .into(),
        })
}

/// PostgreSQL refuses to run as root: then run it as the `postgres` user (Debian's package
/// creates it), else `nobody`. Anyone else runs it as themselves.
fn run_as() -> Result<Option<(u32, u32)>, StackError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    for name in ["postgres", "nobody"] {
        if let Some(ids) = user_ids(name) {
            return Ok(Some(ids));
        }
    }
    Err(StackError::Missing {
        what: "a user other than root to run postgres as".into(),
        hint: "create a `postgres` user (Debian's postgresql package does)".into(),
    })
}

fn user_ids(name: &str) -> Option<(u32, u32)> {
    let name = CString::new(name).ok()?;
    // SAFETY: getpwnam reads a NUL-terminated name; the record is copied out at once, before
    // any other call could overwrite its static buffer.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return None;
    }
    // SAFETY: non-null, so it points at a valid passwd record.
    let pw = unsafe { &*pw };
    Some((pw.pw_uid, pw.pw_gid))
}

/// The database in `url`'s path, `test` when none is written.
fn database_of(url: &str) -> String {
    let base = url.split('?').next().unwrap_or(url);
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    match base[after_scheme..].split_once('/') {
        Some((_, db)) if !db.is_empty() => db.to_owned(),
        _ => "test".to_owned(),
    }
}

/// Creates database `name` on `server_url` unless it exists.
pub async fn create_database(server_url: &str, name: &str) -> Result<(), StackError> {
    let fail = |source| StackError::Db {
        url: server_url.to_owned(),
        source,
    };
    let mut c = PgConnection::connect(server_url).await.map_err(fail)?;
    let exists = sqlx::query("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(&mut c)
        .await
        .map_err(fail)?
        .is_some();
    if !exists {
        let quoted = name.replace('"', "\"\"");
        sqlx::query(&format!("CREATE DATABASE \"{quoted}\""))
            .execute(&mut c)
            .await
            .map_err(fail)?;
    }
    let _ = c.close().await;
    Ok(())
}

/// SIGINT is PostgreSQL's fast shutdown (SIGTERM would wait for every client to leave).
fn stop_private(p: &PrivateServer) {
    p.child.stop_with(libc::SIGINT, Duration::from_secs(30));
}

impl Postgres {
    pub fn stop(&self) -> Result<(), StackError> {
        if let Some(p) = &self.private {
            stop_private(p);
            std::fs::remove_dir_all(&p.datadir)
                .or_else(super::mariadb::ignore_missing)
                .map_err(|e| StackError::io(&p.datadir, e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::database_of;

    #[test]
    fn database_of_reads_the_path_or_defaults_to_test() {
        assert_eq!(
            database_of("postgres://postgres@127.0.0.1:5432/orders"),
            "orders"
        );
        assert_eq!(database_of("postgres://u:p@h:1/x?sslmode=disable"), "x");
        assert_eq!(database_of("postgres://postgres@127.0.0.1:5432"), "test");
        assert_eq!(database_of("postgres://postgres@127.0.0.1:5432/"), "test");
    }
}
