//! The default threshold evaluator: the scenario's `[thresholds]` table with k6 semantics
//! (`rate<0.05`, `p(95)<2000`, tagged sub-metrics, `abortOnFail`, `delayAbortEval`).
//!
//! Config: `{ "thresholds": [ { "metric", "threshold", "abort_on_fail", "delay_abort_eval_s" } ] }`
//! — the host fills it from the scenario; the rules themselves live in `k6-rules`.

use harness_plugin_sdk::rules::{self, ThresholdDef};
use harness_plugin_sdk::{Config, Summary, Threshold, Verdict};

struct K6 {
    defs: Vec<ThresholdDef>,
}

#[derive(serde::Deserialize)]
struct Def {
    metric: String,
    threshold: String,
    #[serde(default)]
    abort_on_fail: bool,
    #[serde(default)]
    delay_abort_eval_s: f64,
}

impl Threshold for K6 {
    fn new(config: Config) -> Result<Self, String> {
        config.deny_unknown(&["thresholds"])?;
        let defs: Vec<Def> = config.required("thresholds")?;
        let defs: Vec<ThresholdDef> = defs
            .into_iter()
            .map(|d| ThresholdDef {
                metric: d.metric,
                threshold: d.threshold,
                abort_on_fail: d.abort_on_fail,
                delay_abort_eval_s: d.delay_abort_eval_s,
            })
            .collect();
        rules::validate(&defs)?;
        Ok(K6 { defs })
    }
    fn evaluate(&mut self, summary: &Summary) -> Vec<Verdict> {
        rules::evaluate(&self.defs, summary)
    }
    fn check(&mut self, live: &Summary) -> Vec<Verdict> {
        rules::check(&self.defs, live)
    }
}

harness_plugin_sdk::threshold_plugin!(K6);
