//! The live progress line, once a second on stderr: where the run is, what it is doing and how
//! the target is holding up.

use crate::metrics::Window;

pub fn line(elapsed: f64, planned: f64, gauge_name: &str, w: Option<&Window>, total_reqs: u64, total_failed: u64) -> String {
    let Some(w) = w else {
        return format!("[{:>5.0}s/{:.0}s] starting…", elapsed, planned);
    };
    let gauge = w.gauges.get(gauge_name).map(|v| format!("{v:.0}")).unwrap_or_else(|| "-".into());
    let err = if total_reqs > 0 { total_failed as f64 * 100.0 / total_reqs as f64 } else { 0.0 };
    let mut s = format!(
        "[{:>5.0}s/{:.0}s] {gauge_name} {gauge:>5}  req/s {:>6}  p95 {:>8}  errors {:>5.2}%  dropped {}",
        elapsed,
        planned,
        w.requests,
        w.p95_ms.map(|v| format!("{v:.1}ms")).unwrap_or_else(|| "-".into()),
        err,
        w.dropped
    );
    for (k, label) in [("db_pool_pending", "pool pending"), ("kafka_consumer_lag", "lag")] {
        if let Some(v) = w.gauges.get(k) {
            s.push_str(&format!("  {label} {v:.0}"));
        }
    }
    s
}
