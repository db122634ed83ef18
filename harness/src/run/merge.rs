//! `harness merge WORKER_DIRS… --out DIR`: a distributed run rebuilt offline from its
//! workers' interval logs. The recorder is fed every window of every worker, so the summary,
//! thresholds and reports are what one process fed the same samples would give. The workers'
//! segments must tile the run exactly: a missing or doubled segment is refused, never merged
//! into a verdict on part of the load.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::summary::{self, Findings, Status};
use super::window_log::{self, META};
use super::{Base, RunError, RunOptions, RunOutcome};
use crate::plugin::Limits;
use crate::scenario::Segment;
use crate::verdict::Judges;

/// What a worker directory says about its part (`segment.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SegmentMeta {
    /// `FROM:TO`.
    pub segment: String,
    /// The sequence's points, comma-separated.
    pub sequence: String,
    pub target: String,
    /// The scenario file the worker ran (its data files and plugins are beside it).
    #[serde(default)]
    pub scenario: Option<PathBuf>,
    pub time_scale: f64,
    /// The load's length on this worker.
    pub elapsed_s: f64,
    /// Why the worker's window log stopped early (then it holds only part of its load).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{0}")]
    Read(String),
    #[error("the workers ran different scenarios: {0} differs from {1}")]
    Scenarios(String, String),
    #[error("the segments do not tile the run: {0}")]
    Tiling(String),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("thresholds: {0}")]
    Judges(String),
}

/// Merges the worker directories `dirs` into a run written at `out`.
pub async fn merge(
    dirs: &[PathBuf],
    out: &Path,
    scenario: Option<&Path>,
) -> Result<RunOutcome, MergeError> {
    let metas = read_metas(dirs)?;
    check_tiling(dirs, &metas)?;
    let text = std::fs::read(dirs[0].join("scenario.toml"))
        .map_err(|e| MergeError::Read(format!("{}/scenario.toml: {e}", dirs[0].display())))?;
    for d in &dirs[1..] {
        if std::fs::read(d.join("scenario.toml")).ok().as_deref() != Some(&text[..]) {
            let (a, b) = (d.display().to_string(), dirs[0].display().to_string());
            return Err(MergeError::Scenarios(a, b));
        }
    }
    let opts = RunOptions {
        scenario: scenario.map(Path::to_owned).unwrap_or_else(|| {
            // The worker's own file when it is still there (data files resolve beside it).
            let original = metas[0].scenario.clone().filter(|p| p.exists());
            original.unwrap_or_else(|| dirs[0].join("scenario.toml"))
        }),
        sets: Vec::new(),
        target: Some(metas[0].target.clone()),
        out_dir: out.parent().unwrap_or(Path::new(".")).to_owned(),
        time_scale: metas[0].time_scale,
        progress: false,
        vars: Default::default(),
        allow_huge: true,
        hurry: None,
        recover: false,
        listen: None,
        segment: Segment::whole(),
        coordinate: None,
    };
    let mut base = Base::new(&opts)?;
    base.dir = out.to_owned();
    if let Some(name) = out.file_name() {
        base.run_id = name.to_string_lossy().into_owned();
    }
    for d in dirs {
        for w in window_log::read_dir(d).map_err(MergeError::Read)? {
            base.recorder.absorb(&w, 0);
        }
    }
    let longest = metas.iter().map(|m| m.elapsed_s).fold(0.0, f64::max);
    base.recorder
        .set_load_elapsed(Duration::from_secs_f64(longest));
    let mut judges = Judges::start(
        &base.scenario,
        &opts.scenario,
        opts.time_scale,
        Limits::default(),
    )
    .map_err(|e| MergeError::Judges(e.source.to_string()))?;
    crate::report::start_dir(&base.dir, &String::from_utf8_lossy(&text))
        .map_err(RunError::Report)?;
    let metrics = base.recorder.finish();
    let run_summary = crate::plugin::summary::from_run(&base.scenario, &metrics);
    let (status, thresholds) = match judges.evaluate(&run_summary) {
        Ok(v) => (Status::Done, v),
        Err(e) => (Status::Error(e.to_string()), Vec::new()),
    };
    let findings = Findings {
        thresholds,
        evaluator: judges.evaluator.clone(),
        ..Default::default()
    };
    let summary = summary::build(&base.identity(), status, &metrics, findings);
    Ok(base.write(summary, &metrics)?)
}

fn read_metas(dirs: &[PathBuf]) -> Result<Vec<SegmentMeta>, MergeError> {
    if dirs.is_empty() {
        return Err(MergeError::Read("no worker directory given".into()));
    }
    dirs.iter()
        .map(|d| {
            let p = d.join(META);
            let text = std::fs::read_to_string(&p)
                .map_err(|e| MergeError::Read(format!("{}: {e}", p.display())))?;
            let meta: SegmentMeta = serde_json::from_str(&text)
                .map_err(|e| MergeError::Read(format!("{}: {e}", p.display())))?;
            match &meta.log_error {
                // Merging a log that stopped early would count part of that worker's load.
                Some(e) => Err(MergeError::Read(format!(
                    "{}: its window log is incomplete ({e})",
                    d.display()
                ))),
                None => Ok(meta),
            }
        })
        .collect()
}

/// Every segment of one sequence, each once.
fn check_tiling(dirs: &[PathBuf], metas: &[SegmentMeta]) -> Result<(), MergeError> {
    let bad = |m: String| MergeError::Tiling(m);
    let segs: Vec<Segment> = metas
        .iter()
        .zip(dirs)
        .map(|(m, d)| {
            Segment::parse(&m.segment, Some(&m.sequence))
                .map_err(|e| bad(format!("{}: {e}", d.display())))
        })
        .collect::<Result<_, _>>()?;
    let sequence = &segs[0].sequence;
    if segs.iter().any(|s| &s.sequence != sequence) {
        return Err(bad("the workers used different segment sequences".into()));
    }
    let mut have: Vec<usize> = segs.iter().map(Segment::index).collect();
    have.sort_unstable();
    let want: Vec<usize> = (0..sequence.len() - 1).collect();
    if have != want {
        let missing: Vec<String> = want
            .iter()
            .filter(|i| !have.contains(i))
            .map(|i| format!("{}:{}", sequence[*i], sequence[*i + 1]))
            .collect();
        return Err(bad(match missing.is_empty() {
            true => "a segment appears twice".to_owned(),
            false => format!("missing {}", missing.join(", ")),
        }));
    }
    Ok(())
}
