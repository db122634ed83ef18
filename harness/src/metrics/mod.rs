//! The run's measurements: every request outcome, the executors' gauges and the probes' samples,
//! kept as whole-run HDR histograms and counters per request name plus one summarised row per
//! 1 s window. Every number a threshold judges or a report prints is computed from here.
//!
//! Windows are keyed by the second a sample was recorded (its completion), and a window is
//! summarised when the clock moves past it, so memory stays flat however long the run is.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub mod tags;
mod trend;
pub mod window;
pub use tags::TagFilter;
pub use trend::{Encoded, Trend};

/// Why a request did not get a (usable) response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Timeout,
    Connect,
    /// The TLS handshake failed (certificate, protocol, alert).
    Tls,
    /// The body was longer than `max_body` bytes.
    BodyTooLarge,
    /// More redirects than `max_redirects`, or one that cannot be followed.
    Redirects,
    Other,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 6] = [
        ErrorKind::Timeout,
        ErrorKind::Connect,
        ErrorKind::Tls,
        ErrorKind::BodyTooLarge,
        ErrorKind::Redirects,
        ErrorKind::Other,
    ];

    /// The word reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connect => "connect",
            ErrorKind::Tls => "tls",
            ErrorKind::BodyTooLarge => "body_too_large",
            ErrorKind::Redirects => "redirects",
            ErrorKind::Other => "other",
        }
    }
}

/// The protocol a response came over (k6's `proto` tag values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Http1,
    Http2,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Http1 => "HTTP/1.1",
            Proto::Http2 => "HTTP/2.0",
        }
    }
}

/// k6's timing phases of one request (see `k6_rules::PHASES`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Phases {
    /// Waiting for a connection: pool, TCP connect and TLS handshake (k6 counts these too).
    pub blocked: Duration,
    pub connecting: Duration,
    pub tls_handshaking: Duration,
    /// Connection in hand to the request written.
    pub sending: Duration,
    /// Request written to the response head.
    pub waiting: Duration,
    /// Response head to the last body byte.
    pub receiving: Duration,
}

impl Phases {
    fn values(&self) -> [Duration; 6] {
        [
            self.blocked,
            self.connecting,
            self.tls_handshaking,
            self.sending,
            self.waiting,
            self.receiving,
        ]
    }
}

/// One finished request (one hop of a redirect chain).
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub status: Option<u16>,
    pub error: Option<ErrorKind>,
    /// From the intended start (arrival-rate) or the actual start (VUs) to the end.
    pub latency: Duration,
    /// Not a failure in `http_req_failed`'s sense (status expected, no error).
    pub ok: bool,
    /// None when the request never had a connection to time.
    pub phases: Option<Phases>,
    pub proto: Option<Proto>,
}

impl Outcome {
    /// A request that failed with `error` before any response.
    pub fn failed(error: ErrorKind, latency: Duration) -> Outcome {
        Outcome {
            status: None,
            error: Some(error),
            latency,
            ok: false,
            phases: None,
            proto: None,
        }
    }
}

/// Bytes on the wire (TCP payload, TLS records included), counted by the HTTP client's
/// connections: k6's `data_sent` and `data_received`.
#[derive(Debug, Default)]
pub struct Traffic {
    pub sent: std::sync::atomic::AtomicU64,
    pub received: std::sync::atomic::AtomicU64,
}

/// Whole-run numbers for one request name (or for all of them).
#[derive(Debug, Clone)]
pub struct Totals {
    /// Latencies in µs.
    pub latency: Trend,
    pub count: u64,
    pub failed: u64,
    pub statuses: BTreeMap<u16, u64>,
    /// Per error kind, in `ErrorKind::ALL` order (see [`Totals::error_count`]).
    pub errors: [u64; 6],
    /// The timing phases, in `k6_rules::PHASES` order (µs).
    pub phases: Vec<Trend>,
    /// Responses per protocol: HTTP/1.1, HTTP/2.
    pub protocols: [u64; 2],
}

impl Default for Totals {
    fn default() -> Self {
        Totals {
            latency: Trend::default(),
            count: 0,
            failed: 0,
            statuses: BTreeMap::new(),
            errors: [0; 6],
            phases: vec![Trend::default(); 6],
            protocols: [0; 2],
        }
    }
}

