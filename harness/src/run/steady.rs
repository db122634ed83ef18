//! The steady-state hypothesis (Chaos Toolkit's, measured): a list of probes with tolerances,
//! each `<series> <op> <number>` like an alert, checked on every second of the run. Before the
//! first fault it must hold (else no fault is injected and the run is an error); after every
//! fault window the seconds until it holds again are that window's **recovery time**.

use super::summary::alert_value;
use crate::alerts::Condition;
use crate::fault::journal::FaultRecord;
use crate::metrics::{RunMetrics, Window};
use crate::report::summary::{Recovery, SteadyState};

/// One probe outside its tolerance in one second.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Deviation {
    pub probe: String,
    pub value: Option<f64>,
}

impl std::fmt::Display for Deviation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.value {
            Some(v) => write!(
                f,
                "{} (observed {})",
                self.probe,
                crate::threshold::fmt_num(v)
            ),
            None => write!(f, "{} (no data)", self.probe),
        }
    }
}

/// The hypothesis while the run goes: every second's verdict.
pub(super) struct Watch {
    probes: Vec<(String, Condition)>,
    pub timeout_s: f64,
    /// (second, held) per window seen, in order.
    seen: Vec<(u64, bool)>,
    pub before_faults: Option<Vec<Deviation>>,
    /// The first second without load.
    load_end: Option<u64>,
}

/// The series only the load feeds (see `summary::alert_value`).
const LOAD_SERIES: [&str; 4] = [
    "http_reqs",
    "http_req_failed",
    "http_req_duration",
    "dropped_iterations",
];

impl Watch {
    pub fn new(probes: &[String], timeout_s: f64) -> Watch {
        let probes = probes
            .iter()
            .map(|p| (p.clone(), Condition::parse(p).expect("validated at load")))
            .collect();
        Watch {
            probes,
            timeout_s,
            seen: Vec::new(),
            before_faults: None,
            load_end: None,
        }
    }

    /// The probes outside their tolerance in `w` (a probe with no value deviates: steady is
    /// something measured, never assumed). After the load ended a probe on the load's own
    /// metrics has nothing to judge and is left out, unless every probe is one.
    pub fn deviations(&self, w: &Window) -> Vec<Deviation> {
        let after_load = self.load_end.is_some_and(|s| w.second >= s);
        let judged: Vec<&(String, Condition)> = self
            .probes
            .iter()
            .filter(|(_, c)| !(after_load && LOAD_SERIES.contains(&c.series.as_str())))
            .collect();
        let judged = if judged.is_empty() {
            self.probes.iter().collect()
        } else {
            judged
        };
        judged
            .into_iter()
            .filter_map(|(text, c)| {
                let v = alert_value(&c.series, w);
                match v {
                    Some(x) if c.holds(x) => None,
                    _ => Some(Deviation {
                        probe: text.clone(),
                        value: v,
                    }),
                }
            })
            .collect()
    }

    /// From `second` on there is no load: see [`Watch::deviations`].
    pub fn load_ended(&mut self, second: u64) {
        self.load_end.get_or_insert(second);
    }

    /// Records every complete second of `m` not seen yet; the newest second's deviations.
    pub fn observe(&mut self, m: &RunMetrics) -> Option<Vec<Deviation>> {
        let mut last = None;
        for w in &m.windows {
            if self.seen.last().is_some_and(|(s, _)| *s >= w.second) {
                continue;
            }
            let d = self.deviations(w);
            self.seen.push((w.second, d.is_empty()));
            last = Some(d);
        }
        last
    }

    /// Whether the newest second seen held and began at or after `t`.
    pub fn steady_since(&self, t: f64) -> bool {
        self.seen
            .last()
            .is_some_and(|(s, held)| *held && *s as f64 >= t.floor())
    }

