//! A scenario's requests made ready to send: templates compiled, headers parsed, and the
//! weighted mix laid out as a fixed cycle so the same iteration always picks the same request
//! (client and server counts can then be compared exactly).

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;

use super::client::{Finished, HttpClient, SendError};
use super::redirect::{self, Hop, RedirectError};
use crate::metrics::{ErrorKind, Outcome, Recorder};
use crate::scenario::checks::{Answer, Check};
use crate::scenario::{Draws, GeneratorError, Generators, Scenario, Template, MAX_BODY};

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
    checks: Vec<Check>,
    /// Body bytes to keep for checks (None: drain and discard, today's cost).
    keep_body: Option<u64>,
    max_redirects: u32,
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
            let checks = r
                .checks
                .iter()
                .map(|c| Check::compile(c).map_err(|e| err(e.message)))
                .collect::<Result<Vec<_>, _>>()?;
            let max_body = r
                .max_body
                .as_ref()
                .or(s.target.max_body.as_ref())
                .map_or(MAX_BODY, |b| *b.get_ref() as u64);
            requests.push(PreparedRequest {
                keep_body: checks.iter().any(Check::needs_body).then_some(max_body),
                checks,
                max_redirects: r.max_redirects.unwrap_or(s.target.max_redirects),
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

    /// Builds, sends and records iteration `n`'s request, following redirects (each hop is
    /// a sample, as in k6). Latency runs from `intended` (arrival-rate: the scheduled start)
    /// or, without one, from the connection in hand to the last byte (k6's
    /// sending + waiting + receiving).
    pub async fn execute(
        &self,
        client: &HttpClient,
        recorder: &Recorder,
        iteration: u64,
        vu: u64,
        intended: Option<Instant>,
    ) {
        let r = &self.requests[self.pick(iteration)];
        let started = intended.unwrap_or_else(Instant::now);
        let mut draws = Draws::default();
        let uri = match &r.fixed_uri {
            Some(uri) => Ok(uri.clone()),
            None => format!(
                "{}{}",
                self.base,
                r.path.render_with(&self.gens, iteration, vu, &mut draws)
            )
            .parse::<http::Uri>(),
        };
        let body = r
            .body
            .as_ref()
            .map(|b| Bytes::from(b.render_with(&self.gens, iteration, vu, &mut draws)))
            .unwrap_or_default();
        let Ok(uri) = uri else {
            return record_failed(recorder, r, ErrorKind::Other, started.elapsed());
        };
        let chain = self.chain(client, recorder, r, uri, body, intended);
        if tokio::time::timeout(r.timeout, chain).await.is_err() {
            record_failed(recorder, r, ErrorKind::Timeout, started.elapsed());
        }
    }

    async fn chain(
        &self,
        client: &HttpClient,
        recorder: &Recorder,
        r: &PreparedRequest,
        uri: http::Uri,
        body: Bytes,
        intended: Option<Instant>,
    ) {
        let mut builder = http::Request::builder()
            .method(r.method.clone())
            .uri(uri.clone());
        if let Some(h) = builder.headers_mut() {
            h.clone_from(&r.headers);
        }
        let Ok(mut req) = builder.body(Full::new(body.clone())) else {
            return record_failed(recorder, r, ErrorKind::Other, Duration::ZERO);
        };
        let mut hop: Option<Hop> = None;
        let mut from = intended;
        for followed in 0..=r.max_redirects {
            let hop_start = from.unwrap_or_else(Instant::now);
            let resp = match client.send(req).await {
                Ok(resp) => resp,
                Err(e) => return record_failed(recorder, r, e.kind(), hop_start.elapsed()),
            };
            if !(r.max_redirects > 0 && redirect::is_redirect(resp.status)) {
                return self.last(recorder, r, resp, from).await;
            }
            let status = resp.status;
            let f = match resp.finish(None).await {
                Ok(f) => f,
                Err(e) => return record_failed(recorder, r, e.kind(), hop_start.elapsed()),
            };
            let latency = f.done - from.unwrap_or(f.got);
            let this = hop.take().unwrap_or_else(|| Hop {
                method: r.method.clone(),
                uri: uri.clone(),
                headers: r.headers.clone(),
                body: body.clone(),
            });
            let next = if followed == r.max_redirects {
                Err(RedirectError::TooMany(r.max_redirects))
            } else {
                redirect::follow(&this, status, &f.headers)
            };
            let Ok(next) = next else {
                let mut o = outcome(&f, latency, false);
                o.error = Some(ErrorKind::Redirects);
                recorder.record(&r.name, o);
                return fail_checks(recorder, r);
            };
            // A redirect that is followed is part of the answer: expected whatever expect_status says.
            recorder.record_hop(&r.name, outcome(&f, latency, true));
            req = next.request();
            hop = Some(next);
            from = None;
        }
    }

    /// The final answer: body read as far as checks need, checks judged, one sample.
    async fn last(
        &self,
        recorder: &Recorder,
        r: &PreparedRequest,
        resp: super::client::Response,
        from: Option<Instant>,
    ) {
        let head = (!r.checks.is_empty()).then(|| (resp.status, resp.headers.clone()));
        let hop_start = from.unwrap_or_else(Instant::now);
        let f = match resp.finish(r.keep_body).await {
            Ok(f) => f,
            Err(e) => {
                record_failed(recorder, r, e.kind(), hop_start.elapsed());
                if let (SendError::BodyTooLarge { .. }, Some((status, headers))) = (&e, head) {
                    // The head is still judged; without a body, what needs one fails.
                    let a = Answer {
                        status,
                        headers: &headers,
                        body: None,
                        duration: hop_start.elapsed(),
                    };
                    judge_checks(recorder, r, &a, None);
                }
                return;
            }
        };
        let latency = f.done - from.unwrap_or(f.got);
        let expected = if r.expect.is_empty() {
            (200..400).contains(&f.status)
        } else {
            r.expect.contains(&f.status)
        };
        let mut ok = expected;
        if !r.checks.is_empty() {
            let json = r
                .checks
                .iter()
                .any(|c| matches!(c.rule, crate::scenario::checks::Rule::Json(..)))
                .then(|| f.body.as_ref().and_then(|b| serde_json::from_slice(b).ok()))
                .flatten();
            let a = Answer {
                status: f.status,
                headers: &f.headers,
                body: f.body.as_deref(),
                duration: latency,
            };
            ok &= !judge_checks(recorder, r, &a, json.as_ref());
        }
        recorder.record(&r.name, outcome(&f, latency, ok));
    }
}

/// Judges and records every check of `r` on `a`; true when a failed one has `fail_request`.
fn judge_checks(
    recorder: &Recorder,
    r: &PreparedRequest,
    a: &Answer<'_>,
    json: Option<&serde_json::Value>,
) -> bool {
    let results: Vec<(&str, bool)> = r
        .checks
        .iter()
        .map(|c| (c.name.as_str(), c.passes(a, json)))
        .collect();
    recorder.record_checks(&results);
    r.checks
        .iter()
        .zip(&results)
        .any(|(c, (_, passed))| c.fail_request && !passed)
}

fn outcome(f: &Finished, latency: Duration, ok: bool) -> Outcome {
    Outcome {
        status: Some(f.status),
        error: None,
        latency,
        ok,
        phases: Some(f.phases),
        proto: Some(f.proto),
    }
}

/// A request without a usable answer: one failed sample, and every check failed (a k6 script's
/// `check(res, …)` runs on the failed response too).
fn record_failed(recorder: &Recorder, r: &PreparedRequest, kind: ErrorKind, latency: Duration) {
    recorder.record(&r.name, Outcome::failed(kind, latency));
    fail_checks(recorder, r);
}

fn fail_checks(recorder: &Recorder, r: &PreparedRequest) {
    if !r.checks.is_empty() {
        let results: Vec<(&str, bool)> =
            r.checks.iter().map(|c| (c.name.as_str(), false)).collect();
        recorder.record_checks(&results);
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