impl Totals {
    fn add(&mut self, o: &Outcome) {
        self.count += 1;
        self.latency.record_duration(o.latency);
        if !o.ok {
            self.failed += 1;
        }
        if let Some(s) = o.status {
            *self.statuses.entry(s).or_default() += 1;
        }
        if let Some(e) = o.error {
            self.errors[e as usize] += 1;
        }
        if let Some(p) = &o.phases {
            for (h, d) in self.phases.iter_mut().zip(p.values()) {
                // 0 is a real value here (no connect on a reused connection).
                h.record(d.as_micros() as u64);
            }
        }
        match o.proto {
            Some(Proto::Http1) => self.protocols[0] += 1,
            Some(Proto::Http2) => self.protocols[1] += 1,
            None => {}
        }
    }

    /// Responses with a status in `statuses` (every response when empty).
    pub fn responses_with(&self, statuses: &[u16]) -> u64 {
        // Over the recorded statuses, so a status listed twice still counts once.
        self.statuses
            .iter()
            .filter(|(st, _)| statuses.is_empty() || statuses.contains(st))
            .map(|(_, n)| n)
            .sum()
    }

    /// Count of `kind` errors.
    pub fn error_count(&self, kind: ErrorKind) -> u64 {
        self.errors[kind as usize]
    }

    /// Latency quantile in milliseconds, as k6 computes it (None without samples).
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        self.latency.quantile_ms(q)
    }
    pub fn mean_ms(&self) -> Option<f64> {
        self.latency.mean_ms()
    }
    pub fn min_ms(&self) -> Option<f64> {
        self.latency.min_ms()
    }
    pub fn max_ms(&self) -> Option<f64> {
        self.latency.max_ms()
    }
}

/// One summarised second.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Window {
    /// Seconds since the run started (window covers [second, second+1)).
    pub second: u64,
    pub requests: u64,
    pub failed: u64,
    pub dropped: u64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// Executor gauges and probe samples (last value written in the second).
    pub gauges: BTreeMap<String, f64>,
    /// Per request name: (requests, failed, p95 ms).
    pub per_name: BTreeMap<String, (u64, u64, Option<f64>)>,
}

struct Current {
    second: u64,
    all: Trend,
    requests: u64,
    failed: u64,
    dropped: u64,
    gauges: BTreeMap<String, f64>,
    per_name: BTreeMap<String, (u64, u64, Trend)>,
}

impl Current {
    fn new(second: u64, carry: &BTreeMap<String, f64>) -> Current {
        Current {
            second,
            all: Trend::default(),
            requests: 0,
            failed: 0,
            dropped: 0,
            gauges: carry.clone(),
            per_name: BTreeMap::new(),
        }
    }

    fn summarise(&self) -> Window {
        let q = |h: &Trend, q: f64| h.quantile_ms(q);
        Window {
            second: self.second,
            requests: self.requests,
            failed: self.failed,
            dropped: self.dropped,
            p50_ms: q(&self.all, 0.5),
            p95_ms: q(&self.all, 0.95),
            p99_ms: q(&self.all, 0.99),
            max_ms: self.all.max_ms(),
            gauges: self.gauges.clone(),
            per_name: self
                .per_name
                .iter()
                .map(|(n, (c, f, h))| (n.clone(), (*c, *f, q(h, 0.95))))
                .collect(),
        }
    }
}

struct Inner {
    all: Totals,
    per_name: BTreeMap<String, Totals>,
    dropped: u64,
    windows: Vec<Window>,
    current: Current,
    /// Probe series: every sample with its time (s since start), for gauge aggregations.
    series: BTreeMap<String, Vec<(f64, f64)>>,
    checks: BTreeMap<String, CheckCount>,
    /// Samples that were a followed redirect (a hop of a longer request).
    redirect_hops: u64,
    /// Requests sent by flow steps, setup and teardown (not iterations of their own)…
    flow_requests: u64,
    /// …and the flow iterations they made up.
    flow_iterations: u64,
    /// Trends the flows record (a poll's time until its check held), in µs.
    trends: BTreeMap<String, Trend>,
    /// Iterations a step ended as failed, per step.
    iteration_failed: BTreeMap<String, u64>,
    /// The samples of each tag set a threshold asks for.
    tagged: Vec<(TagFilter, Totals)>,
    /// Each iteration's time, from its (scheduled) start to its last step's end.
    iteration_duration: Trend,
    /// Declared trends' samples (any number, not only times: kept whole, as k6's TrendSink).
    values: BTreeMap<String, Vec<f64>>,
    /// Declared rates fed by a value: their passes (the total is the request's samples).
    passes: BTreeMap<String, u64>,
    /// A worker's: closed seconds kept whole until the next `cut` takes them.
    keep_raw: bool,
    raw: Vec<Current>,
    /// A coordinator's: the workers' seconds, merged, by this recorder's second.
    remote: BTreeMap<u64, Current>,
}

