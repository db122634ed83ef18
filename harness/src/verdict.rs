//! Who judges a run. The scenario's `[thresholds]` go to the `k6-thresholds` Wasm plugin (the
//! default evaluator) or, when that plugin is not built, to the same rules compiled in
//! (`k6_rules`); `[[threshold_plugins]]` add their own gates. Every judge sees the same
//! `Summary`, and the report says which evaluator was used.

use std::path::{Path, PathBuf};

use k6_rules::{Summary, ThresholdDef, Verdict};

use crate::plugin::threshold::ThresholdPlugin;
use crate::plugin::{CallStats, Limits, PluginError};
use crate::scenario::{PluginSpec, Scenario};

/// The scenario's `[thresholds]` in file order, normalised.
pub fn defs(s: &Scenario) -> Vec<ThresholdDef> {
    s.thresholds
        .iter()
        .flat_map(|(metric, specs)| {
            specs.iter().map(|spec| ThresholdDef {
                metric: metric.get_ref().to_string(),
                threshold: spec.expr.source.clone(),
                abort_on_fail: spec.abort_on_fail,
                delay_abort_eval_s: spec.delay_abort_eval.0.as_secs_f64(),
            })
        })
        .collect()
}

/// The shipped plugin `name` (e.g. `k6-thresholds`): `$HARNESS_PLUGIN_DIR/<name>.wasm`, else
/// `plugins/build/<name>.wasm` beside the scenario's parent directory or the working directory.
pub fn locate_shipped(name: &str, scenario: &Path) -> Option<PathBuf> {
    let file = format!("{name}.wasm");
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(d) = std::env::var_os("HARNESS_PLUGIN_DIR") {
        dirs.push(PathBuf::from(d));
    }
    if let Some(parent) = scenario.parent().and_then(|p| p.parent()) {
        dirs.push(parent.join("plugins/build"));
    }
    dirs.push(PathBuf::from("plugins/build"));
    dirs.into_iter()
        .map(|d| d.join(&file))
        .find(|p| p.is_file())
}

/// A plugin spec's path, relative to the scenario file.
pub fn resolve(spec_path: &Path, scenario: &Path) -> PathBuf {
    if spec_path.is_absolute() {
        spec_path.to_owned()
    } else {
        scenario.parent().unwrap_or(Path::new(".")).join(spec_path)
    }
}

/// A plugin's config as JSON, with the run's time scale added for schedules and bounds.
pub fn config_json(spec: &PluginSpec, time_scale: f64) -> String {
    let mut v = serde_json::to_value(&spec.config).unwrap_or_else(|_| serde_json::json!({}));
    if let Some(o) = v.as_object_mut() {
        o.insert("time_scale".into(), time_scale.into());
    }
    v.to_string()
}

/// The k6-thresholds plugin's config: the scenario's thresholds as plain data.
fn k6_config(defs: &[ThresholdDef]) -> serde_json::Value {
    let one = |d: &ThresholdDef| {
        serde_json::json!({
            "metric": d.metric,
            "threshold": d.threshold,
            "abort_on_fail": d.abort_on_fail,
            "delay_abort_eval_s": d.delay_abort_eval_s,
        })
    };
    serde_json::json!({ "thresholds": defs.iter().map(one).collect::<Vec<_>>() })
}

/// A judge that did not start: which `[[threshold_plugins]]` entry (None: the k6-thresholds
/// evaluator) and why.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct JudgeError {
    pub index: Option<usize>,
    pub source: PluginError,
}

enum K6 {
    None,
    Native(Vec<ThresholdDef>),
    Plugin(Box<ThresholdPlugin>, Vec<ThresholdDef>),
}

pub struct Judges {
    k6: K6,
    plugins: Vec<ThresholdPlugin>,
    /// What judged `[thresholds]`, for the report.
    pub evaluator: String,
}

impl Judges {
    /// Starts every judge of the scenario at `scenario_path`. Plugin errors (missing file,
    /// wrong ABI, config rejected) stop the run before any load.
    pub fn start(
        s: &Scenario,
        scenario_path: &Path,
        time_scale: f64,
        limits: Limits,
    ) -> Result<Judges, JudgeError> {
        let defs = defs(s);
        let (k6, evaluator) = if defs.is_empty() {
            (K6::None, "none ([thresholds] is empty)".to_owned())
        } else {
            match locate_shipped("k6-thresholds", scenario_path) {
                Some(path) => {
                    let config = k6_config(&defs).to_string();
                    let p = ThresholdPlugin::start(&path, &config, limits).map_err(|source| {
                        JudgeError {
                            index: None,
                            source,
                        }
                    })?;
                    let evaluator = format!("k6-thresholds plugin ({})", path.display());
                    (K6::Plugin(Box::new(p), defs), evaluator)
                }
                None => {
                    let evaluator = "built-in k6 rules (k6-thresholds.wasm not found; build it \
                                     with `make plugins`)";
                    (K6::Native(defs), evaluator.to_owned())
                }
            }
        };
        let mut plugins = Vec::new();
        for (i, spec) in s.threshold_plugins.iter().enumerate() {
            let path = resolve(spec.plugin.get_ref(), scenario_path);
            let p = ThresholdPlugin::start(&path, &config_json(spec, time_scale), limits).map_err(
                |source| JudgeError {
                    index: Some(i),
                    source,
                },
            )?;
            plugins.push(p);
        }
        Ok(Judges {
            k6,
            plugins,
            evaluator,
        })
    }

    /// Every verdict: `[thresholds]` in file order, then each plugin's.
    pub fn evaluate(&mut self, sum: &Summary) -> Result<Vec<Verdict>, PluginError> {
        let mut out = match &mut self.k6 {
            K6::None => Vec::new(),
            K6::Native(defs) => k6_rules::evaluate(defs, sum),
            K6::Plugin(p, defs) => {
                let mut v = p.evaluate(sum)?;
                if v.len() != defs.len() {
                    return Err(PluginError::Malformed {
                        plugin: p.name().into(),
                        call: "evaluate",
                        message: format!("{} verdicts for {} thresholds", v.len(), defs.len()),
                    });
                }
                for (v, d) in v.iter_mut().zip(defs.iter()) {
                    v.abort_on_fail = d.abort_on_fail;
                }
                v
            }
        };
        for p in &mut self.plugins {
            out.extend(p.evaluate(sum)?);
        }
        Ok(out)
    }

    /// Verdicts that abort the run now.
    pub fn check(&mut self, sum: &Summary) -> Result<Vec<Verdict>, PluginError> {
        let mut out = match &mut self.k6 {
            K6::None => Vec::new(),
            K6::Native(defs) => k6_rules::check(defs, sum),
            // Only abortOnFail thresholds can abort: without one, the call could only answer
            // "nothing" and would double the plugin's per-second cost for it.
            K6::Plugin(p, defs) if defs.iter().any(|d| d.abort_on_fail) => p.check(sum)?,
            K6::Plugin(..) => Vec::new(),
        };
        for p in &mut self.plugins {
            out.extend(p.check(sum)?);
        }
        Ok(out)
    }

    /// Call cost per plugin.
    pub fn stats(&self) -> Vec<(String, CallStats)> {
        let mut out = Vec::new();
        if let K6::Plugin(p, _) = &self.k6 {
            out.push((p.name().to_owned(), p.stats));
        }
        out.extend(self.plugins.iter().map(|p| (p.name().to_owned(), p.stats)));
        out
    }
}
