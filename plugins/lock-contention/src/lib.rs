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
//!
//! `mode = "sql-lock"` causes the contention in the database itself instead of through the
//! app's hold knob, so it works on any MySQL/PostgreSQL-backed service: a fault agent locks the
//! rows of `query` (or the whole `table`) in `database` (`[actuators.sql.<database>]`) for
//! `hold_ms` every `interval_ms` (default: back to back) from `sessions` (1) connections, for
//! the window. The application's own transactions then wait on real row locks.

use harness_plugin_sdk::{scaled_secs, Config, Fault, FaultAction, RunState, SqlLock};

struct LockContention {
    /// `mode = "sql-lock"`: the lock the agent holds (hold_ms is then its hold, not the app's).
    sql: Option<SqlLock>,
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
            "mode",
            "database",
            "query",
            "table",
            "interval_ms",
            "sessions",
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
        let sql = match config.str_or("mode", "app")?.as_str() {
            "app" => None,
            "sql-lock" => Some(sql_lock(&config, hold_ms)?),
            other => return Err(format!("mode `{other}`: use app or sql-lock")),
        };
        let hold_ms = if sql.is_some() { None } else { hold_ms };
        Ok(LockContention {
            sql,
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
        if let Some(lock) = self.sql.take() {
            out.push(FaultAction::SqlLock(lock));
        }
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

/// The agent's lock for `mode = "sql-lock"`.
fn sql_lock(config: &Config, hold_ms: Option<f64>) -> Result<SqlLock, String> {
    let hold_ms = hold_ms.ok_or("mode sql-lock needs hold_ms (how long each lock is held)")?;
    if hold_ms < 1.0 {
        return Err("mode sql-lock: hold_ms must be at least 1".into());
    }
    if config.get("ramp_s").is_some() {
        return Err("mode sql-lock holds whole locks: ramp_s does not apply".into());
    }
    let database: String = config.required("database")?;
    let query = config.str_or("query", "")?;
    let table = config.str_or("table", "")?;
    if query.is_empty() == table.is_empty() {
        return Err("mode sql-lock: set exactly one of query (rows to lock) and table".into());
    }
    let interval_ms = config.f64_or("interval_ms", hold_ms)?;
    if interval_ms < hold_ms {
        return Err(format!(
            "interval_ms ({interval_ms}) must be at least hold_ms ({hold_ms})"
        ));
    }
    let sessions = config.f64_or("sessions", 1.0)?;
    if !(1.0..=1000.0).contains(&sessions) {
        return Err(format!("sessions must be 1..=1000, got {sessions}"));
    }
    Ok(SqlLock {
        database,
        name: "lock-contention".into(),
        query,
        table,
        hold_ms: hold_ms.round() as u32,
        interval_ms: interval_ms.round() as u32,
        sessions: sessions as u32,
    })
}

harness_plugin_sdk::fault_plugin!(LockContention);
