//! `harness report RUN_DIR --format html|md|junit`: re-renders one format from an earlier
//! run's `summary.json` and `timeseries.csv`. Inputs are never written; the output replaces its
//! file only once it is fully rendered (temp file + rename).

use std::path::{Path, PathBuf};

use super::csvread::Table;
use super::Summary;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Html,
    Md,
    Junit,
}

/// A `--format` that is none of html, md, junit (the text as given).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format `{0}` (html, md, junit)")]
pub struct UnknownFormat(pub String);

impl std::str::FromStr for Format {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Self, UnknownFormat> {
        match s {
            "html" => Ok(Format::Html),
            "md" | "markdown" => Ok(Format::Md),
            "junit" => Ok(Format::Junit),
            other => Err(UnknownFormat(other.to_owned())),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegenError {
    #[error("{path}: {message}")]
    Input { path: PathBuf, message: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn read(path: &Path) -> Result<String, RegenError> {
    std::fs::read_to_string(path).map_err(|e| RegenError::Input {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

pub fn load_summary(dir: &Path) -> Result<Summary, RegenError> {
    let path = dir.join("summary.json");
    let text = read(&path)?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| RegenError::Input {
        path: path.clone(),
        message: format!("not valid JSON: {e}"),
    })?;
    match value.get("schema").and_then(|v| v.as_str()) {
        Some(super::summary::SCHEMA) => {}
        other => {
            return Err(RegenError::Input {
                path,
                message: format!(
                    "unsupported schema {other:?}; this harness reads {}",
                    super::summary::SCHEMA
                ),
            })
        }
    }
    serde_json::from_value(value).map_err(|e| RegenError::Input {
        path,
        message: format!("does not match {}: {e}", super::summary::SCHEMA),
    })
}

pub fn load_table(dir: &Path) -> Result<Table, RegenError> {
    let path = dir.join("timeseries.csv");
    Table::parse(&read(&path)?).map_err(|e| RegenError::Input {
        path,
        message: e.to_string(),
    })
}

/// Renders `format` for the run in `dir`; returns the file written.
pub fn regenerate(dir: &Path, format: Format) -> Result<PathBuf, RegenError> {
    let summary = load_summary(dir)?;
    let (name, body) = match format {
        Format::Html => (
            "report.html",
            super::html::render(&summary, &load_table(dir)?),
        ),
        Format::Md => ("report.md", super::markdown::render(&summary)),
        Format::Junit => ("junit.xml", super::junit::xml(&summary)),
    };
    let out = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, body).map_err(|source| RegenError::Write {
        path: tmp.clone(),
        source,
    })?;
    std::fs::rename(&tmp, &out).map_err(|source| RegenError::Write {
        path: out.clone(),
        source,
    })?;
    Ok(out)
}
