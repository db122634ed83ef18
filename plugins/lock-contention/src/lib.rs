//! The incident's order-path fault: from `at_s` for `duration_s` seconds, contend for the stock
//! row lock — by holding each order's lock `hold_ms` longer (the external call inside the
//! transaction; app fault API field `order_hold_ms`), and/or by sending a larger share of the
//! orders to the hot product (`hot_share` on the load side's hot-key generator `generator`).
//! Both can ramp up over `ramp_s`. The harness journals every change and restores the original
//! values at the end of the window and of the run.
//!
//! Config: `hold_ms` and/or `hot_share` (one is required), `at_s` (0), `duration_s` (until the
//! run ends), `ramp_s` (0), `field` ("order_hold_ms"), `generator` ("product"). Times are
//! scaled by the run's time scale.

use harness_plugin_sdk::{scaled_secs, Config, Fault, FaultAction, RunState};

struct LockContention {
    field: String,
    hold_ms: Option<f64>,
    generator: String,
    hot_share: Option<f64>,
    at_s: f64,
    end_s: f64,
    ramp_s: f64,
    last: (Option<i64>, Option<f64>),
    done: bool,
}

impl Fault for LockContention {
    fn new(config: Config) -> Result<Self, String> {
        config.deny_unknown(&[
            "hold_ms",
            "hot_share",
            "at_s",
            "duration_s",
            "ramp_s",
            "field",
            "generator",
        ])?;
        let hold_ms = config
            .get("hold_ms")
            .map(|_| config.f64_or("hold_ms", 0.0))
            .transpose()?;
        let hot_share = config
            .get("hot_share")
            .map(|_| config.f64_or("hot_share", 0.0))
            .transpose()?;
        match (hold_ms, hot_share) {
            (None, None) => {
                return Err("set hold_ms (extra lock hold, ms) and/or hot_share (0..1)".into())
            }
            (Some(h), _) if !(0.0..=600_000.0).contains(&h) => {
                return Err(format!("hold_ms must be between 0 and 600000, got {h}"))
            }
            (_, Some(s)) if !(0.0..=1.0).contains(&s) => {
                return Err(format!("hot_share must be between 0 and 1, got {s}"))
            }
            _ => {}
        }
        let at_s = scaled_secs(&config, "at_s", 0.0)?;
        let duration_s = scaled_secs(&config, "duration_s", f64::INFINITY)?;
        Ok(LockContention {
            field: config.str_or("field", "order_hold_ms")?,
            hold_ms,
            generator: config.str_or("generator", "product")?,
            hot_share,
            at_s,
            end_s: at_s + duration_s,
            ramp_s: scaled_secs(&config, "ramp_s", 0.0)?,
            last: (None, None),
            done: false,
        })
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
        let ramp = if self.ramp_s > 0.0 {
            ((t - self.at_s) / self.ramp_s).min(1.0)
        } else {
            1.0
        };
        let mut out = Vec::new();
        if let Some(h) = self.hold_ms {
            let value = (h * ramp).round() as i64;
            if self.last.0 != Some(value) {
                self.last.0 = Some(value);
                out.push(FaultAction::SetAppFault((self.field.clone(), value)));
            }
        }
        if let Some(s) = self.hot_share {
            let share = (s * ramp * 1000.0).round() / 1000.0;
            if self.last.1 != Some(share) {
                self.last.1 = Some(share);
                out.push(FaultAction::SetHotShare((self.generator.clone(), share)));
            }
        }
        out
    }
}

harness_plugin_sdk::fault_plugin!(LockContention);
