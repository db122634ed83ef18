//! `report.md`: for a CI job summary — verdict first, then the thresholds, the requests, the
//! checks, and links to the other files.

use std::fmt::{self, Write};

use super::summary::RunStatus;
use super::Summary;
use crate::threshold::fmt_num;

pub fn render(s: &Summary) -> String {
    let mut out = String::new();
    print_all(&mut out, s).expect("writing to a String cannot fail");
    out
}

/// Every section, in order; the empty ones are left out.
pub fn print_all<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    print_heading(out, s)?;
    print_thresholds(out, s)?;
    print_requests(out, s)?;
    print_flows(out, s)?;
    print_checks(out, s)?;
    print_sql_checks(out, s)?;
    print_alerts(out, s)?;
    print_faults(out, s)?;
    print_control(out, s)?;
    print_steady_state(out, s)?;
    print_detect_from(out, s)?;
    print_probe_failures(out, s)?;
    out.write_str("Files: [report.html](report.html) · [summary.json](summary.json) · [timeseries.csv](timeseries.csv) · [junit.xml](junit.xml)\n")
}

fn mark(passed: bool) -> &'static str {
    if passed {
        "✅"
    } else {
        "❌"
    }
}

/// The verdict, the run's figures and why it ended, if it says.
/// Text for a table cell: a `|` (a selector regex's alternation) would end the cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

fn print_heading<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    let icon = mark(s.status == RunStatus::Passed);
    writeln!(
        out,
        "## {icon} {} — {}\n",
        s.status.as_str().to_uppercase(),
        s.scenario.name
    )?;
    let t = &s.totals;
    writeln!(
        out,
        "{} requests in {:.1} s ({:.1}/s), {} failed, {} dropped · {} executor · target `{}` · \
         run `{}`\n",
        t.http_reqs,
        s.elapsed_s,
        t.http_reqs_per_s,
        t.http_req_failed,
        t.dropped_iterations,
        s.scenario.executor,
        s.target,
        s.run_id
    )?;
    if let Some(r) = &s.reason {
        writeln!(out, "**Reason:** {r}\n")?;
    }
    if s.http.tls_insecure {
        writeln!(
            out,
            "> **Warning:** TLS certificates were not verified (`[target.tls] insecure = true`).\n"
        )?;
    }
    Ok(())
}

/// k6's `checks`, one row per check name.
fn print_checks<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    if s.http.checks.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "### Checks\n\n| | check | passes | fails |\n|---|---|---|---|"
    )?;
    for c in &s.http.checks {
        let name = cell(&c.name);
        let (p, f) = (c.passes, c.fails);
        writeln!(out, "| {} | {name} | {p} | {f} |", mark(f == 0))?;
    }
    writeln!(out)
}

fn print_thresholds<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    if s.thresholds.is_empty() {
        return Ok(());
    }
    out.write_str("| | metric | threshold | observed |\n|---|---|---|---:|\n")?;
    for v in &s.thresholds {
        writeln!(
            out,
            "| {} | `{}` | `{}` | {} |",
            mark(v.passed),
            cell(&v.metric),
            v.threshold,
            v.observed.map(fmt_num).unwrap_or_else(|| "no data".into())
        )?;
    }
    writeln!(out, "\n{}\n", super::NO_DATA_RULE)
}

fn print_requests<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    out.write_str("| request | count | req/s | error % | p50 ms | p95 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")?;
    let ms = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into());
    for r in &s.requests {
        writeln!(
            out,
            "| {} | {} | {:.1} | {:.2} | {} | {} | {} | {} |",
            r.name,
            r.count,
            r.per_s,
            r.error_rate * 100.0,
            ms(r.p50_ms),
            ms(r.p95_ms),
            ms(r.p99_ms),
            ms(r.max_ms)
        )?;
    }
    out.write_char('\n')
}

/// Scenarios (when several), the flows' trends and the steps that failed iterations.
fn print_flows<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    let ms = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into());
    if s.scenarios.len() > 1 {
        out.write_str("| scenario | executor | starts at | requests | failed | p95 ms |\n|---|---|---:|---:|---:|---:|\n")?;
        for r in &s.scenarios {
            writeln!(
                out,
                "| {} | {} | {:.0} s | {} | {} | {} |",
                r.name,
                r.executor,
                r.start_time_s,
                r.requests,
                r.failed,
                ms(r.p95_ms)
            )?;
        }
        out.write_char('\n')?;
    }
    if !s.trends.is_empty() {
        out.write_str("| trend | count | avg ms | p50 ms | p95 ms | max ms |\n|---|---:|---:|---:|---:|---:|\n")?;
        for (name, t) in &s.trends {
            writeln!(
                out,
                "| {name} | {} | {} | {} | {} | {} |",
                t.count,
                ms(t.avg_ms),
                ms(t.p50_ms),
                ms(t.p95_ms),
                ms(t.max_ms)
            )?;
        }
        out.write_char('\n')?;
    }
    if !s.iteration_failed.is_empty() {
        out.write_str("| step | iterations failed |\n|---|---:|\n")?;
        for (step, n) in &s.iteration_failed {
            writeln!(out, "| {step} | {n} |")?;
        }
        out.write_char('\n')?;
    }
    Ok(())
}

