//! From measurements to verdicts: the observed value of a metric reference (k6 names, custom
//! rate metrics, executor gauges, probe series) under an aggregation, judged by `threshold`.

use crate::metrics::{RunMetrics, Totals};
use crate::scenario::Scenario;
use crate::threshold::{judge, Agg, MetricRef, Verdict};

/// The value `agg` of `metric` over the whole run so far; None when there is no sample.
pub fn observe(s: &Scenario, m: &RunMetrics, metric: &MetricRef, agg: Agg) -> Option<f64> {
    let name_tag = metric.tags.iter().find(|(k, _)| k == "name").map(|(_, v)| v.as_str());
    let totals = |m: &RunMetrics| -> Option<Totals> {
        match name_tag {
            Some(n) => m.per_name.get(n).cloned(),
            None => Some(m.all.clone()),
        }
    };
    let secs = m.elapsed.as_secs_f64().max(1e-9);
    match metric.name.as_str() {
        "http_reqs" | "iterations" => {
            let t = totals(m)?;
            match agg {
                Agg::Count => Some(t.count as f64),
                Agg::Rate => Some(t.count as f64 / secs),
                _ => None,
            }
        }
        "dropped_iterations" => match (agg, name_tag) {
            (_, Some(_)) => None,
            (Agg::Count, None) => Some(m.dropped as f64),
            (Agg::Rate, None) => Some(m.dropped as f64 / secs),
            _ => None,
        },
        "http_req_duration" => {
            let t = totals(m)?;
            match agg {
                Agg::Avg => t.mean_ms(),
                Agg::Min => t.min_ms(),
                Agg::Max => t.max_ms(),
                Agg::Med => t.quantile_ms(0.5),
                Agg::P(p) => t.quantile_ms(p / 100.0),
                _ => None,
            }
        }
        "http_req_failed" => {
            let t = totals(m)?;
            (t.count > 0 && agg == Agg::Rate).then(|| t.failed as f64 / t.count as f64)
        }
        "vus" | "target_rate" => {
            let values: Vec<f64> = m.windows.iter().filter_map(|w| w.gauges.get(&metric.name).copied()).collect();
            aggregate(&values, agg)
        }
        name => {
            if let Some(c) = s.metrics.get(name) {
                let t = m.per_name.get(c.request.get_ref())?;
                if t.count == 0 || agg != Agg::Rate {
                    return None;
                }
                let good: u64 = c.success_status.iter().filter_map(|st| t.statuses.get(st)).sum();
                return Some(good as f64 / t.count as f64);
            }
            let values: Vec<f64> = m.series.get(name)?.iter().map(|(_, v)| *v).collect();
            aggregate(&values, agg)
        }
    }
}

/// Gauge aggregations over samples in time order.
pub fn aggregate(values: &[f64], agg: Agg) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let sorted = || {
        let mut v = values.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        v
    };
    let rank = |v: &[f64], q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    match agg {
        Agg::Value => values.last().copied(),
        Agg::Min => values.iter().copied().reduce(f64::min),
        Agg::Max => values.iter().copied().reduce(f64::max),
        Agg::Avg => Some(values.iter().sum::<f64>() / values.len() as f64),
        Agg::Med => Some(rank(&sorted(), 0.5)),
        Agg::P(p) => Some(rank(&sorted(), p / 100.0)),
        Agg::Count | Agg::Rate => None,
    }
}

/// Every threshold of the scenario, in file order of metrics, judged on `m`.
pub fn evaluate(s: &Scenario, m: &RunMetrics) -> Vec<Verdict> {
    let mut out = Vec::new();
    for (metric, specs) in &s.thresholds {
        let metric = metric.get_ref();
        for spec in specs {
            let observed = observe(s, m, metric, spec.expr.agg);
            out.push(judge(&metric.to_string(), &spec.expr, observed, spec.abort_on_fail));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauge_aggregations() {
        let v = [5.0, 1.0, 9.0, 3.0];
        assert_eq!(aggregate(&v, Agg::Value), Some(3.0));
        assert_eq!(aggregate(&v, Agg::Max), Some(9.0));
        assert_eq!(aggregate(&v, Agg::Min), Some(1.0));
        assert_eq!(aggregate(&v, Agg::Avg), Some(4.5));
        assert_eq!(aggregate(&v, Agg::Med), Some(3.0));
        assert_eq!(aggregate(&v, Agg::P(100.0)), Some(9.0));
        assert_eq!(aggregate(&[], Agg::Max), None);
    }
}
