//! A worker's measurements on disk, one window per second: `windows.hlog`, an HdrHistogram
//! interval log (V2 + DEFLATE, base64, one line per trend and window, tagged with the trend's
//! key), and `windows.jsonl`, the same windows' counters and exact extremes and sums, one JSON
//! object per line. `harness merge` reads both back (the histograms with hdrhistogram's own
//! interval-log parser); each cut also gives the window's wire form, for a worker's
//! coordinator.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::SystemTime;

use base64::Engine as _;

use crate::metrics::window::{Cumulative, Delta, Scalars};
use crate::metrics::Recorder;

pub const HLOG: &str = "windows.hlog";
pub const JSONL: &str = "windows.jsonl";
/// The worker's part: segment, target, time scale and load time (`merge::SegmentMeta`).
pub const META: &str = "segment.json";

/// Writes `segment.json` beside the logs (best effort: the logs are what matter), with the
/// error that stopped the logs early, if one did, so `harness merge` refuses them.
pub(super) fn write_meta(
    base: &super::Base<'_>,
    elapsed: std::time::Duration,
    log_error: Option<&str>,
) {
    let (dir, seg, target) = (&base.dir, &base.opts.segment, &base.target);
    let points: Vec<String> = seg.sequence.iter().map(|p| p.to_string()).collect();
    let meta = super::merge::SegmentMeta {
        segment: seg.label(),
        sequence: points.join(","),
        target: target.to_owned(),
        scenario: std::fs::canonicalize(&base.opts.scenario).ok(),
        time_scale: base.opts.time_scale,
        elapsed_s: elapsed.as_secs_f64(),
        log_error: log_error.map(str::to_owned),
    };
    if let Ok(text) = serde_json::to_string_pretty(&meta) {
        let _ = std::fs::write(dir.join(META), text);
    }
}

pub(super) struct WindowLog {
    last: Cumulative,
    /// Cuts so far: each window's id in both files.
    cuts: u64,
    hlog: BufWriter<File>,
    jsonl: BufWriter<File>,
    /// The first write error: the log stops and the run goes on; `segment.json` records it.
    failed: Option<String>,
}

impl WindowLog {
    /// A run of one segment of a larger run keeps its windows, for `harness merge`.
    pub(super) fn for_run(base: &super::Base<'_>) -> Option<WindowLog> {
        if base.opts.segment.is_whole() {
            return None;
        }
        base.recorder.keep_raw();
        WindowLog::create(&base.dir, base.recorder.started_at()).ok()
    }

    pub(super) fn create(dir: &Path, t0: SystemTime) -> std::io::Result<WindowLog> {
        let mut hlog = BufWriter::new(File::create(dir.join(HLOG))?);
        let secs = t0
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        writeln!(
            hlog,
            "#[Histograms of latencies in µs, one per trend per 1 s window]"
        )?;
        writeln!(hlog, "#[StartTime: {secs:.3} (seconds since epoch)]")?;
        writeln!(hlog, "#[BaseTime: {secs:.3} (seconds since epoch)]")?;
        writeln!(
            hlog,
            "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
        )?;
        let jsonl = BufWriter::new(File::create(dir.join(JSONL))?);
        Ok(WindowLog {
            last: Cumulative::default(),
            cuts: 0,
            hlog,
            jsonl,
            failed: None,
        })
    }

    /// Why the log stopped early, if it did.
    pub(super) fn error(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    /// Cuts the window since the last cut and writes it (`close`: the run's last); returns
    /// its wire form. Each histogram is encoded once, for the log and the wire alike.
    pub(super) fn cut(&mut self, recorder: &Recorder, close: bool) -> Scalars {
        let mut d = recorder.cut(&mut self.last, close);
        d.cut = self.cuts;
        self.cuts += 1;
        let (mut scalars, hists) = d.split();
        let b64: BTreeMap<String, String> = hists
            .into_iter()
            .map(|(k, b)| (k, base64::engine::general_purpose::STANDARD.encode(b)))
            .collect();
        if self.failed.is_none() {
            if let Err(e) = self.write(&d, &scalars, &b64) {
                self.failed = Some(e.to_string());
            }
        }
        scalars.hists = b64;
        scalars
    }

    fn write(
        &mut self,
        d: &Delta,
        scalars: &Scalars,
        b64: &BTreeMap<String, String>,
    ) -> std::io::Result<()> {
        // A window covers the second before its cut.
        let start = d.second.saturating_sub(1) as f64;
        for (key, b64) in b64 {
            let max_ms = d.trends[key].max_ms().unwrap_or(0.0);
            let tag = tag_of(key, d.cut);
            writeln!(self.hlog, "Tag={tag},{start:.3},1.000,{max_ms:.3},{b64}")?;
        }
        serde_json::to_writer(&mut self.jsonl, scalars)?;
        self.jsonl.write_all(b"\n")?;
        self.hlog.flush()?;
        self.jsonl.flush()
    }
}

/// An interval-log tag (no comma, space or line break): the window's number, then the trend
/// key percent-encoded.
fn tag_of(key: &str, cut: u64) -> String {
    let mut out = format!("{cut}:");
    for c in key.chars() {
        match c {
            ',' | ' ' | '\r' | '\n' | '%' | '\u{1f}' => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// (window number, trend key) from a tag.
fn untag(tag: &str) -> Option<(u64, String)> {
    let (sec, rest) = tag.split_once(':')?;
    let mut out = Vec::new();
    let b = rest.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some((sec.parse().ok()?, String::from_utf8(out).ok()?))
}

/// Every window a worker directory holds, in order.
pub(super) fn read_dir(dir: &Path) -> Result<Vec<Delta>, String> {
    let at = |f: &str| dir.join(f).display().to_string();
    let hlog = std::fs::read(dir.join(HLOG)).map_err(|e| format!("{}: {e}", at(HLOG)))?;
    let mut hists: BTreeMap<u64, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    for entry in IntervalLogIterator::new(&hlog) {
        let entry = entry.map_err(|e| format!("{}: {e:?}", at(HLOG)))?;
        let LogEntry::Interval(h) = entry else {
            continue;
        };
        let tag = h.tag().map(|t| t.as_str().to_owned()).unwrap_or_default();
        let (sec, key) = untag(&tag).ok_or_else(|| format!("{}: tag {tag:?}", at(HLOG)))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(h.encoded_histogram())
            .map_err(|e| format!("{}: {tag}: {e}", at(HLOG)))?;
        hists.entry(sec).or_default().insert(key, bytes);
    }
    let text =
        std::fs::read_to_string(dir.join(JSONL)).map_err(|e| format!("{}: {e}", at(JSONL)))?;
    let empty = BTreeMap::new();
    let mut out = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let s: Scalars =
            serde_json::from_str(line).map_err(|e| format!("{}:{}: {e}", at(JSONL), n + 1))?;
        let h = hists.get(&s.cut).unwrap_or(&empty);
        out.push(Delta::join(s, h).map_err(|e| format!("{}: {e}", at(HLOG)))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_any_key() {
        let key = "t\u{1f}n:GET /a, b%\u{1f}lat";
        let tag = tag_of(key, 12);
        assert!(!tag.contains([',', ' ']));
        assert_eq!(untag(&tag), Some((12, key.to_owned())));
    }
}
