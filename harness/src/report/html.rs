//! `report.html`: one self-contained page (inline CSS and SVG, no script, no network) with the
//! verdict, charts over time with threshold lines and fault windows, and every table of the
//! summary. Built only from `summary.json` + `timeseries.csv`, so any run can be re-rendered.

use std::fmt::Write;

use super::csvread::Table;
use super::svg::{Chart, Line};
use super::Summary;
use crate::threshold::{fmt_num, Agg, Expr};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Threshold lines for `metric` whose aggregation `wanted` accepts, scaled by `scale`.
fn threshold_lines(
    s: &Summary,
    metric: &str,
    wanted: impl Fn(&Agg) -> bool,
    scale: f64,
) -> Vec<(f64, String)> {
    s.thresholds
        .iter()
        .filter(|v| v.metric == metric)
        .filter_map(|v| {
            v.threshold
                .parse::<Expr>()
                .ok()
                .filter(|e| wanted(&e.agg))
                .map(|e| (e.value * scale, v.threshold.clone()))
        })
        .collect()
}

const STYLE: &str = "body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:980px;color:#222;padding:0 16px}\
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}\
.verdict{display:inline-block;padding:3px 12px;border-radius:4px;color:#fff;font-weight:700;margin-right:8px}\
.passed{background:#2e7d32}.failed,.aborted,.error{background:#c62828}.interrupted{background:#ef6c00}\
table{border-collapse:collapse;margin:6px 0 12px;font-variant-numeric:tabular-nums}th,td{border:1px solid #ddd;padding:4px 8px;text-align:left}td.n{text-align:right}\
th{background:#f6f6f6}td:first-child,th:first-child{text-align:left}.ok{color:#2e7d32;font-weight:700}.bad{color:#c62828;font-weight:700}\
figure.chart{margin:10px 0 18px}figcaption{font-weight:600;margin-bottom:2px}.legend span{margin-right:14px;font-size:12px}\
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}.muted{color:#777}";

/// The field or toxic name a fault changed (its target up to " at <url>").
fn fault_label(f: &crate::fault::journal::FaultRecord) -> String {
    f.target
        .split(" at ")
        .next()
        .unwrap_or(&f.target)
        .to_owned()
}

