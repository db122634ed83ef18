//! `report.html`: one self-contained page (inline CSS and SVG, no script, no network) with the
//! verdict, charts over time with threshold lines and fault windows, and every table of the
//! summary. Built only from `summary.json` + `timeseries.csv`, so any run can be re-rendered.

use std::borrow::Cow;
use std::fmt::{self, Write};

use super::csvread::Table;
use super::svg::{Band, Chart, Line};
use super::Summary;
use crate::scenario::{ChartSpec, SeriesLabel};
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
    let mut out = String::new();
    print_page(&mut out, s, t).expect("writing to a String cannot fail");
    out
}

/// The whole page, section by section.
pub fn print_page<W: Write>(out: &mut W, s: &Summary, t: &Table) -> fmt::Result {
    print_head(out, s)?;
    print_thresholds(out, s)?;
    print_charts(out, s, t)?;
    print_requests(out, s)?;
    print_flows(out, s)?;
    print_http(out, s)?;
    print_sql_checks(out, s)?;
    print_alerts(out, s)?;
    print_probes(out, s)?;
    print_faults(out, s)?;
    print_control(out, s)?;
    print_steady_state(out, s)?;
    print_footer(out, s)
}

/// The document head, the verdict line and the run's figures.
fn print_head<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} — {}</title><style>{STYLE}</style></head><body>",
        esc(&s.scenario.name),
        esc(s.status.as_str())
    )?;
    write!(
        out,
        "<h1><span class=\"verdict {}\">{}</span>{}</h1>",
        esc(s.status.as_str()),
        esc(&s.status.as_str().to_uppercase()),
        esc(&s.scenario.name)
    )?;
    write!(
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
    )?;
    if let Some(r) = &s.reason {
        write!(out, "<p><b>Reason:</b> {}</p>", esc(r))?;
    }
    if s.http.tls_insecure {
        out.write_str("<p class=\"verdict failed\">TLS certificates were NOT verified ([target.tls] insecure = true)</p>")?;
    }
    Ok(())
}

/// Checks (k6's `checks`) and the timing phases.
fn print_http<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    let ms = |v: Option<f64>| v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into());
    if !s.http.checks.is_empty() {
        out.write_str(
            "<h2>Checks</h2><table><tr><th></th><th>check</th><th>passes</th><th>fails</th></tr>",
        )?;
        for c in &s.http.checks {
            let mark = if c.fails == 0 { "✓" } else { "✗" };
            let name = esc(&c.name);
            write!(
                out,
                "<tr><td>{mark}</td><td>{name}</td><td>{}</td><td>{}</td></tr>",
                c.passes, c.fails
            )?;
        }
        out.write_str("</table>")?;
    }
    let protocols: Vec<String> = s
        .http
        .protocols
        .iter()
        .map(|(p, n)| format!("{p}: {n}"))
        .collect();
    write!(out, "<h2>Timing phases</h2><p class=\"muted\">protocols {} · data_sent {} · data_received {}</p>",
        esc(&protocols.join(", ")), super::summary::bytes(s.http.data_sent), super::summary::bytes(s.http.data_received))?;
    out.write_str("<table><tr><th>phase</th><th>avg ms</th><th>p50 ms</th><th>p95 ms</th><th>max ms</th></tr>")?;
    for (name, t) in &s.http.phases {
        write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(name),
            ms(t.avg_ms),
            ms(t.p50_ms),
            ms(t.p95_ms),
            ms(t.max_ms)
        )?;
    }
    out.write_str("</table>")
}

fn print_thresholds<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    out.write_str("<h2>Thresholds</h2>")?;
    if s.thresholds.is_empty() {
        return out.write_str("<p class=\"muted\">No thresholds declared.</p>");
    }
    out.write_str(
        "<table><tr><th></th><th>metric</th><th>threshold</th><th>observed</th><th>why</th></tr>",
    )?;
    for v in &s.thresholds {
        write!(
            out,
            "<tr><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if v.passed { "ok" } else { "bad" },
            if v.passed { "✓" } else { "✗" },
            esc(&v.metric),
            esc(&v.threshold),
            v.observed.map(fmt_num).unwrap_or_else(|| "no data".into()),
            esc(v.reason.as_deref().unwrap_or(""))
        )?;
    }
    write!(
        out,
        "</table><p class=\"muted\">{}</p>",
        esc(super::NO_DATA_RULE)
    )
}

/// What every chart shares: the seconds axis and the fault windows shaded on it.
struct Frame<'a> {
    x: &'a [f64],
    bands: &'a [Band],
}

