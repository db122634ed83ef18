//! `timeseries.csv`: one row per second with load numbers, executor gauges and probe series.

use std::collections::BTreeSet;
use std::fmt::Write;

use crate::metrics::Window;

pub const FIXED: [&str; 8] = [
    "second", "requests", "failed", "dropped", "p50_ms", "p95_ms", "p99_ms", "max_ms",
];

pub fn csv(windows: &[Window]) -> String {
    let gauges: BTreeSet<&String> = windows.iter().flat_map(|w| w.gauges.keys()).collect();
    let names: BTreeSet<&String> = windows.iter().flat_map(|w| w.per_name.keys()).collect();
    let mut out = FIXED.join(",");
    for g in &gauges {
        let _ = write!(out, ",{}", quoted(g));
    }
    for n in &names {
        let (r, f) = (
            quoted(&format!("requests:{n}")),
            quoted(&format!("failed:{n}")),
        );
        let _ = write!(out, ",{r},{f}");
    }
    out.push('\n');
    let opt = |v: Option<f64>| v.map(|v| format!("{v:.3}")).unwrap_or_default();
    for w in windows {
        let _ = write!(
            out,
            "{},{},{},{},{},{},{},{}",
            w.second,
            w.requests,
            w.failed,
            w.dropped,
            opt(w.p50_ms),
            opt(w.p95_ms),
            opt(w.p99_ms),
            opt(w.max_ms)
        );
        for g in &gauges {
            let _ = write!(
                out,
                ",{}",
                w.gauges.get(*g).map(|v| v.to_string()).unwrap_or_default()
            );
        }
        for n in &names {
            let (c, f, _) = w.per_name.get(*n).copied().unwrap_or((0, 0, None));
            let _ = write!(out, ",{c},{f}");
        }
        out.push('\n');
    }
    out
}

/// A column name as a CSV cell: in double quotes (doubled inside) when it holds `,` or `"`, as
/// a probe series selector such as `x{a="b",c="d"}` does.
fn quoted(name: &str) -> String {
    if name.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", name.replace('"', "\"\""))
    } else {
        name.to_owned()
    }
}