/// One check's results over the run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CheckCount {
    pub passes: u64,
    pub fails: u64,
}

/// Shared by the executors, probes and live checks of one run.
pub struct Recorder {
    start: Instant,
    /// When the executor finished; rates are per second of load, not of the drain after it.
    load_end: Mutex<Option<Duration>>,
    inner: Mutex<Inner>,
    traffic: std::sync::Arc<Traffic>,
}

/// Everything measured, after the run.
#[derive(Debug, Clone, Default)]
pub struct RunMetrics {
    /// Load time: start to the executor's end (or now, while it runs).
    pub elapsed: Duration,
    pub all: Totals,
    pub per_name: BTreeMap<String, Totals>,
    pub dropped: u64,
    pub windows: Vec<Window>,
    pub series: BTreeMap<String, Vec<(f64, f64)>>,
    /// Per check name.
    pub checks: BTreeMap<String, CheckCount>,
    pub data_sent: u64,
    pub data_received: u64,
    /// Iterations: a mix's requests started (`http_reqs` minus redirect hops) plus the flows'
    /// iterations.
    pub iterations: u64,
    /// The flows' trends (µs), by name.
    pub trends: BTreeMap<String, Trend>,
    /// Per flow step: iterations it ended as failed.
    pub iteration_failed: BTreeMap<String, u64>,
    /// Per tag filter's summary entry (`k6_rules::tag_entry`): its samples' totals.
    pub tagged: BTreeMap<String, Totals>,
    /// k6's `iteration_duration`: one sample per iteration counted in `iterations`.
    pub iteration_duration: Trend,
    /// Declared trends: every sample, in arrival order.
    pub values: BTreeMap<String, Vec<f64>>,
    /// Declared rates fed by a value: their passes (the total is the request's samples).
    pub passes: BTreeMap<String, u64>,
}

impl Recorder {
    pub fn new(request_names: &[String]) -> Recorder {
        let per_name = request_names
            .iter()
            .map(|n| (n.clone(), Totals::default()))
            .collect();
        Recorder {
            start: Instant::now(),
            load_end: Mutex::new(None),
            inner: Mutex::new(Inner {
                all: Totals::default(),
                per_name,
                dropped: 0,
                windows: Vec::new(),
                current: Current::new(0, &BTreeMap::new()),
                series: BTreeMap::new(),
                checks: BTreeMap::new(),
                redirect_hops: 0,
                flow_requests: 0,
                flow_iterations: 0,
                trends: BTreeMap::new(),
                iteration_failed: BTreeMap::new(),
                tagged: Vec::new(),
                iteration_duration: Trend::default(),
                values: BTreeMap::new(),
                passes: BTreeMap::new(),
                keep_raw: false,
                raw: Vec::new(),
                remote: BTreeMap::new(),
            }),
            traffic: Default::default(),
        }
    }

    /// Keeps the totals of the samples each of `filters` selects (set before any sample).
    pub fn with_filters(self, filters: Vec<TagFilter>) -> Recorder {
        self.inner.lock().expect("recorder lock").tagged = filters
            .into_iter()
            .map(|f| (f, Totals::default()))
            .collect();
        self
    }

    /// The byte counters the HTTP client's connections add to.
    pub fn traffic(&self) -> std::sync::Arc<Traffic> {
        self.traffic.clone()
    }

    /// Records one response's check results, `(check name, passed)`.
    pub fn record_checks(&self, results: &[(&str, bool)]) {
        let mut inner = self.inner.lock().expect("recorder lock");
        for (name, passed) in results {
            // get_mut first: this runs per response, and entry() would allocate the key.
            if !inner.checks.contains_key(*name) {
                inner
                    .checks
                    .insert((*name).to_owned(), CheckCount::default());
            }
            let c = inner.checks.get_mut(*name).expect("inserted above");
            if *passed {
                c.passes += 1;
            } else {
                c.fails += 1;
            }
        }
    }

    /// Marks the end of the load (first call wins).
    pub fn end_load(&self) {
        self.load_end
            .lock()
            .expect("recorder lock")
            .get_or_insert(self.start.elapsed());
    }

    fn load_elapsed(&self) -> Duration {
        self.load_end
            .lock()
            .expect("recorder lock")
            .unwrap_or_else(|| self.start.elapsed())
    }

