//! The measured run (`RunMetrics`) as the plugin ABI's `run-summary` (`k6_rules::Summary`):
//! latency histograms as buckets, custom rate metrics counted, gauges and probe series as
//! series. Threshold plugins and the native fallback both judge this one shape.

use k6_rules::{RateMetric, RequestStats, Series, Summary};

use crate::metrics::{RunMetrics, Totals};
use crate::scenario::{CustomKind, Scenario};

fn stats(name: &str, t: &Totals) -> RequestStats {
    RequestStats {
        name: name.to_owned(),
        count: t.count,
        failed: t.failed,
        latency_ms: t.latency.buckets_ms(),
        statuses: t.statuses.iter().map(|(s, n)| (*s, *n)).collect(),
    }
}

/// The timing-phase trends of `t` as `requests` entries (see `k6_rules::entry_name`).
fn phases<'t>(request: Option<&str>, t: &'t Totals) -> impl Iterator<Item = RequestStats> + 't {
    let request = request.map(str::to_owned);
    k6_rules::PHASES
        .iter()
        .zip(&t.phases)
        .map(move |(phase, h)| RequestStats {
            name: k6_rules::entry_name(phase, request.as_deref()),
            count: h.len(),
            latency_ms: h.buckets_ms(),
            ..Default::default()
        })
}

fn counter(metric: &str, count: u64) -> RequestStats {
    RequestStats {
        name: k6_rules::entry_name(metric, None),
        count,
        ..Default::default()
    }
}

/// Each scenario's requests together (`(all){scenario:s}`), the flows' trends (`(name)`) and
/// `iteration_failed` as `requests` entries.
fn flow_entries(s: &Scenario, m: &RunMetrics) -> Vec<RequestStats> {
    let mut entries = Vec::new();
    for w in &s.workloads {
        let t = m.totals_of(w.steps().iter().map(|r| r.name.as_str()));
        entries.push(stats(&k6_rules::scenario_entry(&w.name), &t));
    }
    for (name, h) in &m.trends {
        entries.push(RequestStats {
            name: k6_rules::entry_name(name, None),
            count: h.len(),
            latency_ms: h.buckets_ms(),
            ..Default::default()
        });
    }
    entries.push(counter(
        "iteration_failed",
        m.iteration_failed.values().sum(),
    ));
    entries
}

pub fn from_run(s: &Scenario, m: &RunMetrics) -> Summary {
    let mut requests = vec![stats(k6_rules::ALL, &m.all)];
    requests.extend(m.per_name.iter().map(|(n, t)| stats(n, t)));
    requests.extend(phases(None, &m.all));
    for (n, t) in &m.per_name {
        requests.extend(phases(Some(n), t));
    }
    requests.extend(flow_entries(s, m));
    requests.extend(m.tagged.iter().map(|(entry, t)| stats(entry, t)));
    requests.push(counter("data_sent", m.data_sent));
    requests.push(counter("data_received", m.data_received));
    requests.push(counter("iterations", m.iterations));
    requests.push(RequestStats {
        name: k6_rules::entry_name("iteration_duration", None),
        count: m.iteration_duration.len(),
        latency_ms: m.iteration_duration.buckets_ms(),
        ..Default::default()
    });
    let (declared, rates) = declared(s, m);
    requests.extend(declared);
    let rates = rates.into_iter().chain(checks(m)).collect();
    let mut series: Vec<Series> = m
        .series
        .iter()
        .map(|(n, pts)| Series {
            name: n.clone(),
            points: pts.clone(),
        })
        .collect();
    for gauge in ["vus", "target_rate"] {
        let points: Vec<(f64, f64)> = m
            .windows
            .iter()
            .filter_map(|w| w.gauges.get(gauge).map(|v| (w.second as f64 + 1.0, *v)))
            .collect();
        if points.is_empty() || m.series.contains_key(gauge) {
            continue;
        }
        if gauge == "vus" {
            // k6's vus_max: the most VUs the run has had so far, each second.
            let mut most = f64::MIN;
            let running: Vec<(f64, f64)> = points
                .iter()
                .map(|(t, v)| {
                    most = most.max(*v);
                    (*t, most)
                })
                .collect();
            series.push(Series {
                name: "vus_max".to_owned(),
                points: running,
            });
        }
        series.push(Series {
            name: gauge.to_owned(),
            points,
        });
    }
    Summary {
        elapsed_s: m.elapsed.as_secs_f64(),
        requests,
        dropped_iterations: m.dropped,
        rates,
        series,
    }
}

/// The scenario's declared metrics: counters and trends as `(name)` entries, rates as rates
/// (gauges are series, recorded as they come).
fn declared(s: &Scenario, m: &RunMetrics) -> (Vec<RequestStats>, Vec<RateMetric>) {
    let (mut entries, mut rates) = (Vec::new(), Vec::new());
    for (name, c) in &s.metrics {
        let request = c.request.get_ref();
        match c.kind {
            CustomKind::Rate => {
                let by_value = c.value.is_some();
                let (good, total) = m.declared_rate(name, request, by_value, &c.success_status);
                rates.push(RateMetric {
                    name: name.clone(),
                    good,
                    total,
                });
            }
            CustomKind::Counter => {
                entries.push(counter(name, m.declared_count(request, &c.success_status)))
            }
            CustomKind::Trend => {
                let buckets = m.value_buckets(name);
                entries.push(RequestStats {
                    name: k6_rules::entry_name(name, None),
                    count: buckets.iter().map(|b| b.1).sum(),
                    latency_ms: buckets,
                    ..Default::default()
                });
            }
            CustomKind::Gauge => {}
        }
    }
    (entries, rates)
}

/// The `checks` rate overall and per check name, when the scenario has checks.
fn checks(m: &RunMetrics) -> Vec<RateMetric> {
    if m.checks.is_empty() {
        return Vec::new();
    }
    let rate = |name: String, c: &crate::metrics::CheckCount| RateMetric {
        name,
        good: c.passes,
        total: c.passes + c.fails,
    };
    let all = m
        .checks
        .values()
        .fold(Default::default(), |a: crate::metrics::CheckCount, c| {
            crate::metrics::CheckCount {
                passes: a.passes + c.passes,
                fails: a.fails + c.fails,
            }
        });
    let mut rates = vec![rate(k6_rules::checks_name(None), &all)];
    rates.extend(
        m.checks
            .iter()
            .map(|(n, c)| rate(k6_rules::checks_name(Some(n)), c)),
    );
    rates
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Outcome, Recorder};
    use std::time::Duration;

    /// The bucketed quantile a plugin computes equals the HDR histogram's own.
    #[test]
    fn bucket_quantiles_match_the_histogram() {
        let r = Recorder::new(&["a".to_owned()]);
        for i in 1..=2_000u64 {
            r.record(
                "a",
                Outcome {
                    status: Some(200),
                    error: None,
                    latency: Duration::from_micros(i * 997 % 1_500_000),
                    ok: true,
                    phases: None,
                    proto: None,
                },
            );
        }
        let m = r.finish();
        let s = Scenario::from_str(
            include_str!("../../../scenarios/smoke.toml"),
            "smoke.toml",
            &[],
        )
        .unwrap();
        let sum = from_run(&s, &m);
        let a = sum.request(Some("a")).unwrap();
        for q in [0.0, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            assert_eq!(
                k6_rules::quantile(&a.latency_ms, q),
                m.per_name["a"].quantile_ms(q),
                "q={q}"
            );
        }
        assert_eq!(a.count, 2_000);
    }
}
