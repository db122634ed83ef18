//! Everything checked before the first request, once the scenario validated and the plugins
//! loaded: the target answers, every SQL check's database URL parses and connects, every probe
//! answers and has its series. A refusal says whether the file is wrong (exit 2, placed at
//! file:line:column:field) or the world is (exit 3, naming the URL), and no load is sent.

use std::time::Duration;

use super::Base;
use crate::probe::kafka::KafkaLagProbe;
use crate::probe::prometheus;
use crate::probe::sql::{self, SqlError};
use crate::prom::api::{AlertmanagerClient, PromClient};
use crate::scenario::{expand_env, Located};

/// Why a run does not start.
#[derive(Debug)]
pub(super) enum Refusal {
    /// The scenario is wrong in a way only its expanded values show.
    File(Located),
    /// Something the scenario names does not answer as it should.
    World(String),
}

pub(super) async fn check(base: &Base<'_>) -> Result<(), Refusal> {
    let target = &base.target;
    if let Err(e) = base.client.reachable(target, Duration::from_secs(5)).await {
        return Err(Refusal::World(format!(
            "target {target} does not answer: {e}"
        )));
    }
    databases(base).await?;
    sql_actuators(base).await?;
    sql_probe(base).await?;
    prometheus_probe(base).await?;
    promql_probe(base).await?;
    prometheus_rules(base).await?;
    kafka_probe(base).await
}

/// Each SQL check's database: the URL parses (else the file is wrong) and connects.
async fn databases(base: &Base<'_>) -> Result<(), Refusal> {
    let s = &base.scenario;
    for c in &s.sql_checks {
        let url = match sql::database_url(&c.database_url, &base.opts.vars) {
            Ok(url) => url,
            Err(e @ SqlError::BadUrl { .. }) => {
                let field = "sql_checks.database_url";
                return Err(Refusal::File(
                    s.locate_key(field, format!("check `{}`: {e}", c.name)),
                ));
            }
            Err(e) => return Err(Refusal::World(format!("sql check `{}`: {e}", c.name))),
        };
        if let Err(e) = sql::connects(&url).await {
            let url = sql::redact(&url);
            return Err(Refusal::World(format!(
                "sql check `{}`: database {url}: {e}",
                c.name
            )));
        }
    }
    Ok(())
}

/// Each `[actuators.sql.NAME]` database parses and connects: a fault that cannot reach its
/// database must not be found out mid-run.
async fn sql_actuators(base: &Base<'_>) -> Result<(), Refusal> {
    let s = &base.scenario;
    for (name, a) in &s.actuators.sql {
        let field = format!("actuators.sql.{name}.url");
        let url = expand_env(a.url.get_ref(), &base.opts.vars)
            .map_err(|e| Refusal::File(s.locate(a.url.span(), &field, e.to_string())))?;
        sql::parse_url(&url)
            .map_err(|e| Refusal::File(s.locate(a.url.span(), &field, e.to_string())))?;
        if let Err(e) = sql::connects(&url).await {
            let url = sql::redact(&url);
            return Err(Refusal::World(format!(
                "actuator sql.{name}: database {url}: {e}"
            )));
        }
    }
    Ok(())
}

/// `[probes.sql]`: the database connects and every query answers one number now.
async fn sql_probe(base: &Base<'_>) -> Result<(), Refusal> {
    let Some(p) = &base.scenario.probes.sql else {
        return Ok(());
    };
    let url = expand_env(&p.url, &base.opts.vars)
        .map_err(|e| Refusal::File(base.scenario.locate_key("probes.sql.url", e.to_string())))?;
    sql::parse_url(&url)
        .map_err(|e| Refusal::File(base.scenario.locate_key("probes.sql.url", e.to_string())))?;
    let shown = sql::redact(&url);
    let refuse = |what: String| Refusal::World(format!("probe sql {shown}: {what}"));
    let mut db = crate::db::Db::connect(&url)
        .await
        .map_err(|e| refuse(e.to_string()))?;
    for (name, q) in &p.queries {
        match db.scalar(q).await {
            Ok(Some(_)) => {}
            Ok(None) => return Err(refuse(format!("query `{name}` answered NULL"))),
            Err(e) => return Err(refuse(format!("query `{name}`: {e}"))),
        }
    }
    db.close().await;
    Ok(())
}

/// `[probes.promql]`: Prometheus answers, and every query gives one number now (a query
/// Prometheus rejects is refused with Prometheus's own words).
async fn promql_probe(base: &Base<'_>) -> Result<(), Refusal> {
    let Some(p) = &base.scenario.probes.promql else {
        return Ok(());
    };
    let url = expand_env(&p.url, &base.opts.vars)
        .map_err(|e| Refusal::File(base.scenario.locate_key("probes.promql.url", e.to_string())))?;
    let client = PromClient::new(&url, Duration::from_secs(5));
    let refuse = |what: String| Refusal::World(format!("probe promql: {what}"));
    client.ready().await.map_err(|e| refuse(e.to_string()))?;
    for (name, q) in &p.queries {
        let value = client
            .query(q)
            .await
            .map_err(|e| refuse(format!("query `{name}` ({q}): {e}")))?;
        match value.single() {
            Ok(Some(_)) => {}
            Ok(None) => return Err(refuse(format!("query `{name}` ({q}) gives no series now"))),
            Err(e) => return Err(refuse(format!("query `{name}` ({q}): {e}"))),
        }
    }
    Ok(())
}

