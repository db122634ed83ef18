//! The incident's coupon-path fault: from `at_s` for `duration_s` seconds, every coupon insert
//! in the consumer takes `insert_delay_ms` longer (app fault API field
//! `consumer_insert_delay_ms`), and optionally the database link gets `db_latency_ms` of
//! latency through the fault relay (a Toxiproxy `latency` toxic on proxy `proxy`).
//!
//! Config: `insert_delay_ms` (0), `db_latency_ms` (0 = none), `proxy` ("mariadb"), `at_s` (0),
//! `duration_s` (until the run ends). Times are scaled by the run's time scale.

use harness_plugin_sdk::{scaled_secs, Config, Fault, FaultAction, RunState, Toxic};

struct SlowInserts {
    insert_delay_ms: i64,
    db_latency_ms: i64,
    proxy: String,
    at_s: f64,
    end_s: f64,
    state: u8,
}

impl Fault for SlowInserts {
    fn new(config: Config) -> Result<Self, String> {
        config.deny_unknown(&[
            "insert_delay_ms",
            "db_latency_ms",
            "proxy",
            "at_s",
            "duration_s",
        ])?;
        let insert_delay_ms = config.f64_or("insert_delay_ms", 0.0)? as i64;
        let db_latency_ms = config.f64_or("db_latency_ms", 0.0)? as i64;
        if insert_delay_ms <= 0 && db_latency_ms <= 0 {
            return Err("set insert_delay_ms and/or db_latency_ms above 0".into());
        }
        let at_s = scaled_secs(&config, "at_s", 0.0)?;
        let duration_s = scaled_secs(&config, "duration_s", f64::INFINITY)?;
        Ok(SlowInserts {
            insert_delay_ms,
            db_latency_ms,
            proxy: config.str_or("proxy", "mariadb")?,
            at_s,
            end_s: at_s + duration_s,
            state: 0,
        })
    }

    fn on_tick(&mut self, st: &RunState) -> Vec<FaultAction> {
        match self.state {
            0 if st.elapsed_s >= self.at_s && st.elapsed_s < self.end_s => {
                self.state = 1;
                let mut out = Vec::new();
                if self.insert_delay_ms > 0 {
                    out.push(FaultAction::SetAppFault((
                        "consumer_insert_delay_ms".into(),
                        self.insert_delay_ms,
                    )));
                }
                if self.db_latency_ms > 0 {
                    out.push(FaultAction::AddToxic(Toxic {
                        proxy: self.proxy.clone(),
                        name: "slow-inserts-latency".into(),
                        kind: "latency".into(),
                        direction: "downstream".into(),
                        toxicity: 1.0,
                        attributes: vec![
                            ("latency".into(), self.db_latency_ms),
                            ("jitter".into(), 0),
                        ],
                    }));
                }
                out
            }
            1 if st.elapsed_s >= self.end_s => {
                self.state = 2;
                vec![FaultAction::RestoreAll]
            }
            _ => Vec::new(),
        }
    }
}

harness_plugin_sdk::fault_plugin!(SlowInserts);
