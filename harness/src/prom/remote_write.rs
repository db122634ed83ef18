//! Prometheus remote write 1.0: series encoded as a `prometheus.WriteRequest` protobuf (written
//! by hand: four messages, no codegen) in a snappy *block*, POSTed by a background task.
//!
//! The run's loop must never wait on a slow Prometheus, so `push` only offers the batch to a
//! bounded queue: a full queue drops it, and every batch ends counted as sent, failed or
//! dropped. A 5xx or a transport error is retried once when time allows (the protocol's
//! advice: those may be transient), a 4xx never (the same body would be refused again).

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;

/// One series: its labels (`__name__` among them) and its samples (unix milliseconds, value).
#[derive(Debug, Clone, PartialEq)]
pub struct TimeSeries {
    pub labels: Vec<(String, String)>,
    pub samples: Vec<(i64, f64)>,
}

/// Protobuf tags (field number << 3 | wire type) of the four messages.
const TAG_SERIES: u8 = 0x0a; // WriteRequest.timeseries = 1, length-delimited
const TAG_LABEL: u8 = 0x0a; // TimeSeries.labels = 1, length-delimited
const TAG_SAMPLE: u8 = 0x12; // TimeSeries.samples = 2, length-delimited
const TAG_NAME: u8 = 0x0a; // Label.name = 1, length-delimited
const TAG_VALUE: u8 = 0x12; // Label.value = 2, length-delimited
const TAG_DOUBLE: u8 = 0x09; // Sample.value = 1, fixed64
const TAG_TIMESTAMP: u8 = 0x10; // Sample.timestamp = 2, varint
/// Wait before the one retry of a batch.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// How much of a refusal's body the last error quotes.
const QUOTE: usize = 200;

/// The request body: the `WriteRequest` protobuf, snappy block-compressed.
pub fn encode(series: &[TimeSeries]) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(&protobuf(series))
        // Only an input over snappy's ~4 GiB block limit fails; a batch is far below it.
        .expect("remote-write batch within snappy's block limit")
}

fn protobuf(series: &[TimeSeries]) -> Vec<u8> {
    let mut buf = Vec::new();
    for s in series {
        // The protocol wants labels sorted by name; an empty value means "no such label".
        let mut labels: Vec<&(String, String)> =
            s.labels.iter().filter(|(_, v)| !v.is_empty()).collect();
        labels.sort_by(|a, b| a.0.cmp(&b.0));
        // Samples in time order: Prometheus refuses one older than the series' last.
        let samples: Cow<[(i64, f64)]> = if s.samples.is_sorted_by_key(|(t, _)| *t) {
            Cow::Borrowed(&s.samples)
        } else {
            let mut v = s.samples.clone();
            v.sort_by_key(|(t, _)| *t);
            Cow::Owned(v)
        };
        let label_len = |(n, v): &&(String, String)| field(n.len()) + field(v.len());
        let sample_len = |(t, _): &(i64, f64)| 1 + 8 + 1 + varint_len(*t as u64);
        let len: usize = labels.iter().map(|l| field(label_len(l))).sum::<usize>()
            + samples.iter().map(|s| field(sample_len(s))).sum::<usize>();
        buf.push(TAG_SERIES);
        varint(&mut buf, len as u64);
        for l in &labels {
            buf.push(TAG_LABEL);
            varint(&mut buf, label_len(l) as u64);
            bytes_field(&mut buf, TAG_NAME, l.0.as_bytes());
            bytes_field(&mut buf, TAG_VALUE, l.1.as_bytes());
        }
        for s in samples.iter() {
            buf.push(TAG_SAMPLE);
            varint(&mut buf, sample_len(s) as u64);
            buf.push(TAG_DOUBLE);
            buf.extend_from_slice(&s.1.to_le_bytes());
            buf.push(TAG_TIMESTAMP);
            // int64 is a plain varint of the two's complement (not zigzag).
            varint(&mut buf, s.0 as u64);
        }
    }
    buf
}

