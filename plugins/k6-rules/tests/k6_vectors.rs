//! Conformance vectors from k6's own tests. Each names its k6 source file, test and subtest
//! (commits: `metrics/sink_test.go` @ feb4ac9d — the sorted-values TrendSink;
//! `metrics/thresholds_parser_test.go` @ 2e828e30; `metrics/thresholds_test.go` @ bf8c5e28;
//! `metrics/metric_test.go` @ feb4ac9d; `metrics/registry_test.go` @ b10a5772;
//! `metrics/engine/engine_test.go` @ 194ad7f3). The inputs and k6's expected outputs are
//! copied from those tests; where we differ on purpose the vector says so and why.
//!
//! Values reach the rules the way the harness hands them over: a trend as (value, count)
//! buckets, a counter as a count over elapsed seconds, a rate as good/total, a gauge as a
//! series.

use k6_rules::{
    aggregate, check, check_metric_name, entry_name, evaluate, Agg, Expr, MetricRef, RateMetric,
    RequestStats, Series, Summary, ThresholdDef,
};

const U10: [f64; 10] = [0.0, 100.0, 30.0, 80.0, 70.0, 60.0, 50.0, 40.0, 90.0, 20.0];

/// A summary holding one trend `t` of `values`, a counter `c`, a rate `r` and a gauge `g`.
fn summary(trend: &[f64], count: u64, (good, total): (u64, u64), gauge: &[f64]) -> Summary {
    let mut sorted = trend.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    Summary {
        elapsed_s: 1.0,
        requests: vec![
            RequestStats {
                name: entry_name("t", None),
                count: sorted.len() as u64,
                latency_ms: sorted.iter().map(|v| (*v, 1)).collect(),
                ..Default::default()
            },
            RequestStats {
                name: entry_name("data_sent", None),
                count,
                ..Default::default()
            },
        ],
        rates: vec![RateMetric {
            name: "r".into(),
            good,
            total,
        }],
        series: vec![Series {
            name: "g".into(),
            points: gauge
                .iter()
                .enumerate()
                .map(|(i, v)| (i as f64, *v))
                .collect(),
        }],
        ..Default::default()
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

/// (observed, passed) of one threshold.
fn judge(s: &Summary, metric: &str, threshold: &str) -> (Option<f64>, bool) {
    let v = &evaluate(&[def(metric, threshold)], s)[0];
    (v.observed, v.passed)
}

fn observed(s: &Summary, metric: &str, agg: &str) -> f64 {
    judge(s, metric, &format!("{agg}>-1e300")).0.unwrap()
}

fn close(got: f64, want: f64) {
    assert!((got - want).abs() < 1e-6, "got {got}, k6 {want}");
}

/// sink_test.go TestTrendSink: add/one value, add/values, add/negative, add/mixed; format.
#[test]
fn trend_sink_stats() {
    let one = summary(&[7.0], 0, (0, 0), &[]);
    for agg in ["min", "max", "avg", "med"] {
        close(observed(&one, "t", agg), 7.0);
    }
    // format (U10): min 0, max 100, avg 54, med 55, p(90) 91, p(95) 95.5.
    let s = summary(&U10, 0, (0, 0), &[]);
    for (agg, want) in [
        ("min", 0.0),
        ("max", 100.0),
        ("avg", 54.0),
        ("med", 55.0),
        ("p(90)", 91.0),
        ("p(95)", 95.5),
    ] {
        close(observed(&s, "t", agg), want);
    }
    let neg = summary(&[-10.0, -20.0], 0, (0, 0), &[]);
    close(observed(&neg, "t", "min"), -20.0);
    close(observed(&neg, "t", "max"), -10.0);
    close(observed(&neg, "t", "avg"), -15.0);
    let mixed = summary(&[1.4, 0.0, -1.2], 0, (0, 0), &[]);
    assert_eq!(
        (observed(&mixed, "t", "avg") * 1000.0).round() / 1000.0,
        0.067
    );
}

/// sink_test.go TestTrendSink: percentile/one value, two values, more than 2.
#[test]
fn trend_sink_percentiles() {
    let one = summary(&[10.0], 0, (0, 0), &[]);
    for p in [1, 50, 95, 100] {
        close(observed(&one, "t", &format!("p({p})")), 10.0);
    }
    let two = summary(&[5.0, 10.0], 0, (0, 0), &[]);
    for (p, want) in [
        (0.0, 5.0),
        (50.0, 7.5),
        (95.0, 9.75),
        (99.0, 9.95),
        (100.0, 10.0),
    ] {
        close(observed(&two, "t", &format!("p({p})")), want);
    }
    let ten = summary(&U10, 0, (0, 0), &[]);
    for (p, want) in [
        (0.0, 0.0),
        (50.0, 55.0),
        (95.0, 95.5),
        (99.0, 99.1),
        (100.0, 100.0),
    ] {
        close(observed(&ten, "t", &format!("p({p})")), want);
    }
}

/// sink_test.go TestTrendSink percentile/no values: k6's P is 0 on an empty sink; here a
/// threshold on it is "no data" and fails (our one deliberate departure: a gate that judged
/// nothing must not pass). thresholds_test.go "trend sink with no values and passing med
/// statement succeeds" (med<39 → true in k6) is the same departure.
#[test]
fn an_empty_trend_is_no_data_not_zero() {
    let empty = summary(&[], 0, (0, 0), &[]);
    assert_eq!(judge(&empty, "t", "med<39"), (None, false));
    assert_eq!(judge(&empty, "t", "med>39"), (None, false)); // k6: false too
}

/// sink_test.go TestCounterSink format: C10 sums to 145, rate 145/s over 1 s.
/// thresholds_test.go TestThresholdsRun: count<2000 on 1234 passes, on 3000 fails.
#[test]
fn counter_sink() {
    let s = summary(&[], 145, (0, 0), &[]);
    close(observed(&s, "data_sent", "count"), 145.0);
    close(observed(&s, "data_sent", "rate"), 145.0);
    assert!(judge(&summary(&[], 1234, (0, 0), &[]), "data_sent", "count<2000").1);
    assert!(!judge(&summary(&[], 3000, (0, 0), &[]), "data_sent", "count<2000").1);
}

/// sink_test.go TestGaugeSink add/values and format: G6 → value 5 (the last), min 1, max 10.
#[test]
fn gauge_sink() {
    let g6 = [1.0, 2.0, 3.0, 4.0, 10.0, 5.0];
    assert_eq!(aggregate(&g6, Agg::Value), Some(5.0));
    assert_eq!(aggregate(&g6, Agg::Min), Some(1.0));
    assert_eq!(aggregate(&g6, Agg::Max), Some(10.0));
    let s = summary(&[], 0, (0, 0), &g6);
    close(observed(&s, "g", "value"), 5.0);
}

/// sink_test.go TestRateSink add/values + format: R6 (3 of 6 non-zero) → rate 0.5.
#[test]
fn rate_sink() {
    close(observed(&summary(&[], 0, (3, 6), &[]), "r", "rate"), 0.5);
}

/// thresholds_test.go TestThreshold_runNoTaint: every operator, `===` as `==`.
#[test]
fn operators() {
    for ((good, total), threshold, want) in [
        ((1, 1), "rate>0.01", true),
        ((1, 100), "rate>=0.01", true),
        ((1, 100), "rate<=0.01", true),
        ((1, 100_000), "rate<0.01", true),
        ((1, 100), "rate==0.01", true),
        ((1, 100), "rate===0.01", true),
        ((2, 100), "rate!=0.01", true),
        ((1, 100_000), "rate>0.01", false),
        ((1, 1), "rate<0.01", false),
    ] {
        let s = summary(&[], 0, (good, total), &[]);
        assert_eq!(
            judge(&s, "r", threshold).1,
            want,
            "{threshold} on {good}/{total}"
        );
    }
    // "invalid expression operator": rate & 0.01 does not parse.
    assert!("rate&0.01".parse::<Expr>().is_err());
}

/// thresholds_test.go "Running threshold on non existing sink does not fail" (k6: passes) —
/// here it fails with no data, the documented departure.
#[test]
fn a_threshold_on_a_metric_without_samples_fails() {
    let s = summary(&[], 0, (0, 0), &[]);
    assert_eq!(judge(&s, "r", "rate<0.5"), (None, false));
}

/// thresholds_test.go TestThresholdsRun: a trend [70, 80, 90] with med>39 passes, med<39 fails.
#[test]
fn med_on_values() {
    let s = summary(&[70.0, 80.0, 90.0], 0, (0, 0), &[]);
    assert!(judge(&s, "t", "med>39").1);
    assert!(!judge(&s, "t", "med<39").1);
}

/// thresholds_test.go TestThresholdsRunAll: rate 0.0001 and p(95) 500 after 1,500 ms;
/// abortOnFail on `p(95)<200` aborts with no grace or a 1 s grace, not with a 2 s grace.
/// engine_test.go TestMetricsEngineEvaluateIgnoreEmptySink: during the run an empty metric
/// never aborts.
#[test]
fn abort_on_fail_and_its_grace() {
    let mut s = summary(&[], 0, (1, 10_000), &[]);
    s.elapsed_s = 1.5;
    s.requests.push(RequestStats {
        name: "(all)".into(),
        count: 100,
        latency_ms: vec![(100.0, 90), (500.0, 10)], // p(95) = 500
        ..Default::default()
    });
    let abort = |grace: f64| {
        let mut d = def("http_req_duration", "p(95)<200");
        d.abort_on_fail = true;
        d.delay_abort_eval_s = grace;
        !check(&[d], &s).is_empty()
    };
    assert!(abort(0.0), "one aborting");
    assert!(abort(1.0), "abort with grace period");
    assert!(!abort(2.0), "no abort with grace period");
    let mut passing = def("r", "rate<0.01");
    passing.abort_on_fail = true;
    assert!(check(&[passing], &s).is_empty(), "one passing");
    let mut empty = def("http_req_duration{name:none}", "p(95)<200");
    empty.abort_on_fail = true;
    assert!(
        check(&[empty], &s).is_empty(),
        "empty sinks are skipped while running"
    );
}

/// thresholds_parser_test.go TestParseThresholdExpression, TestParseThresholdAggregationMethod,
/// TestScanThresholdExpression.
#[test]
fn expression_parsing() {
    for ok in [
        "count>20",
        "count<=20",
        "count>=20",
        "count===20",
        "count!=20",
        "rate<1",
        "value<1",
        "avg<1",
        "min<1",
        "max<1",
        "med<1",
        "p(99)<1",
        "p(99.9)<1",
        "p(0)<1",
        "p(100)<1",
        "  count  <=20",
        "count<=  20  ",
        "p(95) < 200",
        " p(95)<200 ",
    ] {
        assert!(ok.parse::<Expr>().is_ok(), "{ok:?} parses in k6");
    }
    for bad in [
        "count!20",
        "foo>20",
        "count>abc",
        "foo<1",
        "p()<1",
        "p(99<1",
        "p(foo)<1",
        "p(-1)<1",
        "p(101)<1",
        "p(NaN)<1",
        "p(+Inf)<1",
        "count=20",
        "count 20",
        "p( 95 )<200",
    ] {
        assert!(bad.parse::<Expr>().is_err(), "{bad:?} is refused by k6");
    }
    let e: Expr = "p(99.9)<1".parse().unwrap();
    assert_eq!(e.agg, Agg::P(99.9));
}

/// metric_test.go TestParseMetricName and TestAddSubmetric.
#[test]
fn metric_names_with_tags() {
    let tags = |s: &str| -> Vec<(String, String)> { s.parse::<MetricRef>().unwrap().tags };
    let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    assert!(tags("test_metric").is_empty());
    assert_eq!(tags("test_metric{abc:123}"), [pair("abc", "123")]);
    assert_eq!(
        tags("test_metric{abc:123, easyas:doremi}"),
        [pair("abc", "123"), pair("easyas", "doremi")]
    );
    assert_eq!(
        tags("test_metric{group:::mygroup}"),
        [pair("group", "::mygroup")]
    );
    assert_eq!(
        tags("http_req_duration{name:http://${}.com,url:ssh://github.com:grafana/k6}"),
        [
            pair("name", "http://${}.com"),
            pair("url", "ssh://github.com:grafana/k6")
        ]
    );
    // TestAddSubmetric: spaces, then quotes, are trimmed; spaces inside quotes are kept.
    assert_eq!(
        tags(r#"m{a : '1' , b : "2"}"#),
        [pair("a", "1"), pair("b", "2")]
    );
    assert_eq!(tags(r#"m{b : "2 "}"#), [pair("b", "2 ")]);
    for bad in [
        "test_metric{easyas}",
        "test_metric{easyas:}",
        "test_metric{abc:123,easyas:}",
        "test_metric{abc:123,easyas:doremi",
        "test_metricabc:123,easyas:doremi}",
        "test_metric}abc:123,easyas:doremi}",
        "test_metric}abc{bar",
        "test_metric{foo:ba}r",
    ] {
        assert!(
            bad.parse::<MetricRef>().is_err(),
            "{bad:?} is refused by k6"
        );
    }
}

/// registry_test.go TestMetricNames (k6's current rule `^[a-zA-Z_][a-zA-Z0-9_]{1,128}$`).
#[test]
fn metric_name_validity() {
    for ok in ["simple", "still_simple"] {
        assert!(check_metric_name(ok).is_ok(), "{ok}");
    }
    let long = format!("toool{}g", "o".repeat(147));
    assert_eq!(long.len(), 153);
    for bad in [
        "",
        "@",
        "special\n\t",
        "a",
        "hello.World_in_한글一안녕一세상",
        &long,
    ] {
        assert!(check_metric_name(bad).is_err(), "{bad:?}");
    }
}
