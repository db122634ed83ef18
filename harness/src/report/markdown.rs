//! `report.md`: for a CI job summary — verdict first, then the thresholds, the requests, the
//! checks, and links to the other files.

use std::fmt::Write;

use super::Summary;
use crate::threshold::fmt_num;

pub fn render(s: &Summary) -> String {
    let mut out = String::new();
    let icon = if s.status == "passed" { "✅" } else { "❌" };
    let _ = writeln!(
        out,
        "## {icon} {} — {}\n",
        s.status.to_uppercase(),
        s.scenario.name
    );
    let _ = writeln!(
        out,
        "{} requests in {:.1} s ({:.1}/s), {} failed, {} dropped · {} executor · target `{}` · run `{}`\n",
        s.totals.http_reqs, s.elapsed_s, s.totals.http_reqs_per_s, s.totals.http_req_failed, s.totals.dropped_iterations, s.scenario.executor, s.target, s.run_id
    );
    if let Some(r) = &s.reason {
        let _ = writeln!(out, "**Reason:** {r}\n");
    }
    if !s.thresholds.is_empty() {
        out.push_str("| | metric | threshold | observed |\n|---|---|---|---:|\n");
        for v in &s.thresholds {
            let _ = writeln!(
                out,
                "| {} | `{}` | `{}` | {} |",
                if v.passed { "✅" } else { "❌" },
                v.metric,
                v.threshold,
                v.observed.map(fmt_num).unwrap_or_else(|| "no data".into())
            );
        }
        out.push('\n');
    }
    out.push_str("| request | count | req/s | error % | p50 ms | p95 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
    let ms = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into());
    for r in &s.requests {
        let _ = writeln!(
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
        );
    }
    out.push('\n');
    if !s.sql_checks.is_empty() {
        out.push_str("| | SQL check | expected | observed |\n|---|---|---:|---:|\n");
        for c in &s.sql_checks {
            let observed = c
                .error
                .as_ref()
                .map(|e| format!("error: {e}"))
                .or_else(|| c.observed.map(|v| v.to_string()))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                if c.passed { "✅" } else { "❌" },
                c.name,
                c.expected.map(|v| v.to_string()).unwrap_or_default(),
                observed
            );
        }
        out.push('\n');
    }
    if !s.alerts.is_empty() {
        out.push_str("| alert | expr | fired at | time to detect |\n|---|---|---:|---:|\n");
        for a in &s.alerts {
            let secs =
                |v: Option<f64>| v.map(|v| format!("{v:.0} s")).unwrap_or_else(|| "—".into());
            let _ = writeln!(
                out,
                "| {} | `{}` for {:.0} s | {} | {} |",
                a.name,
                a.expr,
                a.for_secs,
                secs(a.fired_at),
                secs(a.time_to_detect_s)
            );
        }
        out.push('\n');
    }
    if !s.faults.is_empty() {
        out.push_str("| fault | value | applied | rolled back |\n|---|---|---:|---|\n");
        for f in &s.faults {
            let back = match (&f.rolled_back_s, &f.rollback_error) {
                (_, Some(e)) => format!("❌ rollback failed: {e}"),
                (Some(t), None) => format!("rolled back at {t:.1} s (restored `{}`)", f.original),
                (None, None) => "❌ still active".into(),
            };
            let _ = writeln!(
                out,
                "| {} `{}` ({}) | `{}` | {:.1} s | {} |",
                f.kind, f.target, f.plugin, f.value, f.applied_s, back
            );
        }
        out.push('\n');
    }
    if let Some(d) = &s.detect_from {
        let _ = writeln!(
            out,
            "Time to detect is measured from {} at {:.1} s.\n",
            d.event, d.at_s
        );
    }
    for p in s.probes.iter().filter(|p| p.failures > 0) {
        let _ = writeln!(
            out,
            "⚠️ probe {} failed {} of {} times: {}\n",
            p.name,
            p.failures,
            p.failures + p.samples,
            p.last_error.as_deref().unwrap_or("")
        );
    }
    out.push_str("Files: [report.html](report.html) · [summary.json](summary.json) · [timeseries.csv](timeseries.csv) · [junit.xml](junit.xml)\n");
    out
}
