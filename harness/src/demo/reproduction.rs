//! The demo's two tables: the verdict of each (preset, scenario) run, and the incident's
//! figures next to ours — every measured cell read from a run's own `summary.json` and
//! `timeseries.csv`, so each number traces back to a report directory.

use std::fmt::Write;
use std::path::Path;

use crate::report::csvread::Table;
use crate::report::summary::RunStatus;
use crate::report::Summary;
use crate::threshold::fmt_num;

/// One finished run of the demo.
pub struct DemoRun {
    pub preset: String,
    pub summary: Summary,
    pub dir: std::path::PathBuf,
}

fn verdict(s: &Summary) -> &'static str {
    match s.status {
        RunStatus::Passed => "PASS",
        RunStatus::Failed | RunStatus::Aborted => "FAIL",
        RunStatus::Interrupted => "INTERRUPTED",
        RunStatus::Error => "ERROR",
    }
}

pub fn verdict_table(runs: &[DemoRun]) -> String {
    let mut out = String::from("| preset | scenario | verdict | exit | failed gates | report |\n|---|---|---|---:|---|---|\n");
    for r in runs {
        let failed: Vec<String> = r
            .summary
            .thresholds
            .iter()
            .filter(|v| !v.passed)
            .map(|v| {
                format!(
                    "`{} {}` ({})",
                    v.metric,
                    v.threshold,
                    v.observed.map(fmt_num).unwrap_or_else(|| "no data".into())
                )
            })
            .chain(
                r.summary
                    .sql_checks
                    .iter()
                    .filter(|c| !c.passed)
                    .map(|c| format!("sql `{}`", c.name)),
            )
            .collect();
        let failed = if failed.is_empty() {
            r.summary
                .reason
                .clone()
                .filter(|_| r.summary.status != RunStatus::Passed)
                .unwrap_or_else(|| "—".into())
        } else {
            failed.join(", ")
        };
        let _ = writeln!(
            out,
            "| {} | {} | **{}** | {} | {} | `{}` |",
            r.preset,
            r.summary.scenario.name,
            verdict(&r.summary),
            r.summary.exit_code,
            failed,
            r.dir.display()
        );
    }
    out
}

/// A run's `timeseries.csv`; None when it is missing or unreadable (the cell then shows "—").
fn timeseries(dir: &Path) -> Option<Table> {
    Table::parse(&std::fs::read_to_string(dir.join("timeseries.csv")).ok()?).ok()
}

/// Highest per-second rise of a counter column, averaged over `span` s (a consumer's best
/// throughput from its records counter).
pub fn max_counter_rate(dir: &Path, column: &str, span: usize) -> Option<f64> {
    let t = timeseries(dir)?;
    let values: Vec<f64> = t.column(column)?.into_iter().flatten().collect();
    if values.len() <= span {
        return None;
    }
    values
        .windows(span + 1)
        .map(|w| (w[span] - w[0]) / span as f64)
        .reduce(f64::max)
}

/// Highest mean of successful `request` responses per second over any `span` s window.
pub fn max_sustained_rate(dir: &Path, request: &str, span: usize) -> Option<f64> {
    let t = timeseries(dir)?;
    let reqs = t.column(&format!("requests:{request}"))?;
    let failed = t.column(&format!("failed:{request}"))?;
    let ok: Vec<f64> = reqs
        .iter()
        .zip(&failed)
        .map(|(r, f)| r.unwrap_or(0.0) - f.unwrap_or(0.0))
        .collect();
    ok.windows(span.min(ok.len()).max(1))
        .map(|w| w.iter().sum::<f64>() / w.len() as f64)
        .reduce(f64::max)
}

fn find<'a>(runs: &'a [DemoRun], preset: &str, scenario: &str) -> Option<&'a DemoRun> {
    runs.iter()
        .find(|r| r.preset == preset && r.summary.scenario.name == scenario)
}

fn request_p95(s: &Summary, name: &str) -> Option<f64> {
    s.requests
        .iter()
        .find(|r| r.name == name)
        .and_then(|r| r.p95_ms)
}

fn error_rate(s: &Summary, name: &str) -> Option<f64> {
    s.requests
        .iter()
        .find(|r| r.name == name)
        .filter(|r| r.count > 0)
        .map(|r| r.error_rate)
}

fn alert_cell(s: &Summary, name: &str) -> String {
    match s.alerts.iter().find(|a| a.name == name) {
        None => "—".into(),
        Some(a) => match (a.fired_at, a.time_to_detect_s) {
            (Some(f), Some(d)) => format!(
                "fired at {f:.0} s ({d:.0} s after {})",
                s.detect_from
                    .as_ref()
                    .map(|x| x.event.split(':').next().unwrap_or(""))
                    .unwrap_or("the reference")
            ),
            (Some(f), None) => format!("fired at {f:.0} s"),
            (None, _) => format!("did not fire in {:.0} s", s.elapsed_s),
        },
    }
}

/// Reads one cell from a run (None shows "—").
type Measure = dyn Fn(&DemoRun) -> Option<String>;

