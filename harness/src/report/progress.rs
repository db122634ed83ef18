//! The live progress line, once a second on stderr: where the run is, what it is doing and how
//! the target is holding up.

use crate::event::Progress;

/// Past the last stage (`stage.0 > stage.1`) the run is draining.
pub fn line(p: &Progress<'_>) -> String {
    let stage = if p.stage.0 > p.stage.1 {
        "draining".to_owned()
    } else {
        format!("stage {}/{}", p.stage.0, p.stage.1)
    };
    let Some(w) = p.window else {
        let insecure = if p.tls_insecure { INSECURE } else { "" };
        return format!(
            "[{:>5.0}s/{:.0}s] {stage} starting…{insecure}",
            p.elapsed_s, p.planned_s
        );
    };
    let gauge = w
        .gauges
        .get(p.gauge)
        .map(|v| format!("{v:.0}"))
        .unwrap_or_else(|| "-".into());
    let err = if p.requests > 0 {
        p.failed as f64 * 100.0 / p.requests as f64
    } else {
        0.0
    };
    let mut s = format!(
        "[{:>5.0}s/{:.0}s] {stage}  {} {gauge:>5}  req/s {:>6}  p95 {:>8}  errors {:>5.2}%  dropped {}",
        p.elapsed_s,
        p.planned_s,
        p.gauge,
        w.requests,
        w.p95_ms.map(|v| format!("{v:.1}ms")).unwrap_or_else(|| "-".into()),
        err,
        w.dropped
    );
    for l in p.series {
        if let Some(v) = w.gauges.get(&l.series) {
            s.push_str(&format!("  {} {v:.0}", l.label));
        }
    }
    if p.tls_insecure {
        s.push_str(INSECURE);
    }
    s
}

/// Said on every progress line of a run that does not verify certificates.
pub const INSECURE: &str = "  [TLS NOT VERIFIED: insecure = true]";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Window;
    use crate::scenario::SeriesLabel;

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
        let series = [SeriesLabel {
            series: "db_pool_pending".into(),
            label: "pool pending".into(),
        }];
        let mut p = Progress {
            elapsed_s: 12.0,
            planned_s: 60.0,
            stage: (2, 4),
            gauge: "vus",
            window: Some(&w),
            requests: 100,
            failed: 1,
            series: &series,
            tls_insecure: false,
        };
        let l = line(&p);
        assert!(
            l.contains("stage 2/4")
                && l.contains("vus    40")
                && l.contains("p95   12.5ms")
                && l.contains("errors  1.00%")
                && l.contains("pool pending 3"),
            "{l}"
        );
        p.elapsed_s = 61.0;
        p.stage = (5, 4);
        assert!(line(&p).contains("draining"));
    }
}
