//! Mergeable windows: what one worker of a distributed run measured in a stretch of time, as
//! flat maps of trends and counters, so the coordinator (live) and `harness merge` (offline)
//! rebuild exactly the recorder one process fed the same samples would hold — histograms
//! bucket for bucket, counts exact, extremes and sums exact.
//!
//! A window's whole-run parts are differences of the recorder's cumulative state between two
//! cuts (`Trend::since`); its per-second parts are the seconds that closed since the last cut,
//! whole. Keys join their parts with `SEP`, which no name in a scenario contains.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Current, Encoded, Inner, Recorder, Totals, Trend};

/// Separates the parts of a key (`t␟n:checkout␟0`).
pub const SEP: char = '\u{1f}';

/// One worker's measurements over a stretch of its run.
#[derive(Debug, Clone, Default)]
pub struct Delta {
    /// The window's number in its worker's log.
    pub cut: u64,
    /// The worker's second when the window was cut (its seconds count from the run's t0).
    pub second: u64,
    pub trends: BTreeMap<String, Trend>,
    pub counts: BTreeMap<String, u64>,
    /// Per-second executor gauges (`s␟<second>␟vus`): summed over workers when merged.
    pub gauges: BTreeMap<String, f64>,
    /// Declared trends' samples in the window, in order.
    pub values: BTreeMap<String, Vec<f64>>,
}

/// A window as JSON: everything but the histograms, which go to the interval log (or, on the
/// wire, beside it as base64 of the same V2 + DEFLATE bytes).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Scalars {
    #[serde(default)]
    pub cut: u64,
    pub second: u64,
    /// Per trend: exact (min, max, sum) in µs; max and min are the whole run's so far.
    pub trends: BTreeMap<String, (u64, u64, u128)>,
    pub counts: BTreeMap<String, u64>,
    pub gauges: BTreeMap<String, f64>,
    pub values: BTreeMap<String, Vec<f64>>,
    /// On the wire only: the histograms, base64 of V2 + DEFLATE, per trend key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hists: BTreeMap<String, String>,
}

impl Delta {
    /// The JSON part and the encoded histograms (V2 + DEFLATE) per key.
    pub fn split(&self) -> (Scalars, Vec<(String, Vec<u8>)>) {
        let scalars = Scalars {
            cut: self.cut,
            second: self.second,
            trends: self
                .trends
                .iter()
                .map(|(k, t)| (k.clone(), t.exact()))
                .collect(),
            counts: self.counts.clone(),
            gauges: self.gauges.clone(),
            values: self.values.clone(),
            hists: BTreeMap::new(),
        };
        let hists = self
            .trends
            .iter()
            .map(|(k, t)| (k.clone(), t.encode()))
            .collect();
        (scalars, hists)
    }

    /// A window from its JSON part and its histograms (every trend key needs one).
    pub fn join(s: Scalars, hists: &BTreeMap<String, Vec<u8>>) -> Result<Delta, String> {
        let mut trends = BTreeMap::new();
        for (k, (min, max, sum)) in s.trends {
            let bytes = hists
                .get(&k)
                .ok_or_else(|| format!("second {}: no histogram for {}", s.second, shown(&k)))?;
            let t = Trend::decode(bytes, min, max, sum)
                .map_err(|e| format!("second {}: histogram {}: {e}", s.second, shown(&k)))?;
            trends.insert(k, t);
        }
        Ok(Delta {
            cut: s.cut,
            second: s.second,
            trends,
            counts: s.counts,
            gauges: s.gauges,
            values: s.values,
        })
    }

    /// The counters, gauges and values (no trends).
    fn scalars_only(&self) -> Scalars {
        Scalars {
            cut: self.cut,
            second: self.second,
            counts: self.counts.clone(),
            gauges: self.gauges.clone(),
            values: self.values.clone(),
            ..Scalars::default()
        }
    }

    /// The wire form: one JSON object with the histograms inline.
    pub fn to_wire(&self) -> Scalars {
        use base64::Engine as _;
        let (mut s, hists) = self.split();
        s.hists = hists
            .into_iter()
            .map(|(k, b)| (k, base64::engine::general_purpose::STANDARD.encode(b)))
            .collect();
        s
    }

    pub fn from_wire(mut s: Scalars) -> Result<Delta, String> {
        use base64::Engine as _;
        let mut hists = BTreeMap::new();
        for (k, b) in std::mem::take(&mut s.hists) {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|e| format!("histogram {}: {e}", shown(&k)))?;
            hists.insert(k, bytes);
        }
        Delta::join(s, &hists)
    }
}

