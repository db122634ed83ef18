//! `harness report A B`: two runs side by side with the change per metric, e.g. the incident
//! preset against the remediated one.

use std::collections::BTreeSet;
use std::fmt::{self, Write};

use super::Summary;
use crate::threshold::{fmt_num, Verdict};

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
    print_all(&mut out, a, b).expect("writing to a String cannot fail");
    out
}

/// The heading, then one table: totals, requests, series peaks, thresholds.
pub fn print_all<W: Write>(out: &mut W, a: &Summary, b: &Summary) -> fmt::Result {
    writeln!(
        out,
        "## {} ({}) vs {} ({})\n",
        a.run_id, a.status, b.run_id, b.status
    )?;
    out.write_str("| metric | A | B | change |\n|---|---:|---:|---:|\n")?;
    print_totals(out, a, b)?;
    print_requests(out, a, b)?;
    print_series(out, a, b)?;
    print_thresholds(out, a, b)
}

fn print_row<W: Write>(out: &mut W, name: &str, x: Option<f64>, y: Option<f64>) -> fmt::Result {
    writeln!(
        out,
        "| {name} | {} | {} | {} |",
        cell(x),
        cell(y),
        delta(x, y)
    )
}

fn print_totals<W: Write>(out: &mut W, a: &Summary, b: &Summary) -> fmt::Result {
    let (ta, tb) = (&a.totals, &b.totals);
    let count = |v: u64| Some(v as f64);
    print_row(out, "http_reqs", count(ta.http_reqs), count(tb.http_reqs))?;
    print_row(
        out,
        "http_reqs per s",
        Some(ta.http_reqs_per_s),
        Some(tb.http_reqs_per_s),
    )?;
    print_row(
        out,
        "http_req_failed",
        count(ta.http_req_failed),
        count(tb.http_req_failed),
    )?;
    print_row(
        out,
        "dropped_iterations",
        count(ta.dropped_iterations),
        count(tb.dropped_iterations),
    )
}

/// Error rate, p95 and p99 of every request name either run has.
fn print_requests<W: Write>(out: &mut W, a: &Summary, b: &Summary) -> fmt::Result {
    let names: BTreeSet<&String> = a
        .requests
        .iter()
        .chain(&b.requests)
        .map(|r| &r.name)
        .collect();
    for n in names {
        let ra = a.requests.iter().find(|r| &r.name == n);
        let rb = b.requests.iter().find(|r| &r.name == n);
        print_row(
            out,
            &format!("{n} error rate"),
            ra.map(|r| r.error_rate),
            rb.map(|r| r.error_rate),
        )?;
        print_row(
            out,
            &format!("{n} p95 ms"),
            ra.and_then(|r| r.p95_ms),
            rb.and_then(|r| r.p95_ms),
        )?;
        print_row(
            out,
            &format!("{n} p99 ms"),
            ra.and_then(|r| r.p99_ms),
            rb.and_then(|r| r.p99_ms),
        )?;
    }
    Ok(())
}

fn print_series<W: Write>(out: &mut W, a: &Summary, b: &Summary) -> fmt::Result {
    let series: BTreeSet<&String> = a.series_peaks.keys().chain(b.series_peaks.keys()).collect();
    for k in series {
        print_row(
            out,
            &format!("peak {k}"),
            a.series_peaks.get(k).copied(),
            b.series_peaks.get(k).copied(),
        )?;
    }
    Ok(())
}

/// Every threshold either run declared, marked passed or failed, with the observed values.
fn print_thresholds<W: Write>(out: &mut W, a: &Summary, b: &Summary) -> fmt::Result {
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
        let mark = |v: &Option<Verdict>| match v {
            Some(v) if v.passed => "✓ ",
            Some(_) => "✗ ",
            None => "",
        };
        writeln!(
            out,
            "| `{m}` {t} | {}{} | {}{} | {} |",
            mark(&va),
            cell(va.as_ref().and_then(|v| v.observed)),
            mark(&vb),
            cell(vb.as_ref().and_then(|v| v.observed)),
            delta(va.and_then(|v| v.observed), vb.and_then(|v| v.observed))
        )?;
    }
    Ok(())
}