/// One row of the reproduction table: the incident's figure, our prediction, and how the
/// measured cell is read from a run of `scenario`.
struct Figure {
    what: &'static str,
    incident: &'static str,
    predicted: String,
    scenario: &'static str,
    measure: Box<Measure>,
}

impl Figure {
    fn new(
        what: &'static str,
        incident: &'static str,
        predicted: &str,
        scenario: &'static str,
        measure: impl Fn(&DemoRun) -> Option<String> + 'static,
    ) -> Figure {
        let predicted = predicted.to_owned();
        Figure {
            what,
            incident,
            predicted,
            scenario,
            measure: Box::new(measure),
        }
    }
}

pub fn reproduction_table(runs: &[DemoRun]) -> String {
    let mut out = String::from("| figure | incident (INCIDENT.md) | prediction | measured: incident preset | measured: remediated preset |\n|---|---|---|---|---|\n");
    let figures = order_figures(runs)
        .into_iter()
        .chain(coupon_figures())
        .chain(broker_pause_figures())
        .chain(detect_figures());
    for f in figures {
        let cell = |preset: &str| {
            find(runs, preset, f.scenario)
                .and_then(|r| (f.measure)(r))
                .unwrap_or_else(|| "—".into())
        };
        let (incident, remediated) = (cell("incident"), cell("remediated"));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {incident} | {remediated} |",
            f.what, f.incident, f.predicted
        );
    }
    out
}

fn peak(r: &DemoRun, series: &str) -> Option<String> {
    r.summary.series_peaks.get(series).map(|v| fmt_num(*v))
}

/// ST-001: the order path's capacity, latency, errors and pool.
fn order_figures(runs: &[DemoRun]) -> Vec<Figure> {
    // The incident's math (0.2 s hold) and this app's default hold (240 ms call + the SQL).
    let predicted_tps = |preset: &str| {
        find(runs, preset, "st-001")
            .and_then(|r| r.summary.series_peaks.get("db_pool_max").copied())
            .map(|p| {
                format!(
                    "{p:.0}/0.2 s = {:.0} ({p:.0}/0.25 s = {:.0})",
                    p / 0.2,
                    p / 0.25
                )
            })
            .unwrap_or_else(|| "—".into())
    };
    let predicted = format!(
        "pool ÷ hold: {} · {}",
        predicted_tps("incident"),
        predicted_tps("remediated")
    );
    let tps =
        |r: &DemoRun| max_sustained_rate(&r.dir, "create_order", 5).map(|v| format!("{v:.1}/s"));
    let p95 = |r: &DemoRun| request_p95(&r.summary, "create_order").map(|v| format!("{v:.0} ms"));
    let errors =
        |r: &DemoRun| error_rate(&r.summary, "create_order").map(|v| format!("{:.1}%", v * 100.0));
    vec![
        Figure::new(
            "max sustained order TPS (best 5 s of 201s)",
            "< 110 (fails above it)",
            &predicted,
            "st-001",
            tps,
        ),
        Figure::new("ST-001 p95", "3,500 ms", "—", "st-001", p95),
        Figure::new(
            "ST-001 error rate",
            "12.5% (0.1% → 4.8% at stage 4)",
            "—",
            "st-001",
            errors,
        ),
        Figure::new(
            "browse p95 (product reads at 5/s beside the orders)",
            "every API stopped answering",
            "pool exhausted → waits up to the 5 s acquire timeout",
            "st-001",
            |r| request_p95(&r.summary, "browse_product").map(|v| format!("{v:.0} ms")),
        ),
        Figure::new("pool pending (peak)", "15", "—", "st-001", |r| {
            peak(r, "db_pool_pending")
        }),
        Figure::new("pool acquire timeouts", "28", "—", "st-001", |r| {
            peak(r, "db_pool_acquire_timeouts_total")
        }),
    ]
}

/// Peak: the coupon consumer's lag, throughput, drain and success.
fn coupon_figures() -> Vec<Figure> {
    let lag = |r: &DemoRun| r.summary.kafka_lag.as_ref().map(|l| fmt_num(l.peak as f64));
    let throughput = |r: &DemoRun| {
        max_counter_rate(&r.dir, "sum(coupon_consumer_records_total)", 3)
            .map(|v| format!("{v:.0}/s"))
    };
    let drain = |r: &DemoRun| {
        r.summary.kafka_lag.as_ref().map(|l| {
            l.drained_at_s
                .map(|d| format!("{:.0} s", d - l.peak_at_s))
                .unwrap_or_else(|| format!("not drained in {:.0} s", r.summary.elapsed_s))
        })
    };
    let delay = |r: &DemoRun| {
        let t = r.summary.trends.get("coupon_issue_delay")?;
        let s = |v: Option<f64>| {
            v.map(|v| format!("{:.1} s", v / 1000.0))
                .unwrap_or("—".into())
        };
        Some(format!(
            "{} / {} / {} ({} users)",
            s(t.p50_ms),
            s(t.p95_ms),
            s(t.max_ms),
            t.count
        ))
    };
    let success = |r: &DemoRun| {
        let v = r
            .summary
            .thresholds
            .iter()
            .find(|v| v.metric == "coupon_issue_success");
        v.and_then(|v| v.observed)
            .map(|v| format!("{:.1}%", v * 100.0))
    };
    vec![
        Figure::new(
            "consumer lag peak",
            "6,850 (4,700 after the 5 s surge)",
            "(1,000 − 60)/s × 5 s = 4,700, + sustained traffic",
            "peak",
            lag,
        ),
        Figure::new(
            "consumer throughput (best 3 s)",
            "60/s (3 × 20/s)",
            "60/s · batches ≥ 8× (500/s)",
            "peak",
            throughput,
        ),
        Figure::new(
            "drain time (peak → 0; arrivals go on until 25 s)",
            "8 min 30 s",
            "6,850 / 60 = 114 s · ≥ 8× faster",
            "peak",
            drain,
        ),
        Figure::new(
            "coupon issue delay p50 / p95 / max (1 in 50 users polling)",
            "up to 8 min 30 s",
            "≈ the drain time at the burst's tail",
            "peak",
            delay,
        ),
        Figure::new("coupon issue success", "96.2%", "—", "peak", success),
    ]
}

