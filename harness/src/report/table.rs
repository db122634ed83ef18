//! The end-of-run summary on the terminal: verdict, per-request table, thresholds with their
//! observed values, SQL checks and probe peaks.

use std::fmt::{self, Write};

use tabled::builder::Builder;
use tabled::settings::Style;

use super::summary::RunStatus;
use super::Summary;
use crate::threshold::fmt_num;

fn ms(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into())
}

pub fn render(s: &Summary) -> String {
    let mut out = String::new();
    print_all(&mut out, s).expect("writing to a String cannot fail");
    out
}

/// Every table, in order; the empty ones are left out.
pub fn print_all<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    print_verdict(out, s)?;
    print_requests(out, s)?;
    print_scenarios(out, s)?;
    print_flows(out, s)?;
    print_http(out, s)?;
    print_checks(out, s)?;
    print_thresholds(out, s)?;
    print_sql_checks(out, s)?;
    print_probes(out, s)?;
    print_faults(out, s)
}

fn verdict(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Passed => "PASS",
        RunStatus::Failed => "FAIL",
        RunStatus::Aborted => "ABORTED",
        RunStatus::Interrupted => "INTERRUPTED",
        RunStatus::Error => "ERROR",
    }
}

/// A table in the rounded style, on its own line.
fn print_table<W: Write>(out: &mut W, b: Builder) -> fmt::Result {
    writeln!(out, "{}", b.build().with(Style::rounded()))
}

fn print_verdict<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    writeln!(
        out,
        "\n{}  {}  ({} requests in {:.1} s, {:.1} req/s, {} failed, {} dropped)",
        verdict(s.status),
        s.scenario.name,
        s.totals.http_reqs,
        s.elapsed_s,
        s.totals.http_reqs_per_s,
        s.totals.http_req_failed,
        s.totals.dropped_iterations
    )?;
    if let Some(r) = &s.reason {
        writeln!(out, "reason: {r}")?;
    }
    Ok(())
}

fn print_requests<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    let mut b = Builder::default();
    b.push_record([
        "request", "count", "req/s", "error %", "p50 ms", "p90 ms", "p95 ms", "p99 ms", "max ms",
        "statuses",
    ]);
    for r in &s.requests {
        let statuses: Vec<String> = r.statuses.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        let mut st = statuses.join(" ");
        if r.timeouts > 0 {
            write!(st, " timeout:{}", r.timeouts)?;
        }
        if r.connect_errors > 0 {
            write!(st, " connect:{}", r.connect_errors)?;
        }
        b.push_record([
            r.name.clone(),
            r.count.to_string(),
            format!("{:.1}", r.per_s),
            format!("{:.2}", r.error_rate * 100.0),
            ms(r.p50_ms),
            ms(r.p90_ms),
            ms(r.p95_ms),
            ms(r.p99_ms),
            ms(r.max_ms),
            st.trim().to_owned(),
        ]);
    }
    print_table(out, b)
}

/// Protocols, error kinds, bytes and k6's timing phases; a warning when TLS was not verified.
/// Each scenario's requests together, when the file has several.
fn print_scenarios<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    if s.scenarios.len() < 2 {
        return Ok(());
    }
    let mut b = Builder::default();
    b.push_record([
        "scenario",
        "executor",
        "starts at",
        "requests",
        "failed",
        "p95 ms",
    ]);
    for r in &s.scenarios {
        b.push_record([
            r.name.clone(),
            r.executor.clone(),
            format!("{:.0} s", r.start_time_s),
            r.requests.to_string(),
            r.failed.to_string(),
            ms(r.p95_ms),
        ]);
    }
    print_table(out, b)
}

/// The flows' trends and the steps that failed iterations.
fn print_flows<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    if !s.trends.is_empty() {
        let mut b = Builder::default();
        b.push_record(["trend", "count", "avg ms", "p50 ms", "p95 ms", "max ms"]);
        for (name, t) in &s.trends {
            b.push_record([
                name.clone(),
                t.count.to_string(),
                ms(t.avg_ms),
                ms(t.p50_ms),
                ms(t.p95_ms),
                ms(t.max_ms),
            ]);
        }
        print_table(out, b)?;
    }
    if !s.iteration_failed.is_empty() {
        let failed: Vec<String> = s
            .iteration_failed
            .iter()
            .map(|(step, n)| format!("{step} {n}"))
            .collect();
        writeln!(out, "iterations failed at step: {}", failed.join(", "))?;
    }
    Ok(())
}

