//! `[probes.promql]`: named PromQL queries evaluated every interval through Prometheus's HTTP
//! API; each name becomes a series exactly like a scraped one (thresholds, alerts, charts).
//! A query must give one number: a scalar or a one-element vector; several elements are an
//! error for that sample (aggregate with `sum`/`max`), never a silent sum.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::ProbeHealth;
use crate::metrics::Recorder;
use crate::prom::api::PromClient;

pub struct PromqlProbe {
    /// Prometheus's base URL.
    pub url: String,
    /// (series name, PromQL).
    pub queries: Vec<(String, String)>,
    pub interval: Duration,
    pub min_coverage: f64,
}

impl PromqlProbe {
    pub fn client(&self) -> PromClient {
        PromClient::new(&self.url, self.interval.max(Duration::from_secs(1)))
    }

    pub async fn run(
        self,
        recorder: Arc<Recorder>,
        mut stop: watch::Receiver<bool>,
    ) -> ProbeHealth {
        let series: Vec<String> = self.queries.iter().map(|(n, _)| n.clone()).collect();
        let mut health =
            ProbeHealth::new(&format!("promql {}", self.url), &series, self.min_coverage);
        let client = self.client();
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => break,
            }
            match self.sample(&client, &recorder, &mut health).await {
                Ok(()) => health.ok(),
                Err(e) => health.failed(e),
            }
        }
        health
    }

    /// Evaluates every query once; an error names the query.
    async fn sample(
        &self,
        client: &PromClient,
        recorder: &Recorder,
        health: &mut ProbeHealth,
    ) -> Result<(), String> {
        let mut missing = Vec::new();
        for (name, q) in &self.queries {
            let value = client.query(q).await.map_err(|e| format!("{name}: {e}"))?;
            match value.single().map_err(|e| format!("{name}: {e}"))? {
                Some(v) => {
                    recorder.set_gauge(name, v, true);
                    health.saw(name);
                }
                None => missing.push(name.as_str()),
            }
        }
        match missing.is_empty() {
            true => Ok(()),
            false => Err(format!("no series for {}", missing.join(", "))),
        }
    }
}
