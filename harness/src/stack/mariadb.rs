//! The stack's database: the server at `DATABASE_URL` when it answers, otherwise a private
//! `mariadbd` from the system binaries in a temporary data directory on a free port.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::{Connection, MySqlConnection};

use super::process::{self, Child};
use super::StackError;
use crate::event::{Event, Observer, StackStep};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Database {
    /// Server URL without a database, e.g. `mysql://root@127.0.0.1:3306`.
    pub server_url: String,
    /// Set when the stack started its own server; `down` stops it and removes `datadir`.
    pub private: Option<PrivateServer>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PrivateServer {
    pub child: Child,
    pub datadir: PathBuf,
}

/// True when a MySQL-protocol server accepts a login at `url` within a couple of seconds.
pub async fn answers(url: &str) -> bool {
    match tokio::time::timeout(Duration::from_secs(3), MySqlConnection::connect(url)).await {
        Ok(Ok(c)) => c.close().await.is_ok(),
        _ => false,
    }
}

/// `url` with its database path replaced by `db` (or removed when `db` is empty).
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[after_scheme..]
        .find('/')
        .map(|i| i + after_scheme)
        .unwrap_or(base.len());
    let mut out = base[..host_end].to_owned();
    if !db.is_empty() {
        out.push('/');
        out.push_str(db);
    }
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

pub async fn create_database(server_url: &str, name: &str) -> Result<(), StackError> {
    let mut c = MySqlConnection::connect(server_url)
        .await
        .map_err(|e| StackError::Db {
            url: server_url.to_owned(),
            source: e,
        })?;
    sqlx::query(&format!("CREATE DATABASE IF NOT EXISTS `{name}`"))
        .execute(&mut c)
        .await
        .map_err(|e| StackError::Db {
            url: server_url.to_owned(),
            source: e,
        })?;
    let _ = c.close().await;
    Ok(())
}

/// Uses `url` when it answers, else starts a private server under `dir`.
pub async fn start(
    url: &str,
    dir: &Path,
    logs: &Path,
    observer: &mut dyn Observer,
) -> Result<Database, StackError> {
    let server_url = with_database(url, "");
    if answers(&server_url).await {
        return Ok(Database {
            server_url,
            private: None,
        });
    }
    observer.event(Event::Stack(StackStep::PrivateDatabase {
        url: &server_url,
    }));
    let datadir = dir.join("mariadb");
    std::fs::create_dir_all(&datadir).map_err(|e| StackError::io(&datadir, e))?;
    let install = find_program(&["mariadb-install-db", "mysql_install_db"])?;
    let server = find_program(&["mariadbd", "mysqld"])?;
    let user = if unsafe { libc::geteuid() } == 0 {
        vec!["--user=root".to_owned()]
    } else {
        vec![]
    };
    let out = Command::new(&install)
        .arg("--no-defaults")
        .arg(format!("--datadir={}", datadir.display()))
        .arg("--auth-root-authentication-method=normal")
        .arg("--skip-test-db")
        .args(&user)
        .output()
        .map_err(|e| StackError::Spawn {
            program: install.display().to_string(),
            source: e,
        })?;
    if !out.status.success() {
        return Err(StackError::Command {
            what: format!("{} --datadir={}", install.display(), datadir.display()),
            output: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    let port = process::free_port()?;
    let mut args = vec![
        "--no-defaults".to_owned(),
        format!("--datadir={}", datadir.display()),
        format!("--port={port}"),
        "--bind-address=127.0.0.1".to_owned(),
        format!("--socket={}", datadir.join("mysqld.sock").display()),
        format!("--pid-file={}", datadir.join("mysqld.pid").display()),
        "--innodb-buffer-pool-size=256M".to_owned(),
        "--max-connections=500".to_owned(),
    ];
    args.extend(user);
    let child = process::spawn(&server, &args, dir, &logs.join("mariadbd.log"), &[])?;
    let server_url = format!("mysql://root@127.0.0.1:{port}");
    let probe = server_url.clone();
    process::wait_ready(&child, "mariadbd", Duration::from_secs(60), || {
        answers(&probe)
    })
    .await?;
    Ok(Database {
        server_url,
        private: Some(PrivateServer { child, datadir }),
    })
}

fn find_program(names: &[&str]) -> Result<PathBuf, StackError> {
    for n in names {
        for dir in ["/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"] {
            let p = Path::new(dir).join(n);
            if p.exists() {
                return Ok(p);
            }
        }
    }
    Err(StackError::Missing {
        what: names.join(" or "),
        hint: "install MariaDB's server binaries (`apt-get install mariadb-server`) or set DATABASE_URL to a server that answers".into(),
    })
}

impl Database {
    pub fn stop(&self) -> Result<(), StackError> {
        if let Some(p) = &self.private {
            p.child.stop(Duration::from_secs(30));
            std::fs::remove_dir_all(&p.datadir)
                .or_else(ignore_missing)
                .map_err(|e| StackError::io(&p.datadir, e))?;
        }
        Ok(())
    }
}

pub(super) fn ignore_missing(e: std::io::Error) -> std::io::Result<()> {
    if e.kind() == std::io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn with_database_swaps_only_the_path() {
        assert_eq!(
            with_database("mysql://root@127.0.0.1:3306/test", "h"),
            "mysql://root@127.0.0.1:3306/h"
        );
        assert_eq!(
            with_database("mysql://root@127.0.0.1:3306", "h"),
            "mysql://root@127.0.0.1:3306/h"
        );
        assert_eq!(
            with_database("mysql://u:p@h:1/test?ssl-mode=disabled", ""),
            "mysql://u:p@h:1?ssl-mode=disabled"
        );
    }
}
