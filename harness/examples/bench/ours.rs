//! The harness's own rows: scenario files written for each and `harness run` on them.

use std::path::{Path, PathBuf};

use crate::measure::{counted, measure, pinned, Counted, Measured, Server};

pub struct Ours {
    /// The harness binary under test.
    pub bin: String,
    /// Where scenarios and reports go.
    pub dir: PathBuf,
}

impl Ours {
    /// A scenario file `name.toml` from its `[scenarios.s]` body; `target` adds `[target]`
    /// lines (TLS, HTTP version).
    pub fn file(&self, name: &str, url: &str, target: &str, body: &str) -> PathBuf {
        let p = self.dir.join(format!("{name}.toml"));
        let url = url.trim_end_matches('/');
        let text = format!(
            "name = \"{name}\"\n[target]\nurl = \"{url}\"\ntimeout = \"10s\"\n{target}\n[scenarios.s]\n{body}"
        );
        std::fs::write(&p, text).unwrap();
        p
    }

    /// `rate`/s of GET `/` for `secs`, at most `in_flight` at once (None: the default bound).
    pub fn arrival(
        &self,
        name: &str,
        url: &str,
        rate: u32,
        secs: u64,
        in_flight: Option<u32>,
    ) -> PathBuf {
        self.arrival_with(name, url, "", rate, secs, in_flight)
    }

    /// [`Ours::arrival`] with `[target]` lines.
    pub fn arrival_with(
        &self,
        name: &str,
        url: &str,
        target: &str,
        rate: u32,
        secs: u64,
        in_flight: Option<u32>,
    ) -> PathBuf {
        let bound = in_flight
            .map(|n| format!("maxVUs = {n}\n"))
            .unwrap_or_default();
        let body = format!(
            "executor = \"constant-arrival-rate\"\nrate = {rate}\nduration = \"{secs}s\"\n{bound}[[scenarios.s.requests]]\nname = \"get\"\npath = \"/\"\n"
        );
        self.file(name, url, target, &body)
    }

    /// `vus` VUs for `secs`, each looping GET `/` then `think`.
    pub fn vus(&self, name: &str, url: &str, vus: u32, think: &str, secs: u64) -> PathBuf {
        let body = format!(
            "executor = \"constant-vus\"\nvus = {vus}\nduration = \"{secs}s\"\nthink_time = \"{think}\"\n[[scenarios.s.requests]]\nname = \"get\"\npath = \"/\"\n"
        );
        self.file(name, url, "", &body)
    }

    /// Runs `file`, counted at `server`; returns the count and the run's summary.json.
    pub fn counted(&self, file: &Path, server: &Server) -> (Counted, serde_json::Value) {
        let out = self.out(file);
        let c = counted(self.command(file, &out), server);
        (c, summary(&out))
    }

    /// Runs `file` with `during(pid)` beside it (stalls, RSS sampling).
    pub fn measured(&self, file: &Path, during: impl FnOnce(u32)) -> (Measured, serde_json::Value) {
        let out = self.out(file);
        let m = measure(self.command(file, &out), during);
        (m, summary(&out))
    }

    /// The command that runs `file`, its reports under `out-<stem>`.
    pub fn command_for(&self, file: &Path) -> std::process::Command {
        let out = self.out(file);
        self.command(file, &out)
    }

    fn out(&self, file: &Path) -> PathBuf {
        let out = self.dir.join(format!(
            "out-{}",
            file.file_stem().unwrap().to_string_lossy()
        ));
        let _ = std::fs::remove_dir_all(&out);
        out
    }

    fn command(&self, file: &Path, out: &Path) -> std::process::Command {
        let args = [
            "run".into(),
            file.display().to_string(),
            "--out".into(),
            out.display().to_string(),
            "--quiet".into(),
            // The max rows offer 200k/s and 5,000 VUs, over the default [limits].
            "--allow-huge".into(),
        ];
        pinned(1, &self.bin, &args)
    }
}

/// The summary.json of the one run under `out`.
fn summary(out: &Path) -> serde_json::Value {
    let dir = std::fs::read_dir(out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

/// A summary's `totals` field as a number (0 when absent).
pub fn total(s: &serde_json::Value, field: &str) -> f64 {
    s["totals"][field].as_f64().unwrap_or(0.0)
}
