//! The team's own alert rules, as their Prometheus evaluates them: every second the run reads
//! `/api/v1/alerts` (and Alertmanager's `/api/v2/alerts` when given) and keeps, per rule of
//! the scenario's rule files, when it went pending, fired and resolved, on the run's clock.
//! The harness evaluates nothing here: the times are Prometheus's.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::alerts::AlertState;
use crate::metrics::Recorder;
use crate::probe::ProbeHealth;
use crate::prom::api::{AlertPhase, AlertmanagerClient, PromClient};
use crate::scenario::PrometheusAlerts;

/// The poller and what it saw so far.
pub(super) struct PromAlerts {
    states: Arc<Mutex<Vec<AlertState>>>,
    task: JoinHandle<ProbeHealth>,
    stop: watch::Sender<bool>,
}

impl PromAlerts {
    pub(super) fn start(
        pa: &PrometheusAlerts,
        url: String,
        am: Option<String>,
        rec: &Arc<Recorder>,
    ) -> Self {
        let states: Vec<AlertState> = pa
            .rules
            .iter()
            .map(|r| {
                let sev = r.severity.clone().unwrap_or_default();
                let mut a = AlertState::new(&r.name, &r.expr, &sev, r.for_s);
                a.source = format!("prometheus {}", r.file.display());
                a
            })
            .collect();
        let states = Arc::new(Mutex::new(states));
        let (stop, stopped) = watch::channel(false);
        let poller = Poller {
            prometheus: PromClient::new(&url, Duration::from_secs(2)),
            alertmanager: am.map(|u| AlertmanagerClient::new(&u, Duration::from_secs(2))),
            states: states.clone(),
            recorder: rec.clone(),
            // The run's clock in Unix time: Prometheus's `activeAt` lands on the same axis.
            t0_unix: unix(SystemTime::now()) - rec.elapsed_secs(),
        };
        let name = format!("prometheus alerts {url}");
        let task = tokio::spawn(poller.run(name, stopped));
        PromAlerts { states, task, stop }
    }

    /// The rules' states now.
    pub(super) fn states(&self) -> Vec<AlertState> {
        self.states.lock().expect("alert states").clone()
    }

    /// Stops polling: the final states, and how the polling fared (a Prometheus that did not
    /// answer most of the time makes "did not fire" unknowable: insufficient data).
    pub(super) async fn stop(self) -> (Vec<AlertState>, Option<ProbeHealth>) {
        let _ = self.stop.send(true);
        let health = self.task.await.ok();
        let mut states = self.states.lock().expect("alert states").clone();
        if let Some(why) = health.as_ref().and_then(|h| h.shortfall(POLLS)) {
            for a in states.iter_mut().filter(|a| a.fired_at.is_none()) {
                a.insufficient_data = Some(why.clone());
            }
        }
        (states, health)
    }
}

/// The poller's one "series" in its health record: polls that answered, so the probes'
/// coverage rule (`ProbeHealth::shortfall`) says when "did not fire" is unknowable.
const POLLS: &str = "/api/v1/alerts";

struct Poller {
    prometheus: PromClient,
    alertmanager: Option<AlertmanagerClient>,
    states: Arc<Mutex<Vec<AlertState>>>,
    recorder: Arc<Recorder>,
    t0_unix: f64,
}

impl Poller {
    async fn run(self, name: String, mut stop: watch::Receiver<bool>) -> ProbeHealth {
        let polls = [POLLS.to_owned()];
        let mut health = ProbeHealth::new(&name, &polls, crate::probe::DEFAULT_COVERAGE);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => break,
            }
            match self.poll().await {
                Ok(()) => {
                    health.saw(POLLS);
                    health.ok();
                }
                Err(e) => health.failed(e),
            }
        }
        health
    }

    async fn poll(&self) -> Result<(), String> {
        let active = self.prometheus.alerts().await.map_err(|e| e.to_string())?;
        let now = self.recorder.elapsed_secs();
        // Per rule: the earliest activeAt of its instances, and whether one fires.
        let mut by_rule: BTreeMap<&str, (Option<f64>, bool)> = BTreeMap::new();
        for a in &active {
            let e = by_rule.entry(a.name.as_str()).or_insert((None, false));
            if let Some(at) = a.active_at {
                let t = at - self.t0_unix;
                e.0 = Some(e.0.map_or(t, |x: f64| x.min(t)));
            }
            e.1 |= a.state == AlertPhase::Firing;
        }
        let notified = match &self.alertmanager {
            Some(am) => Some(
                am.alerts()
                    .await
                    .map_err(|e| format!("alertmanager: {e}"))?,
            ),
            None => None,
        };
        let mut states = self.states.lock().expect("alert states");
        for s in states.iter_mut() {
            let (pending, firing) = by_rule
                .get(s.name.as_str())
                .copied()
                .unwrap_or((None, false));
            s.observe_external(now, pending, firing);
            let sent = notified
                .iter()
                .flatten()
                .any(|a| a.name == s.name && a.state == "active");
            if sent && s.notified_at.is_none() {
                s.notified_at = Some(now);
            }
        }
        Ok(())
    }
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
