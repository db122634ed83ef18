//! Scrapes a Prometheus text endpoint every interval and records the chosen series as run
//! gauges. Each series is a PromQL instant selector (`name`, `name{mode="idle"}`, `=~`, `!=`,
//! `!~`; see [`super::selector`]), optionally aggregated: `sum(…)`, `max(…)`, `min(…)`,
//! `avg(…)`, `count(…)`. A selector without an aggregation must match one label set: several
//! are an error for that series in that scrape (never a silent sum), none means the series is
//! missing. The gauge is named by the entry exactly as written in the scenario.

use std::sync::Arc;
use std::time::Duration;

use prometheus_parse::Sample;
use tokio::sync::watch;

use super::selector::Selector;
use super::ProbeHealth;
use crate::metrics::Recorder;

pub struct PrometheusProbe {
    pub url: String,
    /// The series to record; each gauge is named by its selector's text.
    pub series: Vec<Selector>,
    pub interval: Duration,
    /// Share of scrapes a series needs for a gate on it to judge (see `ProbeHealth::shortfall`).
    pub min_coverage: f64,
}

/// Why one scrape gave no values.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// No answer, or the body could not be read.
    #[error(transparent)]
    Fetch(#[from] reqwest::Error),
    #[error("HTTP {0}")]
    Status(reqwest::StatusCode),
    #[error("not Prometheus text: {0}")]
    Parse(std::io::Error),
}

/// A series without an aggregation whose selector matched several label sets in one scrape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("series `{series}` matches {count} label sets ({examples}); without an aggregation a series must match exactly one: write `sum({series})`, `max(…)` or `avg(…)`, or narrow the selector")]
pub struct Ambiguous {
    pub series: String,
    pub count: usize,
    /// The first few label sets, e.g. `{cpu="0",mode="idle"}, {cpu="1",mode="idle"}, …`.
    pub examples: String,
}

/// One series in one scrape: its value, None when nothing matched, or the ambiguity.
pub type SeriesValue = Result<Option<f64>, Ambiguous>;

/// The scenario's series entries as selectors (`harness validate` has parsed each already).
pub fn selectors(series: &[String]) -> Result<Vec<Selector>, super::selector::SelectorError> {
    series.iter().map(|s| s.parse()).collect()
}

/// Parses Prometheus text and evaluates each selector on it, named by its text.
pub fn extract(text: &str, series: &[Selector]) -> Result<Vec<(String, SeriesValue)>, ScrapeError> {
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .map_err(ScrapeError::Parse)?;
    Ok(series
        .iter()
        .map(|sel| (sel.text().to_owned(), evaluate(sel, &scrape.samples)))
        .collect())
}

/// The value of one selector: the single matching sample, or the aggregate of all of them.
fn evaluate(sel: &Selector, samples: &[Sample]) -> SeriesValue {
    let matched: Vec<(&Sample, f64)> = samples
        .iter()
        .filter(|s| sel.matches(s))
        .filter_map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => Some((s, v)),
            _ => None,
        })
        .collect();
    match (sel.agg, matched.as_slice()) {
        (Some(agg), _) => Ok(agg.apply(&matched.iter().map(|m| m.1).collect::<Vec<_>>())),
        (None, []) => Ok(None),
        (None, [(_, v)]) => Ok(Some(*v)),
        (None, many) => {
            let mut sets: Vec<String> = many
                .iter()
                .map(|(s, _)| format!("{{{}}}", s.labels))
                .collect();
            sets.sort();
            if sets.len() > 3 {
                sets.truncate(3);
                sets.push("…".into());
            }
            Err(Ambiguous {
                series: sel.text().to_owned(),
                count: many.len(),
                examples: sets.join(", "),
            })
        }
    }
}

/// What one scrape lacked: series that matched several label sets, series not in it.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.describe())]
pub struct Incomplete {
    ambiguous: Vec<Ambiguous>,
    missing: Vec<String>,
}

impl Incomplete {
    fn describe(&self) -> String {
        let mut problems: Vec<String> = self.ambiguous.iter().map(|e| e.to_string()).collect();
        if !self.missing.is_empty() {
            problems.push(format!(
                "series not in the scrape: {}",
                self.missing.join(", ")
            ));
        }
        problems.join("; ")
    }
}

