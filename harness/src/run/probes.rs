//! The probes of one run as tasks: started before the load, stopped after it. The Kafka lag
//! probe goes on until the lag drained (or its drain timeout), unless the run was interrupted.

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::metrics::Recorder;
use crate::probe::kafka::{KafkaLagProbe, LagSummary};
use crate::probe::prometheus::{selectors, PrometheusProbe};
use crate::probe::promql::PromqlProbe;
use crate::probe::sql::SqlProbe;
use crate::probe::ProbeHealth;
use crate::scenario::{expand_env, Scenario, Vars};

/// Probe tasks recording into the run's recorder.
pub(super) struct Probes {
    stop: watch::Sender<bool>,
    scrapes: Vec<JoinHandle<ProbeHealth>>,
    lag: Option<JoinHandle<(ProbeHealth, LagSummary)>>,
    /// Probes that could not even start (an unset variable, a bad bootstrap list).
    failed: Vec<ProbeHealth>,
}

impl Probes {
    pub(super) fn start(s: &Scenario, target: &str, vars: &Vars, rec: &Arc<Recorder>) -> Probes {
        let (stop, stopped) = watch::channel(false);
        let mut probes = Probes {
            stop,
            scrapes: Vec::new(),
            lag: None,
            failed: Vec::new(),
        };
        if let Some(p) = &s.probes.prometheus {
            let probe = PrometheusProbe {
                url: p.url.replace("{target}", target),
                series: selectors(&p.series).expect("Scenario::validate parsed each series"),
                interval: p.interval.0,
                min_coverage: p.min_coverage,
            };
            probes
                .scrapes
                .push(tokio::spawn(probe.run(rec.clone(), stopped.clone())));
        }
        probes.start_sql(s, vars, rec, &stopped);
        probes.start_promql(s, vars, rec, &stopped);
        if let Some(k) = &s.probes.kafka {
            let made = expand_env(&k.bootstrap, vars)
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    KafkaLagProbe::new(&b, &k.group, &k.topic, k.interval.0)
                        .map_err(|e| e.to_string())
                });
            match made {
                Ok(mut p) => {
                    p.min_coverage = k.min_coverage;
                    let task = p.run(rec.clone(), stopped, k.drain_timeout.0);
                    probes.lag = Some(tokio::spawn(task));
                }
                Err(e) => {
                    let name = format!("kafka lag {}", k.topic);
                    let series = [crate::probe::kafka::SERIES.to_owned()];
                    let mut h = ProbeHealth::new(&name, &series, k.min_coverage);
                    h.failed(e);
                    probes.failed.push(h);
                }
            }
        }
        probes
    }

    /// `[probes.sql]`'s queries as a task (an unset variable: a probe that failed to start).
    fn start_sql(
        &mut self,
        s: &Scenario,
        vars: &Vars,
        rec: &Arc<Recorder>,
        stop: &watch::Receiver<bool>,
    ) {
        let Some(p) = &s.probes.sql else { return };
        self.start_queries(
            "sql",
            &p.url,
            &p.queries,
            p.min_coverage,
            vars,
            |url, queries| {
                let probe = SqlProbe {
                    url,
                    queries,
                    interval: p.interval.0,
                    min_coverage: p.min_coverage,
                };
                tokio::spawn(probe.run(rec.clone(), stop.clone()))
            },
        );
    }

    /// `[probes.promql]`'s queries as a task.
    fn start_promql(
        &mut self,
        s: &Scenario,
        vars: &Vars,
        rec: &Arc<Recorder>,
        stop: &watch::Receiver<bool>,
    ) {
        let Some(p) = &s.probes.promql else { return };
        self.start_queries(
            "promql",
            &p.url,
            &p.queries,
            p.min_coverage,
            vars,
            |url, queries| {
                let probe = PromqlProbe {
                    url,
                    queries,
                    interval: p.interval.0,
                    min_coverage: p.min_coverage,
                };
                tokio::spawn(probe.run(rec.clone(), stop.clone()))
            },
        );
    }

    /// A probe of named queries at `url` (expanded first): started by `spawn`, or recorded
    /// as failed to start when a variable is unset.
    fn start_queries(
        &mut self,
        name: &str,
        url: &str,
        queries: &std::collections::BTreeMap<String, String>,
        coverage: f64,
        vars: &Vars,
        spawn: impl FnOnce(String, Vec<(String, String)>) -> JoinHandle<ProbeHealth>,
    ) {
        match expand_env(url, vars) {
            Ok(url) => {
                let list = queries.clone().into_iter().collect();
                self.scrapes.push(spawn(url, list));
            }
            Err(e) => self.not_started(name, queries.keys(), coverage, e.to_string()),
        }
    }

    fn not_started<'s>(
        &mut self,
        name: &str,
        series: impl Iterator<Item = &'s String>,
        coverage: f64,
        e: String,
    ) {
        let series: Vec<String> = series.cloned().collect();
        let mut h = ProbeHealth::new(name, &series, coverage);
        h.failed(e);
        self.failed.push(h);
    }

    /// Stops every probe and collects how each fared; the lag probe is waited for (its drain)
    /// unless `interrupted`, when nobody wants to wait.
    pub(super) async fn stop(self, interrupted: bool) -> (Vec<ProbeHealth>, Option<LagSummary>) {
        let _ = self.stop.send(true);
        let mut health = self.failed;
        for t in self.scrapes {
            if let Ok(h) = t.await {
                health.push(h);
            }
        }
        let mut lag = None;
        if let Some(t) = self.lag {
            if interrupted {
                t.abort();
            } else if let Ok((h, l)) = t.await {
                health.push(h);
                lag = Some(l);
            }
        }
        (health, lag)
    }
}