/// Ids of the built-in charts, which the probe charts' ids must not repeat.
const BUILT_IN: [&str; 4] = ["chart-load", "chart-rps", "chart-errors", "chart-latency"];

/// Colours of a probe chart's lines, in the order of its series.
const PALETTE: [&str; 6] = [
    "#1565c0", "#c62828", "#6a1b9a", "#2e7d32", "#ef6c00", "#90a4ae",
];

/// The built-in load, request, error and latency charts, then one per probe chart.
fn print_charts<W: Write>(out: &mut W, s: &Summary, t: &Table) -> fmt::Result {
    out.write_str("<h2>Over time</h2>")?;
    let x = t.seconds();
    let bands = fault_bands(s);
    let f = Frame {
        x: &x,
        bands: &bands,
    };
    print_load_chart(out, t, &f)?;
    let reqs = t.column("requests").unwrap_or_default();
    let failed = t.column("failed").unwrap_or_default();
    print_rps_chart(out, &reqs, &failed, &f)?;
    print_error_chart(out, s, &reqs, &failed, &f)?;
    print_latency_chart(out, s, t, &f)?;
    print_probe_charts(out, s, t, &f)
}

/// Fault windows: from applied to rolled back (or the end of the run).
fn fault_bands(s: &Summary) -> Vec<Band> {
    s.faults
        .iter()
        .map(|f| {
            (
                f.applied_s,
                f.rolled_back_s.unwrap_or(s.elapsed_s),
                format!("{} {}", f.kind, fault_label(f)),
            )
        })
        .collect()
}

/// Draws `chart` unless it has no point at all.
fn draw<W: Write>(out: &mut W, chart: Chart<'_>) -> fmt::Result {
    if chart.points() > 0 {
        chart.render(out)
    } else {
        Ok(())
    }
}

fn print_load_chart<W: Write>(out: &mut W, t: &Table, f: &Frame<'_>) -> fmt::Result {
    let (vus, rate) = (t.column("vus"), t.column("target_rate"));
    let mut lines = Vec::new();
    if let Some(v) = &vus {
        lines.push(Line {
            label: "VUs",
            values: v,
            color: "#6a1b9a",
        });
    }
    if let Some(v) = &rate {
        lines.push(Line {
            label: "target rate (req/s)",
            values: v,
            color: "#6a1b9a",
        });
    }
    draw(
        out,
        Chart {
            id: "chart-load".into(),
            title: "Virtual users / target rate",
            unit: "",
            x: f.x,
            lines,
            thresholds: vec![],
            bands: f.bands,
        },
    )
}

fn print_rps_chart<W: Write>(
    out: &mut W,
    reqs: &[Option<f64>],
    failed: &[Option<f64>],
    f: &Frame<'_>,
) -> fmt::Result {
    let lines = vec![
        Line {
            label: "requests",
            values: reqs,
            color: "#1565c0",
        },
        Line {
            label: "failed",
            values: failed,
            color: "#c62828",
        },
    ];
    draw(
        out,
        Chart {
            id: "chart-rps".into(),
            title: "Requests per second",
            unit: "req/s",
            x: f.x,
            lines,
            thresholds: vec![],
            bands: f.bands,
        },
    )
}

fn print_error_chart<W: Write>(
    out: &mut W,
    s: &Summary,
    reqs: &[Option<f64>],
    failed: &[Option<f64>],
    f: &Frame<'_>,
) -> fmt::Result {
    let err_rate: Vec<Option<f64>> = reqs
        .iter()
        .zip(failed)
        .map(|(r, f)| match (r, f) {
            (Some(r), Some(f)) if *r > 0.0 => Some(f / r),
            _ => None,
        })
        .collect();
    let lines = vec![Line {
        label: "error rate",
        values: &err_rate,
        color: "#c62828",
    }];
    draw(
        out,
        Chart {
            id: "chart-errors".into(),
            title: "Error rate (http_req_failed per second)",
            unit: "share",
            x: f.x,
            lines,
            thresholds: threshold_lines(s, "http_req_failed", |a| *a == Agg::Rate, 1.0),
            bands: f.bands,
        },
    )
}

