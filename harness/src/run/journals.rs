//! Before a run: journals of earlier runs with faults not rolled back (their harness was
//! killed) on one of this run's actuators. The run refuses to start on top of them — its
//! "steady state" would be someone else's fault — unless it was told to recover them first
//! (`harness run --recover`); a journal whose harness still runs is never recovered from here.

use super::preflight::Refusal;
use super::Base;
use crate::event::{Event, Observer};
use crate::fault::journal::FaultEvent;
use crate::fault::ledger::{self, Reading};

pub(super) async fn guard(base: &Base<'_>, observer: &mut dyn Observer) -> Result<(), Refusal> {
    let names = super::live::actuators(&base.scenario, &base.target, &base.opts.vars).names();
    let readings =
        ledger::unreverted(&base.opts.out_dir).map_err(|e| Refusal::World(e.to_string()))?;
    let mine: Vec<Reading> = readings
        .into_iter()
        .filter(|r| r.open.iter().any(|o| names.contains(&o.undo.actuator())))
        .collect();
    if mine.is_empty() {
        return Ok(());
    }
    if !base.opts.recover || mine.iter().any(|r| r.writer_alive) {
        return Err(Refusal::World(refusal(&mine)));
    }
    for r in &mine {
        let failed = ledger::recover(r)
            .await
            .map_err(|e| Refusal::World(e.to_string()))?;
        for o in &r.open {
            let event = match failed.iter().find(|(f, _)| f.id == o.id) {
                Some((_, error)) => FaultEvent::RollbackFailed {
                    kind: o.kind.clone(),
                    target: o.target.clone(),
                    error: error.clone(),
                },
                None => FaultEvent::RolledBack {
                    kind: o.kind.clone(),
                    target: o.target.clone(),
                    original: "recovered".into(),
                },
            };
            observer.event(Event::Fault(&event));
        }
        if let Some((o, e)) = failed.first() {
            return Err(Refusal::World(format!(
                "could not recover {} ({}) from {}: {e}",
                o.kind,
                o.target,
                r.path.display()
            )));
        }
    }
    Ok(())
}

/// Names each journal and its open faults, and what to do.
fn refusal(readings: &[Reading]) -> String {
    let mut out =
        String::from("faults of an earlier run are still in force on this run's actuators:");
    for r in readings {
        let dir = r.path.parent().unwrap_or(&r.path).display().to_string();
        let who = match r.writer_alive {
            true => format!("run in progress, harness pid {}", r.pid),
            false => format!("its harness (pid {}) is gone", r.pid),
        };
        out.push_str(&format!("\n  {dir} ({who}):"));
        for o in &r.open {
            out.push_str(&format!(
                "\n    - {} {} (from {})",
                o.kind, o.target, o.plugin
            ));
        }
    }
    let dirs: Vec<String> = readings
        .iter()
        .filter(|r| !r.writer_alive)
        .filter_map(|r| r.path.parent().map(|p| p.display().to_string()))
        .collect();
    if !dirs.is_empty() {
        out.push_str(&format!(
            "\nundo them with `harness faults recover {}` (or run with --recover)",
            dirs.join(" ")
        ));
    }
    out
}
