//! The run's metrics under k6's names (as k6's Prometheus remote-write output names them:
//! `k6_` + the metric, counters `_total`, latencies in seconds), request tags as labels and
//! latencies as Prometheus histograms. One list of [`Family`]s feeds both `/metrics` (text
//! format 0.0.4) and the remote-write output, so a scrape and a push never disagree.

use std::fmt::Write as _;

use crate::metrics::{RunMetrics, Totals, Trend};
use crate::prom::remote_write::TimeSeries;

/// Histogram bounds in seconds: Prometheus's default latency buckets, widened to a minute.
const BUCKETS_S: [f64; 15] = [
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    15.0,
    30.0,
    60.0,
    f64::INFINITY,
];

/// Labels of one sample, in order.
pub type Labels = Vec<(String, String)>;

/// One metric family: its samples with their labels (for a histogram the `_bucket`, `_sum`
/// and `_count` samples, named in full).
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: &'static str,
    pub samples: Vec<(String, Labels, f64)>,
}

/// What the run knows besides the recorder: the vital signs and the judges' state.
#[derive(Default)]
pub struct Extras {
    /// Probe series (name, last value).
    pub probes: Vec<(String, f64)>,
    /// Thresholds (metric, expression, passing now: None when not judged yet).
    pub thresholds: Vec<(String, String, Option<bool>)>,
    /// Faults in force (kind, target).
    pub faults_active: Vec<(String, String)>,
    /// Alerts firing now (name, source).
    pub alerts_firing: Vec<(String, String)>,
    /// Control actions taken so far.
    pub control_actions: u64,
    /// Remote-write batches dropped or failed so far.
    pub remote_write_dropped: u64,
    pub remote_write_failed: u64,
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Every family of the run, from a recorder snapshot and the extras.
pub fn families(m: &RunMetrics, x: &Extras) -> Vec<Family> {
    let mut out = vec![requests(m), failed(m), durations(m)];
    let counter = |name, help, v: u64| Family {
        name,
        help,
        kind: "counter",
        samples: vec![(name.to_owned(), Vec::new(), v as f64)],
    };
    out.push(counter(
        "k6_iterations_total",
        "Iterations run.",
        m.iterations,
    ));
    out.push(counter(
        "k6_dropped_iterations_total",
        "Arrivals not started: the in-flight bound (maxVUs) was full.",
        m.dropped,
    ));
    out.push(counter("k6_data_sent_total", "Bytes sent.", m.data_sent));
    out.push(counter(
        "k6_data_received_total",
        "Bytes received.",
        m.data_received,
    ));
    out.push(checks(m));
    out.extend(gauges(m));
    out.extend(extras(x));
    out
}

/// Per request name and status (0: no response, as k6 tags a transport error).
fn requests(m: &RunMetrics) -> Family {
    let mut samples = Vec::new();
    for (name, t) in &m.per_name {
        let answered: u64 = t.statuses.values().sum();
        for (status, n) in &t.statuses {
            let l = labels(&[("name", name), ("status", &status.to_string())]);
            samples.push(("k6_http_reqs_total".to_owned(), l, *n as f64));
        }
        if t.count > answered {
            let l = labels(&[("name", name), ("status", "0")]);
            samples.push((
                "k6_http_reqs_total".to_owned(),
                l,
                (t.count - answered) as f64,
            ));
        }
    }
    Family {
        name: "k6_http_reqs_total",
        help: "HTTP requests sent, per request name and status.",
        kind: "counter",
        samples,
    }
}

fn failed(m: &RunMetrics) -> Family {
    let samples = m
        .per_name
        .iter()
        .map(|(name, t)| {
            let l = labels(&[("name", name)]);
            ("k6_http_req_failed_total".to_owned(), l, t.failed as f64)
        })
        .collect();
    Family {
        name: "k6_http_req_failed_total",
        help: "HTTP requests that failed (k6's http_req_failed), per request name.",
        kind: "counter",
        samples,
    }
}

fn durations(m: &RunMetrics) -> Family {
    let mut samples = Vec::new();
    for (name, t) in &m.per_name {
        histogram(&mut samples, "k6_http_req_duration_seconds", name, t);
    }
    Family {
        name: "k6_http_req_duration_seconds",
        help: "HTTP request duration (k6's http_req_duration), per request name.",
        kind: "histogram",
        samples,
    }
}

fn histogram(out: &mut Vec<(String, Labels, f64)>, base: &str, name: &str, t: &Totals) {
    let trend: &Trend = &t.latency;
    for le in BUCKETS_S {
        let (text, n) = match le.is_finite() {
            true => (fmt_f64(le), trend.count_le_us((le * 1e6) as u64)),
            false => ("+Inf".to_owned(), trend.len()),
        };
        let l = labels(&[("name", name), ("le", &text)]);
        out.push((format!("{base}_bucket"), l, n as f64));
    }
    let l = labels(&[("name", name)]);
    out.push((format!("{base}_sum"), l.clone(), trend.sum_secs()));
    out.push((format!("{base}_count"), l, trend.len() as f64));
}

fn checks(m: &RunMetrics) -> Family {
    let mut samples = Vec::new();
    for (check, c) in &m.checks {
        for (result, n) in [("pass", c.passes), ("fail", c.fails)] {
            let l = labels(&[("check", check), ("result", result)]);
            samples.push(("k6_checks_total".to_owned(), l, n as f64));
        }
    }
    Family {
        name: "k6_checks_total",
        help: "Check results (k6's checks), per check and result.",
        kind: "counter",
        samples,
    }
}

/// The executors' gauges of the last complete second (`vus`, `target_rate`, `in_flight`).
fn gauges(m: &RunMetrics) -> Vec<Family> {
    let last = m.windows.last();
    let value = |g: &str| last.and_then(|w| w.gauges.get(g)).copied().unwrap_or(0.0);
    [
        ("k6_vus", "VUs iterating.", "vus"),
        (
            "k6_target_rate",
            "Arrivals per second the executors aim at.",
            "target_rate",
        ),
        (
            "k6_in_flight",
            "Iterations in flight (arrival-rate executors).",
            "in_flight",
        ),
    ]
    .into_iter()
    .map(|(name, help, g)| Family {
        name,
        help,
        kind: "gauge",
        samples: vec![(name.to_owned(), Vec::new(), value(g))],
    })
    .collect()
}

fn extras(x: &Extras) -> Vec<Family> {
    let gauge = |name, help, samples| Family {
        name,
        help,
        kind: "gauge",
        samples,
    };
    let probes = x.probes.iter().map(|(s, v)| {
        let l = labels(&[("series", s)]);
        ("harness_probe_value".to_owned(), l, *v)
    });
    let thresholds = x.thresholds.iter().filter_map(|(m, e, ok)| {
        let l = labels(&[("metric", m), ("threshold", e)]);
        ok.map(|ok| {
            (
                "harness_threshold_passing".to_owned(),
                l,
                f64::from(u8::from(ok)),
            )
        })
    });
    let faults = x.faults_active.iter().map(|(k, t)| {
        let l = labels(&[("kind", k), ("target", t)]);
        ("harness_fault_active".to_owned(), l, 1.0)
    });
    let alerts = x.alerts_firing.iter().map(|(n, s)| {
        let l = labels(&[("alertname", n), ("source", s)]);
        ("harness_alert_firing".to_owned(), l, 1.0)
    });
    let one = |name: &str, v: u64| vec![(name.to_owned(), Vec::new(), v as f64)];
    vec![
        gauge(
            "harness_probe_value",
            "Last value of each probe series.",
            probes.collect(),
        ),
        gauge(
            "harness_threshold_passing",
            "1 while a threshold passes on the data so far, 0 while it fails.",
            thresholds.collect(),
        ),
        gauge(
            "harness_fault_active",
            "Faults in force now.",
            faults.collect(),
        ),
        gauge(
            "harness_alert_firing",
            "Alerts firing now.",
            alerts.collect(),
        ),
        Family {
            name: "harness_control_actions_total",
            help: "Control requests the run carried out.",
            kind: "counter",
            samples: one("harness_control_actions_total", x.control_actions),
        },
        Family {
            name: "harness_remote_write_dropped_batches_total",
            help: "Remote-write batches dropped (queue full) or failed (receiver error).",
            kind: "counter",
            samples: one(
                "harness_remote_write_dropped_batches_total",
                x.remote_write_dropped + x.remote_write_failed,
            ),
        },
    ]
}

/// Prometheus text format 0.0.4.
pub fn text(families: &[Family]) -> String {
    let mut out = String::new();
    for f in families {
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
        for (name, labels, v) in &f.samples {
            out.push_str(name);
            if !labels.is_empty() {
                out.push('{');
                for (i, (k, val)) in labels.iter().enumerate() {
                    let sep = if i == 0 { "" } else { "," };
                    let _ = write!(out, "{sep}{k}=\"{}\"", escape(val));
                }
                out.push('}');
            }
            let _ = writeln!(out, " {}", fmt_f64(*v));
        }
    }
    out
}

/// The same samples as remote-write series at `ts_ms`, each with `extra` labels added.
pub fn timeseries(families: &[Family], ts_ms: i64, extra: &[(String, String)]) -> Vec<TimeSeries> {
    let mut out = Vec::new();
    for f in families {
        for (name, labels, v) in &f.samples {
            let mut l = vec![("__name__".to_owned(), name.clone())];
            l.extend(labels.iter().cloned());
            l.extend(extra.iter().cloned());
            out.push(TimeSeries {
                labels: l,
                samples: vec![(ts_ms, *v)],
            });
        }
    }
    out
}

fn escape(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn fmt_f64(v: f64) -> String {
    match v {
        v if v.is_nan() => "NaN".to_owned(),
        v if v == f64::INFINITY => "+Inf".to_owned(),
        v if v == f64::NEG_INFINITY => "-Inf".to_owned(),
        v => format!("{v}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Outcome, Recorder};
    use std::time::Duration;

    #[test]
    fn a_histogram_is_cumulative_and_counts_every_request() {
        let rec = Recorder::new(&["get".to_owned()]);
        for ms in [3, 30, 300, 3000] {
            let o = Outcome {
                status: Some(200),
                ok: true,
                latency: Duration::from_millis(ms),
                ..Outcome::failed(crate::metrics::ErrorKind::Other, Duration::ZERO)
            };
            rec.record("get", o);
        }
        let text = text(&families(&rec.snapshot(), &Extras::default()));
        assert!(
            text.contains("# TYPE k6_http_req_duration_seconds histogram"),
            "{text}"
        );
        assert!(text.contains(r#"k6_http_req_duration_seconds_bucket{name="get",le="0.005"} 1"#));
        assert!(text.contains(r#"k6_http_req_duration_seconds_bucket{name="get",le="0.5"} 3"#));
        assert!(text.contains(r#"k6_http_req_duration_seconds_bucket{name="get",le="+Inf"} 4"#));
        assert!(text.contains(r#"k6_http_req_duration_seconds_count{name="get"} 4"#));
        assert!(text.contains(r#"k6_http_req_duration_seconds_sum{name="get"} 3.333"#));
        assert!(text.contains(r#"k6_http_reqs_total{name="get",status="200"} 4"#));
        // Prometheus's own parser reads it.
        let lines = text.lines().map(|l| Ok(l.to_owned()));
        let scrape = prometheus_parse::Scrape::parse(lines).expect("valid exposition");
        assert!(scrape.samples.iter().any(|s| s.metric == "k6_vus"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
