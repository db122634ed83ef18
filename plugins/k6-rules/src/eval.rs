//! From a [`Summary`] to verdicts: the observed value of a metric reference under an
//! aggregation (k6 names, custom rate metrics, gauges and probe series), judged by its expression.

use crate::expr::{fmt_num, Agg, Expr, MetricRef};
use crate::model::{entry_name, scenario_entry, tag_entry, Summary, PHASES};

/// One threshold of a scenario, normalised.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ThresholdDef {
    /// As written, e.g. `http_req_duration{name:order}`.
    pub metric: String,
    /// As written, e.g. `p(95)<2000`.
    pub threshold: String,
    #[cfg_attr(feature = "serde", serde(default))]
    pub abort_on_fail: bool,
    #[cfg_attr(feature = "serde", serde(default))]
    pub delay_abort_eval_s: f64,
}

/// The outcome of one threshold.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Verdict {
    pub metric: String,
    pub threshold: String,
    /// None when the metric had no data.
    pub observed: Option<f64>,
    pub passed: bool,
    pub abort_on_fail: bool,
    /// Why it failed in words, when it did.
    pub reason: Option<String>,
    /// First second (since start) the live evaluation saw it failing.
    #[cfg_attr(feature = "serde", serde(default))]
    pub first_breach_s: Option<f64>,
}

/// Judges one expression against an observed value (None = no samples).
pub fn judge(metric: &str, expr: &Expr, observed: Option<f64>, abort_on_fail: bool) -> Verdict {
    let (passed, reason) = match observed {
        None => (false, Some("no data: the metric had no samples".to_owned())),
        Some(v) if v.is_nan() => (false, Some("no data: the value is undefined".to_owned())),
        Some(v) if expr.passes(v) => (true, None),
        Some(v) => (
            false,
            Some(format!(
                "observed {} does not satisfy {}",
                fmt_num(v),
                expr.source
            )),
        ),
    };
    Verdict {
        metric: metric.to_owned(),
        threshold: expr.source.clone(),
        observed: observed.filter(|v| !v.is_nan()),
        passed,
        abort_on_fail,
        reason,
        first_breach_s: None,
    }
}

/// The `q` quantile (0..=1) of bucketed samples as k6 computes a trend's percentile: the linear
/// interpolation at position q × (count − 1) between the samples of the two neighbouring ranks.
/// Each bucket stands for its samples' value (exact for the first and last bucket, which carry
/// the run's minimum and maximum; within HDR's 0.1% elsewhere).
pub fn quantile(buckets: &[(f64, u64)], q: f64) -> Option<f64> {
    let total: u64 = buckets.iter().map(|b| b.1).sum();
    if total == 0 {
        return None;
    }
    let pos = q.clamp(0.0, 1.0) * (total - 1) as f64;
    let lower = pos.floor() as u64;
    let at = |rank: u64| {
        let mut seen = 0;
        for (value, n) in buckets {
            seen += n;
            if seen > rank {
                return *value;
            }
        }
        buckets.last().map_or(0.0, |b| b.0)
    };
    let low = at(lower);
    if lower + 1 >= total {
        return Some(low);
    }
    Some(low + (at(lower + 1) - low) * (pos - lower as f64))
}

/// The same rule over plain values (gauge samples), so `p(N)` means one thing everywhere.
fn quantile_of(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lower = pos.floor() as usize;
    match v.get(lower + 1) {
        Some(next) => v[lower] + (next - v[lower]) * (pos - lower as f64),
        None => v[lower],
    }
}