fn print_latency_chart<W: Write>(
    out: &mut W,
    s: &Summary,
    t: &Table,
    f: &Frame<'_>,
) -> fmt::Result {
    let (p50, p95, p99) = (
        t.column("p50_ms").unwrap_or_default(),
        t.column("p95_ms").unwrap_or_default(),
        t.column("p99_ms").unwrap_or_default(),
    );
    let line = |label, values, color| Line {
        label,
        values,
        color,
    };
    let lines = vec![
        line("p50", &p50, "#2e7d32"),
        line("p95", &p95, "#ef6c00"),
        line("p99", &p99, "#c62828"),
    ];
    let latency = |a: &Agg| matches!(a, Agg::P(_) | Agg::Med | Agg::Max | Agg::Avg);
    draw(
        out,
        Chart {
            id: "chart-latency".into(),
            title: "Latency per second (http_req_duration)",
            unit: "ms",
            x: f.x,
            lines,
            thresholds: threshold_lines(s, "http_req_duration", latency, 1.0),
            bands: f.bands,
        },
    )
}

/// The scenario's probe charts; a summary written before they were recorded gets one chart per
/// probe series.
fn print_probe_charts<W: Write>(out: &mut W, s: &Summary, t: &Table, f: &Frame<'_>) -> fmt::Result {
    let specs: Cow<'_, [ChartSpec]> = if s.charts.is_empty() {
        Cow::Owned(one_chart_per_series(s))
    } else {
        Cow::Borrowed(&s.charts)
    };
    for (spec, id) in specs.iter().zip(chart_ids(&specs)) {
        print_probe_chart(out, s, t, spec, id, f)?;
    }
    Ok(())
}

fn one_chart_per_series(s: &Summary) -> Vec<ChartSpec> {
    s.series_peaks
        .keys()
        .map(|series| ChartSpec {
            title: series.clone(),
            unit: String::new(),
            series: vec![SeriesLabel {
                series: series.clone(),
                label: series.clone(),
            }],
        })
        .collect()
}

/// One line per series that has a column, with the series' threshold lines.
fn print_probe_chart<W: Write>(
    out: &mut W,
    s: &Summary,
    t: &Table,
    spec: &ChartSpec,
    id: String,
    f: &Frame<'_>,
) -> fmt::Result {
    let columns: Vec<(usize, &SeriesLabel, Vec<Option<f64>>)> = (spec.series.iter().enumerate())
        .filter_map(|(i, l)| t.column(&l.series).map(|v| (i, l, v)))
        .collect();
    let lines = columns
        .iter()
        .map(|(i, l, values)| Line {
            label: &l.label,
            values,
            color: PALETTE[i % PALETTE.len()],
        })
        .collect();
    let gauge = |a: &Agg| !matches!(a, Agg::Count | Agg::Rate);
    let thresholds = (spec.series.iter())
        .flat_map(|l| threshold_lines(s, &l.series, gauge, 1.0))
        .collect();
    draw(
        out,
        Chart {
            id,
            title: &spec.title,
            unit: &spec.unit,
            x: f.x,
            lines,
            thresholds,
            bands: f.bands,
        },
    )
}

/// `chart-<slug of the title>`, made unique with `-2`, `-3`… (also against the built-in ids).
fn chart_ids(specs: &[ChartSpec]) -> Vec<String> {
    let mut taken: Vec<String> = BUILT_IN.iter().map(|id| id.to_string()).collect();
    for spec in specs {
        let base = format!("chart-{}", super::slug(&spec.title));
        let mut id = base.clone();
        let mut n = 2;
        while taken.contains(&id) {
            id = format!("{base}-{n}");
            n += 1;
        }
        taken.push(id);
    }
    taken.split_off(BUILT_IN.len())
}

fn print_requests<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    out.write_str("<h2>Requests</h2><table><tr><th>request</th><th>count</th><th>req/s</th><th>error %</th><th>p50 ms</th><th>p90 ms</th><th>p95 ms</th><th>p99 ms</th><th>max ms</th><th>statuses</th></tr>")?;
    let ms = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into());
    for r in &s.requests {
        let st: Vec<String> = r.statuses.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        write!(
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
        )?;
    }
    out.write_str("</table>")
}

/// Scenarios (when several), the flows' trends and the steps that failed iterations.
fn print_flows<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    let ms = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into());
    if s.scenarios.len() > 1 {
        out.write_str("<h2>Scenarios</h2><table><tr><th>scenario</th><th>executor</th><th>starts at</th><th>requests</th><th>failed</th><th>p95 ms</th></tr>")?;
        for r in &s.scenarios {
            write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{:.0} s</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&r.name),
                esc(&r.executor),
                r.start_time_s,
                r.requests,
                r.failed,
                ms(r.p95_ms)
            )?;
        }
        out.write_str("</table>")?;
    }
    if !s.trends.is_empty() {
        out.write_str("<h2>Flow trends</h2><table><tr><th>trend</th><th>count</th><th>avg ms</th><th>p50 ms</th><th>p95 ms</th><th>max ms</th></tr>")?;
        for (name, t) in &s.trends {
            write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(name),
                t.count,
                ms(t.avg_ms),
                ms(t.p50_ms),
                ms(t.p95_ms),
                ms(t.max_ms)
            )?;
        }
        out.write_str("</table>")?;
    }
    if !s.iteration_failed.is_empty() {
        out.write_str(
            "<h2>Iterations failed</h2><table><tr><th>step</th><th>iterations</th></tr>",
        )?;
        for (step, n) in &s.iteration_failed {
            write!(out, "<tr><td>{}</td><td>{n}</td></tr>", esc(step))?;
        }
        out.write_str("</table>")?;
    }
    Ok(())
}