/// Bytes a length-delimited field of `len` bytes takes (tag, length, contents).
fn field(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn bytes_field(buf: &mut Vec<u8>, tag: u8, b: &[u8]) {
    buf.push(tag);
    varint(buf, b.len() as u64);
    buf.extend_from_slice(b);
}

/// What became of the batches pushed so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteStats {
    /// Batches Prometheus accepted (2xx).
    pub sent: u64,
    /// Batches never sent: the queue was full, or `close`'s grace ran out.
    pub dropped: u64,
    /// Batches refused or not delivered (after the one retry where allowed).
    pub failed: u64,
    /// Samples in the sent batches.
    pub samples_sent: u64,
    /// The last failure, in words.
    pub last_error: Option<String>,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    samples_sent: AtomicU64,
    /// Batches accepted by `push` and not yet counted as sent or failed.
    pending: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// Set by `close`: when the grace ends (a retry that cannot finish by then is skipped).
    closing_by: Mutex<Option<Instant>>,
}

impl Counters {
    fn stats(&self) -> WriteStats {
        WriteStats {
            sent: self.sent.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            failed: self.failed.load(Relaxed),
            samples_sent: self.samples_sent.load(Relaxed),
            last_error: self.last_error.lock().expect("stats lock").clone(),
        }
    }
}

/// A remote-write sender: a bounded queue of batches and the task that POSTs them in order.
pub struct RemoteWriter {
    tx: mpsc::Sender<Vec<TimeSeries>>,
    counters: Arc<Counters>,
    task: tokio::task::JoinHandle<()>,
}

impl RemoteWriter {
    /// Starts the sender task (inside a tokio runtime) for `url`, e.g.
    /// `http://127.0.0.1:9090/api/v1/write`, with room for `queue_batches` waiting batches and
    /// `timeout` per request.
    pub fn start(url: String, queue_batches: usize, timeout: Duration) -> RemoteWriter {
        let (tx, rx) = mpsc::channel(queue_batches.max(1));
        let counters = Arc::new(Counters::default());
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("harness/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("http client");
        let sender = Sender {
            url,
            http,
            timeout,
            counters: counters.clone(),
        };
        let task = tokio::spawn(sender.run(rx));
        RemoteWriter { tx, counters, task }
    }

    /// Queues `batch` without waiting: a full queue drops it (counted). Empty batches are
    /// ignored.
    pub fn push(&self, batch: Vec<TimeSeries>) {
        if batch.is_empty() {
            return;
        }
        // Counted before the send so the task can never finish it first.
        self.counters.pending.fetch_add(1, Relaxed);
        if self.tx.try_send(batch).is_err() {
            self.counters.pending.fetch_sub(1, Relaxed);
            self.counters.dropped.fetch_add(1, Relaxed);
        }
    }

    pub fn stats(&self) -> WriteStats {
        self.counters.stats()
    }

    /// Stops accepting, sends what is queued within `grace` and counts the rest (the batch in
    /// flight included) as dropped.
    pub async fn close(self, grace: Duration) -> WriteStats {
        *self.counters.closing_by.lock().expect("close lock") = Some(Instant::now() + grace);
        drop(self.tx);
        let mut task = self.task;
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            task.abort();
            let _ = task.await;
        }
        let left = self.counters.pending.swap(0, Relaxed);
        self.counters.dropped.fetch_add(left, Relaxed);
        self.counters.stats()
    }
}

/// Why one POST failed, and whether the protocol allows another try.
struct Failure {
    text: String,
    retry: bool,
}

struct Sender {
    url: String,
    http: reqwest::Client,
    timeout: Duration,
    counters: Arc<Counters>,
}

impl Sender {
    async fn run(self, mut rx: mpsc::Receiver<Vec<TimeSeries>>) {
        while let Some(batch) = rx.recv().await {
            self.deliver(&batch).await;
            self.counters.pending.fetch_sub(1, Relaxed);
        }
    }

