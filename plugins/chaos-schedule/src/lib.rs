//! A declarative fault schedule: a list of steps, each one fault held for a window — the
//! Chaos Toolkit "method" without writing a plugin. Every fault kind the harness can inject is
//! a step `action`:
//!
//! | action | fields (besides `at_s`, `duration_s`, `name`) |
//! |---|---|
//! | `sql-lock` | `database`, `query` or `table`, `hold_ms`, `interval_ms` (= hold_ms), `sessions` (1) |
//! | `sql-connections` | `database`, `count`, `in_transaction` (false) |
//! | `pause` / `kill` | `process` (`[actuators.processes.<process>]`) |
//! | `toxic` | `proxy`, `kind` (Toxiproxy's type or `down`), `direction` (downstream), `toxicity` (1), `attributes` |
//! | `http-toxic` | `proxy`, `kind` (status, latency, abort), `route` (""), `toxicity` (1), `status`, `latency_ms`, `bytes` |
//! | `app` | `field`, `value` (the app fault API's field) |
//!
//! `at_s` (0) and `duration_s` (until the run ends) are scaled by `--time-scale`. A step's
//! fault starts at `at_s` and ends at `at_s + duration_s` (`end-fault`, by its `name`, which
//! defaults to `<action>-<index>`); the harness rolls back whatever is left at the run's end.

use std::collections::BTreeMap;

use harness_plugin_sdk::{
    Config, Fault, FaultAction, HttpToxic, ProcessFault, RunState, SqlConnections, SqlLock, Toxic,
};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    action: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    at_s: f64,
    duration_s: Option<f64>,
    database: Option<String>,
    query: Option<String>,
    table: Option<String>,
    hold_ms: Option<u32>,
    interval_ms: Option<u32>,
    sessions: Option<u32>,
    count: Option<u32>,
    #[serde(default)]
    in_transaction: bool,
    process: Option<String>,
    proxy: Option<String>,
    kind: Option<String>,
    direction: Option<String>,
    toxicity: Option<f64>,
    #[serde(default)]
    attributes: BTreeMap<String, i64>,
    route: Option<String>,
    status: Option<u16>,
    latency_ms: Option<u32>,
    bytes: Option<u32>,
    field: Option<String>,
    value: Option<i64>,
}

/// A step ready to run: its start action, its window, where it is.
struct Planned {
    name: String,
    start: FaultAction,
    at_s: f64,
    end_s: f64,
    state: u8, // 0 waiting, 1 active, 2 done
}

struct Schedule {
    steps: Vec<Planned>,
}

fn need<T>(v: Option<T>, step: usize, action: &str, field: &str) -> Result<T, String> {
    v.ok_or_else(|| format!("steps[{step}] ({action}) needs `{field}`"))
}

fn start_action(i: usize, s: &Step, name: &str) -> Result<FaultAction, String> {
    let a = s.action.as_str();
    Ok(match a {
        "sql-lock" => FaultAction::SqlLock(SqlLock {
            database: need(s.database.clone(), i, a, "database")?,
            name: name.to_owned(),
            query: s.query.clone().unwrap_or_default(),
            table: s.table.clone().unwrap_or_default(),
            hold_ms: need(s.hold_ms, i, a, "hold_ms")?,
            interval_ms: s.interval_ms.or(s.hold_ms).unwrap_or(0),
            sessions: s.sessions.unwrap_or(1),
        }),
        "sql-connections" => FaultAction::SqlConnections(SqlConnections {
            database: need(s.database.clone(), i, a, "database")?,
            name: name.to_owned(),
            count: need(s.count, i, a, "count")?,
            in_transaction: s.in_transaction,
        }),
        "pause" | "kill" => FaultAction::ProcessFault(ProcessFault {
            process: need(s.process.clone(), i, a, "process")?,
            name: name.to_owned(),
            kill: a == "kill",
        }),
        "toxic" => FaultAction::AddToxic(Toxic {
            proxy: need(s.proxy.clone(), i, a, "proxy")?,
            name: name.to_owned(),
            kind: need(s.kind.clone(), i, a, "kind")?,
            direction: s.direction.clone().unwrap_or_else(|| "downstream".into()),
            toxicity: s.toxicity.unwrap_or(1.0),
            attributes: s.attributes.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        }),
        "http-toxic" => FaultAction::AddHttpToxic(HttpToxic {
            proxy: need(s.proxy.clone(), i, a, "proxy")?,
            name: name.to_owned(),
            kind: need(s.kind.clone(), i, a, "kind")?,
            route: s.route.clone().unwrap_or_default(),
            toxicity: s.toxicity.unwrap_or(1.0),
            status: s.status.unwrap_or(503),
            latency_ms: s.latency_ms.unwrap_or(0),
            bytes: s.bytes.unwrap_or(0),
        }),
        "app" => FaultAction::SetAppFault((
            need(s.field.clone(), i, a, "field")?,
            need(s.value, i, a, "value")?,
        )),
        other => {
            return Err(format!(
                "steps[{i}]: action `{other}` (use sql-lock, sql-connections, pause, kill, toxic, http-toxic or app)"
            ))
        }
    })
}

impl Fault for Schedule {
    fn new(config: Config) -> Result<Self, String> {
        config.deny_unknown(&["steps"])?;
        let scale = config.f64_or("time_scale", 1.0)?;
        let steps: Vec<Step> = config.required("steps")?;
        if steps.is_empty() {
            return Err("steps: list at least one fault".into());
        }
        let mut planned = Vec::new();
        for (i, s) in steps.iter().enumerate() {
            let name = match (&s.name, s.action.as_str()) {
                (n, _) if !n.is_empty() => n.clone(),
                (_, "app") => s.field.clone().unwrap_or_default(),
                (_, a) => format!("{a}-{i}"),
            };
            if planned.iter().any(|p: &Planned| p.name == name) {
                return Err(format!("steps[{i}]: name `{name}` is used twice"));
            }
            let at_s = s.at_s * scale;
            let end_s = s.duration_s.map_or(f64::INFINITY, |d| at_s + d * scale);
            planned.push(Planned {
                start: start_action(i, s, &name)?,
                name,
                at_s,
                end_s,
                state: 0,
            });
        }
        Ok(Schedule { steps: planned })
    }

    fn on_tick(&mut self, st: &RunState) -> Vec<FaultAction> {
        let t = st.elapsed_s;
        let mut out = Vec::new();
        for p in &mut self.steps {
            if p.state == 0 && t >= p.at_s && t < p.end_s {
                p.state = 1;
                out.push(p.start.clone());
            } else if p.state == 1 && t >= p.end_s {
                p.state = 2;
                out.push(FaultAction::EndFault(p.name.clone()));
            } else if p.state == 0 && t >= p.end_s {
                p.state = 2;
            }
        }
        out
    }
}

harness_plugin_sdk::fault_plugin!(Schedule);