    /// When this recorder's clock started: second 0 of its windows (and of `timeseries.csv`).
    pub fn started(&self) -> Instant {
        self.start
    }

    pub fn elapsed_secs(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Rolls the window forward to the current second; must be called with the lock held.
    fn roll(&self, inner: &mut Inner) {
        let now = self.start.elapsed().as_secs();
        while inner.current.second < now {
            let done = inner.current.summarise();
            let next = Current::new(inner.current.second + 1, &done.gauges);
            inner.windows.push(done);
            let closed = std::mem::replace(&mut inner.current, next);
            if inner.keep_raw {
                inner.raw.push(closed);
            }
        }
    }

    pub fn record(&self, name: &str, o: Outcome) {
        let mut inner = self.inner.lock().expect("recorder lock");
        self.record_locked(&mut inner, name, o);
    }

    /// Records a redirect that was followed: a sample of its own (as in k6), but not a new
    /// iteration.
    pub fn record_hop(&self, name: &str, o: Outcome) {
        let mut inner = self.inner.lock().expect("recorder lock");
        self.record_locked(&mut inner, name, o);
        inner.redirect_hops += 1;
    }

    fn record_locked(&self, inner: &mut Inner, name: &str, o: Outcome) {
        self.roll(inner);
        inner.all.add(&o);
        if let Some(t) = inner.per_name.get_mut(name) {
            t.add(&o);
        } else {
            let mut t = Totals::default();
            t.add(&o);
            inner.per_name.insert(name.to_owned(), t);
        }
        for (f, t) in &mut inner.tagged {
            if f.matches(name, &o) {
                t.add(&o);
            }
        }
        let c = &mut inner.current;
        c.requests += 1;
        c.failed += u64::from(!o.ok);
        let us = o.latency.as_micros().max(1) as u64;
        c.all.record(us);
        // get_mut first: this runs per request, and entry() would allocate the key every time.
        if !c.per_name.contains_key(name) {
            c.per_name.insert(name.to_owned(), (0, 0, Trend::default()));
        }
        let e = c.per_name.get_mut(name).expect("inserted above");
        e.0 += 1;
        e.1 += u64::from(!o.ok);
        e.2.record(us);
    }

    /// A flow iteration's end: `requests` it sent (samples already recorded), and how long it
    /// took if it counts as an iteration (setup and teardown do not, nor one cut off).
    pub fn record_flow_iteration(&self, requests: u64, took: Option<Duration>) {
        let mut inner = self.inner.lock().expect("recorder lock");
        inner.flow_requests += requests;
        inner.flow_iterations += u64::from(took.is_some());
        if let Some(d) = took {
            inner.iteration_duration.record_duration(d);
        }
    }

    /// A mix iteration's time (its request and the redirects it followed): k6's
    /// `iteration_duration`.
    pub fn record_iteration_duration(&self, d: Duration) {
        let mut inner = self.inner.lock().expect("recorder lock");
        inner.iteration_duration.record_duration(d);
    }

    /// A sample of trend `name` (a poll's time until its check held).
    pub fn record_trend(&self, name: &str, d: Duration) {
        let mut inner = self.inner.lock().expect("recorder lock");
        let h = inner.trends.entry(name.to_owned()).or_default();
        h.record_duration(d);
    }

    /// A sample of declared trend `name`.
    pub fn record_value(&self, name: &str, v: f64) {
        let mut inner = self.inner.lock().expect("recorder lock");
        inner.values.entry(name.to_owned()).or_default().push(v);
    }

    /// A pass of value-fed rate `name` (its fails are the request's other samples).
    pub fn record_pass(&self, name: &str) {
        let mut inner = self.inner.lock().expect("recorder lock");
        *inner.passes.entry(name.to_owned()).or_default() += 1;
    }

    /// An iteration that step `step` ended as failed.
    pub fn record_iteration_failed(&self, step: &str) {
        let mut inner = self.inner.lock().expect("recorder lock");
        *inner.iteration_failed.entry(step.to_owned()).or_default() += 1;
    }

    /// Counts `n` arrivals that could not start, at once (an executor far behind its schedule
    /// must not count them one by one).
    pub fn record_dropped_n(&self, n: u64) {
        let mut inner = self.inner.lock().expect("recorder lock");
        self.roll(&mut inner);
        inner.dropped += n;
        inner.current.dropped += n;
    }

    /// Sets a gauge (executor state such as `vus`, or a probe sample) for the current second.
    /// Probe samples are also kept whole-run as a series for threshold aggregations.
    pub fn set_gauge(&self, name: &str, value: f64, keep_series: bool) {
        let t = self.elapsed_secs();
        let mut inner = self.inner.lock().expect("recorder lock");
        self.roll(&mut inner);
        inner.current.gauges.insert(name.to_owned(), value);
        if keep_series {
            inner
                .series
                .entry(name.to_owned())
                .or_default()
                .push((t, value));
        }
    }

    /// A declared gauge's sample: its series keeps the last value of each second, so memory
    /// and the per-second copies stay flat however many responses feed it (a gauge is judged
    /// by its last value).
    pub fn set_declared_gauge(&self, name: &str, value: f64) {
        let t = self.elapsed_secs();
        let mut inner = self.inner.lock().expect("recorder lock");
        self.roll(&mut inner);
        inner.current.gauges.insert(name.to_owned(), value);
        let points = inner.series.entry(name.to_owned()).or_default();
        match points.last_mut() {
            Some(last) if last.0.floor() == t.floor() => *last = (t, value),
            _ => points.push((t, value)),
        }
    }

    /// A view of the whole-run numbers so far (for live checks and the progress line).
    pub fn snapshot(&self) -> RunMetrics {
        let mut inner = self.inner.lock().expect("recorder lock");
        self.roll(&mut inner);
        self.collect(&inner)
    }

    fn collect(&self, inner: &Inner) -> RunMetrics {
        RunMetrics {
            elapsed: self.load_elapsed(),
            all: inner.all.clone(),
            per_name: inner.per_name.clone(),
            dropped: inner.dropped,
            windows: match inner.remote.is_empty() {
                true => inner.windows.clone(),
                false => with_remote(&inner.windows, &inner.remote),
            },
            series: inner.series.clone(),
            checks: inner.checks.clone(),
            iterations: (inner.all.count - inner.redirect_hops).saturating_sub(inner.flow_requests)
                + inner.flow_iterations,
            trends: inner.trends.clone(),
            iteration_failed: inner.iteration_failed.clone(),
            tagged: inner
                .tagged
                .iter()
                .map(|(f, t)| (f.entry.clone(), t.clone()))
                .collect(),
            iteration_duration: inner.iteration_duration.clone(),
            values: inner.values.clone(),
            passes: inner.passes.clone(),
            data_sent: self.traffic.sent.load(std::sync::atomic::Ordering::Relaxed),
            data_received: self
                .traffic
                .received
                .load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Closes the current (partial) window and returns everything.
    pub fn finish(&self) -> RunMetrics {
        let mut inner = self.inner.lock().expect("recorder lock");
        self.roll(&mut inner);
        let last = inner.current.summarise();
        if last.requests > 0 || last.dropped > 0 || !last.gauges.is_empty() {
            inner.windows.push(last);
        }
        let next = Current::new(inner.current.second + 1, &BTreeMap::new());
        inner.current = next;
        self.collect(&inner)
    }
}

/// A coordinator's seconds: the workers' requests and executor gauges, summed, with its own
/// gauges (the probes') beside them.
fn with_remote(own: &[Window], remote: &BTreeMap<u64, Current>) -> Vec<Window> {
    let mut by_second: BTreeMap<u64, Window> = own.iter().map(|w| (w.second, w.clone())).collect();
    for (sec, c) in remote {
        let mut theirs = c.summarise();
        let w = by_second.entry(*sec).or_insert_with(|| Window {
            second: *sec,
            ..Window::default()
        });
        let mut gauges = std::mem::take(&mut w.gauges);
        gauges.append(&mut theirs.gauges);
        *w = Window { gauges, ..theirs };
    }
    by_second.into_values().collect()
}

impl RunMetrics {
    /// A declared rate's (passes, samples) over the samples of `request`: passes are the
    /// value's (`by_value`) or the responses with a status in `statuses`.
    pub fn declared_rate(
        &self,
        name: &str,
        request: &str,
        by_value: bool,
        statuses: &[u16],
    ) -> (u64, u64) {
        let t = self.per_name.get(request);
        let total = t.map_or(0, |t| t.count);
        let passes = match by_value {
            true => self.passes.get(name).copied().unwrap_or(0),
            false => t.map_or(0, |t| t.responses_with(statuses)),
        };
        (passes, total)
    }

    /// A declared counter: the responses of `request` with a status in `statuses` (all when
    /// empty).
    pub fn declared_count(&self, request: &str, statuses: &[u16]) -> u64 {
        self.per_name
            .get(request)
            .map_or(0, |t| t.responses_with(statuses))
    }

    /// A declared trend's samples as exact buckets, ascending: each distinct value with its
    /// count (empty without samples).
    pub fn value_buckets(&self, name: &str) -> Vec<(f64, u64)> {
        let mut sorted = self.values.get(name).cloned().unwrap_or_default();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let mut buckets: Vec<(f64, u64)> = Vec::new();
        for v in sorted {
            match buckets.last_mut() {
                Some((last, n)) if *last == v => *n += 1,
                _ => buckets.push((v, 1)),
            }
        }
        buckets
    }

    /// The named requests' totals together (a scenario's requests): counts, failures,
    /// latencies and statuses.
    pub fn totals_of<'n>(&self, names: impl IntoIterator<Item = &'n str>) -> Totals {
        let mut all = Totals::default();
        for t in names.into_iter().filter_map(|n| self.per_name.get(n)) {
            all.count += t.count;
            all.failed += t.failed;
            all.latency.add(&t.latency);
            for (st, n) in &t.statuses {
                *all.statuses.entry(*st).or_default() += n;
            }
        }
        all
    }

    pub fn requests_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.all.count as f64 / secs
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(ms: u64) -> Outcome {
        Outcome {
            status: Some(200),
            error: None,
            latency: Duration::from_millis(ms),
            ok: true,
            phases: None,
            proto: None,
        }
    }

    #[test]
    fn a_status_listed_twice_counts_once() {
        let r = Recorder::new(&["a".into()]);
        r.record("a", ok(1));
        let mut bad = ok(1);
        bad.status = Some(503);
        r.record("a", bad);
        let t = &r.finish().per_name["a"];
        assert_eq!(t.responses_with(&[200, 200]), 1);
        assert_eq!(t.responses_with(&[]), 2);
    }

    #[test]
    fn iteration_duration_has_one_sample_per_counted_iteration() {
        let r = Recorder::new(&["a".into()]);
        r.record("a", ok(3));
        r.record_iteration_duration(Duration::from_millis(3));
        r.record("a", ok(4));
        r.record("a", ok(5));
        r.record_flow_iteration(2, Some(Duration::from_millis(40)));
        r.record("a", ok(6));
        r.record_flow_iteration(1, None); // setup: not an iteration
        let m = r.finish();
        assert_eq!(m.iterations, 2);
        assert_eq!(m.iteration_duration.len(), m.iterations);
        assert_eq!(m.iteration_duration.max_ms(), Some(40.0));
    }

    #[test]
    fn totals_per_name_and_overall() {
        let r = Recorder::new(&["a".into(), "b".into()]);
        for ms in 1..=100 {
            r.record("a", ok(ms));
        }
        r.record(
            "b",
            Outcome {
                status: None,
                error: Some(ErrorKind::Timeout),
                latency: Duration::from_secs(5),
                ok: false,
                phases: None,
                proto: None,
            },
        );
        r.record_dropped_n(1);
        let m = r.finish();
        assert_eq!(m.all.count, 101);
        assert_eq!(m.all.failed, 1);
        assert_eq!(m.per_name["a"].count, 100);
        assert_eq!(m.per_name["b"].error_count(ErrorKind::Timeout), 1);
        assert_eq!(m.dropped, 1);
        let p95 = m.per_name["a"].quantile_ms(0.95).unwrap();
        assert!((94.9..=95.1).contains(&p95), "p95 {p95}");
        assert_eq!(m.windows.iter().map(|w| w.requests).sum::<u64>(), 101);
        assert_eq!(m.windows.iter().map(|w| w.dropped).sum::<u64>(), 1);
    }

    #[test]
    fn windows_roll_each_second_and_carry_gauges() {
        let r = Recorder::new(&["a".into()]);
        r.set_gauge("vus", 5.0, false);
        r.record("a", ok(1));
        std::thread::sleep(Duration::from_millis(2100));
        r.record("a", ok(1));
        let m = r.finish();
        assert_eq!(m.windows.len(), 3, "{:?}", m.windows);
        assert_eq!(
            m.windows.iter().map(|w| w.requests).collect::<Vec<_>>(),
            vec![1, 0, 1]
        );
        assert!(
            m.windows.iter().all(|w| w.gauges.get("vus") == Some(&5.0)),
            "gauges carry into empty seconds"
        );
        assert_eq!(m.windows[1].p95_ms, None);
    }
}
