//! The terminal: the one place that words the library's events. Progress, faults and stack
//! steps go to stderr; the stack's summary, the demo's headings and the end-of-run table to
//! stdout.

use std::path::Path;

use super::{progress, table};
use crate::event::{Event, Observer, StackStep};
use crate::fault::journal::FaultEvent;

/// Prints every event; the progress line only when `progress` is set.
pub struct Console {
    progress: bool,
}

impl Console {
    pub fn new(progress: bool) -> Console {
        Console { progress }
    }
}

impl Observer for Console {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Progress(p) => {
                if self.progress {
                    eprintln!("{}", progress::line(&p));
                }
            }
            Event::Fault(e) => eprintln!("{}", fault_line(e)),
            Event::Aborting { reason } => eprintln!("aborting: {reason}"),
            Event::Stopping { error } => {
                eprintln!("error: {error}; stopping the load and rolling faults back")
            }
            Event::NotStarted { error } => eprintln!("error: {error}"),
            Event::AwaitingWorkers { addr, workers } => {
                eprintln!("coordinator: waiting on {addr} for {workers} worker(s) to dial in")
            }
            Event::Listening { url, token } => match token {
                Some(t) => eprintln!(
                    "live: {url}#token={t}  (dashboard; /metrics, /api/run, /api/control/* need `Authorization: Bearer {t}`)"
                ),
                None => eprintln!("live: {url}  (dashboard; /metrics, /api/run, /api/control/*)"),
            },
            Event::Control {
                at_s,
                action,
                result,
                ok,
            } => match ok {
                true => eprintln!("control at {at_s:.0}s: {action}: {result}"),
                false => eprintln!("control at {at_s:.0}s: {action} refused: {result}"),
            },
            Event::Interrupted => eprintln!(
                "interrupted: stopping the load, rolling faults back and writing a partial report…"
            ),
            Event::InterruptedAgain => eprintln!(
                "interrupted again: leaving requests in flight; rolling faults back and writing the report now"
            ),
            Event::Stack(step) => print_stack(step),
            Event::DemoPreset { preset } => println!("\n=== preset {preset}: stack up ==="),
            Event::DemoScenario { preset, scenario } => {
                println!("\n--- {preset}: {} ---", scenario.display())
            }
            Event::RunFinished { summary, dir } => {
                print!("{}", table::render(summary));
                println!("{}", describe(dir));
            }
        }
    }
}

/// Where a run's report went, and what is in it.
pub fn describe(dir: &Path) -> String {
    format!(
        "report: {}/ (report.html, report.md, summary.json, timeseries.csv, junit.xml)",
        dir.display()
    )
}

fn fault_line(e: &FaultEvent) -> String {
    match e {
        FaultEvent::Applied {
            plugin,
            kind,
            target,
            value,
        } => format!("fault applied: {kind} {target} = {value} (by {plugin})"),
        FaultEvent::RolledBack {
            kind,
            target,
            original,
        } => format!("fault rolled back: {kind} {target} -> {original}"),
        FaultEvent::RollbackFailed {
            kind,
            target,
            error,
        } => format!("fault rollback FAILED: {kind} {target}: {error}"),
    }
}

/// `harness stack up` prints its result to stdout, the steps on the way to stderr.
fn print_stack(step: StackStep<'_>) {
    match step {
        StackStep::Up { lines } => {
            for l in lines {
                println!("{l}");
            }
        }
        StackStep::Down => println!("stack down"),
        other => eprintln!("{}", stack_line(&other)),
    }
}

fn stack_line(step: &StackStep<'_>) -> String {
    match step {
        StackStep::AlreadyUp { dir } => format!("stack already up ({})", dir.display()),
        StackStep::Restarting => {
            "stack state is stale or differs from what was asked; restarting it".into()
        }
        StackStep::UpFailed => "stack up failed; stopping what was started".into(),
        StackStep::Starting { component } => format!("  {component}…"),
        StackStep::StartingApp { preset } => format!("  target app ({preset})…"),
        StackStep::PrivateDatabase { url } => {
            format!("  database at {url} does not answer; starting a private mariadbd")
        }
        StackStep::InstallingBroker { version } => format!(
            "  tansu {version} not found; installing it once for this machine (cargo install --debug, about 7 min on 2 cores)…"
        ),
        StackStep::Up { .. } | StackStep::Down => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_faults_and_the_report_dir() {
        let applied = FaultEvent::Applied {
            plugin: "peak".into(),
            kind: "app".into(),
            target: "order_hold_ms".into(),
            value: "250".into(),
        };
        assert_eq!(
            fault_line(&applied),
            "fault applied: app order_hold_ms = 250 (by peak)"
        );
        let failed = FaultEvent::RollbackFailed {
            kind: "toxic".into(),
            target: "latency".into(),
            error: "refused".into(),
        };
        assert_eq!(
            fault_line(&failed),
            "fault rollback FAILED: toxic latency: refused"
        );
        assert_eq!(
            describe(Path::new("reports/r1")),
            "report: reports/r1/ (report.html, report.md, summary.json, timeseries.csv, junit.xml)"
        );
        assert_eq!(
            stack_line(&StackStep::StartingApp { preset: "incident" }),
            "  target app (incident)…"
        );
    }
}
