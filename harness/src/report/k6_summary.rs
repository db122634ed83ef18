//! `k6-summary.json`: the run in the shape of k6's `handleSummary` data (`metrics` with `type`,
//! `contains`, `values` and per-threshold `ok`; `root_group` with the checks; `state`), so
//! tooling built on k6 summaries reads our runs. Its schema is
//! `harness/schema/k6-summary.schema.json`.
//!
//! Every value comes from the same `RunMetrics` the thresholds judged: trends in ms with k6's
//! default `summaryTrendStats` (avg, min, med, max, p(90), p(95)), counters with `count` and
//! `rate` per second, rates with `rate`, `passes` (non-zero samples) and `fails`, gauges with
//! `value`, `min` and `max`. A sub-metric a threshold names (`http_req_duration{status:200}`)
//! is an entry of its own, as in k6, and so is k6's default `{expected_response:true}`.

use k6_rules::Agg;
use md5::{Digest, Md5};
use serde_json::{json, Map, Value};

use crate::metrics::{RunMetrics, Trend};
use crate::scenario::{CustomKind, Scenario};
use crate::threshold::{MetricKind, MetricRef, Verdict};

/// k6's default summary trend stats, in its order.
const TREND_STATS: [&str; 6] = ["avg", "min", "med", "max", "p(90)", "p(95)"];

/// k6's summary data for a run of `s` measured as `m` and judged as `verdicts`.
pub fn render(s: &Scenario, m: &RunMetrics, verdicts: &[Verdict], elapsed_s: f64) -> Value {
    let mut metrics = Map::new();
    builtin(&mut metrics, m, elapsed_s);
    declared(&mut metrics, s, m, elapsed_s);
    for v in verdicts {
        let key = sub_metric(&mut metrics, s, m, &v.metric, elapsed_s);
        if !metrics.contains_key(&key) {
            // No samples: k6's empty sink (zeros), so the failed verdict is still there.
            metrics.insert(key.clone(), empty(s, &v.metric));
        }
        if let Some(Value::Object(entry)) = metrics.get_mut(&key) {
            let t = entry.entry("thresholds").or_insert_with(|| json!({}));
            t[&v.threshold] = json!({ "ok": v.passed });
        }
    }
    json!({
        "root_group": root_group(m),
        "options": {
            "summaryTrendStats": TREND_STATS,
            "summaryTimeUnit": "",
            "noColor": true,
        },
        "state": {
            "isStdOutTTY": false,
            "isStdErrTTY": false,
            "testRunDurationMs": elapsed_s * 1000.0,
        },
        "metrics": metrics,
    })
}

/// The entry of a metric without samples, with k6's zero values for its type.
fn empty(s: &Scenario, written: &str) -> Value {
    let name = written
        .parse::<MetricRef>()
        .map_or(written.to_owned(), |r| r.name);
    let time = name.starts_with("http_req_") || name == "iteration_duration";
    let (kind, values) = match s.metric_kind(&name) {
        Some(MetricKind::Counter) => ("counter", json!({ "count": 0, "rate": 0 })),
        Some(MetricKind::Rate) => ("rate", json!({ "rate": 0, "passes": 0, "fails": 0 })),
        Some(MetricKind::Trend) => (
            "trend",
            json!({ "avg": 0, "min": 0, "med": 0, "max": 0, "p(90)": 0, "p(95)": 0 }),
        ),
        _ => ("gauge", json!({ "value": 0, "min": 0, "max": 0 })),
    };
    let contains = if time && kind == "trend" {
        "time"
    } else {
        "default"
    };
    json!({ "type": kind, "contains": contains, "values": values })
}

fn trend(t: &Trend) -> Value {
    let q = |p: f64| t.quantile_ms(p).unwrap_or(0.0);
    let (avg, min, max) = (t.mean_ms(), t.min_ms(), t.max_ms());
    let (avg, min, max) = (avg.unwrap_or(0.0), min.unwrap_or(0.0), max.unwrap_or(0.0));
    trend_entry("time", [avg, min, q(0.5), max, q(0.9), q(0.95)])
}

