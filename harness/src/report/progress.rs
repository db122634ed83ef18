//! The live progress line, once a second on stderr: where the run is, what it is doing and how
//! the target is holding up.

use crate::metrics::Window;

/// `stage` is (current 1-based, total); past the last stage the run is draining.
pub fn line(
    elapsed: f64,
    planned: f64,
    stage: (usize, usize),
    gauge_name: &str,
    w: Option<&Window>,
    total_reqs: u64,
    total_failed: u64,
) -> String {
    let stage = if stage.0 > stage.1 {
        "draining".to_owned()
    } else {
        format!("stage {}/{}", stage.0, stage.1)
    };
    let Some(w) = w else {
        return format!("[{:>5.0}s/{:.0}s] {stage} starting…", elapsed, planned);
    };
    let gauge = w
        .gauges
        .get(gauge_name)
        .map(|v| format!("{v:.0}"))
        .unwrap_or_else(|| "-".into());
    let err = if total_reqs > 0 {
        total_failed as f64 * 100.0 / total_reqs as f64
    } else {
        0.0
    };
    let mut s = format!(
        "[{:>5.0}s/{:.0}s] {stage}  {gauge_name} {gauge:>5}  req/s {:>6}  p95 {:>8}  errors {:>5.2}%  dropped {}",
        elapsed,
        planned,
        w.requests,
        w.p95_ms.map(|v| format!("{v:.1}ms")).unwrap_or_else(|| "-".into()),
        err,
        w.dropped
    );
    for (k, label) in [
        ("db_pool_pending", "pool pending"),
        ("kafka_consumer_lag", "lag"),
    ] {
        if let Some(v) = w.gauges.get(k) {
            s.push_str(&format!("  {label} {v:.0}"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_stage_gauge_and_probes() {
        let mut w = Window {
            requests: 50,
            failed: 1,
            p95_ms: Some(12.5),
            ..Default::default()
        };
        w.gauges.insert("vus".into(), 40.0);
        w.gauges.insert("db_pool_pending".into(), 3.0);
        let l = line(12.0, 60.0, (2, 4), "vus", Some(&w), 100, 1);
        assert!(
            l.contains("stage 2/4")
                && l.contains("vus    40")
                && l.contains("p95   12.5ms")
                && l.contains("errors  1.00%")
                && l.contains("pool pending 3"),
            "{l}"
        );
        assert!(line(61.0, 60.0, (5, 4), "vus", Some(&w), 100, 1).contains("draining"));
    }
}
