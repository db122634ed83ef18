//! The fault journal on disk, `faults.jsonl` in the run directory: one JSON line per step,
//! written and fsynced *before* the step's effect (an intent before a fault is applied) so a
//! harness killed at any instant leaves a file that names everything it may have changed, and
//! how to undo it. `harness faults recover` reads it ([`unreverted`]) and undoes what is left;
//! `harness run` refuses to start while such a journal exists for its actuators.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::undo::Undo;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("fault journal {path}: {message}")]
    Io { path: String, message: String },
    #[error("fault journal {path}:{line}: {message}")]
    Parse {
        path: String,
        line: usize,
        message: String,
    },
}

/// The journal's file name inside a run directory.
pub const FILE: &str = "faults.jsonl";

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Line {
    /// The run that writes this journal: its pid tells a live run from a dead one.
    Begin { pid: u32, started_at: String },
    /// About to apply fault `id`; `undo` is what takes it back (also if the apply is cut off).
    Intent {
        id: u32,
        plugin: String,
        kind: String,
        target: String,
        undo: Undo,
    },
    /// Fault `id` is now undone by `undo` (a replaced agent, a re-read pid).
    Update { id: u32, undo: Undo },
    /// Fault `id` was undone (or its apply failed and its undo succeeded).
    Reverted { id: u32, at: String },
    /// Rollback of `id` failed.
    Failed { id: u32, error: String },
}

/// Appends lines to one journal file, each fsynced before `write` returns.
pub struct Ledger {
    path: PathBuf,
    file: File,
}

impl Ledger {
    pub fn create(path: &Path) -> Result<Ledger, LedgerError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| io_error(path, e))?;
        let mut l = Ledger {
            path: path.to_owned(),
            file,
        };
        l.write(&Line::Begin {
            pid: std::process::id(),
            started_at: crate::clock::rfc3339(std::time::SystemTime::now()),
        })?;
        Ok(l)
    }

    pub fn write(&mut self, line: &Line) -> Result<(), LedgerError> {
        let mut text = serde_json::to_string(line).expect("journal line serialises");
        text.push('\n');
        self.file
            .write_all(text.as_bytes())
            .and_then(|_| self.file.sync_data())
            .map_err(|e| io_error(&self.path, e))
    }
}

fn io_error(path: &Path, e: std::io::Error) -> LedgerError {
    LedgerError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// A fault a journal says may still be in force.
#[derive(Debug, Clone, PartialEq)]
pub struct Open {
    pub id: u32,
    pub plugin: String,
    pub kind: String,
    pub target: String,
    pub undo: Undo,
}

/// What one journal file says: who wrote it and which faults are not known to be undone.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub path: PathBuf,
    /// The writer's pid, and whether that pid still runs a harness (a run in progress).
    pub pid: u32,
    pub writer_alive: bool,
    pub open: Vec<Open>,
}

/// Reads `path`; a torn last line (the writer died mid-write) is ignored, any other bad line
/// is an error.
pub fn read(path: &Path) -> Result<Reading, LedgerError> {
    let text = std::fs::read_to_string(path).map_err(|e| io_error(path, e))?;
    let lines: Vec<&str> = text.lines().collect();
    let mut pid = 0;
    let mut open: Vec<Open> = Vec::new();
    for (i, raw) in lines.iter().enumerate() {
        let line = match serde_json::from_str::<Line>(raw) {
            Ok(l) => l,
            Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => break,
            Err(e) => {
                return Err(LedgerError::Parse {
                    path: path.display().to_string(),
                    line: i + 1,
                    message: e.to_string(),
                })
            }
        };
        match line {
            Line::Begin { pid: p, .. } => pid = p,
            Line::Intent {
                id,
                plugin,
                kind,
                target,
                undo,
            } => open.push(Open {
                id,
                plugin,
                kind,
                target,
                undo,
            }),
            Line::Update { id, undo } => {
                if let Some(o) = open.iter_mut().find(|o| o.id == id) {
                    o.undo = undo;
                }
            }
            Line::Reverted { id, .. } => open.retain(|o| o.id != id),
            Line::Failed { .. } => {}
        }
    }
    // Nothing to undo on the load side once its process is gone.
    open.retain(|o| !matches!(o.undo, Undo::HotShare { .. }));
    Ok(Reading {
        path: path.to_owned(),
        pid,
        writer_alive: pid != std::process::id() && harness_alive(pid),
        open,
    })
}