/// Records one scrape's values; the error names the ambiguous and the missing series.
fn record(
    values: Vec<(String, SeriesValue)>,
    recorder: &Recorder,
    health: &mut ProbeHealth,
) -> Result<(), Incomplete> {
    let mut lacked = Incomplete {
        ambiguous: Vec::new(),
        missing: Vec::new(),
    };
    for (name, v) in values {
        match v {
            Ok(Some(v)) => {
                recorder.set_gauge(&name, v, true);
                health.saw(&name);
            }
            Ok(None) => lacked.missing.push(name),
            Err(e) => lacked.ambiguous.push(e),
        }
    }
    if lacked.ambiguous.is_empty() && lacked.missing.is_empty() {
        Ok(())
    } else {
        Err(lacked)
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("http client")
}

async fn get(client: &reqwest::Client, url: &str) -> Result<String, ScrapeError> {
    match client.get(url).send().await {
        Ok(r) if r.status().is_success() => r.text().await.map_err(ScrapeError::from),
        Ok(r) => Err(ScrapeError::Status(r.status())),
        Err(e) => Err(ScrapeError::Fetch(e)),
    }
}

/// One scrape of `url` (2 s timeout): the page, or why not.
pub async fn fetch(url: &str) -> Result<String, ScrapeError> {
    get(&client(), url).await
}

/// The distinct metric names of a page, sorted (none when it is not Prometheus text).
pub fn metric_names(text: &str) -> Vec<String> {
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())));
    let names: std::collections::BTreeSet<String> = scrape
        .map(|s| s.samples.into_iter().map(|s| s.metric).collect())
        .unwrap_or_default();
    names.into_iter().collect()
}

