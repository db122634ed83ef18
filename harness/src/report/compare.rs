//! `harness report A B`: two runs side by side with the change per metric, e.g. the incident
//! preset against the remediated one.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::Summary;
use crate::threshold::fmt_num;

fn delta(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if a != 0.0 => format!("{:+.1}%", (b - a) / a.abs() * 100.0),
        (Some(a), Some(b)) => format!("{:+}", fmt_num(b - a)),
        _ => "—".into(),
    }
}

fn cell(v: Option<f64>) -> String {
    v.map(fmt_num).unwrap_or_else(|| "—".into())
}

pub fn render(a: &Summary, b: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## {} ({}) vs {} ({})\n",
        a.run_id, a.status, b.run_id, b.status
    );
    out.push_str("| metric | A | B | change |\n|---|---:|---:|---:|\n");
    let mut row = |name: String, x: Option<f64>, y: Option<f64>| {
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} |",
            cell(x),
            cell(y),
            delta(x, y)
        );
    };
    row(
        "http_reqs".into(),
        Some(a.totals.http_reqs as f64),
        Some(b.totals.http_reqs as f64),
    );
    row(
        "http_reqs per s".into(),
        Some(a.totals.http_reqs_per_s),
        Some(b.totals.http_reqs_per_s),
    );
    row(
        "http_req_failed".into(),
        Some(a.totals.http_req_failed as f64),
        Some(b.totals.http_req_failed as f64),
    );
    row(
        "dropped_iterations".into(),
        Some(a.totals.dropped_iterations as f64),
        Some(b.totals.dropped_iterations as f64),
    );
    let names: BTreeSet<&String> = a
        .requests
        .iter()
        .chain(&b.requests)
        .map(|r| &r.name)
        .collect();
    for n in names {
        let ra = a.requests.iter().find(|r| &r.name == n);
        let rb = b.requests.iter().find(|r| &r.name == n);
        row(
            format!("{n} error rate"),
            ra.map(|r| r.error_rate),
            rb.map(|r| r.error_rate),
        );
        row(
            format!("{n} p95 ms"),
            ra.and_then(|r| r.p95_ms),
            rb.and_then(|r| r.p95_ms),
        );
        row(
            format!("{n} p99 ms"),
            ra.and_then(|r| r.p99_ms),
            rb.and_then(|r| r.p99_ms),
        );
    }
    let series: BTreeSet<&String> = a.series_peaks.keys().chain(b.series_peaks.keys()).collect();
    for k in series {
        row(
            format!("peak {k}"),
            a.series_peaks.get(k).copied(),
            b.series_peaks.get(k).copied(),
        );
    }
    let thresholds: BTreeSet<(String, String)> = a
        .thresholds
        .iter()
        .chain(&b.thresholds)
        .map(|v| (v.metric.clone(), v.threshold.clone()))
        .collect();
    for (m, t) in thresholds {
        let find = |s: &Summary| {
            s.thresholds
                .iter()
                .find(|v| v.metric == m && v.threshold == t)
                .cloned()
        };
        let (va, vb) = (find(a), find(b));
        let mark = |v: &Option<crate::threshold::Verdict>| match v {
            Some(v) if v.passed => "✓ ",
            Some(_) => "✗ ",
            None => "",
        };
        let _ = writeln!(
            out,
            "| `{m}` {t} | {}{} | {}{} | {} |",
            mark(&va),
            cell(va.as_ref().and_then(|v| v.observed)),
            mark(&vb),
            cell(vb.as_ref().and_then(|v| v.observed)),
            delta(va.and_then(|v| v.observed), vb.and_then(|v| v.observed))
        );
    }
    out
}
