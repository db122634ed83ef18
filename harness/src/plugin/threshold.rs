//! Threshold plugins (`harness:plugin/thresholds`): configure once, `evaluate` at the end,
//! `check` each second; every answer is validated before the run believes it.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use wasmtime::Store;

use super::{arm, describe_trap, start, CallStats, HostState, Limits, Loaded, PluginError};

mod bindings {
    wasmtime::component::bindgen!({ world: "threshold", path: "../plugins/wit" });
}
use bindings::harness::plugin::types as wit;

pub struct ThresholdPlugin {
    loaded: Arc<Loaded>,
    store: Store<HostState>,
    bindings: bindings::Threshold,
    limits: Limits,
    pub stats: CallStats,
}

impl ThresholdPlugin {
    /// Loads the component at `path` and passes it `config` (JSON).
    pub fn start(
        path: &Path,
        config: &str,
        limits: Limits,
    ) -> Result<ThresholdPlugin, PluginError> {
        let (loaded, store, bindings) = start(
            path,
            "thresholds",
            "threshold",
            config,
            &limits,
            |s, c, l| bindings::Threshold::instantiate(s, c, l),
            |b, store, config| b.harness_plugin_thresholds().call_configure(store, config),
        )?;
        Ok(ThresholdPlugin {
            loaded,
            store,
            bindings,
            limits,
            stats: CallStats::default(),
        })
    }

    pub fn name(&self) -> &str {
        &self.loaded.name
    }

    fn trap(&self, call: &'static str, e: &wasmtime::Error) -> PluginError {
        PluginError::Trap {
            plugin: self.loaded.name.clone(),
            call,
            message: describe_trap(e, &self.limits),
        }
    }

    pub fn evaluate(
        &mut self,
        s: &k6_rules::Summary,
    ) -> Result<Vec<k6_rules::Verdict>, PluginError> {
        self.call("evaluate", s)
    }

    pub fn check(&mut self, s: &k6_rules::Summary) -> Result<Vec<k6_rules::Verdict>, PluginError> {
        self.call("check", s)
    }

    fn call(
        &mut self,
        call: &'static str,
        s: &k6_rules::Summary,
    ) -> Result<Vec<k6_rules::Verdict>, PluginError> {
        let arg = to_wit(s);
        arm(&mut self.store, &self.limits);
        let started = Instant::now();
        let api = self.bindings.harness_plugin_thresholds();
        let r = if call == "evaluate" {
            api.call_evaluate(&mut self.store, &arg)
        } else {
            api.call_check(&mut self.store, &arg)
        };
        self.stats.add(started.elapsed());
        let out = r.map_err(|e| self.trap(call, &e))?;
        out.into_iter()
            .map(|v| {
                validate(v).map_err(|e| PluginError::Malformed {
                    plugin: self.loaded.name.clone(),
                    call,
                    message: e.to_string(),
                })
            })
            .collect()
    }
}

/// A verdict the run does not believe (the message of [`PluginError::Malformed`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
enum Malformed {
    #[error(
        "a verdict with an empty metric or threshold (metric `{metric}`, threshold `{threshold}`)"
    )]
    Unnamed { metric: String, threshold: String },
    #[error("verdict {metric} {threshold}: observed value {observed} is not a finite number")]
    NotFinite {
        metric: String,
        threshold: String,
        observed: f64,
    },
    /// A pass on no data (the harness's rule against wrong PASSes).
    #[error("verdict {metric} {threshold} passes with no observed value")]
    PassWithoutData { metric: String, threshold: String },
}

/// A verdict must name its metric and condition, carry a finite observation if any, and may
/// not pass on no data (the harness's rule against wrong PASSes holds for plugins too).
fn validate(v: wit::Verdict) -> Result<k6_rules::Verdict, Malformed> {
    if v.metric.trim().is_empty() || v.threshold.trim().is_empty() {
        return Err(Malformed::Unnamed {
            metric: v.metric,
            threshold: v.threshold,
        });
    }
    if let Some(o) = v.observed {
        if !o.is_finite() {
            return Err(Malformed::NotFinite {
                metric: v.metric,
                threshold: v.threshold,
                observed: o,
            });
        }
    }
    if v.passed && v.observed.is_none() {
        return Err(Malformed::PassWithoutData {
            metric: v.metric,
            threshold: v.threshold,
        });
    }
    Ok(k6_rules::Verdict {
        metric: v.metric,
        threshold: v.threshold,
        observed: v.observed,
        passed: v.passed,
        abort_on_fail: false,
        reason: v.reason,
        first_breach_s: None,
    })
}

fn to_wit(s: &k6_rules::Summary) -> wit::RunSummary {
    wit::RunSummary {
        elapsed_s: s.elapsed_s,
        requests: s
            .requests
            .iter()
            .map(|r| wit::RequestStats {
                name: r.name.clone(),
                count: r.count,
                failed: r.failed,
                latency_ms: r.latency_ms.clone(),
                statuses: r.statuses.clone(),
            })
            .collect(),
        dropped_iterations: s.dropped_iterations,
        rates: s
            .rates
            .iter()
            .map(|r| wit::RateMetric {
                name: r.name.clone(),
                good: r.good,
                total: r.total,
            })
            .collect(),
        series: s
            .series
            .iter()
            .map(|x| wit::Series {
                name: x.name.clone(),
                points: x.points.clone(),
            })
            .collect(),
    }
}
