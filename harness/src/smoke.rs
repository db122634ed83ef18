//! `harness smoke`: a short fixed-rate load of orders and coupon requests against a target,
//! with a per-request-name result table. It proves the stack answers end to end before the
//! scenario runner exists; latencies come from our own HDR histograms, measured from each
//! request's scheduled start.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

#[derive(Debug, thiserror::Error)]
pub enum SmokeError {
    #[error("target {url} does not answer: {source}")]
    TargetDown { url: String, source: reqwest::Error },
}

#[derive(Debug, Clone)]
pub struct SmokeOptions {
    pub target: String,
    pub rate: u32,
    pub duration: Duration,
    pub timeout: Duration,
}

#[derive(Debug, Default)]
pub struct NameStats {
    pub by_status: BTreeMap<String, u64>,
    pub latency_us: Option<Histogram<u64>>,
}

pub type SmokeResult = BTreeMap<&'static str, NameStats>;

pub async fn run(opts: &SmokeOptions) -> Result<SmokeResult, SmokeError> {
    let client = reqwest::Client::builder().timeout(opts.timeout).build().expect("http client");
    let health = format!("{}/actuator/health", opts.target);
    client.get(&health).send().await.map_err(|source| SmokeError::TargetDown { url: opts.target.clone(), source })?;

    let stats: Arc<Mutex<SmokeResult>> = Arc::default();
    let total = (f64::from(opts.rate) * opts.duration.as_secs_f64()) as u64;
    let interval = Duration::from_secs_f64(1.0 / f64::from(opts.rate.max(1)));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let scheduled = start + interval * i as u32;
        tokio::time::sleep_until(scheduled.into()).await;
        let (client, stats, target) = (client.clone(), stats.clone(), opts.target.clone());
        tasks.spawn(async move {
            let (name, url, body) = if i % 2 == 0 {
                ("create_order", format!("{target}/api/orders"), serde_json::json!({"user_id": i + 1, "product_id": 1 + i % 100, "quantity": 1}))
            } else {
                ("issue_coupon", format!("{target}/api/coupons/1/issue"), serde_json::json!({"user_id": i + 1}))
            };
            let outcome = match client.post(&url).json(&body).send().await {
                Ok(r) => r.status().as_u16().to_string(),
                Err(e) if e.is_timeout() => "timeout".into(),
                Err(_) => "connect_error".into(),
            };
            let elapsed = scheduled.elapsed().as_micros() as u64;
            let mut s = stats.lock().expect("stats lock");
            let entry = s.entry(name).or_default();
            *entry.by_status.entry(outcome).or_default() += 1;
            // Fixed bounds (1 µs .. 1 h): saturating_record never resizes an auto-sized histogram.
            let h = entry.latency_us.get_or_insert_with(|| Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("histogram"));
            h.saturating_record(elapsed.max(1));
        });
    }
    while tasks.join_next().await.is_some() {}
    let out = std::mem::take(&mut *stats.lock().expect("stats lock"));
    Ok(out)
}

/// A plain-text table: name, count, statuses, p50/p95/max in ms.
pub fn render(result: &SmokeResult) -> String {
    let mut out = format!("{:<14} {:>6}  {:<28} {:>8} {:>8} {:>8}\n", "request", "count", "statuses", "p50 ms", "p95 ms", "max ms");
    for (name, s) in result {
        let count: u64 = s.by_status.values().sum();
        let statuses = s.by_status.iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>().join(" ");
        let (p50, p95, max) = s
            .latency_us
            .as_ref()
            .map(|h| (h.value_at_quantile(0.5), h.value_at_quantile(0.95), h.max()))
            .unwrap_or_default();
        let ms = |us: u64| format!("{:.1}", us as f64 / 1000.0);
        out.push_str(&format!("{:<14} {:>6}  {:<28} {:>8} {:>8} {:>8}\n", name, count, statuses, ms(p50), ms(p95), ms(max)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_shows_recorded_latencies_in_ms() {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for us in [1_000u64, 2_000, 3_000, 40_000] {
            h.record(us).unwrap();
        }
        let mut r = SmokeResult::new();
        r.insert("x", NameStats { by_status: BTreeMap::from([("200".into(), 4)]), latency_us: Some(h) });
        let text = render(&r);
        assert!(text.contains(" 2.0 ") && text.contains("40.0"), "{text}");
    }
}
