//! Between the generated WIT types and the plain `k6_rules` types authors work with.

use crate::threshold_bindings::exports::harness::plugin::thresholds as wit;

pub fn summary_from_wit(s: wit::RunSummary) -> k6_rules::Summary {
    k6_rules::Summary {
        elapsed_s: s.elapsed_s,
        requests: s
            .requests
            .into_iter()
            .map(|r| k6_rules::RequestStats {
                name: r.name,
                count: r.count,
                failed: r.failed,
                latency_ms: r.latency_ms,
                statuses: r.statuses,
            })
            .collect(),
        dropped_iterations: s.dropped_iterations,
        rates: s
            .rates
            .into_iter()
            .map(|r| k6_rules::RateMetric {
                name: r.name,
                good: r.good,
                total: r.total,
            })
            .collect(),
        series: s
            .series
            .into_iter()
            .map(|x| k6_rules::Series {
                name: x.name,
                points: x.points,
            })
            .collect(),
    }
}

pub fn verdicts_to_wit(v: Vec<k6_rules::Verdict>) -> Vec<wit::Verdict> {
    v.into_iter()
        .map(|v| wit::Verdict {
            metric: v.metric,
            threshold: v.threshold,
            observed: v.observed,
            passed: v.passed,
            reason: v.reason,
        })
        .collect()
}
