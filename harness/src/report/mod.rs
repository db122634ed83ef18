//! Everything the harness prints or writes about a run. Only this module formats output: the
//! live progress line, the end-of-run tables, and the files in `reports/<run-id>/`
//! (`summary.json`, `k6-summary.json`, `timeseries.csv`, `junit.xml`, `report.md`,
//! `report.html`).

pub mod compare;
pub mod console;
pub mod csvread;
pub mod html;
pub mod junit;
pub mod k6_summary;
pub mod markdown;
pub mod progress;
pub mod regen;
pub mod summary;
pub mod svg;
pub mod table;
pub mod timeseries;

use std::path::Path;

pub use summary::Summary;

#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub struct ReportError {
    pub path: String,
    pub source: std::io::Error,
}

/// Said under every report's thresholds: our one deliberate difference from k6's verdicts.
pub const NO_DATA_RULE: &str = "A threshold whose metric had no samples fails here (k6 passes \
it): a gate that judged nothing must not pass a CI job.";

/// Creates the run directory before any load and writes the scenario as it was run into it
/// (`scenario.toml`): an unwritable `--out` is found before the first request.
pub fn start_dir(dir: &Path, scenario: &str) -> Result<(), ReportError> {
    let err = |p: &Path| {
        let path = p.display().to_string();
        move |source| ReportError { path, source }
    };
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    let file = dir.join("scenario.toml");
    std::fs::write(&file, scenario).map_err(err(&file))
}

/// Writes every file of a run directory (created if needed).
pub fn write_all(
    dir: &Path,
    summary: &Summary,
    windows: &[crate::metrics::Window],
) -> Result<(), ReportError> {
    let io = |p: &Path| {
        let p = p.display().to_string();
        move |source| ReportError {
            path: p.clone(),
            source,
        }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let write = |name: &str, body: String| {
        let p = dir.join(name);
        std::fs::write(&p, body).map_err(io(&p))
    };
    write(
        "summary.json",
        serde_json::to_string_pretty(summary).expect("summary serialises"),
    )?;
    let csv = timeseries::csv(windows);
    // The HTML reads the series from the CSV, as `harness report` does later.
    let table = csvread::Table::parse(&csv).expect("our own CSV parses");
    write("timeseries.csv", csv)?;
    write("junit.xml", junit::xml(summary))?;
    write("report.md", markdown::render(summary))?;
    write("report.html", html::render(summary, &table))?;
    Ok(())
}

/// Writes `value` as pretty JSON to `path`.
pub fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), ReportError> {
    let body = serde_json::to_string_pretty(value).expect("JSON serialises");
    std::fs::write(path, body).map_err(|source| ReportError {
        path: path.display().to_string(),
        source,
    })
}

/// ASCII letters (lowercased) and digits kept, everything else `-`.
pub fn slug(title: &str) -> String {
    title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// A SQL check's observed value as the reports show it: the error, else the number.
fn sql_observed(c: &crate::probe::sql::SqlResult) -> String {
    match (&c.error, c.observed) {
        (Some(e), _) => format!("error: {e}"),
        (None, Some(v)) => v.to_string(),
        (None, None) => String::new(),
    }
}

/// What the faults of a run left in force, in words: nothing, or which and what to do.
pub(crate) fn left_behind(faults: &[crate::fault::journal::FaultRecord]) -> String {
    let left: Vec<String> = faults
        .iter()
        .filter(|f| f.active() || f.rollback_error.is_some())
        .map(|f| format!("{} {}", f.kind, f.target))
        .collect();
    match left.as_slice() {
        [] => format!(
            "Left behind: nothing — all {} fault(s) rolled back.",
            faults.len()
        ),
        _ => format!(
            "May still be in force: {}; undo with `harness faults recover <this run's directory>`.",
            left.join("; ")
        ),
    }
}