pub fn render(s: &Summary, t: &Table) -> String {
    let x = t.seconds();
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} — {}</title><style>{STYLE}</style></head><body>",
        esc(&s.scenario.name),
        esc(&s.status)
    );
    let _ = write!(
        out,
        "<h1><span class=\"verdict {}\">{}</span>{}</h1>",
        esc(&s.status),
        esc(&s.status.to_uppercase()),
        esc(&s.scenario.name)
    );
    let _ = write!(
        out,
        "<p class=\"muted\">run {} · started {} · {} executor · {:.1} s · target {} · {} requests ({:.1}/s), {} failed, {} dropped</p>",
        esc(&s.run_id),
        esc(&s.started_at),
        esc(&s.scenario.executor),
        s.elapsed_s,
        esc(&s.target),
        s.totals.http_reqs,
        s.totals.http_reqs_per_s,
        s.totals.http_req_failed,
        s.totals.dropped_iterations
    );
    if let Some(r) = &s.reason {
        let _ = write!(out, "<p><b>Reason:</b> {}</p>", esc(r));
    }

    out.push_str("<h2>Thresholds</h2>");
    if s.thresholds.is_empty() {
        out.push_str("<p class=\"muted\">No thresholds declared.</p>");
    } else {
        out.push_str("<table><tr><th></th><th>metric</th><th>threshold</th><th>observed</th><th>why</th></tr>");
        for v in &s.thresholds {
            let _ = write!(
                out,
                "<tr><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                if v.passed { "ok" } else { "bad" },
                if v.passed { "✓" } else { "✗" },
                esc(&v.metric),
                esc(&v.threshold),
                v.observed.map(fmt_num).unwrap_or_else(|| "no data".into()),
                esc(v.reason.as_deref().unwrap_or(""))
            );
        }
        out.push_str("</table>");
    }

    out.push_str("<h2>Over time</h2>");
    // Fault windows, shaded on every chart.
    let bands: Vec<(f64, f64, String)> = s
        .faults
        .iter()
        .map(|f| {
            (
                f.applied_s,
                f.rolled_back_s.unwrap_or(s.elapsed_s),
                format!("{} {}", f.kind, fault_label(f)),
            )
        })
        .collect();
    let mut charts: Vec<String> = Vec::new();
    let col = |n: &str| t.column(n);
    let mut add = |chart: Chart| {
        if chart.points() > 0 {
            charts.push(chart.render());
        }
    };
    let (vus, rate) = (col("vus"), col("target_rate"));
    let mut load_lines = Vec::new();
    if let Some(v) = &vus {
        load_lines.push(Line {
            label: "VUs",
            values: v,
            color: "#6a1b9a",
        });
    }
    if let Some(v) = &rate {
        load_lines.push(Line {
            label: "target rate (req/s)",
            values: v,
            color: "#6a1b9a",
        });
    }
    add(Chart {
        id: "chart-load",
        title: "Virtual users / target rate",
        unit: "",
        x: &x,
        lines: load_lines,
        thresholds: vec![],
        bands: bands.clone(),
    });
    let (reqs, failed) = (
        col("requests").unwrap_or_default(),
        col("failed").unwrap_or_default(),
    );
    add(Chart {
        id: "chart-rps",
        title: "Requests per second",
        unit: "req/s",
        x: &x,
        lines: vec![
            Line {
                label: "requests",
                values: &reqs,
                color: "#1565c0",
            },
            Line {
                label: "failed",
                values: &failed,
                color: "#c62828",
            },
        ],
        thresholds: vec![],
        bands: bands.clone(),
    });
    let err_rate: Vec<Option<f64>> = reqs
        .iter()
        .zip(&failed)
        .map(|(r, f)| match (r, f) {
            (Some(r), Some(f)) if *r > 0.0 => Some(f / r),
            _ => None,
        })
        .collect();
    add(Chart {
        id: "chart-errors",
        title: "Error rate (http_req_failed per second)",
        unit: "share",
        x: &x,
        lines: vec![Line {
            label: "error rate",
            values: &err_rate,
            color: "#c62828",
        }],
        thresholds: threshold_lines(s, "http_req_failed", |a| *a == Agg::Rate, 1.0),
        bands: bands.clone(),
    });
    let (p50, p95, p99) = (
        col("p50_ms").unwrap_or_default(),
        col("p95_ms").unwrap_or_default(),
        col("p99_ms").unwrap_or_default(),
    );
    add(Chart {
        id: "chart-latency",
        title: "Latency per second (http_req_duration)",
        unit: "ms",
        x: &x,
        lines: vec![
            Line {
                label: "p50",
                values: &p50,
                color: "#2e7d32",
            },
            Line {
                label: "p95",
                values: &p95,
                color: "#ef6c00",
            },
            Line {
                label: "p99",
                values: &p99,
                color: "#c62828",
            },
        ],
        thresholds: threshold_lines(
            s,
            "http_req_duration",
            |a| matches!(a, Agg::P(_) | Agg::Med | Agg::Max | Agg::Avg),
            1.0,
        ),
        bands: bands.clone(),
    });
    let (active, pending) = (col("db_pool_active"), col("db_pool_pending"));
    let mut pool_lines = Vec::new();
    if let Some(v) = &active {
        pool_lines.push(Line {
            label: "pool active",
            values: v,
            color: "#1565c0",
        });
    }
    if let Some(v) = &pending {
        pool_lines.push(Line {
            label: "pool pending",
            values: v,
            color: "#c62828",
        });
    }
    let mut pool_th = threshold_lines(
        s,
        "db_pool_pending",
        |a| !matches!(a, Agg::Count | Agg::Rate),
        1.0,
    );
    pool_th.extend(threshold_lines(
        s,
        "db_pool_active",
        |a| !matches!(a, Agg::Count | Agg::Rate),
        1.0,
    ));
    add(Chart {
        id: "chart-pool",
        title: "DB connection pool",
        unit: "connections",
        x: &x,
        lines: pool_lines,
        thresholds: pool_th,
        bands: bands.clone(),
    });
    let (lag, app_lag) = (col("kafka_consumer_lag"), col("coupon_consumer_lag"));
    let mut lag_lines = Vec::new();
    if let Some(v) = &lag {
        lag_lines.push(Line {
            label: "consumer lag (Kafka protocol)",
            values: v,
            color: "#6a1b9a",
        });
    }
    if let Some(v) = &app_lag {
        lag_lines.push(Line {
            label: "consumer lag (app /metrics)",
            values: v,
            color: "#90a4ae",
        });
    }
    add(Chart {
        id: "chart-lag",
        title: "Consumer lag",
        unit: "records",
        x: &x,
        lines: lag_lines,
        thresholds: threshold_lines(
            s,
            "kafka_consumer_lag",
            |a| !matches!(a, Agg::Count | Agg::Rate),
            1.0,
        ),
        bands,
    });
    for c in charts {
        out.push_str(&c);
    }

    out.push_str("<h2>Requests</h2><table><tr><th>request</th><th>count</th><th>req/s</th><th>error %</th><th>p50 ms</th><th>p90 ms</th><th>p95 ms</th><th>p99 ms</th><th>max ms</th><th>statuses</th></tr>");
    let ms = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into());
    for r in &s.requests {
        let st: Vec<String> = r.statuses.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.2}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.name),
            r.count,
            r.per_s,
            r.error_rate * 100.0,
            ms(r.p50_ms),
            ms(r.p90_ms),
            ms(r.p95_ms),
            ms(r.p99_ms),
            ms(r.max_ms),
            esc(&st.join(" "))
        );
    }
    out.push_str("</table>");

    if !s.sql_checks.is_empty() {
        out.push_str("<h2>SQL checks</h2><table><tr><th></th><th>check</th><th>expected</th><th>observed</th></tr>");
        for c in &s.sql_checks {
            let observed = c
                .error
                .as_ref()
                .map(|e| format!("error: {e}"))
                .or_else(|| c.observed.map(|v| v.to_string()))
                .unwrap_or_default();
            let _ = write!(
                out,
                "<tr><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                if c.passed { "ok" } else { "bad" },
                if c.passed { "✓" } else { "✗" },
                esc(&c.name),
                c.expected.map(|v| v.to_string()).unwrap_or_default(),
                esc(&observed)
            );
        }
        out.push_str("</table>");
    }
    if !s.alerts.is_empty() {
        out.push_str("<h2>Alert rules</h2><table><tr><th>alert</th><th>expr</th><th>for</th><th>severity</th><th>fired at</th><th>resolved at</th><th>time to detect</th></tr>");
        for a in &s.alerts {
            let secs =
                |v: Option<f64>| v.map(|v| format!("{v:.0} s")).unwrap_or_else(|| "—".into());
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{:.0} s</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&a.name),
                esc(&a.expr),
                a.for_secs,
                esc(&a.severity),
                secs(a.fired_at),
                secs(a.resolved_at),
                secs(a.time_to_detect_s)
            );
        }
        out.push_str("</table>");
    }
    out.push_str("<h2>Probes</h2><table><tr><th>probe</th><th>samples</th><th>failures</th><th>last error</th></tr>");
    for p in &s.probes {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.name),
            p.samples,
            p.failures,
            esc(p.last_error.as_deref().unwrap_or(""))
        );
    }
    out.push_str("</table>");
    if !s.series_peaks.is_empty() {
        out.push_str("<table><tr><th>series</th><th>peak</th></tr>");
        for (k, v) in &s.series_peaks {
            let _ = write!(out, "<tr><td>{}</td><td>{}</td></tr>", esc(k), fmt_num(*v));
        }
        out.push_str("</table>");
    }
    if let Some(l) = &s.kafka_lag {
        let _ = write!(
            out,
            "<p>Kafka lag peak {} at {:.1} s; {}.</p>",
            l.peak,
            l.peak_at_s,
            l.drained_at_s
                .map(|d| format!(
                    "drained at {d:.1} s ({:.1} records/s)",
                    l.drain_rate_per_s.unwrap_or(0.0)
                ))
                .unwrap_or_else(|| "not drained".into())
        );
    }
    out.push_str("<h2>Faults</h2>");
    if s.faults.is_empty() {
        out.push_str("<p class=\"muted\">No faults were injected in this run.</p>");
    } else {
        out.push_str("<table><tr><th>plugin</th><th>fault</th><th>value</th><th>applied</th><th>rolled back</th><th>restored to</th></tr>");
        for f in &s.faults {
            let back = match (&f.rolled_back_at, &f.rollback_error) {
                (_, Some(e)) => format!("<span class=\"bad\">FAILED: {}</span>", esc(e)),
                (Some(at), None) => {
                    format!("{} (+{:.1} s)", esc(at), f.rolled_back_s.unwrap_or(0.0))
                }
                (None, None) => "<span class=\"bad\">still active</span>".into(),
            };
            let updates = if f.updates > 0 {
                format!(" ({} updates)", f.updates)
            } else {
                String::new()
            };
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{} {}</td><td><code>{}</code>{}</td><td>{} (+{:.1} s)</td><td>{}</td><td><code>{}</code></td></tr>",
                esc(&f.plugin),
                esc(&f.kind),
                esc(&f.target),
                esc(&f.value),
                updates,
                esc(&f.applied_at),
                f.applied_s,
                back,
                esc(&f.original)
            );
        }
        out.push_str("</table>");
    }
    if let Some(d) = &s.detect_from {
        let _ = write!(
            out,
            "<p class=\"muted\">Time to detect is measured from {} at {:.1} s.</p>",
            esc(&d.event),
            d.at_s
        );
    }
    if !s.threshold_evaluator.is_empty() {
        let _ = write!(
            out,
            "<p class=\"muted\">Thresholds judged by {}.</p>",
            esc(&s.threshold_evaluator)
        );
    }
    out.push_str("<p class=\"muted\">Files: <a href=\"summary.json\">summary.json</a> · <a href=\"timeseries.csv\">timeseries.csv</a> · <a href=\"junit.xml\">junit.xml</a> · <a href=\"report.md\">report.md</a></p></body></html>\n");
    out
}
