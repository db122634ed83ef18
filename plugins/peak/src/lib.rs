//! The peak (coupon burst) gates from the incident post-mortem: coupon requests must be
//! accepted (> 97%), the consumer lag must stay under 5,000, and the backlog must drain within
//! a bound after its peak (the incident took 8.5 minutes).
//!
//! Config (all optional): `success_metric` ("coupon_issue_success", a rate metric declared in
//! the scenario), `min_success_rate` (0.97), `lag_series` ("kafka_consumer_lag"), `max_lag`
//! (5000), `drain_within_s` (60, scaled by the run's time scale).

use harness_plugin_sdk::{scaled_secs, verdict, Config, Summary, Threshold, Verdict};

struct Peak {
    success_metric: String,
    min_success_rate: f64,
    lag_series: String,
    max_lag: f64,
    drain_within_s: f64,
}

/// Seconds from the lag's peak to the first sample at 0 after it; None if it never drained.
fn drain_time(points: &[(f64, f64)]) -> Option<f64> {
    let (peak_at, peak) = points.iter().fold(
        (0.0, f64::MIN),
        |best, p| if p.1 > best.1 { *p } else { best },
    );
    if peak <= 0.0 {
        return Some(0.0);
    }
    points
        .iter()
        .find(|p| p.0 > peak_at && p.1 <= 0.0)
        .map(|p| p.0 - peak_at)
}

impl Threshold for Peak {
    fn new(config: Config) -> Result<Self, String> {
        config.deny_unknown(&[
            "success_metric",
            "min_success_rate",
            "lag_series",
            "max_lag",
            "drain_within_s",
        ])?;
        Ok(Peak {
            success_metric: config.str_or("success_metric", "coupon_issue_success")?,
            min_success_rate: config.f64_or("min_success_rate", 0.97)?,
            lag_series: config.str_or("lag_series", "kafka_consumer_lag")?,
            max_lag: config.f64_or("max_lag", 5000.0)?,
            drain_within_s: scaled_secs(&config, "drain_within_s", 60.0)?,
        })
    }
    fn evaluate(&mut self, s: &Summary) -> Vec<Verdict> {
        let success = s
            .rates
            .iter()
            .find(|r| r.name == self.success_metric)
            .filter(|r| r.total > 0)
            .map(|r| r.good as f64 / r.total as f64);
        let lag = s
            .series(&self.lag_series)
            .map(|x| x.points.as_slice())
            .unwrap_or(&[]);
        let max_lag = lag.iter().map(|p| p.1).reduce(f64::max);
        let mut drained = verdict(
            &format!("{}_drain_s", self.lag_series),
            &format!("value<={:.1}", self.drain_within_s),
            if lag.is_empty() {
                None
            } else {
                drain_time(lag)
            },
        );
        if drained.observed.is_none() && !lag.is_empty() {
            drained.reason = Some("the lag never returned to 0 while it was watched".into());
        }
        vec![
            verdict(
                &self.success_metric,
                &format!("rate>{}", self.min_success_rate),
                success,
            ),
            verdict(&self.lag_series, &format!("max<{}", self.max_lag), max_lag),
            drained,
        ]
    }
}

harness_plugin_sdk::threshold_plugin!(Peak);