/// A trend of a window: whole, or read off its encoding with its exact extremes and sum, as
/// it came off the wire (added without building a histogram).
pub enum Part<'a> {
    Whole(&'a Trend),
    Encoded(&'a Encoded, (u64, u64, u128)),
}

impl Trend {
    fn add_part(&mut self, p: &Part<'_>) {
        match p {
            Part::Whole(t) => self.add(t),
            Part::Encoded(e, exact) => self.add_encoded(e, *exact),
        }
    }
}

/// A key as a person reads it.
pub fn shown(key: &str) -> String {
    key.replace(SEP, "/")
}

fn key(parts: &[&str]) -> String {
    parts.join(&SEP.to_string())
}

/// The recorder's cumulative state as flat maps (the whole-run parts of a [`Delta`]).
#[derive(Debug, Clone, Default)]
pub struct Cumulative {
    trends: BTreeMap<String, Trend>,
    counts: BTreeMap<String, u64>,
    values: BTreeMap<String, usize>,
}

impl Cumulative {
    /// Copies `t` in unless `last` already holds it at this length (trends only grow).
    fn put(&mut self, last: &Cumulative, k: String, t: &Trend) {
        if last.trends.get(&k).map(Trend::len) != Some(t.len()) {
            self.trends.insert(k, t.clone());
        }
    }
}

fn flatten_totals(prefix: &str, t: &Totals, c: &mut Cumulative, last: &Cumulative) {
    c.put(last, key(&["t", prefix, "lat"]), &t.latency);
    for (i, p) in t.phases.iter().enumerate() {
        c.put(last, key(&["t", prefix, &i.to_string()]), p);
    }
    c.counts.insert(key(&["t", prefix, "count"]), t.count);
    c.counts.insert(key(&["t", prefix, "failed"]), t.failed);
    for (st, n) in &t.statuses {
        c.counts
            .insert(key(&["t", prefix, "st", &st.to_string()]), *n);
    }
    for (i, n) in t.errors.iter().enumerate().filter(|(_, n)| **n > 0) {
        c.counts
            .insert(key(&["t", prefix, "err", &i.to_string()]), *n);
    }
    for (i, n) in t.protocols.iter().enumerate().filter(|(_, n)| **n > 0) {
        c.counts
            .insert(key(&["t", prefix, "proto", &i.to_string()]), *n);
    }
}

/// Adds a flat `(key, trend)` into the totals it names.
fn absorb_totals_trend(t: &mut Totals, part: &str, trend: &Part<'_>) {
    match part {
        "lat" => t.latency.add_part(trend),
        i => {
            if let Some(p) = i.parse::<usize>().ok().and_then(|i| t.phases.get_mut(i)) {
                p.add_part(trend);
            }
        }
    }
}

fn absorb_totals_count(t: &mut Totals, rest: &[&str], n: u64) {
    let idx = |s: &str| s.parse::<usize>().ok();
    match rest {
        ["count"] => t.count += n,
        ["failed"] => t.failed += n,
        ["st", code] => {
            if let Ok(code) = code.parse() {
                *t.statuses.entry(code).or_default() += n;
            }
        }
        ["err", i] => {
            if let Some(e) = idx(i).and_then(|i| t.errors.get_mut(i)) {
                *e += n;
            }
        }
        ["proto", i] => {
            if let Some(p) = idx(i).and_then(|i| t.protocols.get_mut(i)) {
                *p += n;
            }
        }
        _ => {}
    }
}

impl Inner {
    /// The cumulative state; a trend unchanged since `last` is not copied again.
    fn cumulative(&self, traffic: (u64, u64), last: &Cumulative) -> Cumulative {
        let mut c = Cumulative::default();
        flatten_totals("all", &self.all, &mut c, last);
        for (n, t) in &self.per_name {
            flatten_totals(&format!("n:{n}"), t, &mut c, last);
        }
        for (f, t) in &self.tagged {
            flatten_totals(&format!("g:{}", f.entry), t, &mut c, last);
        }
        for (n, t) in &self.trends {
            c.put(last, key(&["trend", n]), t);
        }
        c.put(last, key(&["iter"]), &self.iteration_duration);
        for (n, cc) in &self.checks {
            c.counts.insert(key(&["check", n, "pass"]), cc.passes);
            c.counts.insert(key(&["check", n, "fail"]), cc.fails);
        }
        for (n, v) in &self.iteration_failed {
            c.counts.insert(key(&["ifail", n]), *v);
        }
        for (n, v) in &self.passes {
            c.counts.insert(key(&["pass", n]), *v);
        }
        for (k, v) in [
            ("dropped", self.dropped),
            ("hops", self.redirect_hops),
            ("flow_req", self.flow_requests),
            ("flow_iter", self.flow_iterations),
            ("sent", traffic.0),
            ("received", traffic.1),
        ] {
            c.counts.insert(k.to_owned(), v);
        }
        c.values = self
            .values
            .iter()
            .map(|(n, v)| (n.clone(), v.len()))
            .collect();
        c
    }

    /// Adds one whole-run trend of a worker's window.
    fn absorb_trend(&mut self, k: &str, t: &Part<'_>) {
        let parts: Vec<&str> = k.split(SEP).collect();
        match parts[..] {
            ["t", prefix, part] => {
                if let Some(tot) = self.totals_mut(prefix) {
                    absorb_totals_trend(tot, part, t);
                }
            }
            ["trend", name] => self.trends.entry(name.to_owned()).or_default().add_part(t),
            ["iter"] => self.iteration_duration.add_part(t),
            _ => {}
        }
    }

    fn absorb_count(&mut self, k: &str, n: u64) {
        let parts: Vec<&str> = k.split(SEP).collect();
        match parts[..] {
            ["t", prefix, ref rest @ ..] => {
                if let Some(tot) = self.totals_mut(prefix) {
                    absorb_totals_count(tot, rest, n);
                }
            }
            ["check", name, which] => {
                let c = self.checks.entry(name.to_owned()).or_default();
                match which {
                    "pass" => c.passes += n,
                    _ => c.fails += n,
                }
            }
            ["ifail", name] => *self.iteration_failed.entry(name.to_owned()).or_default() += n,
            ["pass", name] => *self.passes.entry(name.to_owned()).or_default() += n,
            ["dropped"] => self.dropped += n,
            ["hops"] => self.redirect_hops += n,
            ["flow_req"] => self.flow_requests += n,
            ["flow_iter"] => self.flow_iterations += n,
            _ => {}
        }
    }

    /// The totals a flat prefix names: `all`, `n:<request>` or `g:<tag entry>`.
    fn totals_mut(&mut self, prefix: &str) -> Option<&mut Totals> {
        if prefix == "all" {
            return Some(&mut self.all);
        }
        if let Some(n) = prefix.strip_prefix("n:") {
            return Some(self.per_name.entry(n.to_owned()).or_default());
        }
        let entry = prefix.strip_prefix("g:")?;
        self.tagged
            .iter_mut()
            .find(|(f, _)| f.entry == entry)
            .map(|(_, t)| t)
    }
}

/// The per-second parts of a closed second.
fn flatten_second(c: &Current, d: &mut Delta) {
    let sec = c.second.to_string();
    d.trends.insert(key(&["s", &sec, "all"]), c.all.clone());
    d.counts.insert(key(&["s", &sec, "requests"]), c.requests);
    d.counts.insert(key(&["s", &sec, "failed"]), c.failed);
    d.counts.insert(key(&["s", &sec, "dropped"]), c.dropped);
    for (n, (count, failed, t)) in &c.per_name {
        d.trends.insert(key(&["s", &sec, "n", n]), t.clone());
        d.counts.insert(key(&["s", &sec, "nc", n]), *count);
        d.counts.insert(key(&["s", &sec, "nf", n]), *failed);
    }
    for (g, v) in &c.gauges {
        d.gauges.insert(key(&["s", &sec, g]), *v);
    }
}

impl Recorder {
    /// Keeps every closed second whole (not only summarised) for [`Recorder::cut`]: a worker's.
    pub fn keep_seconds(self) -> Recorder {
        self.keep_raw();
        self
    }

    /// The same byte counters as another recorder (whose connections already add to them).
    pub fn with_traffic(mut self, t: std::sync::Arc<super::Traffic>) -> Recorder {
        self.traffic = t;
        self
    }

    /// [`Recorder::keep_seconds`] on a shared recorder (before its first sample).
    pub fn keep_raw(&self) {
        self.inner.lock().expect("recorder lock").keep_raw = true;
    }

    /// The wall-clock time of this recorder's second 0.
    pub fn started_at(&self) -> std::time::SystemTime {
        std::time::SystemTime::now() - self.start.elapsed()
    }

    /// The load's length, for a recorder rebuilt from windows (`harness merge`).
    pub fn set_load_elapsed(&self, d: std::time::Duration) {
        *self.load_end.lock().expect("recorder lock") = Some(d);
    }

    /// What was measured since the last cut (`last`, updated): the whole-run parts as
    /// differences, and the seconds that closed since, whole. With `close`, the current
    /// second is closed first (the run's last cut).
    pub fn cut(&self, last: &mut Cumulative, close: bool) -> Delta {
        // Under the lock only what must be consistent: the copy of the state, the new values
        // and the closed seconds. The differences are worked out after, so the executors'
        // recording waits for a copy, not for the window's arithmetic.
        let (now, values, raw, second) = {
            let mut inner = self.inner.lock().expect("recorder lock");
            self.roll(&mut inner);
            if close {
                let next = Current::new(inner.current.second + 1, &BTreeMap::new());
                let done = std::mem::replace(&mut inner.current, next);
                inner.windows.push(done.summarise());
                inner.raw.push(done);
            }
            use std::sync::atomic::Ordering::Relaxed;
            let traffic = (
                self.traffic.sent.load(Relaxed),
                self.traffic.received.load(Relaxed),
            );
            let now = inner.cumulative(traffic, last);
            let mut values = BTreeMap::new();
            for (name, v) in &inner.values {
                let from = last.values.get(name).copied().unwrap_or(0);
                if v.len() > from {
                    values.insert(name.clone(), v[from..].to_vec());
                }
            }
            let raw = std::mem::take(&mut inner.raw);
            (now, values, raw, inner.current.second)
        };
        let mut d = Delta {
            second,
            values,
            ..Delta::default()
        };
        // `now` holds only the trends that changed since `last`.
        for (k, t) in &now.trends {
            let part = match last.trends.get(k) {
                Some(before) => t.since(before),
                None if t.is_empty() => continue,
                None => t.clone(),
            };
            d.trends.insert(k.clone(), part);
        }
        for (k, n) in &now.counts {
            let diff = n - last.counts.get(k).copied().unwrap_or(0);
            if diff > 0 {
                d.counts.insert(k.clone(), diff);
            }
        }
        for c in raw {
            flatten_second(&c, &mut d);
        }
        last.trends.extend(now.trends);
        last.counts = now.counts;
        last.values = now.values;
        d
    }

    /// Adds a worker's window, its seconds placed `offset` seconds after this recorder's
    /// second 0 (where the workers' t0 fell on this clock).
    pub fn absorb(&self, d: &Delta, offset: u64) {
        let parts = d.trends.iter().map(|(k, t)| (k.as_str(), Part::Whole(t)));
        self.absorb_parts(parts, &d.scalars_only(), offset);
    }

    /// [`Recorder::absorb`] straight from the wire form: each histogram is read off its
    /// encoding once, then added into the trend it belongs to. A window with a missing or
    /// broken histogram is refused whole, before anything is added.
    pub fn absorb_wire(&self, s: &Scalars, offset: u64) -> Result<(), String> {
        use base64::Engine as _;
        let mut read = Vec::with_capacity(s.trends.len());
        for (k, exact) in &s.trends {
            let broken = |e: String| format!("histogram {}: {e}", shown(k));
            let b64 = s
                .hists
                .get(k)
                .ok_or_else(|| format!("no histogram for {}", shown(k)))?;
            let b = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| broken(e.to_string()))?;
            read.push((k.as_str(), Encoded::parse(&b).map_err(broken)?, *exact));
        }
        let parts = read.iter().map(|(k, e, x)| (*k, Part::Encoded(e, *x)));
        self.absorb_parts(parts, s, offset);
        Ok(())
    }

    fn absorb_parts<'p>(
        &self,
        trends: impl Iterator<Item = (&'p str, Part<'p>)>,
        s: &Scalars,
        offset: u64,
    ) {
        let mut inner = self.inner.lock().expect("recorder lock");
        self.roll(&mut inner);
        for (k, t) in trends {
            match k.split(SEP).collect::<Vec<_>>()[..] {
                ["s", sec, ref rest @ ..] => {
                    if let Ok(sec) = sec.parse::<u64>() {
                        absorb_second_trend(&mut inner, sec + offset, rest, &t);
                    }
                }
                _ => inner.absorb_trend(k, &t),
            }
        }
        let traffic = absorb_scalars(&mut inner, s, offset);
        drop(inner);
        use std::sync::atomic::Ordering::Relaxed;
        self.traffic.sent.fetch_add(traffic.0, Relaxed);
        self.traffic.received.fetch_add(traffic.1, Relaxed);
    }
}