/// A trend entry of values in `TREND_STATS` order.
fn trend_entry(contains: &str, stats: [f64; 6]) -> Value {
    let values: Map<String, Value> = TREND_STATS
        .iter()
        .zip(stats)
        .map(|(stat, v)| ((*stat).to_owned(), json!(v)))
        .collect();
    json!({ "type": "trend", "contains": contains, "values": values })
}

fn counter(count: u64, elapsed_s: f64, contains: &str) -> Value {
    let rate = if elapsed_s > 0.0 {
        count as f64 / elapsed_s
    } else {
        0.0
    };
    json!({ "type": "counter", "contains": contains, "values": { "count": count, "rate": rate } })
}

/// A rate metric: `passes` are its non-zero samples (for `http_req_failed`, the failures).
fn rate(passes: u64, total: u64) -> Value {
    let r = if total > 0 {
        passes as f64 / total as f64
    } else {
        0.0
    };
    json!({ "type": "rate", "contains": "default",
            "values": { "rate": r, "passes": passes, "fails": total.saturating_sub(passes) } })
}

fn gauge(points: &[f64]) -> Value {
    let last = points.last().copied().unwrap_or(0.0);
    let min = points.iter().copied().fold(f64::INFINITY, f64::min);
    let max = points.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    json!({ "type": "gauge", "contains": "default",
            "values": { "value": last, "min": min, "max": max } })
}

fn builtin(out: &mut Map<String, Value>, m: &RunMetrics, secs: f64) {
    out.insert("http_reqs".into(), counter(m.all.count, secs, "default"));
    out.insert("iterations".into(), counter(m.iterations, secs, "default"));
    if !m.iteration_duration.is_empty() {
        out.insert("iteration_duration".into(), trend(&m.iteration_duration));
    }
    if m.dropped > 0 {
        out.insert(
            "dropped_iterations".into(),
            counter(m.dropped, secs, "default"),
        );
    }
    out.insert("data_sent".into(), counter(m.data_sent, secs, "data"));
    out.insert(
        "data_received".into(),
        counter(m.data_received, secs, "data"),
    );
    if m.all.count > 0 {
        out.insert("http_req_duration".into(), trend(&m.all.latency));
        // k6's default sub-metric (the run always keeps its samples: `run::tag_filters`).
        let expected = [("expected_response".to_owned(), "true".to_owned())];
        if let Some(t) = m.tagged.get(&k6_rules::tag_entry(&expected)) {
            if t.count > 0 {
                out.insert(
                    "http_req_duration{expected_response:true}".into(),
                    trend(&t.latency),
                );
            }
        }
        for (phase, t) in k6_rules::PHASES.iter().zip(&m.all.phases) {
            out.insert((*phase).to_owned(), trend(t));
        }
        out.insert("http_req_failed".into(), rate(m.all.failed, m.all.count));
    }
    let (passes, fails) = m
        .checks
        .values()
        .fold((0, 0), |(p, f), c| (p + c.passes, f + c.fails));
    if passes + fails > 0 {
        out.insert("checks".into(), rate(passes, passes + fails));
    }
    for gauge_name in ["vus", "target_rate"] {
        let points: Vec<f64> = m
            .windows
            .iter()
            .filter_map(|w| w.gauges.get(gauge_name).copied())
            .collect();
        if points.is_empty() {
            continue;
        }
        if gauge_name == "vus" {
            let most = points.iter().copied().fold(f64::MIN, f64::max);
            out.insert("vus_max".to_owned(), gauge(&[most]));
        }
        out.insert(gauge_name.to_owned(), gauge(&points));
    }
}