/// The value `agg` of `metric` over the run so far; None when there is no sample.
pub fn observe(s: &Summary, metric: &MetricRef, agg: Agg) -> Option<f64> {
    let name_tag = metric
        .tags
        .iter()
        .find(|(k, _)| k == "name")
        .map(|(_, v)| v.as_str());
    // The entry an HTTP metric's tags select: a request's own (its name alone), a scenario's,
    // or the one the harness filled for exactly this tag set.
    let tagged = match metric.tags.as_slice() {
        [] => None,
        [(k, v)] if k == "name" => Some(v.clone()),
        [(k, v)] if k == "scenario" => Some(scenario_entry(v)),
        tags => Some(tag_entry(tags)),
    };
    let http = matches!(
        metric.name.as_str(),
        "http_reqs" | "http_req_duration" | "http_req_failed"
    );
    // Rates are looked up with their tags (`checks{check:x}`): a tag is never ignored.
    let key = metric.to_string();
    if let Some(r) = s.rates.iter().find(|r| r.name == key) {
        return (r.total > 0 && agg == Agg::Rate).then(|| r.good as f64 / r.total as f64);
    }
    if !http && metric.tags.iter().any(|(k, _)| k != "name") {
        return None; // measured per request name only: a tag is never ignored
    }
    // A counter's rate per second of the run; none before any time has passed.
    let per_s = |n: u64| (s.elapsed_s > 0.0).then(|| n as f64 / s.elapsed_s);
    match metric.name.as_str() {
        "iterations" if s.request(Some(&entry_name("iterations", None))).is_some() => {
            // Requests started (a redirect chain is one), carried as a counter entry.
            let r = s.request(Some(&entry_name("iterations", None)))?;
            match (agg, name_tag) {
                (_, Some(_)) => None,
                (Agg::Count, None) => Some(r.count as f64),
                (Agg::Rate, None) => per_s(r.count),
                _ => None,
            }
        }
        "http_reqs" | "iterations" => {
            let r = s.request(tagged.as_deref())?;
            match agg {
                Agg::Count => Some(r.count as f64),
                Agg::Rate => per_s(r.count),
                _ => None,
            }
        }
        "dropped_iterations" => match (agg, name_tag) {
            (_, Some(_)) => None,
            (Agg::Count, None) => Some(s.dropped_iterations as f64),
            (Agg::Rate, None) => per_s(s.dropped_iterations),
            _ => None,
        },
        "http_req_duration" => trend(&s.request(tagged.as_deref())?.latency_ms, agg),
        "iteration_duration" if name_tag.is_none() => {
            let r = s.request(Some(&entry_name("iteration_duration", None)))?;
            trend(&r.latency_ms, agg)
        }
        "iteration_failed" => {
            let r = s.request(Some(&entry_name("iteration_failed", None)))?;
            match (agg, name_tag) {
                (_, Some(_)) => None,
                (Agg::Count, None) => Some(r.count as f64),
                (Agg::Rate, None) => per_s(r.count),
                _ => None,
            }
        }
        "data_sent" | "data_received" => {
            let r = s.request(Some(&entry_name(&metric.name, None)))?;
            match (agg, name_tag) {
                (_, Some(_)) => None,
                (Agg::Count, None) => Some(r.count as f64),
                (Agg::Rate, None) => per_s(r.count),
                _ => None,
            }
        }
        phase if PHASES.contains(&phase) => {
            let r = s.request(Some(&entry_name(phase, name_tag)))?;
            trend(&r.latency_ms, agg)
        }
        "http_req_failed" => {
            let r = s.request(tagged.as_deref())?;
            (r.count > 0 && agg == Agg::Rate).then(|| r.failed as f64 / r.count as f64)
        }
        name => {
            if !metric.tags.is_empty() {
                return None;
            }
            // A flow's trend (a poll's time until its check held) or a declared trend or
            // counter, carried as `(name)`: a counter's number is its `count`.
            if let Some(r) = s.request(Some(&entry_name(name, None))) {
                return match agg {
                    Agg::Count => Some(r.count as f64),
                    Agg::Rate => per_s(r.count),
                    _ => trend(&r.latency_ms, agg),
                };
            }
            let values: Vec<f64> = s.series(name)?.points.iter().map(|p| p.1).collect();
            aggregate(&values, agg)
        }
    }
}