    async fn deliver(&self, batch: &[TimeSeries]) {
        let body = Bytes::from(encode(batch));
        let mut result = self.post(body.clone()).await;
        if matches!(&result, Err(f) if f.retry) && self.time_allows() {
            tokio::time::sleep(RETRY_PAUSE).await;
            result = self.post(body).await;
        }
        match result {
            Ok(()) => {
                let samples: usize = batch.iter().map(|s| s.samples.len()).sum();
                self.counters.sent.fetch_add(1, Relaxed);
                self.counters
                    .samples_sent
                    .fetch_add(samples as u64, Relaxed);
            }
            Err(f) => {
                self.counters.failed.fetch_add(1, Relaxed);
                *self.counters.last_error.lock().expect("stats lock") = Some(f.text);
            }
        }
    }

    /// A retry fits unless `close` set a grace it would overrun.
    fn time_allows(&self) -> bool {
        match *self.counters.closing_by.lock().expect("close lock") {
            Some(by) => Instant::now() + RETRY_PAUSE + self.timeout <= by,
            None => true,
        }
    }

    async fn post(&self, body: Bytes) -> Result<(), Failure> {
        let sent = self
            .http
            .post(&self.url)
            .header("Content-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(body)
            .send()
            .await;
        let resp = sent.map_err(|e| Failure {
            text: format!(
                "{}: {}",
                self.url,
                super::api::transport_reason(&e, self.timeout)
            ),
            retry: true,
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let text = resp.text().await.unwrap_or_default();
        let quoted: String = text.trim().chars().take(QUOTE).collect();
        Err(Failure {
            text: format!("{} answered HTTP {}: {quoted}", self.url, status.as_u16()),
            retry: status.is_server_error(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU16;

    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};

    use super::*;

    /// A protobuf reader just big enough for `WriteRequest`.
    struct Reader<'a>(&'a [u8]);

    impl<'a> Reader<'a> {
        fn varint(&mut self) -> u64 {
            let (mut v, mut shift) = (0u64, 0);
            loop {
                let b = self.0[0];
                self.0 = &self.0[1..];
                v |= u64::from(b & 0x7f) << shift;
                if b < 0x80 {
                    return v;
                }
                shift += 7;
            }
        }
        fn bytes(&mut self) -> &'a [u8] {
            let n = self.varint() as usize;
            let (b, rest) = self.0.split_at(n);
            self.0 = rest;
            b
        }
        /// The next field: (number, length-delimited bytes, or the varint / fixed64 value).
        fn next(&mut self) -> Option<(u64, Result<&'a [u8], u64>)> {
            if self.0.is_empty() {
                return None;
            }
            let key = self.varint();
            let value = match key & 7 {
                2 => Ok(self.bytes()),
                0 => Err(self.varint()),
                1 => {
                    let (b, rest) = self.0.split_at(8);
                    self.0 = rest;
                    Err(u64::from_le_bytes(b.try_into().unwrap()))
                }
                w => panic!("wire type {w}"),
            };
            Some((key >> 3, value))
        }
    }

    fn decode(body: &[u8]) -> Vec<TimeSeries> {
        let raw = snap::raw::Decoder::new().decompress_vec(body).unwrap();
        let mut out = Vec::new();
        let mut req = Reader(&raw);
        while let Some((1, Ok(ts))) = req.next() {
            let mut s = TimeSeries {
                labels: vec![],
                samples: vec![],
            };
            let mut r = Reader(ts);
            while let Some((n, Ok(msg))) = r.next() {
                let mut m = Reader(msg);
                let (a, b) = (m.next().unwrap().1, m.next().unwrap().1);
                match n {
                    1 => s.labels.push((
                        String::from_utf8(a.unwrap().to_vec()).unwrap(),
                        String::from_utf8(b.unwrap().to_vec()).unwrap(),
                    )),
                    2 => s
                        .samples
                        .push((b.unwrap_err() as i64, f64::from_bits(a.unwrap_err()))),
                    _ => panic!("field {n}"),
                }
            }
            out.push(s);
        }
        out
    }

    fn series(name: &str, samples: Vec<(i64, f64)>) -> TimeSeries {
        TimeSeries {
            labels: vec![("__name__".into(), name.into())],
            samples,
        }
    }

    #[test]
    fn one_sample_encodes_to_the_expected_bytes() {
        let proto = protobuf(&[series("x", vec![(1000, 1.0)])]);
        let mut want = vec![0x0a, 0x1d, 0x0a, 0x0d, 0x0a, 0x08];
        want.extend_from_slice(b"__name__");
        want.extend_from_slice(&[0x12, 0x01, b'x', 0x12, 0x0c, 0x09]);
        want.extend_from_slice(&1.0f64.to_le_bytes());
        want.extend_from_slice(&[0x10, 0xe8, 0x07]);
        assert_eq!(proto, want);
        // Snappy's block format: the uncompressed length, then one literal of 31 bytes.
        let body = encode(&[series("x", vec![(1000, 1.0)])]);
        assert_eq!(&body[..2], &[31, 30 << 2]);
        assert_eq!(&body[2..], &want[..]);
    }

    #[test]
    fn what_is_encoded_decodes_back_with_labels_and_samples_in_order() {
        let input = vec![
            TimeSeries {
                labels: vec![
                    ("job".into(), "harness".into()),
                    ("__name__".into(), "http_reqs".into()),
                    ("empty".into(), String::new()),
                    ("scenario".into(), "ünïcode".into()),
                ],
                samples: vec![(2_000, 2.5), (1_000, f64::NAN), (-5, f64::INFINITY)],
            },
            series("b", vec![(1_796_227_475_524, -0.0)]),
            series("no_samples", vec![]),
        ];
        let got = decode(&encode(&input));
        assert_eq!(got.len(), 3);
        let names: Vec<&str> = got[0].labels.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["__name__", "job", "scenario"],
            "sorted, empty dropped"
        );
        assert_eq!(got[0].labels[2].1, "ünïcode");
        let times: Vec<i64> = got[0].samples.iter().map(|s| s.0).collect();
        assert_eq!(times, [-5, 1_000, 2_000]);
        assert!(got[0].samples[1].1.is_nan() && got[0].samples[0].1.is_infinite());
        assert_eq!(got[1].samples, [(1_796_227_475_524, -0.0)]);
        assert!(got[2].samples.is_empty());
        for v in [0, 1, 127, 128, 16_383, 16_384, u64::MAX] {
            let mut b = Vec::new();
            varint(&mut b, v);
            assert_eq!(b.len(), varint_len(v), "{v}");
        }
    }

    /// What the test receiver saw, and what it answers.
    #[derive(Default)]
    struct Receiver {
        bodies: Mutex<Vec<Vec<TimeSeries>>>,
        requests: AtomicU64,
        status: AtomicU16,
        delay_ms: AtomicU64,
    }

    async fn receive(
        State(r): State<Arc<Receiver>>,
        headers: HeaderMap,
        body: axum::body::Bytes,
    ) -> StatusCode {
        r.requests.fetch_add(1, Relaxed);
        let delay = r.delay_ms.load(Relaxed);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("");
        assert_eq!(h("content-encoding"), "snappy");
        assert_eq!(h("content-type"), "application/x-protobuf");
        assert_eq!(h("x-prometheus-remote-write-version"), "0.1.0");
        assert!(
            h("user-agent").starts_with("harness/"),
            "{}",
            h("user-agent")
        );
        r.bodies.lock().unwrap().push(decode(&body));
        StatusCode::from_u16(r.status.load(Relaxed)).unwrap()
    }

    async fn receiver(status: u16, delay_ms: u64) -> (String, Arc<Receiver>) {
        let r = Arc::new(Receiver::default());
        r.status.store(status, Relaxed);
        r.delay_ms.store(delay_ms, Relaxed);
        let app = axum::Router::new()
            .route("/api/v1/write", axum::routing::post(receive))
            .with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/api/v1/write", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, r)
    }

    #[tokio::test]
    async fn batches_reach_the_receiver_whole_and_are_counted() {
        let (url, r) = receiver(204, 0).await;
        let w = RemoteWriter::start(url, 8, Duration::from_secs(2));
        let batches: Vec<Vec<TimeSeries>> = (0..3)
            .map(|i| {
                vec![
                    series("a", vec![(i, 1.0), (i + 1, 2.0)]),
                    series("b", vec![(i, 3.0)]),
                ]
            })
            .collect();
        for b in &batches {
            w.push(b.clone());
        }
        w.push(Vec::new());
        let stats = w.close(Duration::from_secs(5)).await;
        assert_eq!(
            stats,
            WriteStats {
                sent: 3,
                samples_sent: 9,
                ..WriteStats::default()
            }
        );
        assert_eq!(*r.bodies.lock().unwrap(), batches);
    }

    #[tokio::test]
    async fn a_client_error_is_never_retried_and_a_server_error_once() {
        for (status, tries) in [(400, 1), (503, 2)] {
            let (url, r) = receiver(status, 0).await;
            let w = RemoteWriter::start(url.clone(), 8, Duration::from_secs(2));
            w.push(vec![series("a", vec![(1, 1.0)])]);
            let stats = w.close(Duration::from_secs(5)).await;
            assert_eq!(
                (stats.sent, stats.failed, stats.dropped),
                (0, 1, 0),
                "{status}"
            );
            assert_eq!(r.requests.load(Relaxed), tries, "{status}");
            let err = stats.last_error.unwrap();
            assert!(
                err.contains(&format!("{url} answered HTTP {status}")),
                "{err}"
            );
        }
    }

    #[tokio::test]
    async fn a_slow_receiver_never_blocks_push_and_every_batch_is_accounted_for() {
        let (url, _r) = receiver(204, 3_000).await;
        let w = RemoteWriter::start(url, 2, Duration::from_millis(200));
        let started = std::time::Instant::now();
        for i in 0..20 {
            w.push(vec![series("a", vec![(i, 1.0)])]);
        }
        let took = started.elapsed();
        // A blocked push would wait out the receiver's 3 s; the bound leaves a busy CI room.
        assert!(
            took < Duration::from_millis(1_000),
            "20 pushes took {took:?}"
        );
        assert!(w.stats().dropped >= 17, "{:?}", w.stats());
        tokio::time::sleep(Duration::from_millis(600)).await;
        let closing = std::time::Instant::now();
        let stats = w.close(Duration::from_millis(300)).await;
        assert!(
            closing.elapsed() < Duration::from_secs(2),
            "{:?}",
            closing.elapsed()
        );
        assert_eq!(stats.sent, 0);
        assert!(stats.failed >= 1, "{stats:?}");
        assert_eq!(stats.sent + stats.failed + stats.dropped, 20, "{stats:?}");
        let err = stats.last_error.unwrap();
        assert!(err.contains("no answer within 200ms"), "{err}");
    }

    #[tokio::test]
    async fn remote_written_samples_are_queryable_in_a_real_prometheus() {
        let prom = super::super::tests::start(&[], "").await;
        let w = RemoteWriter::start(
            format!("{}/api/v1/write", prom.url),
            8,
            Duration::from_secs(5),
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let mut s = series(
            "harness_rw_test",
            vec![(now - 2_000, 1.0), (now - 1_000, 2.0)],
        );
        s.labels.push(("run".into(), "t".into()));
        w.push(vec![s.clone()]);
        // Older than what the series holds: Prometheus refuses it (a 400, not retried).
        s.samples = vec![(now - 10_000, 9.0)];
        w.push(vec![s]);
        let stats = w.close(Duration::from_secs(10)).await;
        assert_eq!(
            (stats.sent, stats.failed, stats.samples_sent),
            (1, 1, 2),
            "{stats:?}"
        );
        let err = stats.last_error.unwrap();
        assert!(err.contains("HTTP 400") && err.contains("out of"), "{err}");

        let c = super::super::api::PromClient::new(&prom.url, Duration::from_secs(5));
        let latest = c.query(r#"harness_rw_test{run="t"}"#).await.unwrap();
        assert_eq!(latest.single(), Ok(Some(2.0)));
        let count = c
            .query("count_over_time(harness_rw_test[1m])")
            .await
            .unwrap();
        assert_eq!(count.single(), Ok(Some(2.0)));
    }
}