fn print_sql_checks<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    if s.sql_checks.is_empty() {
        return Ok(());
    }
    out.write_str("| | SQL check | expected | observed |\n|---|---|---:|---:|\n")?;
    for c in &s.sql_checks {
        let observed = super::sql_observed(c);
        writeln!(
            out,
            "| {} | {} | {} | {} |",
            mark(c.passed),
            c.name,
            c.expected.map(|v| v.to_string()).unwrap_or_default(),
            observed
        )?;
    }
    out.write_char('\n')
}

fn print_alerts<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    if s.alerts.is_empty() {
        return Ok(());
    }
    out.write_str("| alert | evaluated by | expr | pending at | fired at | resolved at | time to detect |\n|---|---|---|---:|---:|---:|---:|\n")?;
    let secs = |v: Option<f64>| v.map(|v| format!("{v:.0} s")).unwrap_or_else(|| "—".into());
    for a in &s.alerts {
        writeln!(
            out,
            "| {} | {} | `{}` for {:.0} s | {} | {} | {} | {} |",
            a.name,
            cell(a.source()),
            cell(&a.expr),
            a.for_secs,
            match a.pending_at {
                Some(p) if p < 0.0 => format!("{p:.0} s (before the run)"),
                p => secs(p),
            },
            secs(a.fired_at),
            secs(a.resolved_at),
            secs(a.time_to_detect_s)
        )?;
    }
    out.write_char('\n')
}

/// The operator's control actions, and the remote-write output's counts.
fn print_control<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    if !s.control.is_empty() {
        out.write_str("Control actions (live endpoint):\n\n| at | action | scenario | value | from | result |\n|---:|---|---|---:|---|---|\n")?;
        for c in &s.control {
            let value = c.value.map(|v| format!("{v}")).unwrap_or_default();
            let scenario = c.scenario.as_deref().unwrap_or("all");
            let result = format!("{} {}", mark(c.ok), cell(&c.result));
            writeln!(
                out,
                "| {:.1} s | {} | {scenario} | {value} | {} | {result} |",
                c.at_s, c.action, c.from
            )?;
        }
        out.write_char('\n')?;
    }
    if let Some(w) = &s.remote_write {
        let err = w
            .last_error
            .as_deref()
            .map(|e| format!(" (last error: {e})"))
            .unwrap_or_default();
        writeln!(
            out,
            "Remote write to `{}`: {} batches sent ({} samples), {} dropped, {} failed{err}.\n",
            w.url, w.sent, w.samples, w.dropped, w.failed
        )?;
    }
    Ok(())
}

fn print_faults<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    if s.faults.is_empty() {
        return Ok(());
    }
    out.write_str("| fault | value | applied | rolled back |\n|---|---|---:|---|\n")?;
    for f in &s.faults {
        let back = match (&f.rolled_back_s, &f.rollback_error) {
            (_, Some(e)) => format!("❌ rollback failed: {e}"),
            (Some(t), None) => format!("rolled back at {t:.1} s (restored `{}`)", f.original),
            (None, None) => "❌ still active".into(),
        };
        writeln!(
            out,
            "| {} `{}` ({}) | `{}` | {:.1} s | {} |",
            f.kind, f.target, f.plugin, f.value, f.applied_s, back
        )?;
    }
    writeln!(out, "\n{}\n", super::left_behind(&s.faults))
}

fn print_steady_state<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    let Some(st) = &s.steady_state else {
        return Ok(());
    };
    writeln!(
        out,
        "Steady-state hypothesis: {} — held in {} of {} seconds checked.",
        st.probes
            .iter()
            .map(|p| format!("`{p}`"))
            .collect::<Vec<_>>()
            .join(", "),
        st.seconds_steady,
        st.seconds_checked
    )?;
    match &st.before_faults {
        None => out.write_str("No fault was asked for.\n")?,
        Some(d) if d.is_empty() => out.write_str("It held before the first fault.\n")?,
        Some(d) => writeln!(
            out,
            "❌ It did not hold before the first fault: {}; no fault was injected.",
            d.join("; ")
        )?,
    }
    if st.recoveries.is_empty() {
        return out.write_char('\n');
    }
    out.write_str("\n| fault window | steady again | recovery time |\n|---|---:|---:|\n")?;
    for r in &st.recoveries {
        let (at, took) = match (r.steady_at_s, r.recovery_time_s) {
            (Some(a), Some(t)) => (format!("{a:.0} s"), format!("{t:.1} s")),
            _ => ("❌ not".into(), format!("> {:.0} s", st.timeout_s)),
        };
        writeln!(
            out,
            "| {:.1}–{:.1} s | {at} | {took} |",
            r.fault_start_s, r.fault_end_s
        )?;
    }
    out.write_char('\n')
}

fn print_detect_from<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    match &s.detect_from {
        Some(d) => writeln!(
            out,
            "Time to detect is measured from {} at {:.1} s.\n",
            d.event, d.at_s
        ),
        None => Ok(()),
    }
}

fn print_probe_failures<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    for p in s.probes.iter().filter(|p| p.failures > 0) {
        writeln!(
            out,
            "⚠️ probe {} failed {} of {} times: {}\n",
            p.name,
            p.failures,
            p.failures + p.samples,
            p.last_error.as_deref().unwrap_or("")
        )?;
    }
    Ok(())
}
