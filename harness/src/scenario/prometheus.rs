//! The scenario's Prometheus parts: `[probes.promql]` (named PromQL queries as series),
//! `[outputs.prometheus_remote_write]`, and `[alerts]` as a table naming the team's own rule
//! files (`prometheus_rules`) beside the older `[[alerts]]` list of in-harness rules.

use std::path::PathBuf;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

use super::{AlertRule, Dur};

/// `[probes.promql]`: each named query evaluated every `interval` through Prometheus's HTTP
/// API (`/api/v1/query`); the name is a series like a scraped one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromqlProbeSpec {
    /// Prometheus's base URL, e.g. `http://127.0.0.1:9090`; `{env:NAME}` expanded.
    pub url: String,
    /// series name → PromQL, e.g. `queue_depth = "max(queue_depth)"`; each must give one
    /// number (a scalar or a one-element vector).
    pub queries: std::collections::BTreeMap<String, String>,
    #[serde(default = "super::one_second")]
    pub interval: Dur,
    /// Share of evaluations that must give a series for a gate on it to judge (default 0.9).
    #[serde(default = "super::default_coverage")]
    pub min_coverage: f64,
}

/// `[outputs]`: where the run's metrics go while it runs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outputs {
    pub prometheus_remote_write: Option<RemoteWriteSpec>,
}

/// `[outputs.prometheus_remote_write]`: Prometheus remote write 1.0, every `interval`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteWriteSpec {
    /// e.g. `http://127.0.0.1:9090/api/v1/write`; `{env:NAME}` expanded.
    pub url: String,
    #[serde(default = "super::one_second")]
    pub interval: Dur,
    /// Batches waiting to be sent before new ones are dropped (counted in the report).
    #[serde(default = "default_queue")]
    pub queue: usize,
}

fn default_queue() -> usize {
    30
}

/// `[alerts] prometheus_rules = [...]`: rule files a Prometheus evaluates; the run reads their
/// state from that Prometheus (and Alertmanager, when given).
#[derive(Debug, Clone)]
pub struct PrometheusAlerts {
    pub rule_files: Vec<Spanned<String>>,
    /// Prometheus's base URL (default: `[probes.promql] url`).
    pub url: Option<String>,
    pub alertmanager_url: Option<String>,
    /// The rules of the files, read at validation.
    pub rules: Vec<crate::prom::rules::AlertRule>,
    /// The files, resolved against the scenario's directory.
    pub paths: Vec<PathBuf>,
}

/// `alerts` as written: a list (`[[alerts]]`) or a table (`[alerts]`).
#[derive(Debug, Clone, Default)]
pub struct AlertsSection {
    pub rules: Vec<AlertRule>,
    pub prometheus: Option<PrometheusAlerts>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    #[serde(default)]
    rules: Vec<AlertRule>,
    #[serde(default)]
    prometheus_rules: Vec<Spanned<String>>,
    prometheus_url: Option<String>,
    alertmanager_url: Option<String>,
}

impl<'de> Deserialize<'de> for AlertsSection {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AlertsSection;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("[[alerts]] rules, or an [alerts] table with prometheus_rules")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<AlertsSection, A::Error> {
                let rules = Vec::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(AlertsSection {
                    rules,
                    prometheus: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<AlertsSection, A::Error> {
                let t = Table::deserialize(de::value::MapAccessDeserializer::new(map))?;
                let prometheus = (!t.prometheus_rules.is_empty()
                    || t.prometheus_url.is_some()
                    || t.alertmanager_url.is_some())
                .then(|| PrometheusAlerts {
                    rule_files: t.prometheus_rules,
                    url: t.prometheus_url,
                    alertmanager_url: t.alertmanager_url,
                    rules: Vec::new(),
                    paths: Vec::new(),
                });
                Ok(AlertsSection {
                    rules: t.rules,
                    prometheus,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// Checks a base URL once `{env:…}` is out of the way: http(s) only.
pub(super) fn http_url(url: &str) -> Result<(), String> {
    if url.contains("{env:") {
        return Ok(());
    }
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
        _ => Err(format!("`{url}` is not an http:// or https:// URL")),
    }
}

/// Reads every rule file (relative to the scenario's directory) and, when `promtool` is
/// installed, has it check them: a broken file is the scenario's error, placed at its entry.
pub(super) fn load_rules(
    pa: &mut PrometheusAlerts,
    dir: &std::path::Path,
) -> Result<(), (std::ops::Range<usize>, String)> {
    for f in &pa.rule_files {
        let path = dir.join(f.get_ref());
        let rules = crate::prom::rules::load(&path).map_err(|e| (f.span(), e.to_string()))?;
        if rules.is_empty() {
            let m = format!("{} has no alerting rules", path.display());
            return Err((f.span(), m));
        }
        pa.rules.extend(rules);
        pa.paths.push(path);
    }
    if let Some(Err(e)) = crate::prom::rules::promtool_check(&pa.paths) {
        let span = pa.rule_files.first().map(|f| f.span()).unwrap_or(0..0);
        return Err((span, format!("promtool check rules: {e}")));
    }
    Ok(())
}
