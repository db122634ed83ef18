//! `<stack dir>/pids/<part>.pid`: one pid file per child the stack started, for process faults
//! (`[actuators.processes.NAME]` names its process by a pid file). Rewritten from the state at
//! every save, so a restarted part's file names its new pid; `down` removes the directory.

use std::path::{Path, PathBuf};

use super::StackError;

const DIR: &str = "pids";

/// `<dir>/pids/<part>.pid`.
pub fn path(dir: &Path, part: &str) -> PathBuf {
    dir.join(DIR).join(format!("{part}.pid"))
}

/// Writes each `(part, pid)` and removes the files of parts not listed (no longer running).
pub fn write(dir: &Path, parts: &[(&str, u32)]) -> Result<(), StackError> {
    let pids = dir.join(DIR);
    std::fs::create_dir_all(&pids).map_err(|e| StackError::io(&pids, e))?;
    for (part, pid) in parts {
        let file = path(dir, part);
        if std::fs::read_to_string(&file).is_ok_and(|t| t.trim() == pid.to_string()) {
            continue;
        }
        // Renamed into place: a reader never sees an empty or half-written file.
        let tmp = file.with_extension("pid.tmp");
        std::fs::write(&tmp, format!("{pid}\n")).map_err(|e| StackError::io(&tmp, e))?;
        std::fs::rename(&tmp, &file).map_err(|e| StackError::io(&file, e))?;
    }
    let listed = |name: &str| parts.iter().any(|(p, _)| format!("{p}.pid") == name);
    for entry in std::fs::read_dir(&pids).map_err(|e| StackError::io(&pids, e))? {
        let entry = entry.map_err(|e| StackError::io(&pids, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".pid") && !listed(&name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_updates_and_prunes() {
        let dir = std::env::temp_dir().join(format!("harness-pids-test-{}", std::process::id()));
        write(&dir, &[("broker", 10), ("app", 11)]).unwrap();
        let read = |part| std::fs::read_to_string(path(&dir, part)).ok();
        assert_eq!(read("broker").as_deref(), Some("10\n"));
        write(&dir, &[("broker", 12)]).unwrap();
        assert_eq!(read("broker").as_deref(), Some("12\n"));
        assert_eq!(
            read("app"),
            None,
            "a part no longer recorded has no pid file"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
