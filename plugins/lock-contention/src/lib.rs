//! The incident's order-path fault: from `at_s` for `duration_s` seconds, hold each order's
//! stock lock `hold_ms` longer (the external call inside the transaction), optionally ramping
//! up over `ramp_s`. Applied through the app's fault API field `order_hold_ms`; the harness
//! journals it and restores the original value at the end of the window and of the run.
//!
//! Config: `hold_ms` (required), `at_s` (0), `duration_s` (until the run ends), `ramp_s` (0),
//! `field` ("order_hold_ms"). Times are scaled by the run's time scale.

use harness_plugin_sdk::{scaled_secs, Config, Fault, FaultAction, RunState};

struct LockContention {
    field: String,
    hold_ms: f64,
    at_s: f64,
    end_s: f64,
    ramp_s: f64,
    last: Option<i64>,
    done: bool,
}

impl Fault for LockContention {
    fn new(config: Config) -> Result<Self, String> {
        config.deny_unknown(&["hold_ms", "at_s", "duration_s", "ramp_s", "field"])?;
        let hold_ms: f64 = config.required("hold_ms")?;
        if !(0.0..=600_000.0).contains(&hold_ms) {
            return Err(format!("hold_ms must be between 0 and 600000, got {hold_ms}"));
        }
        let at_s = scaled_secs(&config, "at_s", 0.0)?;
        let duration_s = scaled_secs(&config, "duration_s", f64::INFINITY)?;
        Ok(LockContention { field: config.str_or("field", "order_hold_ms")?, hold_ms, at_s, end_s: at_s + duration_s, ramp_s: scaled_secs(&config, "ramp_s", 0.0)?, last: None, done: false })
    }

    fn on_tick(&mut self, st: &RunState) -> Vec<FaultAction> {
        let t = st.elapsed_s;
        if self.done || t < self.at_s {
            return Vec::new();
        }
        if t >= self.end_s {
            self.done = true;
            return vec![FaultAction::RestoreAll];
        }
        let ramp = if self.ramp_s > 0.0 { ((t - self.at_s) / self.ramp_s).min(1.0) } else { 1.0 };
        let value = (self.hold_ms * ramp).round() as i64;
        if self.last == Some(value) {
            return Vec::new();
        }
        self.last = Some(value);
        vec![FaultAction::SetAppFault((self.field.clone(), value))]
    }
}

harness_plugin_sdk::fault_plugin!(LockContention);
