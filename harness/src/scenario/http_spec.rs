//! Validation of what the HTTP client will be asked to do: a target URL with a host, TLS
//! settings that load (CA, client pair that matches), `max_body`, expected statuses and checks.
//! `[target.tls]` is accepted with an `http://` target: a redirect may lead to HTTPS.

use super::checks::{Check, CheckError};
use super::{Checker, Scenario, ScenarioError};

impl Checker<'_> {
    pub(super) fn http(&self, s: &Scenario) -> Result<(), ScenarioError> {
        let url = &s.target.url;
        if !url.contains("{env:") {
            let host = url
                .parse::<http::Uri>()
                .ok()
                .and_then(|u| u.host().map(str::to_owned))
                .filter(|h| !h.is_empty());
            if host.is_none() {
                let m = format!("`{url}` has no host (write e.g. http://127.0.0.1:8080)");
                return Err(self.nowhere("target.url", m));
            }
        }
        crate::tls::check_files(&s.target.tls, &s.dir)
            .map_err(|e| self.nowhere(e.field, e.message))?;
        if let Some(n) = &s.target.tls.server_name {
            crate::tls::server_name(&s.target.tls, n)
                .map_err(|e| self.nowhere(e.field, e.message))?;
        }
        let positive = |b: &toml::Spanned<i64>, field: &str| {
            if *b.get_ref() <= 0 {
                let m = format!("{} must be a positive number of bytes", b.get_ref());
                return Err(self.at(b.span(), field, m));
            }
            Ok(())
        };
        if let Some(b) = &s.target.max_body {
            positive(b, "target.max_body")?;
        }
        for r in &s.requests {
            if let Some(b) = &r.max_body {
                positive(b, "requests.max_body")?;
            }
            if let Some(bad) = r.expect_status.iter().find(|st| !(100..=599).contains(*st)) {
                let m = format!(
                    "request `{}`: {bad} is not an HTTP status (100–599)",
                    r.name
                );
                return Err(self.nowhere("requests.expect_status", m));
            }
            let mut seen = std::collections::HashSet::new();
            for c in &r.checks {
                if !seen.insert(c.name.as_str()) {
                    let m = format!("request `{}`: check `{}` is named twice", r.name, c.name);
                    return Err(self.nowhere("requests.checks.name", m));
                }
                Check::compile(c).map_err(|e| self.check_error(e))?;
            }
        }
        Ok(())
    }

    fn check_error(&self, e: CheckError) -> ScenarioError {
        match e.span {
            Some(span) => self.at(span, e.field, e.message),
            None => self.nowhere(e.field, e.message),
        }
    }
}