fn print_http<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    let h = &s.http;
    if h.tls_insecure {
        writeln!(
            out,
            "WARNING: TLS certificates were NOT verified ([target.tls] insecure = true)"
        )?;
    }
    let protocols: Vec<String> = h
        .protocols
        .iter()
        .map(|(p, n)| format!("{p} {n}"))
        .collect();
    let errors: Vec<String> = h.errors.iter().map(|(k, n)| format!("{k}:{n}")).collect();
    writeln!(
        out,
        "protocols: {}  errors: {}  data_sent {}  data_received {}",
        if protocols.is_empty() {
            "-".into()
        } else {
            protocols.join(", ")
        },
        if errors.is_empty() {
            "none".into()
        } else {
            errors.join(" ")
        },
        super::summary::bytes(h.data_sent),
        super::summary::bytes(h.data_received),
    )?;
    if h.phases.values().all(|t| t.p50_ms.is_none()) {
        return Ok(());
    }
    let mut b = Builder::default();
    b.push_record(["phase", "avg ms", "p50 ms", "p95 ms", "max ms"]);
    for (name, t) in &h.phases {
        b.push_record([
            name.clone(),
            ms(t.avg_ms),
            ms(t.p50_ms),
            ms(t.p95_ms),
            ms(t.max_ms),
        ]);
    }
    print_table(out, b)
}

/// k6's `checks` lines: ✓ or ✗, the name, passes and fails.
fn print_checks<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    if s.http.checks.is_empty() {
        return Ok(());
    }
    let mut b = Builder::default();
    b.push_record(["", "check", "passes", "fails", "rate"]);
    for c in &s.http.checks {
        b.push_record([
            if c.fails == 0 { "✓" } else { "✗" }.to_owned(),
            c.name.clone(),
            c.passes.to_string(),
            c.fails.to_string(),
            c.rate
                .map(|r| format!("{:.2}%", r * 100.0))
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    print_table(out, b)
}

fn print_thresholds<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    if s.thresholds.is_empty() {
        return Ok(());
    }
    let mut b = Builder::default();
    b.push_record(["", "metric", "threshold", "observed"]);
    for v in &s.thresholds {
        let observed = v.observed.map(fmt_num).unwrap_or_else(|| "no data".into());
        b.push_record([
            if v.passed { "✓" } else { "✗" }.to_owned(),
            v.metric.clone(),
            v.threshold.clone(),
            observed,
        ]);
    }
    print_table(out, b)?;
    writeln!(out, "{}", super::NO_DATA_RULE)
}

fn print_sql_checks<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    if s.sql_checks.is_empty() {
        return Ok(());
    }
    let mut b = Builder::default();
    b.push_record(["", "sql check", "expected", "observed"]);
    for c in &s.sql_checks {
        let observed = match (&c.error, c.observed) {
            (Some(e), _) => format!("error: {e}"),
            (None, Some(v)) => v.to_string(),
            (None, None) => "-".into(),
        };
        b.push_record([
            if c.passed { "✓" } else { "✗" }.to_owned(),
            c.name.clone(),
            c.expected.map(|v| v.to_string()).unwrap_or_default(),
            observed,
        ]);
    }
    print_table(out, b)
}

/// Series peaks, the Kafka lag drain and the probes that failed.
fn print_probes<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    if s.series_peaks.is_empty() && s.probes.is_empty() {
        return Ok(());
    }
    let mut b = Builder::default();
    b.push_record(["probe series", "peak"]);
    for (k, v) in &s.series_peaks {
        b.push_record([k.clone(), fmt_num(*v)]);
    }
    if let Some(l) = &s.kafka_lag {
        let drained = l
            .drained_at_s
            .map(|t| {
                format!(
                    "drained at {t:.1} s ({:.0}/s)",
                    l.drain_rate_per_s.unwrap_or(0.0)
                )
            })
            .unwrap_or_else(|| "not drained".into());
        b.push_record(["kafka lag drain".to_owned(), drained]);
    }
    for p in s.probes.iter().filter(|p| p.failures > 0) {
        b.push_record([
            format!("{} failures", p.name),
            format!(
                "{} of {} ({})",
                p.failures,
                p.failures + p.samples,
                p.last_error.clone().unwrap_or_default()
            ),
        ]);
    }
    print_table(out, b)
}

fn print_faults<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    if s.faults.is_empty() {
        return Ok(());
    }
    let mut b = Builder::default();
    b.push_record(["fault", "value", "applied", "rolled back"]);
    for f in &s.faults {
        let back = match (f.rolled_back_s, &f.rollback_error) {
            (_, Some(e)) => format!("FAILED: {e}"),
            (Some(t), None) => format!("{t:.1} s → {}", f.original),
            (None, None) => "STILL ACTIVE".into(),
        };
        let target = f.target.split(" at ").next().unwrap_or(&f.target);
        b.push_record([
            format!("{} {target} ({})", f.kind, f.plugin),
            f.value.clone(),
            format!("{:.1} s", f.applied_s),
            back,
        ]);
    }
    print_table(out, b)
}