/// A window's counters, gauges and values; returns the bytes (sent, received) it adds.
fn absorb_scalars(inner: &mut Inner, s: &Scalars, offset: u64) -> (u64, u64) {
    let mut traffic = (0, 0);
    for (k, n) in &s.counts {
        match k.split(SEP).collect::<Vec<_>>()[..] {
            ["s", sec, ref rest @ ..] => {
                if let Ok(sec) = sec.parse::<u64>() {
                    absorb_second_count(inner, sec + offset, rest, *n);
                }
            }
            ["sent"] => traffic.0 += *n,
            ["received"] => traffic.1 += *n,
            _ => inner.absorb_count(k, *n),
        }
    }
    for (k, v) in &s.gauges {
        if let ["s", sec, g] = k.split(SEP).collect::<Vec<_>>()[..] {
            if let Ok(sec) = sec.parse::<u64>() {
                let c = remote_second(inner, sec + offset);
                *c.gauges.entry(g.to_owned()).or_default() += v;
            }
        }
    }
    for (name, v) in &s.values {
        inner.values.entry(name.clone()).or_default().extend(v);
    }
    traffic
}

fn remote_second(inner: &mut Inner, sec: u64) -> &mut Current {
    inner
        .remote
        .entry(sec)
        .or_insert_with(|| Current::new(sec, &BTreeMap::new()))
}