fn print_sql_checks<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    if s.sql_checks.is_empty() {
        return Ok(());
    }
    out.write_str("<h2>SQL checks</h2><table><tr><th></th><th>check</th><th>expected</th><th>observed</th></tr>")?;
    for c in &s.sql_checks {
        let observed = super::sql_observed(c);
        write!(
            out,
            "<tr><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if c.passed { "ok" } else { "bad" },
            if c.passed { "✓" } else { "✗" },
            esc(&c.name),
            c.expected.map(|v| v.to_string()).unwrap_or_default(),
            esc(&observed)
        )?;
    }
    out.write_str("</table>")
}

fn print_alerts<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    if s.alerts.is_empty() {
        return Ok(());
    }
    out.write_str("<h2>Alert rules</h2><table><tr><th>alert</th><th>evaluated by</th><th>expr</th><th>for</th><th>severity</th><th>pending at</th><th>fired at</th><th>resolved at</th><th>time to detect</th></tr>")?;
    let secs = |v: Option<f64>| v.map(|v| format!("{v:.0} s")).unwrap_or_else(|| "—".into());
    for a in &s.alerts {
        write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.0} s</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.name),
            esc(a.source()),
            esc(&a.expr),
            a.for_secs,
            esc(&a.severity),
            secs(a.pending_at),
            secs(a.fired_at),
            secs(a.resolved_at),
            secs(a.time_to_detect_s)
        )?;
    }
    out.write_str("</table>")
}

/// The operator's control actions, and the remote-write output's counts.
fn print_control<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    if !s.control.is_empty() {
        out.write_str("<h2>Control actions</h2><table><tr><th>at</th><th>action</th><th>scenario</th><th>value</th><th>from</th><th>result</th></tr>")?;
        for c in &s.control {
            write!(
                out,
                "<tr><td>{:.1} s</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
                c.at_s,
                esc(&c.action),
                esc(c.scenario.as_deref().unwrap_or("all")),
                c.value.map(|v| format!("{v}")).unwrap_or_default(),
                esc(&c.from),
                if c.ok { "pass" } else { "fail" },
                esc(&c.result)
            )?;
        }
        out.write_str("</table>")?;
    }
    if let Some(w) = &s.remote_write {
        let err = w
            .last_error
            .as_deref()
            .map(|e| format!(" (last error: {})", esc(e)))
            .unwrap_or_default();
        write!(
            out,
            "<p>Remote write to <code>{}</code>: {} batches sent ({} samples), {} dropped, {} failed{err}.</p>",
            esc(&w.url), w.sent, w.samples, w.dropped, w.failed
        )?;
    }
    Ok(())
}

/// Probe health, the peak of every series, and the Kafka lag drain.
fn print_probes<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    out.write_str("<h2>Probes</h2><table><tr><th>probe</th><th>samples</th><th>failures</th><th>last error</th></tr>")?;
    for p in &s.probes {
        write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.name),
            p.samples,
            p.failures,
            esc(p.last_error.as_deref().unwrap_or(""))
        )?;
    }
    out.write_str("</table>")?;
    if !s.series_peaks.is_empty() {
        out.write_str("<table><tr><th>series</th><th>peak</th></tr>")?;
        for (k, v) in &s.series_peaks {
            write!(out, "<tr><td>{}</td><td>{}</td></tr>", esc(k), fmt_num(*v))?;
        }
        out.write_str("</table>")?;
    }
    if let Some(l) = &s.kafka_lag {
        let drained = l
            .drained_at_s
            .map(|d| {
                format!(
                    "drained at {d:.1} s ({:.1} records/s)",
                    l.drain_rate_per_s.unwrap_or(0.0)
                )
            })
            .unwrap_or_else(|| "not drained".into());
        write!(
            out,
            "<p>Kafka lag peak {} at {:.1} s; {drained}.</p>",
            l.peak, l.peak_at_s
        )?;
    }
    Ok(())
}

