//! A scenario's requests made ready to send: templates compiled, headers parsed, and the
//! weighted mix laid out as a fixed cycle so the same iteration always picks the same request
//! (client and server counts can then be compared exactly).

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;

use super::client::HttpClient;
use crate::metrics::Recorder;
use crate::scenario::{Draws, GeneratorError, Generators, Scenario, Template};

pub struct PreparedRequest {
    pub name: String,
    method: http::Method,
    path: Template,
    /// The full URI, built once, when the path has no placeholder (the common case).
    fixed_uri: Option<http::Uri>,
    body: Option<Template>,
    headers: http::HeaderMap,
    timeout: Duration,
    expect: Vec<u16>,
}

pub struct LoadPlan {
    pub base: String,
    pub requests: Vec<PreparedRequest>,
    cycle: Vec<usize>,
    gens: Generators,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("request `{name}`: {message}")]
    Request { name: String, message: String },
}

impl LoadPlan {
    pub fn new(s: &Scenario, target: &str) -> Result<LoadPlan, PlanError> {
        let gens = Generators::new(&s.generators, s.seed);
        let mut requests = Vec::new();
        for r in &s.requests {
            let err = |message: String| PlanError::Request {
                name: r.name.clone(),
                message,
            };
            let mut headers = http::HeaderMap::new();
            for (k, v) in s.target.headers.iter().chain(r.headers.iter()) {
                let name = http::HeaderName::from_bytes(k.as_bytes())
                    .map_err(|e| err(format!("header {k}: {e}")))?;
                let value =
                    http::HeaderValue::from_str(v).map_err(|e| err(format!("header {k}: {e}")))?;
                headers.insert(name, value);
            }
            if r.body.is_some() && !headers.contains_key(http::header::CONTENT_TYPE) {
                headers.insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json"),
                );
            }
            let path =
                Template::compile(r.path.get_ref(), &gens).map_err(|e| err(e.to_string()))?;
            let fixed_uri = match path.constant() {
                Some(p) => Some(
                    format!("{}{p}", target.trim_end_matches('/'))
                        .parse::<http::Uri>()
                        .map_err(|e| err(format!("URL {target}{p}: {e}")))?,
                ),
                None => None,
            };
            requests.push(PreparedRequest {
                name: r.name.clone(),
                method: r
                    .method
                    .parse()
                    .map_err(|_| err(format!("bad method {}", r.method)))?,
                path,
                fixed_uri,
                body: r
                    .body
                    .as_ref()
                    .map(|b| Template::compile(b.get_ref(), &gens))
                    .transpose()
                    .map_err(|e| err(e.to_string()))?,
                headers,
                timeout: r.timeout.unwrap_or(s.target.timeout).0,
                expect: r.expect_status.clone(),
            });
        }
        let weights: Vec<u32> = s.requests.iter().map(|r| r.weight).collect();
        Ok(LoadPlan {
            base: target.trim_end_matches('/').to_owned(),
            requests,
            cycle: smooth_weighted_cycle(&weights),
            gens,
        })
    }

    /// See [`Generators::set_hot_share`].
    pub fn set_hot_share(&self, generator: &str, share: f64) -> Result<f64, GeneratorError> {
        self.gens.set_hot_share(generator, share)
    }

    pub fn names(&self) -> Vec<String> {
        self.requests.iter().map(|r| r.name.clone()).collect()
    }

    /// Which request iteration `n` sends.
    pub fn pick(&self, iteration: u64) -> usize {
        self.cycle[(iteration % self.cycle.len() as u64) as usize]
    }

    /// Builds, sends and records iteration `n`'s request; latency counts from `started`.
    pub async fn execute(
        &self,
        client: &HttpClient,
        recorder: &Recorder,
        iteration: u64,
        vu: u64,
        started: Instant,
    ) {
        let r = &self.requests[self.pick(iteration)];
        let mut draws = Draws::default();
        let mut builder = http::Request::builder().method(r.method.clone());
        builder = match &r.fixed_uri {
            Some(uri) => builder.uri(uri.clone()),
            None => builder.uri(format!(
                "{}{}",
                self.base,
                r.path.render_with(&self.gens, iteration, vu, &mut draws)
            )),
        };
        let body = r
            .body
            .as_ref()
            .map(|b| Bytes::from(b.render_with(&self.gens, iteration, vu, &mut draws)))
            .unwrap_or_default();
        if !r.headers.is_empty() {
            if let Some(h) = builder.headers_mut() {
                h.extend(r.headers.clone());
            }
        }
        let outcome = match builder.body(Full::new(body)) {
            Ok(req) => client.send(req, r.timeout, started, &r.expect).await,
            Err(_) => crate::metrics::Outcome {
                status: None,
                error: Some(crate::metrics::ErrorKind::Other),
                latency: started.elapsed(),
                ok: false,
            },
        };
        recorder.record(&r.name, outcome);
    }
}

/// Nginx's smooth weighted round robin over one full cycle: weights 3,1 → a a b a, never a
/// burst of one request longer than its weight requires.
fn smooth_weighted_cycle(weights: &[u32]) -> Vec<usize> {
    let total: i64 = weights.iter().map(|w| i64::from(*w)).sum();
    let mut current = vec![0i64; weights.len()];
    let mut cycle = Vec::with_capacity(total as usize);
    for _ in 0..total {
        for (c, w) in current.iter_mut().zip(weights) {
            *c += i64::from(*w);
        }
        let (best, _) = current
            .iter()
            .enumerate()
            .max_by_key(|(i, c)| (**c, -(*i as i64)))
            .expect("at least one request");
        current[best] -= total;
        cycle.push(best);
    }
    cycle
}

#[cfg(test)]
mod tests {
    use super::smooth_weighted_cycle;

    #[test]
    fn cycle_respects_weights_smoothly() {
        let c = smooth_weighted_cycle(&[3, 1]);
        assert_eq!(c.len(), 4);
        assert_eq!(c.iter().filter(|i| **i == 0).count(), 3);
        let c = smooth_weighted_cycle(&[1, 1, 0]);
        assert_eq!(c, vec![0, 1]);
    }
}
