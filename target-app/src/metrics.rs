//! The app's vital signs in Prometheus text format.
//!
//! Hand-rolled on atomics rather than a metrics framework: the set is small and fixed, and the
//! harness must be able to read exactly the numbers the incident watched (Hikari's
//! active/idle/pending/timeouts, producer errors, consumer lag).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the HTTP latency histogram buckets.
const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 30.0,
];

/// One latency histogram (seconds).
#[derive(Default)]
struct Series {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Series {
    fn observe(&mut self, secs: f64) {
        self.count += 1;
        self.sum += secs;
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.buckets[i] += 1;
            }
        }
    }

    /// The `_bucket`, `_sum` and `_count` lines under `labels` (`a="x",b="y"` or empty).
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, le) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {}",
                self.buckets[i]
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braced = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braced} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braced} {}", self.count);
    }
}

/// Point-in-time pool numbers, read from sqlx when rendering.
pub struct PoolSnapshot {
    pub max: u32,
    pub size: u32,
    pub idle: u32,
}

/// Fault knobs, rendered so a probe can see when a fault is active.
pub struct FaultSnapshot {
    pub order_hold_ms: u64,
    pub consumer_insert_delay_ms: u64,
    pub consumer_paused: bool,
}

#[derive(Default)]
pub struct Metrics {
    pub pool_pending: AtomicI64,
    pub acquire_timeouts: AtomicU64,
    pub producer_sent: AtomicU64,
    pub producer_errors: AtomicU64,
    pub consumer_issued: AtomicU64,
    pub consumer_rejected: AtomicU64,
    /// -1 until the lag monitor has read the broker once.
    pub consumer_lag: AtomicI64,
    /// Calls to `--external-url` (none while the call is simulated) and those that failed.
    pub external_calls: AtomicU64,
    pub external_failures: AtomicU64,
    external_latency: Mutex<Series>,
    http: Mutex<BTreeMap<(String, u16), Series>>,
    lag_by_partition: Mutex<BTreeMap<i32, i64>>,
}

impl Metrics {
    pub fn new() -> Self {
        let m = Self::default();
        m.consumer_lag.store(-1, Relaxed);
        m
    }

    pub fn observe_http(&self, route: &str, status: u16, elapsed: Duration) {
        let mut map = self.http.lock().expect("metrics lock");
        map.entry((route.to_owned(), status))
            .or_default()
            .observe(elapsed.as_secs_f64());
    }

    pub fn observe_external(&self, elapsed: Duration, ok: bool) {
        self.external_calls.fetch_add(1, Relaxed);
        if !ok {
            self.external_failures.fetch_add(1, Relaxed);
        }
        self.external_latency
            .lock()
            .expect("metrics lock")
            .observe(elapsed.as_secs_f64());
    }

    pub fn set_lag(&self, per_partition: BTreeMap<i32, i64>) {
        self.consumer_lag
            .store(per_partition.values().sum(), Relaxed);
        *self.lag_by_partition.lock().expect("metrics lock") = per_partition;
    }

