//! Scrapes a Prometheus text endpoint every interval and records the chosen series (the sum
//! over label sets, so `http_server_requests_total` means all routes) as run gauges.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::ProbeHealth;
use crate::metrics::Recorder;

pub struct PrometheusProbe {
    pub url: String,
    pub series: Vec<String>,
    pub interval: Duration,
}

/// Why one scrape gave no values.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// No answer, or the body could not be read.
    #[error(transparent)]
    Fetch(#[from] reqwest::Error),
    #[error("HTTP {0}")]
    Status(reqwest::StatusCode),
    #[error("not Prometheus text: {0}")]
    Parse(std::io::Error),
}

/// Parses Prometheus text and sums each wanted metric over its label sets.
pub fn extract(text: &str, series: &[String]) -> Result<Vec<(String, Option<f64>)>, ScrapeError> {
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .map_err(ScrapeError::Parse)?;
    Ok(series
        .iter()
        .map(|name| {
            let mut found = None;
            for s in scrape.samples.iter().filter(|s| &s.metric == name) {
                let v = match s.value {
                    prometheus_parse::Value::Counter(v)
                    | prometheus_parse::Value::Gauge(v)
                    | prometheus_parse::Value::Untyped(v) => v,
                    _ => continue,
                };
                *found.get_or_insert(0.0) += v;
            }
            (name.clone(), found)
        })
        .collect())
}

impl PrometheusProbe {
    pub async fn run(
        self,
        recorder: Arc<Recorder>,
        mut stop: watch::Receiver<bool>,
    ) -> ProbeHealth {
        let mut health = ProbeHealth::new(&format!("prometheus {}", self.url));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("http client");
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return health,
            }
            let text = match client.get(&self.url).send().await {
                Ok(r) if r.status().is_success() => r.text().await.map_err(ScrapeError::from),
                Ok(r) => Err(ScrapeError::Status(r.status())),
                Err(e) => Err(ScrapeError::Fetch(e)),
            };
            match text.and_then(|t| extract(&t, &self.series)) {
                Ok(values) => {
                    let mut missing = Vec::new();
                    for (name, v) in values {
                        match v {
                            Some(v) => recorder.set_gauge(&name, v, true),
                            None => missing.push(name),
                        }
                    }
                    if missing.is_empty() {
                        health.ok();
                    } else {
                        health.failed(format!("series not in the scrape: {}", missing.join(", ")));
                    }
                }
                Err(e) => health.failed(e.to_string()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::extract;

    #[test]
    fn sums_over_labels_and_reports_missing() {
        let text = "# TYPE a gauge\na 3\n# TYPE r counter\nr{route=\"/x\"} 2\nr{route=\"/y\"} 5\n";
        let got = extract(text, &["a".into(), "r".into(), "nope".into()]).unwrap();
        assert_eq!(
            got,
            vec![
                ("a".into(), Some(3.0)),
                ("r".into(), Some(7.0)),
                ("nope".into(), None)
            ]
        );
    }
}