/// A trend's aggregation over its buckets (ascending value, count).
pub fn trend(b: &[(f64, u64)], agg: Agg) -> Option<f64> {
    match agg {
        Agg::Avg => {
            let n: u64 = b.iter().map(|x| x.1).sum();
            (n > 0).then(|| b.iter().map(|(v, c)| v * *c as f64).sum::<f64>() / n as f64)
        }
        Agg::Min => b.iter().find(|x| x.1 > 0).map(|x| x.0),
        Agg::Max => b.iter().rev().find(|x| x.1 > 0).map(|x| x.0),
        Agg::Med => quantile(b, 0.5),
        Agg::P(p) => quantile(b, p / 100.0),
        _ => None,
    }
}

/// Gauge aggregations over samples in time order.
pub fn aggregate(values: &[f64], agg: Agg) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    match agg {
        Agg::Value => values.last().copied(),
        Agg::Min => values.iter().copied().reduce(f64::min),
        Agg::Max => values.iter().copied().reduce(f64::max),
        Agg::Avg => Some(values.iter().sum::<f64>() / values.len() as f64),
        Agg::Med => Some(quantile_of(values, 0.5)),
        Agg::P(p) => Some(quantile_of(values, p / 100.0)),
        Agg::Count | Agg::Rate => None,
    }
}

fn parse(d: &ThresholdDef) -> Result<(MetricRef, Expr), String> {
    let m: MetricRef = d.metric.parse().map_err(|e| format!("{e}"))?;
    let e: Expr = d
        .threshold
        .parse()
        .map_err(|e| format!("{}: {e}", d.metric))?;
    Ok((m, e))
}

/// Checks that every definition parses (what a plugin's `configure` does).
pub fn validate(defs: &[ThresholdDef]) -> Result<(), String> {
    defs.iter().try_for_each(|d| parse(d).map(|_| ()))
}

/// Every threshold judged on `s`, in order. A definition that does not parse fails with why.
pub fn evaluate(defs: &[ThresholdDef], s: &Summary) -> Vec<Verdict> {
    defs.iter()
        .map(|d| match parse(d) {
            Ok((m, e)) => judge(&d.metric, &e, observe(s, &m, e.agg), d.abort_on_fail),
            Err(why) => Verdict {
                metric: d.metric.clone(),
                threshold: d.threshold.clone(),
                observed: None,
                passed: false,
                abort_on_fail: d.abort_on_fail,
                reason: Some(why),
                first_breach_s: None,
            },
        })
        .collect()
}