/// `[alerts] prometheus_rules`: the Prometheus that should evaluate them answers and has
/// every rule of the files loaded, so "did not fire" can only mean it did not fire.
async fn prometheus_rules(base: &Base<'_>) -> Result<(), Refusal> {
    let s = &base.scenario;
    let Some(pa) = &s.prometheus_alerts else {
        return Ok(());
    };
    let url = s
        .rules_prometheus_url()
        .expect("validation requires a Prometheus for rule files");
    let url = expand_env(url, &base.opts.vars)
        .map_err(|e| Refusal::File(s.locate_key("alerts.prometheus_url", e.to_string())))?;
    let client = PromClient::new(&url, Duration::from_secs(5));
    let refuse = |what: String| Refusal::World(format!("alert rules: {what}"));
    client.ready().await.map_err(|e| refuse(e.to_string()))?;
    let loaded = client
        .rule_names()
        .await
        .map_err(|e| refuse(e.to_string()))?;
    let missing: Vec<String> = pa
        .rules
        .iter()
        .filter(|r| !loaded.contains(&r.name))
        .map(|r| format!("{} ({})", r.name, r.file.display()))
        .collect();
    if !missing.is_empty() {
        return Err(refuse(format!(
            "Prometheus at {url} does not evaluate {}: load the rule files in its rule_files",
            missing.join(", ")
        )));
    }
    if let Some(am) = &pa.alertmanager_url {
        let am = expand_env(am, &base.opts.vars)
            .map_err(|e| Refusal::File(s.locate_key("alerts.alertmanager_url", e.to_string())))?;
        let client = AlertmanagerClient::new(&am, Duration::from_secs(5));
        client.alerts().await.map_err(|e| refuse(e.to_string()))?;
    }
    Ok(())
}

/// One scrape: it answers, parses, and has every series (else the names that come closest).
async fn prometheus_probe(base: &Base<'_>) -> Result<(), Refusal> {
    let Some(p) = &base.scenario.probes.prometheus else {
        return Ok(());
    };
    let url = p.url.replace("{target}", &base.target);
    let refuse = |what: String| Refusal::World(format!("probe prometheus {url}: {what}"));
    let text = prometheus::fetch(&url)
        .await
        .map_err(|e| refuse(e.to_string()))?;
    // Validation parsed every selector already.
    let selectors = prometheus::selectors(&p.series).map_err(|e| refuse(e.to_string()))?;
    let values = prometheus::extract(&text, &selectors).map_err(|e| refuse(e.to_string()))?;
    let names = prometheus::metric_names(&text);
    for (series, value) in values {
        match value {
            Ok(Some(_)) => {}
            Ok(None) => {
                let near = near_matches(&series, &names);
                let near = if near.is_empty() {
                    "none".to_owned()
                } else {
                    near.join(", ")
                };
                return Err(refuse(format!(
                    "series `{series}` is not in the scrape (near matches: {near})"
                )));
            }
            Err(ambiguous) => return Err(refuse(ambiguous.to_string())),
        }
    }
    Ok(())
}

/// One lag reading over the Kafka protocol.
async fn kafka_probe(base: &Base<'_>) -> Result<(), Refusal> {
    let Some(k) = &base.scenario.probes.kafka else {
        return Ok(());
    };
    let what = format!("probe kafka lag {} (group {})", k.topic, k.group);
    let bootstrap = expand_env(&k.bootstrap, &base.opts.vars)
        .map_err(|e| Refusal::World(format!("{what}: {e}")))?;
    let probe = KafkaLagProbe::new(&bootstrap, &k.group, &k.topic, k.interval.0)
        .map_err(|e| Refusal::World(format!("{what} at {bootstrap}: {e}")))?;
    match probe.read().await {
        Ok(_) => Ok(()),
        Err(e) => Err(Refusal::World(format!(
            "{what} at {bootstrap} does not answer: {e}"
        ))),
    }
}

/// Up to five scraped names closest to `wanted` (its metric name, without selector or
/// aggregation): same first word or a small edit distance, closest first.
fn near_matches(wanted: &str, names: &[String]) -> Vec<String> {
    let bare = wanted.rsplit('(').next().unwrap_or(wanted);
    let bare = bare.split(['{', ')']).next().unwrap_or(bare).trim();
    let first = bare.split('_').next().unwrap_or(bare);
    let mut scored: Vec<(usize, &String)> = names
        .iter()
        .map(|n| (edit_distance(bare, n), n))
        .filter(|(d, n)| *d <= bare.len() / 3 + 1 || n.split('_').next() == Some(first))
        .collect();
    scored.sort();
    scored.into_iter().take(5).map(|(_, n)| n.clone()).collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_matches_are_close_names_first() {
        let names: Vec<String> = [
            "db_pool_active",
            "db_pool_pending",
            "http_requests_total",
            "process_cpu_seconds_total",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            near_matches("db_pool_pendng", &names),
            ["db_pool_pending", "db_pool_active"]
        );
        assert_eq!(
            near_matches("max(http_request_total{code=\"200\"})", &names),
            ["http_requests_total"]
        );
        assert!(near_matches("zzz", &names).is_empty());
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