    pub fn report(&self, faults: &[FaultRecord]) -> SteadyState {
        SteadyState {
            probes: self.probes.iter().map(|(p, _)| p.clone()).collect(),
            before_faults: self
                .before_faults
                .as_ref()
                .map(|d| d.iter().map(Deviation::to_string).collect()),
            seconds_checked: self.seen.len() as u64,
            seconds_steady: self.seen.iter().filter(|(_, h)| *h).count() as u64,
            recoveries: recoveries(&fault_windows(faults), &self.seen),
            timeout_s: self.timeout_s,
        }
    }
}

/// The faults' windows, overlapping ones merged, in time order. A fault never rolled back
/// (its rollback failed) lasts to the last second known.
pub(super) fn fault_windows(faults: &[FaultRecord]) -> Vec<(f64, f64)> {
    let mut spans: Vec<(f64, f64)> = faults
        .iter()
        .map(|f| (f.applied_s, f.rolled_back_s.unwrap_or(f64::INFINITY)))
        .collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out: Vec<(f64, f64)> = Vec::new();
    for (a, b) in spans {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// Per window: the first second starting at or after the window's end (its second included:
/// the one the rollback happened in) in which the hypothesis held.
pub(super) fn recoveries(windows: &[(f64, f64)], seen: &[(u64, bool)]) -> Vec<Recovery> {
    windows
        .iter()
        .map(|&(start, end)| {
            let steady_at = seen
                .iter()
                .find(|(s, held)| *held && end.is_finite() && *s as f64 >= end.floor())
                .map(|(s, _)| (*s + 1) as f64);
            Recovery {
                fault_start_s: start,
                fault_end_s: if end.is_finite() { end } else { -1.0 },
                steady_at_s: steady_at,
                recovery_time_s: steady_at.map(|t| (t - end).max(0.0)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(a: f64, b: Option<f64>) -> FaultRecord {
        FaultRecord {
            plugin: "p".into(),
            kind: "app".into(),
            target: "t".into(),
            value: "1".into(),
            updates: 0,
            original: "0".into(),
            applied_at: String::new(),
            applied_s: a,
            rolled_back_at: b.map(|_| String::new()),
            rolled_back_s: b,
            rollback_error: None,
        }
    }

    #[test]
    fn overlapping_faults_are_one_window() {
        let w = fault_windows(&[
            fault(5.0, Some(10.0)),
            fault(8.0, Some(12.0)),
            fault(20.0, Some(25.0)),
        ]);
        assert_eq!(w, vec![(5.0, 12.0), (20.0, 25.0)]);
    }

    #[test]
    fn recovery_counts_from_the_rollback_to_the_end_of_the_first_steady_second() {
        // Rolled back at 10.4; seconds 10 and 11 still deviate, 12 holds.
        let seen: Vec<(u64, bool)> = (0..16).map(|s| (s, !(5..12).contains(&s))).collect();
        let r = recoveries(&[(5.2, 10.4)], &seen);
        assert_eq!(r[0].steady_at_s, Some(13.0));
        assert!((r[0].recovery_time_s.unwrap() - 2.6).abs() < 1e-9);
        // Never steady again: no recovery time (a threshold on it fails).
        let never: Vec<(u64, bool)> = (0..16).map(|s| (s, s < 5)).collect();
        assert_eq!(recoveries(&[(5.0, 10.0)], &never)[0].recovery_time_s, None);
    }

    #[test]
    fn a_probe_without_data_is_not_steady() {
        let watch = Watch::new(
            &[
                "db_pool_pending <= 2".into(),
                "http_req_failed < 0.1".into(),
            ],
            60.0,
        );
        let mut w = Window::default();
        w.gauges.insert("db_pool_pending".into(), 1.0);
        let d = watch.deviations(&w);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].to_string(), "http_req_failed < 0.1 (no data)");
        w.requests = 10;
        w.failed = 5;
        assert_eq!(
            watch.deviations(&w)[0].to_string(),
            "http_req_failed < 0.1 (observed 0.5000)"
        );
    }
}
