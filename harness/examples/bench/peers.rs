//! The command lines of the generators the harness is compared with: wrk, oha, k6 and a
//! standalone goose 0.19 (`examples/goose_bench.rs`). Each runs for [`RUN_SECS`] on core 1.

use std::path::Path;
use std::process::Command;

use crate::measure::{pinned, which, RUN_SECS};

/// Where each peer's binary is.
pub struct Peers {
    pub oha: String,
    pub k6: String,
    pub goose: String,
}

impl Peers {
    pub fn find() -> Peers {
        let home = std::env::var("HOME").unwrap_or_default();
        let goose = std::env::current_exe()
            .expect("own path")
            .with_file_name("goose_bench");
        Peers {
            oha: which("oha").unwrap_or_else(|| format!("{home}/.cargo/bin/oha")),
            k6: which("k6").unwrap_or_else(|| "k6".into()),
            goose: goose.display().to_string(),
        }
    }

    /// wrk, one thread, `conns` connections.
    pub fn wrk(&self, url: &str, conns: u32) -> Command {
        let args = [
            "-t1".into(),
            format!("-c{conns}"),
            format!("-d{RUN_SECS}s"),
            url.into(),
        ];
        pinned(1, "wrk", &args)
    }

    /// oha for [`RUN_SECS`] with `extra` flags (connections, HTTP/2, TLS).
    pub fn oha(&self, url: &str, extra: &[String]) -> Command {
        let mut args = vec!["-z".into(), format!("{RUN_SECS}s"), "--no-tui".into()];
        args.extend_from_slice(extra);
        args.push(url.into());
        pinned(1, &self.oha, &args)
    }

    /// k6 on a script written here: `vus` VUs for [`RUN_SECS`] (or `duration_s`), each looping
    /// a GET of `url` and then `sleep_s` seconds.
    pub fn k6(&self, dir: &Path, name: &str, url: &str, vus: u32, sleep_s: f64) -> Command {
        self.k6_for(dir, name, url, vus, sleep_s, RUN_SECS, "")
    }

    /// [`Peers::k6`] with its duration and extra options (`insecureSkipTLSVerify: true, `).
    #[allow(clippy::too_many_arguments)]
    pub fn k6_for(
        &self,
        dir: &Path,
        name: &str,
        url: &str,
        vus: u32,
        sleep_s: f64,
        duration_s: u64,
        options: &str,
    ) -> Command {
        let file = dir.join(format!("{name}.js"));
        let sleep = match sleep_s > 0.0 {
            true => format!(" sleep({sleep_s});"),
            false => String::new(),
        };
        let text = format!(
            "import http from 'k6/http';\nimport {{ sleep }} from 'k6';\nexport const options = {{ {options}vus: {vus}, duration: '{duration_s}s' }};\nexport default function () {{ http.get('{url}');{sleep} }}\n"
        );
        std::fs::write(&file, text).unwrap();
        self.k6_run(&file)
    }

    /// k6's constant-arrival-rate at `rate`/s for [`RUN_SECS`], up to 1,000 VUs.
    pub fn k6_arrival(&self, dir: &Path, url: &str, rate: u32) -> Command {
        let file = dir.join(format!("k6-ar{rate}.js"));
        let text = format!(
            "import http from 'k6/http';\nexport const options = {{ scenarios: {{ s: {{ executor: 'constant-arrival-rate', rate: {rate}, timeUnit: '1s', duration: '{RUN_SECS}s', preAllocatedVUs: 200, maxVUs: 1000 }} }} }};\nexport default function () {{ http.get('{url}'); }}\n"
        );
        std::fs::write(&file, text).unwrap();
        self.k6_run(&file)
    }

    fn k6_run(&self, script: &Path) -> Command {
        let args = ["run".into(), "--quiet".into(), script.display().to_string()];
        pinned(1, &self.k6, &args)
    }

    /// Standalone goose: `users` users started at once, looping a GET of `/`.
    pub fn goose(&self, url: &str, users: u32) -> Command {
        let args = [
            "--host".into(),
            url.trim_end_matches('/').into(),
            "--users".into(),
            users.to_string(),
            "--increase-rate".into(),
            users.to_string(),
            "--run-time".into(),
            format!("{RUN_SECS}s"),
            "--quiet".into(),
        ];
        pinned(1, &self.goose, &args)
    }
}
