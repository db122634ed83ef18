//! Piecewise-linear stage profiles (k6's `stages`): the target value at any time, and for the
//! arrival-rate executor the exact time of the n-th arrival, so requests start on a schedule
//! computed from the profile rather than from a drifting timer.

use crate::scenario::Stage;

#[derive(Debug, Clone)]
pub struct Profile {
    /// (start time s, duration s, from, to, arrivals before this stage)
    segments: Vec<(f64, f64, f64, f64, f64)>,
    total: f64,
}

impl Profile {
    pub fn new(start: u32, stages: &[Stage]) -> Profile {
        let mut segments = Vec::new();
        let (mut t, mut from, mut cum) = (0.0, f64::from(start), 0.0);
        for s in stages {
            let d = s.duration.0.as_secs_f64();
            let to = f64::from(s.target);
            segments.push((t, d, from, to, cum));
            cum += (from + to) / 2.0 * d;
            t += d;
            from = to;
        }
        Profile { segments, total: t }
    }

    /// The same profile with its values per `unit` seconds turned into per-second values
    /// (k6's `timeUnit`: 30 per 1m is 0.5/s).
    pub fn per(mut self, unit: f64) -> Profile {
        if unit == 1.0 {
            return self;
        }
        let mut cum = 0.0;
        for seg in &mut self.segments {
            seg.2 /= unit;
            seg.3 /= unit;
            seg.4 = cum;
            cum += (seg.2 + seg.3) / 2.0 * seg.1;
        }
        self
    }

    /// Where the stages end (s).
    pub fn total(&self) -> f64 {
        self.total
    }

    /// Target (rate or VUs) at `t` seconds.
    pub fn value_at(&self, t: f64) -> f64 {
        for &(start, d, from, to, _) in &self.segments {
            if t < start + d {
                let x = ((t - start) / d).clamp(0.0, 1.0);
                return from + (to - from) * x;
            }
        }
        self.segments.last().map(|s| s.3).unwrap_or(0.0)
    }

    /// Arrivals expected in [0, total): the integral of the rate.
    #[cfg(test)]
    pub fn expected_arrivals(&self) -> f64 {
        self.segments
            .last()
            .map(|&(_, d, from, to, cum)| cum + (from + to) / 2.0 * d)
            .unwrap_or(0.0)
    }

    /// How many arrivals the profile schedules before `t` seconds (the integral of the rate
    /// over [0, t), rounded down); past the end, all of them.
    pub fn arrivals_before(&self, t: f64) -> u64 {
        let mut total = 0.0;
        for &(start, d, from, to, cum) in &self.segments {
            let x = (t - start).clamp(0.0, d);
            total = cum + from * x + (to - from) * x * x / (2.0 * d).max(1e-12);
            if t < start + d {
                break;
            }
        }
        total.max(0.0).floor() as u64
    }

    /// Time (s) of arrival `n` (0-based): where the cumulative count reaches `n`; None when
    /// that falls at or past the end.
    pub fn arrival_time(&self, n: u64) -> Option<f64> {
        let n = n as f64;
        for &(start, d, from, to, cum) in &self.segments {
            let in_stage = (from + to) / 2.0 * d;
            if n < cum + in_stage || (n == cum && in_stage == 0.0 && from > 0.0) {
                // Solve cum + from·x + (to−from)·x²/(2d) = n for x in [0, d].
                let a = (to - from) / (2.0 * d);
                let (b, c) = (from, cum - n);
                let x = if a.abs() < 1e-12 {
                    if b <= 0.0 {
                        continue;
                    }
                    -c / b
                } else {
                    let disc = (b * b - 4.0 * a * c).max(0.0);
                    (-b + disc.sqrt()) / (2.0 * a)
                };
                let t = start + x.clamp(0.0, d);
                return (t < self.total).then_some(t);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Dur;
    use std::time::Duration;

    fn stage(secs: u64, target: u32) -> Stage {
        Stage {
            duration: Dur(Duration::from_secs(secs)),
            target,
        }
    }

    #[test]
    fn constant_rate_is_evenly_spaced() {
        let p = Profile::new(10, &[stage(2, 10)]);
        assert_eq!(p.expected_arrivals(), 20.0);
        assert_eq!(p.arrivals_before(1.0), 10);
        assert_eq!(p.arrivals_before(99.0), 20);
        let times: Vec<f64> = (0..).map_while(|n| p.arrival_time(n)).collect();
        assert_eq!(times.len(), 20);
        assert!((times[1] - 0.1).abs() < 1e-9 && (times[19] - 1.9).abs() < 1e-9);
    }

    #[test]
    fn ramp_integrates_to_the_area() {
        let p = Profile::new(0, &[stage(10, 100), stage(5, 0)]);
        assert_eq!(p.expected_arrivals(), 500.0 + 250.0);
        let times: Vec<f64> = (0..).map_while(|n| p.arrival_time(n)).collect();
        assert!((times.len() as f64 - 750.0).abs() <= 1.0, "{}", times.len());
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "monotonic");
        // Half the first stage's arrivals come in its last 30% (area of a ramp).
        let first_half = times.iter().filter(|t| **t < 10.0 * 0.5f64.sqrt()).count();
        assert!((245..=255).contains(&first_half), "{first_half}");
        assert!((p.value_at(5.0) - 50.0).abs() < 1e-9);
        assert!((p.value_at(12.5) - 50.0).abs() < 1e-9);
    }

    #[test]
    fn zero_rate_stage_has_no_arrivals() {
        let p = Profile::new(0, &[stage(3, 0), stage(1, 10)]);
        let first = p.arrival_time(0).unwrap();
        assert!(first >= 3.0, "{first}");
    }
}