/// The scenario's own metrics: the declared ones with their k6 types, the flows' trends,
/// `iteration_failed`, and the probe series as gauges.
fn declared(out: &mut Map<String, Value>, s: &Scenario, m: &RunMetrics, secs: f64) {
    for (name, c) in &s.metrics {
        let request = c.request.get_ref();
        let entry = match c.kind {
            CustomKind::Rate => {
                let by_value = c.value.is_some();
                let (passes, total) = m.declared_rate(name, request, by_value, &c.success_status);
                rate(passes, total)
            }
            CustomKind::Counter => counter(
                m.declared_count(request, &c.success_status),
                secs,
                "default",
            ),
            CustomKind::Trend => match m.value_buckets(name) {
                b if b.is_empty() => continue,
                b => value_trend(&b),
            },
            CustomKind::Gauge => continue, // a series: below
        };
        out.insert(name.clone(), entry);
    }
    for (name, t) in &m.trends {
        out.insert(name.clone(), trend(t));
    }
    let failed: u64 = m.iteration_failed.values().sum();
    if failed > 0 {
        out.insert("iteration_failed".into(), counter(failed, secs, "default"));
    }
    for (name, pts) in &m.series {
        let values: Vec<f64> = pts.iter().map(|p| p.1).collect();
        if !values.is_empty() {
            out.insert(name.clone(), gauge(&values));
        }
    }
}

/// A declared trend from its exact buckets, by the aggregations its thresholds are judged with:
/// its samples are numbers, not times (`contains: default`).
fn value_trend(buckets: &[(f64, u64)]) -> Value {
    let stat = |agg| k6_rules::trend(buckets, agg).unwrap_or(0.0);
    let aggs = [
        Agg::Avg,
        Agg::Min,
        Agg::Med,
        Agg::Max,
        Agg::P(90.0),
        Agg::P(95.0),
    ];
    trend_entry("default", aggs.map(stat))
}

/// The entry a threshold's metric names, made when it is a sub-metric; returns its key.
fn sub_metric(
    out: &mut Map<String, Value>,
    s: &Scenario,
    m: &RunMetrics,
    written: &str,
    secs: f64,
) -> String {
    let Ok(r) = written.parse::<MetricRef>() else {
        return written.to_owned();
    };
    if r.tags.is_empty() || out.contains_key(written) {
        return written.to_owned();
    }
    let totals = match r.tags.as_slice() {
        [(k, v)] if k == "name" => m.per_name.get(v).cloned(),
        [(k, v)] if k == "scenario" => s
            .workloads
            .iter()
            .find(|w| &w.name == v)
            .map(|w| m.totals_of(w.steps().iter().map(|r| r.name.as_str()))),
        tags => m.tagged.get(&k6_rules::tag_entry(tags)).cloned(),
    };
    let entry = match (r.name.as_str(), totals) {
        ("http_reqs", Some(t)) => counter(t.count, secs, "default"),
        ("http_req_duration", Some(t)) if t.count > 0 => trend(&t.latency),
        ("http_req_failed", Some(t)) if t.count > 0 => rate(t.failed, t.count),
        (phase, Some(t)) if t.count > 0 => {
            match k6_rules::PHASES.iter().position(|p| *p == phase) {
                Some(i) => trend(&t.phases[i]),
                None => return written.to_owned(),
            }
        }
        _ => return checks_entry(out, m, &r, written),
    };
    out.insert(written.to_owned(), entry);
    written.to_owned()
}

/// `checks{check:x}` as a rate of its own; anything else keeps no entry.
fn checks_entry(
    out: &mut Map<String, Value>,
    m: &RunMetrics,
    r: &MetricRef,
    written: &str,
) -> String {
    if let ("checks", [(k, v)]) = (r.name.as_str(), r.tags.as_slice()) {
        if let Some(c) = m.checks.get(v).filter(|_| k == "check") {
            out.insert(written.to_owned(), rate(c.passes, c.passes + c.fails));
        }
    }
    written.to_owned()
}

/// k6's root group: no nested groups (flows have steps, not groups), the checks at its top.
fn root_group(m: &RunMetrics) -> Value {
    let id = |path: &str| format!("{:x}", Md5::digest(path.as_bytes()));
    let checks: Vec<Value> = m
        .checks
        .iter()
        .map(|(name, c)| {
            let path = format!("::{name}");
            json!({ "name": name, "path": path, "id": id(&path),
                    "passes": c.passes, "fails": c.fails })
        })
        .collect();
    json!({ "name": "", "path": "", "id": id(""), "groups": [], "checks": checks })
}