fn absorb_second_trend(inner: &mut Inner, sec: u64, rest: &[&str], t: &Part<'_>) {
    let c = remote_second(inner, sec);
    match rest {
        ["all"] => c.all.add_part(t),
        ["n", name] => {
            let e = c.per_name.entry((*name).to_owned()).or_default();
            e.2.add_part(t);
        }
        _ => {}
    }
}

fn absorb_second_count(inner: &mut Inner, sec: u64, rest: &[&str], n: u64) {
    let c = remote_second(inner, sec);
    match rest {
        ["requests"] => c.requests += n,
        ["failed"] => c.failed += n,
        ["dropped"] => c.dropped += n,
        ["nc", name] => c.per_name.entry((*name).to_owned()).or_default().0 += n,
        ["nf", name] => c.per_name.entry((*name).to_owned()).or_default().1 += n,
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Outcome, Phases};
    use std::time::Duration;

    fn sample(ms: u64, ok: bool) -> Outcome {
        Outcome {
            status: Some(if ok { 200 } else { 503 }),
            error: None,
            latency: Duration::from_micros(ms * 1000 + 7),
            ok,
            phases: Some(Phases {
                waiting: Duration::from_micros(ms * 900),
                ..Phases::default()
            }),
            proto: Some(crate::metrics::Proto::Http1),
        }
    }

    #[test]
    fn windows_added_up_are_the_whole_recorder() {
        let one = Recorder::new(&["a".to_owned()]);
        let worker = Recorder::new(&["a".to_owned()]).keep_seconds();
        let merged = Recorder::new(&["a".to_owned()]);
        let mut last = Cumulative::default();
        for i in 0..500u64 {
            for r in [&one, &worker] {
                r.record("a", sample(1 + i % 97, i % 13 != 0));
                r.record_checks(&[("ok", i % 13 != 0)]);
                r.record_value("size", i as f64);
            }
            if i % 100 == 99 {
                // Through the wire form, as the coordinator gets it.
                let d = worker.cut(&mut last, i == 499);
                // Through the wire form, both ways the coordinator and merge read it.
                match i % 200 == 99 {
                    true => merged.absorb(&Delta::from_wire(d.to_wire()).unwrap(), 0),
                    false => merged.absorb_wire(&d.to_wire(), 0).unwrap(),
                }
            }
        }
        let (a, b) = (one.finish(), merged.finish());
        assert!(a.all.latency.same_buckets(&b.all.latency));
        assert_eq!(a.all.latency.exact(), b.all.latency.exact());
        assert_eq!((a.all.count, a.all.failed), (b.all.count, b.all.failed));
        assert_eq!(a.all.statuses, b.all.statuses);
        assert!(a.all.phases[4].same_buckets(&b.all.phases[4]));
        assert_eq!(a.per_name["a"].count, b.per_name["a"].count);
        assert_eq!(a.checks, b.checks);
        assert_eq!(a.values, b.values);
        assert_eq!(a.iterations, b.iterations);
        assert_eq!(a.windows.len(), b.windows.len());
        assert_eq!(a.windows[0].p95_ms, b.windows[0].p95_ms);
        assert_eq!(a.windows[0].requests, b.windows[0].requests);
    }
}
