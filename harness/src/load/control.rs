//! The operator's hand on a running scenario (k6's externally-controlled executor, for every
//! executor): a target arrival rate or VU count that replaces the file's stages from the moment
//! it is set, and pause/resume. One [`Control`] per scenario lives in `Shared`; the executors
//! read it before each arrival or iteration, so a change takes effect within one arrival.

use tokio::sync::watch;

/// What the operator asked for; `None` fields follow the file.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Setting {
    /// Arrivals per second from now on (arrival-rate scenarios).
    pub rate: Option<f64>,
    /// VUs iterating from now on (VU scenarios, at most those the stages have started).
    pub vus: Option<u32>,
    pub paused: bool,
}

/// One scenario's setting, watched by its executor.
pub struct Control {
    tx: watch::Sender<Setting>,
}

impl Default for Control {
    fn default() -> Control {
        Control {
            tx: watch::channel(Setting::default()).0,
        }
    }
}

impl Control {
    pub fn get(&self) -> Setting {
        *self.tx.borrow()
    }

    pub fn watch(&self) -> watch::Receiver<Setting> {
        self.tx.subscribe()
    }

    pub fn set_rate(&self, rate: f64) {
        self.tx.send_modify(|s| s.rate = Some(rate));
    }

    pub fn set_vus(&self, vus: u32) {
        self.tx.send_modify(|s| s.vus = Some(vus));
    }

    pub fn set_paused(&self, paused: bool) {
        self.tx.send_modify(|s| s.paused = paused);
    }
}

/// Arrival times under control: the file's schedule until the operator sets a rate, then
/// evenly spaced arrivals at that rate from the moment it was set; none while paused. A
/// resume re-anchors at the resume time, so the arrivals a pause skipped are never sent late
/// in a burst (nor counted as dropped: nobody asked for them).
#[derive(Debug, Clone, Default)]
pub struct Pace {
    /// The setting the anchor below was taken under.
    setting: Setting,
    /// Seconds (from the scenario's start) where the operator's rate began, and arrivals sent
    /// at it since.
    anchor: f64,
    sent: u64,
}

impl Pace {
    /// Takes a new setting at `now` (s from the scenario's start); returns where the file's
    /// schedule resumes (the index of its next arrival) when it is back in charge.
    pub fn change(&mut self, s: Setting, now: f64, before: impl Fn(f64) -> u64) -> Option<u64> {
        let resumed = self.setting.paused && !s.paused;
        let rate_changed = self.setting.rate != s.rate;
        self.setting = s;
        if rate_changed || resumed {
            self.anchor = now;
            self.sent = 0;
        }
        (s.rate.is_none() && resumed).then(|| before(now))
    }

    /// The setting in force.
    pub fn setting(&self) -> Setting {
        self.setting
    }

    /// Arrivals sent (or refused) at the operator's rate since it was set.
    pub fn sent_count(&self) -> u64 {
        self.sent
    }

    pub fn paused(&self) -> bool {
        self.setting.paused
    }

    /// The operator's rate, when one is set.
    pub fn rate(&self) -> Option<f64> {
        self.setting.rate
    }

    /// Time (s) of the next arrival at the operator's rate; None when the rate is 0.
    pub fn next(&self) -> Option<f64> {
        let r = self.setting.rate?;
        (r > 0.0).then(|| self.anchor + self.sent as f64 / r)
    }

    /// One arrival at the operator's rate left.
    pub fn sent(&mut self) {
        self.sent += 1;
    }

    /// Arrivals at the operator's rate due before `t`, for counting those a full in-flight
    /// bound refused.
    pub fn due_before(&self, t: f64) -> u64 {
        match self.setting.rate {
            Some(r) if r > 0.0 && t > self.anchor => ((t - self.anchor) * r).ceil() as u64,
            _ => self.sent,
        }
    }

    /// Skips to `n` arrivals sent since the anchor.
    pub fn skip_to(&mut self, n: u64) {
        self.sent = self.sent.max(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_set_midway_spaces_arrivals_from_that_moment() {
        let mut p = Pace::default();
        let s = Setting {
            rate: Some(4.0),
            ..Setting::default()
        };
        assert_eq!(p.change(s, 10.0, |_| 0), None);
        let mut times = Vec::new();
        for _ in 0..4 {
            times.push(p.next().unwrap());
            p.sent();
        }
        assert_eq!(times, vec![10.0, 10.25, 10.5, 10.75]);
        assert_eq!(p.due_before(11.0), 4);
    }

    #[test]
    fn a_resume_goes_back_to_the_schedule_without_the_skipped_arrivals() {
        let mut p = Pace::default();
        let paused = Setting {
            paused: true,
            ..Setting::default()
        };
        assert_eq!(p.change(paused, 5.0, |_| 0), None);
        assert!(p.paused());
        let at = p.change(Setting::default(), 8.0, |t| (t * 10.0) as u64);
        assert_eq!(at, Some(80), "the schedule resumes at its 8 s arrival");
    }

    #[test]
    fn a_zero_rate_sends_nothing() {
        let mut p = Pace::default();
        let s = Setting {
            rate: Some(0.0),
            ..Setting::default()
        };
        p.change(s, 1.0, |_| 0);
        assert_eq!(p.next(), None);
    }
}
