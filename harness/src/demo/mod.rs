//! `harness demo` (the README's first command): for each preset, bring the local stack up,
//! run ST-001 and peak through it, bring it down; then print the verdict table and the
//! reproduction table, and write both to `<out>/demo-<stamp>.md` next to the run reports.
//!
//! Why a fresh stack per preset: the presets differ in the topic's partition count, and a
//! Kafka topic keeps the count it was created with.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use tokio::sync::watch;

use crate::event::{Event, Observer, StackStep};
mod reproduction;

use crate::report::summary::RunStatus;
use crate::run::{self, RunOptions};
use crate::scenario::Vars;
use crate::stack::{self, StackError, UpOptions};
pub use reproduction::{reproduction_table, verdict_table, DemoRun};

pub struct DemoOptions {
    pub dir: PathBuf,
    pub database_url: String,
    pub database: String,
    pub out: PathBuf,
    pub scenarios: Vec<PathBuf>,
    /// Run after `scenarios` on the incident preset only: injected stand-ins for what the
    /// incident's own system did (the broker-pause peak).
    pub incident_only: Vec<PathBuf>,
    pub presets: Vec<String>,
    pub time_scale: f64,
    pub keep: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Stack(#[from] StackError),
    #[error(transparent)]
    Run(#[from] run::RunError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub struct DemoOutcome {
    pub runs: Vec<DemoRun>,
    pub markdown: PathBuf,
    pub interrupted: bool,
}

/// Runs every scenario on every preset, each preset on a fresh stack, telling `observer`
/// what happens; one interrupt ends the current run (rolled back, reported) and skips the rest.
pub async fn run(
    opts: &DemoOptions,
    interrupt: impl Future<Output = ()>,
    observer: &mut dyn Observer,
) -> Result<DemoOutcome, DemoError> {
    let (tx, rx) = watch::channel(false);
    let demo = all_presets(opts, rx, observer);
    tokio::pin!(demo);
    tokio::select! {
        done = &mut demo => return done,
        _ = interrupt => { let _ = tx.send(true); }
    }
    demo.await
}

async fn all_presets(
    opts: &DemoOptions,
    stop: watch::Receiver<bool>,
    observer: &mut dyn Observer,
) -> Result<DemoOutcome, DemoError> {
    let mut runs = Vec::new();
    let mut interrupted = false;
    for preset in &opts.presets {
        observer.event(Event::DemoPreset { preset });
        let state = stack::up(&up_options(opts, preset), observer).await?;
        observer.event(Event::Stack(StackStep::Up {
            lines: &stack::status_lines(&state),
        }));
        let vars: Vars = state
            .vars()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        let extra = opts.incident_only.iter().filter(|_| preset == "incident");
        for scenario in opts.scenarios.iter().chain(extra) {
            let run = match one_run(opts, preset, scenario, &vars, stop.clone(), observer).await {
                Ok(run) => run,
                Err(e) => {
                    if !opts.keep {
                        let _ = stack::down(&opts.dir);
                    }
                    return Err(e);
                }
            };
            interrupted = run.summary.status == RunStatus::Interrupted;
            runs.push(run);
            if interrupted {
                break;
            }
        }
        let last = preset == opts.presets.last().expect("at least one preset");
        if !opts.keep || (!interrupted && !last) {
            stack::down(&opts.dir)?;
            observer.event(Event::Stack(StackStep::Down));
        }
        if interrupted {
            break;
        }
    }
    let markdown = write_markdown(&opts.out, &runs)?;
    Ok(DemoOutcome {
        runs,
        markdown,
        interrupted,
    })
}

/// One scenario on the running stack of `preset`, with the stack's variables.
async fn one_run(
    opts: &DemoOptions,
    preset: &str,
    scenario: &Path,
    vars: &Vars,
    mut stop: watch::Receiver<bool>,
    observer: &mut dyn Observer,
) -> Result<DemoRun, DemoError> {
    observer.event(Event::DemoScenario { preset, scenario });
    let ro = RunOptions {
        scenario: scenario.to_owned(),
        sets: vec![],
        target: None,
        out_dir: opts.out.clone(),
        time_scale: opts.time_scale,
        progress: true,
        vars: vars.clone(),
        allow_huge: false,
        hurry: None,
        recover: false,
        listen: None,
        segment: Default::default(),
        coordinate: None,
    };
    let stopped = async move {
        let _ = stop.wait_for(|v| *v).await;
    };
    let outcome = run::run_observed(&ro, stopped, observer).await?;
    observer.event(Event::RunFinished {
        summary: &outcome.summary,
        dir: &outcome.dir,
    });
    Ok(DemoRun {
        preset: preset.to_owned(),
        summary: outcome.summary,
        dir: outcome.dir,
    })
}

fn up_options(opts: &DemoOptions, preset: &str) -> UpOptions {
    UpOptions {
        dir: opts.dir.clone(),
        database_url: opts.database_url.clone(),
        database_name: opts.database.clone(),
        postgres_url: stack::postgres::url_from_env(),
        with_app: true,
        preset: preset.to_owned(),
        app_args: vec![],
        prometheus_rules: stack::default_rules(),
        scrape_live: stack::DEFAULT_LIVE.to_owned(),
    }
}

fn write_markdown(out: &Path, runs: &[DemoRun]) -> Result<PathBuf, DemoError> {
    let stamp = crate::clock::file_stamp(SystemTime::now());
    let path = out.join(format!("demo-{stamp}.md"));
    let text = format!(
        "# Demo: ST-001 and peak on both presets\n\n## Verdicts\n\n{}\n## The incident, reproduced\n\n{}\nEach run's full report (report.html, report.md, summary.json, timeseries.csv, junit.xml) is in the directory named in the verdict table.\n",
        reproduction::verdict_table(runs),
        reproduction::reproduction_table(runs)
    );
    std::fs::create_dir_all(out).map_err(|source| DemoError::Write {
        path: out.to_owned(),
        source,
    })?;
    std::fs::write(&path, text).map_err(|source| DemoError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}
