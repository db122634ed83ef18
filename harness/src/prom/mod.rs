//! Prometheus as a peer of the harness: its HTTP API and Alertmanager's (`api`), its rule files
//! (`rules`) and remote write 1.0 (`remote_write`), so a run can push its series to a real
//! Prometheus, have that Prometheus evaluate the system's own alerting rules, and read back
//! which alerts it fired.
//!
//! Nothing here names the bundled app: rule files and queries come from the scenario.

pub mod api;
pub mod remote_write;
pub mod rules;

/// Why a call to Prometheus (or Alertmanager) gave no usable answer. `peer` says which of the
/// two, so a message never blames Prometheus for Alertmanager.
#[derive(Debug, thiserror::Error)]
pub enum PromError {
    #[error("{peer} at {url} does not answer: {reason}")]
    Unreachable {
        peer: &'static str,
        url: String,
        reason: String,
    },
    #[error("{peer} at {url} answered HTTP {status}: {body}")]
    Status {
        peer: &'static str,
        url: String,
        status: u16,
        body: String,
    },
    /// The query's own fault, in Prometheus's words (`bad_data: 1:5: parse error: …`).
    #[error("Prometheus rejected `{query}`: {error}")]
    Rejected { query: String, error: String },
    #[error("{peer} at {url} answered something unexpected: {reason}")]
    BadAnswer {
        peer: &'static str,
        url: String,
        reason: String,
    },
}

/// Unix seconds of an RFC 3339 time as Prometheus and Alertmanager write it
/// (`2026-12-02T16:04:35.848398514Z`, or with a `+hh:mm` offset). Go writes the zero time
/// (`0001-01-01T00:00:00Z`) for "never"; that reads as a (very negative) time, not an error.
pub(crate) fn parse_rfc3339(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| num_of(s.get(r)?);
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut frac = 0.0;
    if let Some(r) = rest.strip_prefix('.') {
        let n = r.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        frac = format!("0.{}", &r[..n]).parse().ok()?;
        rest = &r[n..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && matches!(rest.as_bytes()[0], b'+' | b'-') => {
            if rest.as_bytes()[3] != b':' {
                return None;
            }
            let (oh, om) = (num_of(rest.get(1..3)?)?, num_of(rest.get(4..6)?)?);
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset;
    Some(secs as f64 + frac)
}

fn num_of(t: &str) -> Option<i64> {
    t.bytes()
        .all(|c| c.is_ascii_digit())
        .then(|| t.parse().ok())?
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm, the inverse
/// of the one in `clock.rs`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    //! A real Prometheus for the module's tests (Debian's, installed by `scripts/setup.sh`):
    //! a free port, a temp directory with its config, killed with its process group on drop.

    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use super::*;
    use crate::stack::process::{self, Child};

    pub(crate) struct TestProm {
        pub url: String,
        pub dir: PathBuf,
        child: Child,
    }

    impl Drop for TestProm {
        fn drop(&mut self) {
            self.child.stop(Duration::from_secs(5));
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// Starts `/usr/bin/prometheus` (fails, never skips, when it is missing) with the rule
    /// files `rules` (name, YAML text) written beside its config, evaluating every second,
    /// and `extra` appended to the config (e.g. an `alerting:` section). Remote write is on.
    pub(crate) async fn start(rules: &[(&str, &str)], extra: &str) -> TestProm {
        let bin = Path::new("/usr/bin/prometheus");
        assert!(
            bin.is_file(),
            "prometheus is not installed: run scripts/setup.sh (it installs Debian's prometheus)"
        );
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("harness-prom-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut files = String::new();
        for (name, text) in rules {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            files.push_str(&format!("  - {}\n", p.display()));
        }
        let port = process::free_port().unwrap();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n{files}\
             scrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: \
             ['127.0.0.1:{port}']\n{extra}"
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let args = [
            format!("--config.file={}", dir.join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--web.enable-remote-write-receiver".to_owned(),
        ];
        let child = process::spawn(bin, &args, &dir, &dir.join("prometheus.log"), &[]).unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let client = api::PromClient::new(&url, Duration::from_secs(2));
        let ready = process::wait_ready(&child, "prometheus", Duration::from_secs(30), || {
            let c = &client;
            async move { c.ready().await.is_ok() }
        })
        .await;
        if let Err(e) = ready {
            panic!("{e}");
        }
        TestProm { url, dir, child }
    }

    #[test]
    fn rfc3339_reads_nanoseconds_offsets_and_refuses_garbage() {
        let t = parse_rfc3339("2026-12-02T16:04:35.848398514Z").unwrap();
        assert!((t - 1_796_227_475.848_398_5).abs() < 1e-6, "{t}");
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(parse_rfc3339("2000-02-29T00:00:00Z"), Some(951_782_400.0));
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00+01:00"), Some(0.0));
        assert_eq!(parse_rfc3339("1969-12-31T23:30:00-00:30"), Some(0.0));
        assert_eq!(
            parse_rfc3339("2026-11-25T12:00:00.5Z"),
            Some(1_795_608_000.5)
        );
        assert!(parse_rfc3339("0001-01-01T00:00:00Z").unwrap() < -6e10);
        for bad in [
            "",
            "2026-12-02",
            "2026-12-02T16:04:35",
            "2026-13-02T16:04:35Z",
            "x",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        assert_eq!(parse_rfc3339("2026-12-02T16:04:35.Z"), None);
    }
}