impl PrometheusProbe {
    pub async fn run(
        self,
        recorder: Arc<Recorder>,
        mut stop: watch::Receiver<bool>,
    ) -> ProbeHealth {
        let name = format!("prometheus {}", self.url);
        let series: Vec<String> = self.series.iter().map(|s| s.text().to_owned()).collect();
        let mut health = ProbeHealth::new(&name, &series, self.min_coverage);
        let client = client();
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return health,
            }
            let recorded = match get(&client, &self.url)
                .await
                .and_then(|t| extract(&t, &self.series))
            {
                Ok(values) => record(values, &recorder, &mut health).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match recorded {
                Ok(()) => health.ok(),
                Err(e) => health.failed(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node_exporter-like page: one counter over cpu × mode, a gauge, a histogram.
    const NODE: &str = r#"# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu="0",mode="idle"} 1000.5
node_cpu_seconds_total{cpu="0",mode="iowait"} 12.25
node_cpu_seconds_total{cpu="0",mode="system"} 30
node_cpu_seconds_total{cpu="0",mode="user"} 80
node_cpu_seconds_total{cpu="1",mode="idle"} 990.5
node_cpu_seconds_total{cpu="1",mode="iowait"} 7.75
node_cpu_seconds_total{cpu="1",mode="system"} 35
node_cpu_seconds_total{cpu="1",mode="user"} 90
# HELP node_load1 1m load average.
# TYPE node_load1 gauge
node_load1 0.42
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.1"} 5
http_request_duration_seconds_bucket{le="+Inf"} 7
http_request_duration_seconds_sum 1.5
http_request_duration_seconds_count 7
"#;

    fn values(series: &[&str]) -> Vec<(String, SeriesValue)> {
        let sel: Vec<Selector> = series.iter().map(|s| s.parse().unwrap()).collect();
        extract(NODE, &sel).unwrap()
    }

    fn value(series: &str) -> SeriesValue {
        values(&[series]).remove(0).1
    }

    #[test]
    fn one_label_set_gives_its_exact_value() {
        let got = values(&[
            r#"node_cpu_seconds_total{cpu="0",mode="idle"}"#,
            r#"node_cpu_seconds_total{mode="user",cpu="1"}"#,
            "node_load1",
            "http_request_duration_seconds_count",
        ]);
        let want: Vec<(String, SeriesValue)> = vec![
            (
                r#"node_cpu_seconds_total{cpu="0",mode="idle"}"#.into(),
                Ok(Some(1000.5)),
            ),
            (
                r#"node_cpu_seconds_total{mode="user",cpu="1"}"#.into(),
                Ok(Some(90.0)),
            ),
            ("node_load1".into(), Ok(Some(0.42))),
            ("http_request_duration_seconds_count".into(), Ok(Some(7.0))),
        ];
        assert_eq!(got, want, "named by the entry as written");
    }

    #[test]
    fn aggregations_over_the_matching_label_sets() {
        let cases = [
            (r#"sum(node_cpu_seconds_total{mode="idle"})"#, 1991.0),
            (r#"max(node_cpu_seconds_total{mode="idle"})"#, 1000.5),
            (r#"min(node_cpu_seconds_total{mode="user"})"#, 80.0),
            (r#"avg(node_cpu_seconds_total{mode="user"})"#, 85.0),
            ("count(node_cpu_seconds_total)", 8.0),
            ("sum(node_cpu_seconds_total)", 2246.0),
            ("sum(node_load1)", 0.42),
            (r#"count(node_cpu_seconds_total{cpu="1"})"#, 4.0),
        ];
        for (series, want) in cases {
            assert_eq!(value(series), Ok(Some(want)), "{series}");
        }
    }

    #[test]
    fn regex_and_negative_matchers() {
        let cases = [
            (
                r#"sum(node_cpu_seconds_total{mode=~"idle|iowait"})"#,
                2011.0,
            ),
            (r#"sum(node_cpu_seconds_total{mode=~"i.*"})"#, 2011.0),
            (
                r#"sum(node_cpu_seconds_total{cpu="1",mode!~"idle|iowait"})"#,
                125.0,
            ),
            (
                r#"sum(node_cpu_seconds_total{cpu="0",mode!="idle"})"#,
                122.25,
            ),
            (r#"node_cpu_seconds_total{cpu!="0",mode=~"sys.*"}"#, 35.0),
        ];
        for (series, want) in cases {
            assert_eq!(value(series), Ok(Some(want)), "{series}");
        }
        let unanchored = r#"count(node_cpu_seconds_total{mode=~"dle"})"#;
        assert_eq!(value(unanchored), Ok(None), "regexes match whole values");
    }

    #[test]
    fn several_label_sets_without_an_aggregation_are_an_error() {
        let e = value(r#"node_cpu_seconds_total{mode="idle"}"#).unwrap_err();
        assert_eq!(e.count, 2);
        assert_eq!(
            e.to_string(),
            r#"series `node_cpu_seconds_total{mode="idle"}` matches 2 label sets ({cpu="0",mode="idle"}, {cpu="1",mode="idle"}); without an aggregation a series must match exactly one: write `sum(node_cpu_seconds_total{mode="idle"})`, `max(…)` or `avg(…)`, or narrow the selector"#
        );
        let all = value("node_cpu_seconds_total").unwrap_err();
        assert_eq!(all.count, 8);
        assert!(all.examples.ends_with(", …"), "{}", all.examples);
    }

    #[test]
    fn no_match_is_missing() {
        for series in [
            "nope",
            "sum(nope)",
            r#"node_cpu_seconds_total{mode="steal"}"#,
        ] {
            assert_eq!(value(series), Ok(None), "{series}");
        }
    }

    #[test]
    fn a_scrape_records_the_good_series_and_names_the_bad() {
        let r = Recorder::new(&[]);
        let mut h = ProbeHealth::default();
        let got = record(
            values(&[
                "node_load1",
                r#"node_cpu_seconds_total{mode="idle"}"#,
                "nope",
            ]),
            &r,
            &mut h,
        );
        let e = got.unwrap_err().to_string();
        assert!(
            e.starts_with("series `node_cpu_seconds_total{mode=\"idle\"}` matches 2"),
            "{e}"
        );
        assert!(e.ends_with("; series not in the scrape: nope"), "{e}");
        let series = r.snapshot().series;
        assert_eq!(series.keys().collect::<Vec<_>>(), ["node_load1"]);
        assert_eq!(h.present.get("node_load1"), Some(&1));
        assert!(record(values(&["node_load1"]), &r, &mut h).is_ok());
        let names = metric_names(NODE);
        assert_eq!(
            names.first().map(String::as_str),
            Some("http_request_duration_seconds")
        );
        assert!(
            names.iter().any(|n| n == "node_cpu_seconds_total"),
            "{names:?}"
        );
    }
}