/// k6's `abortOnFail`: the abort-on-fail thresholds failing now, once the run is past
/// `delay_abort_eval_s` (strictly, as k6's `AbortGracePeriod < t`; none given aborts at once).
/// Live checks act on data only: an empty metric is skipped, as k6 skips empty sinks.
pub fn check(defs: &[ThresholdDef], s: &Summary) -> Vec<Verdict> {
    let live: Vec<ThresholdDef> = defs
        .iter()
        .filter(|d| {
            d.abort_on_fail && (d.delay_abort_eval_s <= 0.0 || s.elapsed_s > d.delay_abort_eval_s)
        })
        .cloned()
        .collect();
    evaluate(&live, s)
        .into_iter()
        .filter(|v| !v.passed && v.observed.is_some())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{RequestStats, Series};

    fn summary() -> Summary {
        Summary {
            elapsed_s: 10.0,
            requests: vec![
                RequestStats {
                    name: "(all)".into(),
                    count: 100,
                    failed: 7,
                    latency_ms: vec![(10.0, 90), (500.0, 5), (2500.0, 5)],
                    statuses: vec![(200, 93), (503, 7)],
                },
                RequestStats {
                    name: "order".into(),
                    count: 0,
                    failed: 0,
                    latency_ms: vec![],
                    statuses: vec![],
                },
            ],
            dropped_iterations: 3,
            rates: vec![crate::RateMetric {
                name: "coupon_issue_success".into(),
                good: 95,
                total: 100,
            }],
            series: vec![Series {
                name: "kafka_consumer_lag".into(),
                points: vec![(1.0, 10.0), (2.0, 6850.0), (3.0, 0.0)],
            }],
        }
    }

    fn def(metric: &str, threshold: &str) -> ThresholdDef {
        ThresholdDef {
            metric: metric.into(),
            threshold: threshold.into(),
            abort_on_fail: false,
            delay_abort_eval_s: 0.0,
        }
    }

    /// k6's `TrendSink.P` (metrics/sink.go): linear interpolation at p × (n − 1).
    #[test]
    fn quantiles_interpolate_as_k6_does() {
        // k6's own ten-sample example: med 55 (the rank rule gave 50).
        let ten: Vec<(f64, u64)> = (1..=10).map(|i| (i as f64 * 10.0, 1)).collect();
        assert_eq!(quantile(&ten, 0.5), Some(55.0));
        assert_eq!(quantile(&ten, 0.9), Some(91.0));
        assert_eq!(quantile(&ten, 0.0), Some(10.0));
        assert_eq!(quantile(&ten, 1.0), Some(100.0));
        // Two samples 5 and 10: p(95) 9.75 (the rank rule gave 10).
        assert_eq!(quantile(&[(5.0, 1), (10.0, 1)], 0.95), Some(9.75));
        assert_eq!(quantile(&[(7.0, 1)], 0.95), Some(7.0));
        // Buckets holding several samples are several equal samples.
        let b = [(1.0, 50), (2.0, 45), (3.0, 5)];
        assert_eq!(quantile(&b, 0.5), Some(1.5)); // between rank 49 (1) and 50 (2)
        let p95 = quantile(&b, 0.95).unwrap(); // 94.05: rank 94 (2), rank 95 (3)
        assert!((p95 - 2.05).abs() < 1e-9, "{p95}");
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(aggregate(&[10.0, 5.0], Agg::P(95.0)), Some(9.75));
        assert_eq!(aggregate(&[3.0, 1.0, 2.0], Agg::Med), Some(2.0));
    }

    #[test]
    fn incident_gates_on_a_summary() {
        let s = summary();
        let v = evaluate(
            &[
                def("http_req_failed", "rate<0.05"),
                def("http_req_duration", "p(95)<2000"),
                def("http_req_duration", "p(94)<2000"),
                def("coupon_issue_success", "rate>0.97"),
                def("kafka_consumer_lag", "max<5000"),
                def("dropped_iterations", "count<5"),
                def("http_reqs", "rate>=10"),
            ],
            &s,
        );
        let got: Vec<(bool, Option<f64>)> = v
            .iter()
            .map(|v| (v.passed, v.observed.map(|x| (x * 1e6).round() / 1e6)))
            .collect();
        assert_eq!(
            got,
            vec![
                (false, Some(0.07)),
                // Position 94.05: rank 94 (500) + 0.05 × (rank 95 (2500) − 500).
                (true, Some(600.0)),
                (true, Some(500.0)),
                (false, Some(0.95)),
                (false, Some(6850.0)),
                (true, Some(3.0)),
                (true, Some(10.0))
            ]
        );
        assert_eq!(
            evaluate(&[def("http_req_duration", "p(96)<2000")], &s)[0].observed,
            Some(2500.0)
        );
    }

    #[test]
    fn no_data_fails_instead_of_passing() {
        let s = summary();
        let v = evaluate(
            &[
                def("http_req_duration{name:order}", "p(95)<2000"),
                def("nope", "max<1"),
            ],
            &s,
        );
        assert!(v
            .iter()
            .all(|v| !v.passed && v.reason.as_deref().unwrap().contains("no data")));
        let e: Expr = "p(95)<2000".parse().unwrap();
        assert!(judge("x", &e, Some(10.0), false).passed);
    }

    #[test]
    fn a_tag_set_reads_its_own_entry_and_never_the_whole_metric() {
        let mut s = summary();
        s.requests.push(RequestStats {
            name: "(all){scenario:browse,status:200}".into(),
            count: 40,
            failed: 0,
            latency_ms: vec![(12.0, 40)],
            statuses: vec![(200, 40)],
        });
        let got = |metric: &str, t: &str| evaluate(&[def(metric, t)], &s)[0].observed;
        assert_eq!(
            got("http_reqs{status:200,scenario:browse}", "count>0"),
            Some(40.0)
        );
        assert_eq!(
            got(r#"http_reqs{scenario:"browse", status:'200'}"#, "count>0"),
            Some(40.0)
        );
        assert_eq!(
            got("http_req_duration{scenario:browse,status:200}", "max<20"),
            Some(12.0)
        );
        assert_eq!(
            got("http_req_failed{scenario:browse,status:200}", "rate<0.1"),
            Some(0.0)
        );
        // A set nobody filled is no data (a failed gate), not the whole metric.
        assert_eq!(got("http_reqs{status:200}", "count>0"), None);
        assert_eq!(got("http_req_waiting{status:200}", "p(95)<1"), None);
        assert_eq!(got("coupon_issue_success{status:200}", "rate>0.9"), None);
    }

    #[test]
    fn no_rate_before_time_has_passed() {
        let mut s = summary();
        s.elapsed_s = 0.0;
        let v = evaluate(&[def("http_reqs", "rate>=10")], &s);
        assert_eq!((v[0].passed, v[0].observed), (false, None));
        assert_eq!(
            evaluate(&[def("http_reqs", "count>=10")], &s)[0].observed,
            Some(100.0)
        );
    }

    #[test]
    fn check_honours_abort_on_fail_and_delay() {
        let s = summary();
        let mut d = def("http_req_failed", "rate<0.05");
        assert!(check(&[d.clone()], &s).is_empty(), "not abortOnFail");
        d.abort_on_fail = true;
        d.delay_abort_eval_s = 30.0;
        assert!(
            check(&[d.clone()], &s).is_empty(),
            "still inside delayAbortEval"
        );
        d.delay_abort_eval_s = 10.0;
        assert!(
            check(&[d.clone()], &s).is_empty(),
            "k6 aborts once the time spent is past the grace, not at it"
        );
        d.delay_abort_eval_s = 5.0;
        assert_eq!(check(&[d], &s).len(), 1);
        let mut nodata = def("http_req_duration{name:order}", "p(95)<1");
        nodata.abort_on_fail = true;
        assert!(
            check(&[nodata], &s).is_empty(),
            "no data is not a reason to abort"
        );
    }

    #[test]
    fn a_probe_selector_names_its_series() {
        let mut s = summary();
        let name = r#"sum(node_cpu_seconds_total{mode!="idle"})"#;
        s.series.push(Series {
            name: name.into(),
            points: vec![(1.0, 3.0), (2.0, 7.0)],
        });
        let v = evaluate(&[def(name, "max<5"), def(name, "value>=7")], &s);
        let got: Vec<(bool, Option<f64>)> = v.iter().map(|v| (v.passed, v.observed)).collect();
        assert_eq!(got, vec![(false, Some(7.0)), (true, Some(7.0))]);
        assert_eq!(v[0].metric, name);
    }

    #[test]
    fn bad_definitions_fail_with_why() {
        let v = evaluate(&[def("http_req_duration", "p95<1")], &summary());
        assert!(
            !v[0].passed
                && v[0]
                    .reason
                    .as_deref()
                    .unwrap()
                    .contains("unknown aggregation `p95`")
        );
        assert!(validate(&[def("a{", "rate<1")]).is_err());
    }
}
