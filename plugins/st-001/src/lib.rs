//! ST-001's gates from the incident post-mortem: the order API must keep its error rate under
//! 5% and its p95 under 2,000 ms at the ~110 TPS stage. Abort early once the error rate has
//! been over the limit for a while (the incident's pool exhaustion does not recover by itself).
//!
//! Config (all optional): `request` (judge one request name instead of all), `max_error_rate`
//! (0.05), `max_p95_ms` (2000), `abort_after_s` (no early abort when absent; scaled by the run's
//! time scale).

use harness_plugin_sdk::rules::{quantile, ALL};
use harness_plugin_sdk::{scaled_secs, verdict, Config, Summary, Threshold, Verdict};

struct St001 {
    request: Option<String>,
    max_error_rate: f64,
    max_p95_ms: f64,
    abort_after_s: Option<f64>,
}

impl St001 {
    fn gates(&self, s: &Summary) -> Vec<Verdict> {
        let tag = self
            .request
            .as_ref()
            .map(|r| format!("{{name:{r}}}"))
            .unwrap_or_default();
        let r = s.request(Some(self.request.as_deref().unwrap_or(ALL)));
        let error_rate = r
            .filter(|r| r.count > 0)
            .map(|r| r.failed as f64 / r.count as f64);
        let p95 = r.and_then(|r| quantile(&r.latency_ms, 0.95));
        vec![
            verdict(
                &format!("http_req_failed{tag}"),
                &format!("rate<{}", self.max_error_rate),
                error_rate,
            ),
            verdict(
                &format!("http_req_duration{tag}"),
                &format!("p(95)<{}", self.max_p95_ms),
                p95,
            ),
        ]
    }
}

impl Threshold for St001 {
    fn new(config: Config) -> Result<Self, String> {
        config.deny_unknown(&["request", "max_error_rate", "max_p95_ms", "abort_after_s"])?;
        let request = config
            .get("request")
            .map(|_| config.str_or("request", ""))
            .transpose()?;
        let abort_after_s = config
            .get("abort_after_s")
            .map(|_| scaled_secs(&config, "abort_after_s", 0.0))
            .transpose()?;
        Ok(St001 {
            request,
            max_error_rate: config.f64_or("max_error_rate", 0.05)?,
            max_p95_ms: config.f64_or("max_p95_ms", 2000.0)?,
            abort_after_s,
        })
    }
    fn evaluate(&mut self, s: &Summary) -> Vec<Verdict> {
        self.gates(s)
    }
    fn check(&mut self, live: &Summary) -> Vec<Verdict> {
        match self.abort_after_s {
            Some(after) if live.elapsed_s >= after => self
                .gates(live)
                .into_iter()
                .take(1)
                .filter(|v| !v.passed && v.observed.is_some())
                .collect(),
            _ => Vec::new(),
        }
    }
}

harness_plugin_sdk::threshold_plugin!(St001);