/// Whether `pid` runs a `harness` (not a zombie).
fn harness_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let (Some(a), Some(b)) = (stat.find('('), stat.rfind(')')) else {
        return false;
    };
    &stat[a + 1..b] == "harness" && !stat[b + 1..].trim_start().starts_with('Z')
}

/// The journals under `root` (each run directory's `faults.jsonl`, and `root`'s own when it is
/// a run directory) with faults not known to be undone, oldest first.
pub fn unreverted(root: &Path) -> Result<Vec<Reading>, LedgerError> {
    let mut files = Vec::new();
    if root.join(FILE).is_file() {
        files.push(root.join(FILE));
    }
    if let Ok(dirs) = std::fs::read_dir(root) {
        for d in dirs.flatten() {
            let f = d.path().join(FILE);
            if f.is_file() {
                files.push(f);
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let r = read(&f)?;
        if !r.open.is_empty() {
            out.push(r);
        }
    }
    Ok(out)
}

/// Undoes every open fault of `reading`, newest first, appending what happened to its file.
/// Returns the (fault, error) pairs that could not be undone.
pub async fn recover(reading: &Reading) -> Result<Vec<(Open, String)>, LedgerError> {
    let file = OpenOptions::new()
        .append(true)
        .open(&reading.path)
        .map_err(|e| io_error(&reading.path, e))?;
    let mut ledger = Ledger {
        path: reading.path.clone(),
        file,
    };
    let logs = reading.path.parent().unwrap_or(Path::new("."));
    let mut failed = Vec::new();
    for o in reading.open.iter().rev() {
        match o.undo.run(logs).await {
            Ok(()) => ledger.write(&Line::Reverted {
                id: o.id,
                at: crate::clock::rfc3339(std::time::SystemTime::now()),
            })?,
            Err(error) => {
                ledger.write(&Line::Failed {
                    id: o.id,
                    error: error.clone(),
                })?;
                failed.push((o.clone(), error));
            }
        }
    }
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toxic(id: u32) -> Line {
        Line::Intent {
            id,
            plugin: "p".into(),
            kind: "toxic".into(),
            target: "lat on db".into(),
            undo: Undo::Toxic {
                api: "http://127.0.0.1:1".into(),
                proxy: "db".into(),
                name: format!("t{id}"),
            },
        }
    }

    #[test]
    fn a_journal_names_the_faults_not_reverted_and_survives_a_torn_last_line() {
        let dir = std::env::temp_dir().join(format!("harness-ledger-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("run1")).unwrap();
        let path = dir.join("run1").join(FILE);
        let _ = std::fs::remove_file(&path);
        let mut l = Ledger::create(&path).unwrap();
        l.write(&toxic(0)).unwrap();
        l.write(&toxic(1)).unwrap();
        l.write(&Line::Reverted {
            id: 0,
            at: "now".into(),
        })
        .unwrap();
        l.write(&Line::Intent {
            id: 2,
            plugin: "p".into(),
            kind: "hot-share".into(),
            target: "g".into(),
            undo: Undo::HotShare {
                generator: "g".into(),
                original: 0.1,
            },
        })
        .unwrap();
        drop(l);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"op\":\"reverted\",\"id\":1").unwrap();
        let r = read(&path).unwrap();
        assert_eq!(r.pid, std::process::id());
        assert!(
            !r.writer_alive,
            "this process is the writer, not another live run"
        );
        assert_eq!(r.open.iter().map(|o| o.id).collect::<Vec<_>>(), [1]);
        let all = unreverted(&dir).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].path, path);
        std::fs::write(dir.join("run1").join(FILE), "{\"op\":\"nonsense\"}\n{}\n").unwrap();
        let e = read(&path).unwrap_err().to_string();
        assert!(e.contains(":1:"), "{e}");
    }
}