    pub fn render(&self, pool: &PoolSnapshot, faults: &FaultSnapshot) -> String {
        let mut out = String::with_capacity(4096);
        let active = pool.size.saturating_sub(pool.idle);
        gauge(
            &mut out,
            "db_pool_max",
            "Configured maximum pool size.",
            pool.max as f64,
        );
        gauge(
            &mut out,
            "db_pool_active",
            "Connections checked out.",
            active as f64,
        );
        gauge(
            &mut out,
            "db_pool_idle",
            "Open connections not checked out.",
            pool.idle as f64,
        );
        gauge(
            &mut out,
            "db_pool_pending",
            "Requests waiting for a connection.",
            self.pool_pending.load(Relaxed).max(0) as f64,
        );
        counter(
            &mut out,
            "db_pool_acquire_timeouts_total",
            "Acquires that gave up after the acquire timeout.",
            self.acquire_timeouts.load(Relaxed),
        );
        counter(
            &mut out,
            "kafka_producer_sent_total",
            "Records acknowledged by the broker.",
            self.producer_sent.load(Relaxed),
        );
        counter(
            &mut out,
            "kafka_producer_errors_total",
            "Records that failed or timed out.",
            self.producer_errors.load(Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP coupon_consumer_records_total Coupon requests decided by the consumer."
        );
        let _ = writeln!(out, "# TYPE coupon_consumer_records_total counter");
        let _ = writeln!(
            out,
            "coupon_consumer_records_total{{outcome=\"issued\"}} {}",
            self.consumer_issued.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "coupon_consumer_records_total{{outcome=\"rejected\"}} {}",
            self.consumer_rejected.load(Relaxed)
        );
        gauge(
            &mut out,
            "coupon_consumer_lag",
            "Records not yet committed by the consumer group (-1: not read yet).",
            self.consumer_lag.load(Relaxed) as f64,
        );
        let _ = writeln!(out, "# TYPE coupon_consumer_lag_partition gauge");
        for (p, lag) in self.lag_by_partition.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "coupon_consumer_lag_partition{{partition=\"{p}\"}} {lag}"
            );
        }
        gauge(
            &mut out,
            "fault_order_hold_ms",
            "Injected extra hold time in the order transaction.",
            faults.order_hold_ms as f64,
        );
        gauge(
            &mut out,
            "fault_consumer_insert_delay_ms",
            "Injected extra delay per coupon insert.",
            faults.consumer_insert_delay_ms as f64,
        );
        gauge(
            &mut out,
            "fault_consumer_paused",
            "1 while the coupon consumer is paused.",
            faults.consumer_paused as u8 as f64,
        );
        self.render_external(&mut out);
        self.render_http(&mut out);
        out
    }

    fn render_external(&self, out: &mut String) {
        counter(
            out,
            "external_calls_total",
            "Calls to the order's external dependency (--external-url).",
            self.external_calls.load(Relaxed),
        );
        counter(
            out,
            "external_call_failures_total",
            "External calls that failed: non-2xx, transport error or timeout.",
            self.external_failures.load(Relaxed),
        );
        let name = "external_call_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} External call latency.\n# TYPE {name} histogram"
        );
        self.external_latency
            .lock()
            .expect("metrics lock")
            .render(out, name, "");
    }

    fn render_http(&self, out: &mut String) {
        let map = self.http.lock().expect("metrics lock");
        let _ = writeln!(
            out,
            "# HELP http_server_requests_total HTTP requests by route and status."
        );
        let _ = writeln!(out, "# TYPE http_server_requests_total counter");
        for ((route, status), s) in map.iter() {
            let _ = writeln!(
                out,
                "http_server_requests_total{{route=\"{route}\",status=\"{status}\"}} {}",
                s.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP http_server_request_duration_seconds HTTP latency by route and status."
        );
        let _ = writeln!(out, "# TYPE http_server_request_duration_seconds histogram");
        for ((route, status), s) in map.iter() {
            let labels = format!("route=\"{route}\",status=\"{status}\"");
            s.render(out, "http_server_request_duration_seconds", &labels);
        }
    }
}

fn gauge(out: &mut String, name: &str, help: &str, v: f64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
}

fn counter(out: &mut String, name: &str, help: &str, v: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::new();
        m.observe_http("/api/orders", 201, Duration::from_millis(30));
        m.observe_http("/api/orders", 201, Duration::from_millis(700));
        let pool = PoolSnapshot {
            max: 20,
            size: 5,
            idle: 2,
        };
        let faults = FaultSnapshot {
            order_hold_ms: 0,
            consumer_insert_delay_ms: 0,
            consumer_paused: false,
        };
        let text = m.render(&pool, &faults);
        assert!(text.contains("db_pool_active 3\n"), "{text}");
        assert!(text.contains("le=\"0.05\"} 1\n"));
        assert!(text.contains("le=\"1\"} 2\n"));
        assert!(text.contains(
            "http_server_request_duration_seconds_count{route=\"/api/orders\",status=\"201\"} 2\n"
        ));
        assert!(text.contains("coupon_consumer_lag -1\n"));
    }

    #[test]
    fn external_calls_have_counters_and_an_unlabelled_histogram() {
        let m = Metrics::new();
        m.observe_external(Duration::from_millis(240), true);
        m.observe_external(Duration::from_millis(30), false);
        let pool = PoolSnapshot {
            max: 20,
            size: 0,
            idle: 0,
        };
        let faults = FaultSnapshot {
            order_hold_ms: 0,
            consumer_insert_delay_ms: 0,
            consumer_paused: false,
        };
        let text = m.render(&pool, &faults);
        for line in [
            "external_calls_total 2\n",
            "external_call_failures_total 1\n",
            "external_call_duration_seconds_bucket{le=\"0.05\"} 1\n",
            "external_call_duration_seconds_bucket{le=\"0.25\"} 2\n",
            "external_call_duration_seconds_bucket{le=\"+Inf\"} 2\n",
            "external_call_duration_seconds_count 2\n",
        ] {
            assert!(text.contains(line), "{line} missing in:\n{text}");
        }
    }
}
