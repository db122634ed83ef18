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

use crate::report::reproduction::{self, DemoRun};
use crate::run::{self, RunOptions};
use crate::stack::{self, StackError, UpOptions};

pub struct DemoOptions {
    pub dir: PathBuf,
    pub database_url: String,
    pub database: String,
    pub out: PathBuf,
    pub scenarios: Vec<PathBuf>,
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

/// Sets the variables the shipped scenarios expand (`{env:HARNESS_TARGET_URL}` …).
fn export(state: &stack::StackState) {
    for line in state.env_lines() {
        if let Some((k, v)) = line.trim_start_matches("export ").split_once('=') {
            // SAFETY: set before any run starts its worker tasks; nothing reads env concurrently.
            unsafe { std::env::set_var(k, v.trim_matches('\'')) };
        }
    }
}

pub async fn run(
    opts: &DemoOptions,
    interrupt: impl Future<Output = ()>,
) -> Result<DemoOutcome, DemoError> {
    // One signal ends the current run (which rolls back and reports) and skips the rest.
    let (tx, rx) = watch::channel(false);
    let watcher = async move {
        interrupt.await;
        let _ = tx.send(true);
    };
    tokio::pin!(watcher);
    let mut runs = Vec::new();
    let mut interrupted = false;
    let mut signalled = false;
    'presets: for preset in &opts.presets {
        println!("\n=== preset {preset}: stack up ===");
        let up = UpOptions {
            dir: opts.dir.clone(),
            database_url: opts.database_url.clone(),
            database_name: opts.database.clone(),
            with_app: true,
            preset: preset.clone(),
            app_args: vec![],
        };
        let state = stack::up(&up).await?;
        for line in stack::status_lines(&state) {
            println!("{line}");
        }
        export(&state);
        for scenario in &opts.scenarios {
            println!("\n--- {preset}: {} ---", scenario.display());
            let ro = RunOptions {
                scenario: scenario.clone(),
                sets: vec![],
                target: None,
                out_dir: opts.out.clone(),
                time_scale: opts.time_scale,
                progress: true,
            };
            let mut rx = rx.clone();
            let stop = async move {
                let _ = rx.wait_for(|v| *v).await;
            };
            let run_fut = run::run(&ro, stop);
            tokio::pin!(run_fut);
            let result = loop {
                tokio::select! {
                    r = &mut run_fut => break r,
                    _ = &mut watcher, if !signalled => signalled = true,
                }
            };
            let outcome = match result {
                Ok(o) => o,
                Err(e) => {
                    if !opts.keep {
                        let _ = stack::down(&opts.dir);
                    }
                    return Err(e.into());
                }
            };
            print!("{}", crate::report::table::render(&outcome.summary));
            println!("{}", run::describe(&outcome.dir));
            let was_interrupted = outcome.summary.status == "interrupted";
            runs.push(DemoRun {
                preset: preset.clone(),
                summary: outcome.summary,
                dir: outcome.dir,
            });
            if was_interrupted {
                interrupted = true;
                if !opts.keep {
                    stack::down(&opts.dir)?;
                }
                break 'presets;
            }
        }
        if !opts.keep || preset != opts.presets.last().expect("at least one preset") {
            stack::down(&opts.dir)?;
            println!("stack down");
        }
    }
    let markdown = write_markdown(&opts.out, &runs)?;
    Ok(DemoOutcome {
        runs,
        markdown,
        interrupted,
    })
}

fn write_markdown(out: &Path, runs: &[DemoRun]) -> Result<PathBuf, DemoError> {
    let stamp = crate::report::summary::file_stamp(SystemTime::now());
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