/// Peak with the broker paused (an injected stand-in for the incident's overloaded broker):
/// the producer's delivery timeouts, the issue success they leave, and the recovery.
fn broker_pause_figures() -> Vec<Figure> {
    const SCENARIO: &str = "peak-broker-pause";
    let timeouts = |r: &DemoRun| {
        let row = r
            .summary
            .requests
            .iter()
            .find(|q| q.name == "issue_coupon")?;
        let n = row.statuses.get("503").copied().unwrap_or(0);
        (row.count > 0).then(|| {
            format!(
                "{:.1}% ({n} of {})",
                n as f64 * 100.0 / row.count as f64,
                row.count
            )
        })
    };
    let success = |r: &DemoRun| {
        let v = r.summary.thresholds.iter();
        let v = v.into_iter().find(|v| v.metric == "coupon_issue_success")?;
        let mark = if v.passed { "PASS" } else { "FAIL" };
        v.observed.map(|o| format!("{:.1}% ({mark})", o * 100.0))
    };
    let recovery = |r: &DemoRun| {
        let st = r.summary.steady_state.as_ref()?;
        let rec = st.recoveries.first()?;
        Some(match rec.recovery_time_s {
            Some(t) => format!("{t:.0} s after the broker resumed"),
            None => format!("not within {:.0} s", st.timeout_s),
        })
    };
    vec![
        Figure::new(
            "producer timeouts — injected: broker paused 8 s in the burst's tail (stand-in for the incident's overloaded broker)",
            "3.8%",
            "100/s × (8 s − 5 s delivery timeout) ≈ 300 of ≈ 7,500 ≈ 4%",
            SCENARIO,
            timeouts,
        ),
        Figure::new(
            "coupon issue success, broker paused (gate > 97%)",
            "96.2% (FAIL)",
            "≈ 96% (FAIL)",
            SCENARIO,
            success,
        ),
        Figure::new(
            "steady again (no failed requests in a second)",
            "—",
            "≤ the 5 s delivery timeout",
            SCENARIO,
            recovery,
        ),
    ]
}

/// When each alert rule fired: the incident's rules and faster variants, as the stack's
/// Prometheus evaluated `scenarios/alerts/incident.rules.yml` (the rule's name, exactly).
fn detect_figures() -> Vec<Figure> {
    let rules: [(&'static str, &'static str, &'static str, &'static str); 6] = [
        (
            "detect: HikariCPConnectionTimeout (timeouts > 10 for 2m, Prometheus)",
            "human: 1.5 min (rule expected 30 s)",
            "HikariCPConnectionTimeout",
            "st-001",
        ),
        (
            "detect: HikariCPConnectionTimeoutFast (timeouts > 10 for 10s, Prometheus)",
            "—",
            "HikariCPConnectionTimeoutFast",
            "st-001",
        ),
        (
            "detect: DBPoolConnectionsHigh (pool > 70% for 30s, Prometheus)",
            "—",
            "DBPoolConnectionsHigh",
            "st-001",
        ),
        (
            "detect: KafkaConsumerLagHigh (lag > 5000 for 3m, Prometheus)",
            "human: 2 min",
            "KafkaConsumerLagHigh",
            "peak",
        ),
        (
            "detect: KafkaConsumerLagHighLowered (lag > 1000 for 3m, Prometheus)",
            "—",
            "KafkaConsumerLagHighLowered",
            "peak",
        ),
        (
            "detect: KafkaConsumerLagHighFast (lag > 1000 for 10s, Prometheus)",
            "—",
            "KafkaConsumerLagHighFast",
            "peak",
        ),
    ];
    let figure = |(what, incident, alert, scenario): (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
    )| {
        Figure::new(what, incident, "—", scenario, move |r| {
            Some(alert_cell(&r.summary, alert))
        })
    };
    rules.into_iter().map(figure).collect()
}