fn print_faults<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    out.write_str("<h2>Faults</h2>")?;
    if s.faults.is_empty() {
        return out.write_str("<p class=\"muted\">No faults were injected in this run.</p>");
    }
    out.write_str("<table><tr><th>plugin</th><th>fault</th><th>value</th><th>applied</th><th>rolled back</th><th>restored to</th></tr>")?;
    for f in &s.faults {
        let back = match (&f.rolled_back_at, &f.rollback_error) {
            (_, Some(e)) => format!("<span class=\"bad\">FAILED: {}</span>", esc(e)),
            (Some(at), None) => format!("{} (+{:.1} s)", esc(at), f.rolled_back_s.unwrap_or(0.0)),
            (None, None) => "<span class=\"bad\">still active</span>".into(),
        };
        let updates = if f.updates > 0 {
            format!(" ({} updates)", f.updates)
        } else {
            String::new()
        };
        write!(
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
        )?;
    }
    let left = super::left_behind(&s.faults);
    let class = if s
        .faults
        .iter()
        .all(|f| !f.active() && f.rollback_error.is_none())
    {
        "muted"
    } else {
        "bad"
    };
    write!(out, "</table><p class=\"{class}\">{}</p>", esc(&left))
}

/// The hypothesis, its check before the first fault, and each window's recovery time.
fn print_steady_state<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    let Some(st) = &s.steady_state else {
        return Ok(());
    };
    out.write_str("<h2>Steady state and recovery</h2><p>")?;
    let probes: Vec<String> = st
        .probes
        .iter()
        .map(|p| format!("<code>{}</code>", esc(p)))
        .collect();
    write!(
        out,
        "Hypothesis {} held in {} of {} seconds checked. ",
        probes.join(", "),
        st.seconds_steady,
        st.seconds_checked
    )?;
    match &st.before_faults {
        None => out.write_str("No fault was asked for.")?,
        Some(d) if d.is_empty() => out.write_str("It held before the first fault.")?,
        Some(d) => write!(
            out,
            "<span class=\"bad\">It did not hold before the first fault ({}); no fault was injected.</span>",
            esc(&d.join("; "))
        )?,
    }
    out.write_str("</p>")?;
    if st.recoveries.is_empty() {
        return Ok(());
    }
    out.write_str(
        "<table><tr><th>fault window</th><th>steady again</th><th>recovery time</th></tr>",
    )?;
    for r in &st.recoveries {
        let (at, took) = match (r.steady_at_s, r.recovery_time_s) {
            (Some(a), Some(t)) => (format!("{a:.0} s"), format!("{t:.1} s")),
            _ => (
                "<span class=\"bad\">not</span>".into(),
                format!("&gt; {:.0} s", st.timeout_s),
            ),
        };
        write!(
            out,
            "<tr><td>{:.1}–{:.1} s</td><td>{at}</td><td>{took}</td></tr>",
            r.fault_start_s, r.fault_end_s
        )?;
    }
    out.write_str("</table>")
}

/// How detection and thresholds were judged, links to the other files, the end of the page.
fn print_footer<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    if let Some(d) = &s.detect_from {
        write!(
            out,
            "<p class=\"muted\">Time to detect is measured from {} at {:.1} s.</p>",
            esc(&d.event),
            d.at_s
        )?;
    }
    if !s.threshold_evaluator.is_empty() {
        write!(
            out,
            "<p class=\"muted\">Thresholds judged by {}.</p>",
            esc(&s.threshold_evaluator)
        )?;
    }
    out.write_str("<p class=\"muted\">Files: <a href=\"summary.json\">summary.json</a> · <a href=\"timeseries.csv\">timeseries.csv</a> · <a href=\"junit.xml\">junit.xml</a> · <a href=\"report.md\">report.md</a></p></body></html>\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(title: &str) -> ChartSpec {
        ChartSpec {
            title: title.into(),
            unit: String::new(),
            series: vec![],
        }
    }

    #[test]
    fn chart_ids_are_slugs_made_unique() {
        let specs = [
            spec("DB pool (active)"),
            spec("db pool  active)"),
            spec("Load"),
            spec("lag"),
        ];
        assert_eq!(
            chart_ids(&specs),
            [
                "chart-db-pool--active-",
                "chart-db-pool--active--2",
                "chart-load-2",
                "chart-lag"
            ]
        );
        assert_eq!(super::super::slug("Äpfel 2"), "-pfel-2");
    }
}
