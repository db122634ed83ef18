//! A scenario file's requests made ready to send: templates compiled, headers parsed, each
//! scenario's weighted mix laid out as a fixed cycle so the same iteration always picks the
//! same request (client and server counts can then be compared exactly), and its flow's steps
//! with their extractions and polls.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;

use super::client::{Finished, HttpClient, SendError};
use super::redirect::{self, Hop, RedirectError};
use crate::metrics::{ErrorKind, Outcome, Recorder};
use crate::scenario::checks::{Answer, Check};
use crate::scenario::flow::Extract;
use crate::scenario::template::{Env, NoEnv};
use crate::scenario::{
    CustomKind, DataSet, Draws, GeneratorError, Generators, RequestSpec, Scenario, Scope, Segment,
    Template, Workload, MAX_BODY,
};

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
    pub(super) checks: Vec<Check>,
    /// Body bytes to keep for checks or extractions (None: drain and discard, today's cost).
    keep_body: Option<u64>,
    max_redirects: u32,
    /// The data sets its templates read (a row of each is picked per iteration).
    pub(super) data_sets: Vec<usize>,
    /// Declared trends, gauges and rates fed from this request's responses.
    feeds: Vec<Feed>,
}

/// A declared metric's value in each response: the first match of `path`.
struct Feed {
    metric: String,
    kind: CustomKind,
    path: serde_json_path::JsonPath,
}

/// One scenario's part of the plan: its mix (a fixed cycle of request indices) or its flow.
pub struct WorkPlan {
    pub spec: Workload,
    cycle: Vec<usize>,
    pub(super) flow: Vec<Step>,
    /// Whether a flow step runs once per VU (the executors then keep VU state).
    pub(super) has_once: bool,
    /// The data sets its `once` steps read (a row each per VU)…
    pub(super) vu_sets: Vec<usize>,
    /// …and the others its steps read (a row each per iteration).
    pub(super) iteration_sets: Vec<usize>,
}

/// A flow step made ready.
pub struct Step {
    pub(super) req: usize,
    pub(super) extract: Vec<Extract>,
    pub(super) think: Duration,
    pub(super) poll: Option<Poll>,
    pub(super) once: bool,
}

pub struct Poll {
    /// Index of the check (of the step's request) that ends the polling.
    pub(super) until: usize,
    pub(super) interval: Duration,
    pub(super) timeout: Duration,
    pub(super) trend: Option<String>,
    pub(super) every: u64,
}

pub struct LoadPlan {
    pub base: String,
    /// Every request of every scenario, setup and teardown (names are unique per file).
    pub requests: Vec<PreparedRequest>,
    pub workloads: Vec<WorkPlan>,
    pub(super) setup: Vec<Step>,
    pub(super) teardown: Vec<Step>,
    pub(super) gens: Generators,
    pub(super) data: Vec<Arc<DataSet>>,
    data_names: Vec<String>,
    /// The part of the run this process drives (`0:1` unless it is one of several workers).
    pub segment: Segment,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("request `{name}`: {message}")]
    Request { name: String, message: String },
}

/// What a caller needs of a request beyond its sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Nothing (a mix's request: the cheapest path).
    Nothing,
    /// The [`Reply`] (a flow step).
    Reply,
    /// The [`Reply`], its checks not recorded: a poll's attempt before the last, whose checks
    /// are expected to fail until the awaited state arrives.
    Probe,
}

impl Want {
    fn reply(self) -> bool {
        self != Want::Nothing
    }
    fn records_checks(self) -> bool {
        self != Want::Probe
    }
}

/// What one answer said, for a flow step (extractions, poll).
pub struct Reply {
    pub headers: http::HeaderMap,
    pub body: Option<Bytes>,
    pub json: Option<serde_json::Value>,
    /// Each check of the request: passed or not.
    pub checks: Vec<bool>,
    /// Why there is no answer (a timeout, a refused connection…).
    pub error: Option<ErrorKind>,
}

impl LoadPlan {
    pub fn new(s: &Scenario, target: &str, segment: Segment) -> Result<LoadPlan, PlanError> {
        let gens = Generators::striped(&s.generators, s.seed, segment.clone());
        let data: Vec<(String, Vec<String>)> = s
            .datasets
            .iter()
            .map(|(n, d)| (n.clone(), d.columns.clone()))
            .collect();
        let mut plan = LoadPlan {
            base: target.trim_end_matches('/').to_owned(),
            requests: Vec::new(),
            workloads: Vec::new(),
            setup: Vec::new(),
            teardown: Vec::new(),
            gens,
            data: s.datasets.iter().map(|(_, d)| d.clone()).collect(),
            data_names: s.datasets.iter().map(|(n, _)| n.clone()).collect(),
            segment,
        };
        let mut setup_vars = Vec::new();
        plan.setup = plan.steps(s, &s.setup, &mut setup_vars, &data, target)?;
        for w in &s.workloads {
            let mut vars = setup_vars.clone();
            let (cycle, flow) = match w.flow.is_empty() {
                true => {
                    let first = plan.requests.len();
                    for r in &w.requests {
                        let scope = Scope {
                            vars: &[],
                            data: &data,
                            flow: false,
                        };
                        let p = prepare(s, r, target, &plan.gens, scope)?;
                        plan.requests.push(p);
                    }
                    let weights: Vec<u32> = w.requests.iter().map(|r| r.weight).collect();
                    let cycle = smooth_weighted_cycle(&weights);
                    (cycle.into_iter().map(|i| first + i).collect(), Vec::new())
                }
                false => (
                    Vec::new(),
                    plan.steps(s, &w.flow, &mut vars, &data, target)?,
                ),
            };
            let sets = |once: bool| {
                let mut s: Vec<usize> = flow
                    .iter()
                    .filter(|st: &&Step| st.once == once)
                    .flat_map(|st| plan.requests[st.req].data_sets.iter().copied())
                    .collect();
                s.sort_unstable();
                s.dedup();
                s
            };
            let vu_sets = sets(true);
            let iteration_sets = sets(false)
                .into_iter()
                .filter(|s| !vu_sets.contains(s))
                .collect();
            plan.workloads.push(WorkPlan {
                has_once: flow.iter().any(|st: &Step| st.once),
                spec: w.clone(),
                cycle,
                flow,
                vu_sets,
                iteration_sets,
            });
        }
        let mut vars = setup_vars;
        plan.teardown = plan.steps(s, &s.teardown, &mut vars, &data, target)?;
        Ok(plan)
    }

    /// Prepares `specs` as flow steps, adding what they extract to `vars`.
    fn steps(
        &mut self,
        s: &Scenario,
        specs: &[RequestSpec],
        vars: &mut Vec<String>,
        data: &[(String, Vec<String>)],
        target: &str,
    ) -> Result<Vec<Step>, PlanError> {
        let mut steps = Vec::new();
        for r in specs {
            let err = |message: String| PlanError::Request {
                name: r.name.clone(),
                message,
            };
            let scope = Scope {
                vars,
                data,
                flow: true,
            };
            let mut p = prepare(s, r, target, &self.gens, scope)?;
            let extract = r
                .extract
                .iter()
                .map(|e| Extract::compile(e).map_err(|(_, m)| err(m)))
                .collect::<Result<Vec<_>, _>>()?;
            if extract.iter().any(Extract::needs_body) && p.keep_body.is_none() {
                p.keep_body = Some(
                    r.max_body
                        .as_ref()
                        .or(s.target.max_body.as_ref())
                        .map_or(MAX_BODY, |b| *b.get_ref() as u64),
                );
            }
            let poll = match &r.poll {
                None => None,
                Some(poll) => Some(Poll {
                    until: p
                        .checks
                        .iter()
                        .position(|c| c.name == poll.until)
                        .ok_or_else(|| err(format!("no check `{}`", poll.until)))?,
                    interval: poll.interval.0,
                    timeout: poll.timeout.0,
                    trend: poll.trend.clone(),
                    every: poll.every,
                }),
            };
            vars.extend(extract.iter().map(|e| e.var.clone()));
            self.requests.push(p);
            steps.push(Step {
                req: self.requests.len() - 1,
                extract,
                think: r.think_time.map_or(Duration::ZERO, |d| d.0),
                poll,
                once: r.once,
            });
        }
        Ok(steps)
    }

    pub fn setup_is_empty(&self) -> bool {
        self.setup.is_empty()
    }

    pub fn teardown_is_empty(&self) -> bool {
        self.teardown.is_empty()
    }

    /// The `[data.NAME]` key of data set `set`.
    pub fn data_name(&self, set: usize) -> &str {
        &self.data_names[set]
    }

    /// See [`Generators::set_hot_share`].
    pub fn set_hot_share(&self, generator: &str, share: f64) -> Result<f64, GeneratorError> {
        self.gens.set_hot_share(generator, share)
    }

    pub fn names(&self) -> Vec<String> {
        self.requests.iter().map(|r| r.name.clone()).collect()
    }

    /// Which request iteration `n` of a mix sends.
    pub fn pick(&self, w: &WorkPlan, iteration: u64) -> usize {
        w.cycle[(iteration % w.cycle.len() as u64) as usize]
    }

    /// Builds, sends and records iteration `n` of a mix (one request), following redirects
    /// (each hop is a sample, as in k6). Latency runs from `intended` (arrival-rate: the
    /// scheduled start) or, without one, from the connection in hand to the last byte (k6's
    /// sending + waiting + receiving). Err(set): data set `set` has no row left.
    pub async fn execute(
        &self,
        w: &WorkPlan,
        client: &HttpClient,
        recorder: &Recorder,
        iteration: u64,
        vu: u64,
        intended: Option<Instant>,
    ) -> Result<(), usize> {
        let r = &self.requests[self.pick(w, iteration)];
        let rows;
        // Most mixes read no data file: no rows to pick, nothing allocated.
        let env: &dyn Env = match r.data_sets.is_empty() {
            true => &NoEnv,
            false => {
                rows = super::flow::Rows::pick(&self.data, &r.data_sets, &self.segment)?;
                &rows
            }
        };
        let (n, vu, want) = (iteration, vu, Want::Nothing);
        // k6's iteration_duration runs from the iteration's actual start (latency, not this,
        // carries the wait behind a late schedule).
        let started = Instant::now();
        self.send(client, recorder, r, n, vu, intended, env, None, want)
            .await;
        recorder.record_iteration_duration(started.elapsed());
        Ok(())
    }

    /// Sends request `r` with templates filled from `env`, cookies from and into `jar`, and —
    /// as `want` says — returns what the answer said.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn send(
        &self,
        client: &HttpClient,
        recorder: &Recorder,
        r: &PreparedRequest,
        iteration: u64,
        vu: u64,
        intended: Option<Instant>,
        env: &dyn Env,
        jar: Option<&mut super::flow::Jar>,
        want: Want,
    ) -> Option<Reply> {
        let started = intended.unwrap_or_else(Instant::now);
        let mut draws = Draws::default();
        let uri = match &r.fixed_uri {
            Some(uri) => Ok(uri.clone()),
            None => format!(
                "{}{}",
                self.base,
                r.path.render_in(&self.gens, iteration, vu, &mut draws, env)
            )
            .parse::<http::Uri>(),
        };
        let body = r
            .body
            .as_ref()
            .map(|b| Bytes::from(b.render_in(&self.gens, iteration, vu, &mut draws, env)))
            .unwrap_or_default();
        let Ok(uri) = uri else {
            record_failed(recorder, r, ErrorKind::Other, started.elapsed(), want);
            return want.reply().then(|| Reply::failed(r, ErrorKind::Other));
        };
        let chain = self.chain(client, recorder, r, uri, body, intended, jar, want);
        match tokio::time::timeout(r.timeout, chain).await {
            Ok(reply) => reply,
            Err(_) => {
                record_failed(recorder, r, ErrorKind::Timeout, started.elapsed(), want);
                want.reply().then(|| Reply::failed(r, ErrorKind::Timeout))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn chain(
        &self,
        client: &HttpClient,
        recorder: &Recorder,
        r: &PreparedRequest,
        uri: http::Uri,
        body: Bytes,
        intended: Option<Instant>,
        mut jar: Option<&mut super::flow::Jar>,
        want: Want,
    ) -> Option<Reply> {
        let failed = |kind: ErrorKind| want.reply().then(|| Reply::failed(r, kind));
        let mut builder = http::Request::builder()
            .method(r.method.clone())
            .uri(uri.clone());
        if let Some(h) = builder.headers_mut() {
            h.clone_from(&r.headers);
        }
        let Ok(mut req) = builder.body(Full::new(body.clone())) else {
            record_failed(recorder, r, ErrorKind::Other, Duration::ZERO, want);
            return failed(ErrorKind::Other);
        };
        let mut hop: Option<Hop> = None;
        let mut from = intended;
        for followed in 0..=r.max_redirects {
            if let Some(jar) = jar.as_deref() {
                jar.add_to(&mut req);
            }
            let hop_start = from.unwrap_or_else(Instant::now);
            let resp = match client.send(req).await {
                Ok(resp) => resp,
                Err(e) => {
                    record_failed(recorder, r, e.kind(), hop_start.elapsed(), want);
                    return failed(e.kind());
                }
            };
            if let Some(jar) = jar.as_deref_mut() {
                jar.store(&uri_of(&hop, &uri), &resp.headers);
            }
            if !(r.max_redirects > 0 && redirect::is_redirect(resp.status)) {
                return self.last(recorder, r, resp, from, want).await;
            }
            let status = resp.status;
            let f = match resp.finish(None).await {
                Ok(f) => f,
                Err(e) => {
                    record_failed(recorder, r, e.kind(), hop_start.elapsed(), want);
                    return failed(e.kind());
                }
            };
            let latency = f.done - from.unwrap_or(f.got);
            let next = next_hop(r, hop.take(), &uri, &body, followed, status, &f.headers);
            let Ok(mut next) = next else {
                let mut o = outcome(&f, latency, false);
                o.error = Some(ErrorKind::Redirects);
                recorder.record(&r.name, o);
                if want.records_checks() {
                    fail_checks(recorder, r);
                }
                return failed(ErrorKind::Redirects);
            };
            // A redirect that is followed is part of the answer: expected whatever expect_status says.
            recorder.record_hop(&r.name, outcome(&f, latency, true));
            // The jar, not the previous hop, decides which cookies the next host gets.
            if jar.is_some() {
                next.headers.remove(http::header::COOKIE);
            }
            req = next.request();
            hop = Some(next);
            from = None;
        }
        None
    }

    /// The final answer: body read as far as checks need, checks judged, one sample.
    async fn last(
        &self,
        recorder: &Recorder,
        r: &PreparedRequest,
        resp: super::client::Response,
        from: Option<Instant>,
        want: Want,
    ) -> Option<Reply> {
        let head =
            (want.reply() || !r.checks.is_empty()).then(|| (resp.status, resp.headers.clone()));
        let hop_start = from.unwrap_or_else(Instant::now);
        let f = match resp.finish(r.keep_body).await {
            Ok(f) => f,
            Err(e) => {
                record_failed(recorder, r, e.kind(), hop_start.elapsed(), want);
                let mut reply = want.reply().then(|| Reply::failed(r, e.kind()));
                if let (SendError::BodyTooLarge { .. }, Some((status, headers))) = (&e, head) {
                    // The head is still judged; without a body, what needs one fails.
                    let a = Answer {
                        status,
                        headers: &headers,
                        body: None,
                        duration: hop_start.elapsed(),
                    };
                    let (_, results) = judge_checks(recorder, r, &a, None, want);
                    if let Some(reply) = reply.as_mut() {
                        reply.checks = results;
                        reply.headers = headers;
                    }
                }
                return reply;
            }
        };
        let latency = f.done - from.unwrap_or(f.got);
        let expected = if r.expect.is_empty() {
            (200..400).contains(&f.status)
        } else {
            r.expect.contains(&f.status)
        };
        let mut ok = expected;
        let parse_json = want.reply()
            || !r.feeds.is_empty()
            || r.checks
                .iter()
                .any(|c| matches!(c.rule, crate::scenario::checks::Rule::Json(..)));
        let json = parse_json
            .then(|| f.body.as_ref().and_then(|b| serde_json::from_slice(b).ok()))
            .flatten();
        let mut checks = Vec::new();
        if !r.checks.is_empty() {
            let a = Answer {
                status: f.status,
                headers: &f.headers,
                body: f.body.as_deref(),
                duration: latency,
            };
            let (fail, results) = judge_checks(recorder, r, &a, json.as_ref(), want);
            ok &= !fail;
            checks = results;
        }
        recorder.record(&r.name, outcome(&f, latency, ok));
        if let Some(json) = &json {
            feed(recorder, &r.feeds, json);
        }
        want.reply().then(|| Reply {
            headers: f.headers,
            body: f.body,
            json,
            checks,
            error: None,
        })
    }
}

impl PreparedRequest {
    /// A variable its templates read that `env` does not have.
    pub(super) fn missing_var<'t>(&'t self, env: &dyn Env) -> Option<&'t str> {
        let mut vars = self
            .path
            .vars()
            .chain(self.body.iter().flat_map(|b| b.vars()));
        vars.find(|v| env.var(v).is_none())
    }
}

impl Reply {
    fn failed(r: &PreparedRequest, kind: ErrorKind) -> Reply {
        Reply {
            headers: http::HeaderMap::new(),
            body: None,
            json: None,
            checks: vec![false; r.checks.len()],
            error: Some(kind),
        }
    }
}

/// The request a redirect asks for, from the hop that got it (the first: `r` itself); an
/// error after `max_redirects` hops.
fn next_hop(
    r: &PreparedRequest,
    hop: Option<Hop>,
    uri: &http::Uri,
    body: &Bytes,
    followed: u32,
    status: u16,
    headers: &http::HeaderMap,
) -> Result<Hop, RedirectError> {
    if followed == r.max_redirects {
        return Err(RedirectError::TooMany(r.max_redirects));
    }
    let this = hop.unwrap_or_else(|| Hop {
        method: r.method.clone(),
        uri: uri.clone(),
        headers: r.headers.clone(),
        body: body.clone(),
    });
    redirect::follow(&this, status, headers)
}

/// The URI a hop was sent to.
fn uri_of(hop: &Option<Hop>, first: &http::Uri) -> http::Uri {
    hop.as_ref()
        .map_or_else(|| first.clone(), |h| h.uri.clone())
}

/// One request or step of the scenario made ready to send.
fn prepare(
    s: &Scenario,
    r: &RequestSpec,
    target: &str,
    gens: &Generators,
    scope: Scope<'_>,
) -> Result<PreparedRequest, PlanError> {
    let err = |message: String| PlanError::Request {
        name: r.name.clone(),
        message,
    };
    let mut headers = http::HeaderMap::new();
    for (k, v) in s.target.headers.iter().chain(r.headers.iter()) {
        let name = http::HeaderName::from_bytes(k.as_bytes())
            .map_err(|e| err(format!("header {k}: {e}")))?;
        let value = http::HeaderValue::from_str(v).map_err(|e| err(format!("header {k}: {e}")))?;
        headers.insert(name, value);
    }
    if r.body.is_some() && !headers.contains_key(http::header::CONTENT_TYPE) {
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
    }
    let path =
        Template::compile_in(r.path.get_ref(), gens, scope).map_err(|e| err(e.to_string()))?;
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
    let body = r
        .body
        .as_ref()
        .map(|b| Template::compile_in(b.get_ref(), gens, scope))
        .transpose()
        .map_err(|e| err(e.to_string()))?;
    let mut data_sets: Vec<usize> = path.data_sets().collect();
    data_sets.extend(body.iter().flat_map(|b| b.data_sets()));
    data_sets.sort_unstable();
    data_sets.dedup();
    let feeds = feeds(s, &r.name);
    Ok(PreparedRequest {
        keep_body: (!feeds.is_empty() || checks.iter().any(Check::needs_body)).then_some(max_body),
        feeds,
        checks,
        max_redirects: r.max_redirects.unwrap_or(s.target.max_redirects),
        name: r.name.clone(),
        method: r
            .method
            .parse()
            .map_err(|_| err(format!("bad method {}", r.method)))?,
        path,
        fixed_uri,
        body,
        headers,
        timeout: r.timeout.unwrap_or(s.target.timeout).0,
        expect: r.expect_status.clone(),
        data_sets,
    })
}

/// Judges and records every check of `r` on `a`: whether a failed one has `fail_request`, and
/// each check's result.
fn judge_checks(
    recorder: &Recorder,
    r: &PreparedRequest,
    a: &Answer<'_>,
    json: Option<&serde_json::Value>,
    want: Want,
) -> (bool, Vec<bool>) {
    let results: Vec<(&str, bool)> = r
        .checks
        .iter()
        .map(|c| (c.name.as_str(), c.passes(a, json)))
        .collect();
    if want.records_checks() {
        recorder.record_checks(&results);
    }
    let fail = r
        .checks
        .iter()
        .zip(&results)
        .any(|(c, (_, passed))| c.fail_request && !passed);
    (fail, results.into_iter().map(|(_, p)| p).collect())
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
fn record_failed(
    recorder: &Recorder,
    r: &PreparedRequest,
    kind: ErrorKind,
    latency: Duration,
    want: Want,
) {
    recorder.record(&r.name, Outcome::failed(kind, latency));
    if want.records_checks() {
        fail_checks(recorder, r);
    }
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

/// The declared metrics that take a value from each response of request `name`.
fn feeds(s: &Scenario, name: &str) -> Vec<Feed> {
    s.metrics
        .iter()
        .filter(|(_, m)| m.request.get_ref() == name)
        .filter_map(|(metric, m)| {
            Some(Feed {
                metric: metric.clone(),
                kind: m.kind,
                // Validation parsed it already.
                path: serde_json_path::JsonPath::parse(m.value.as_ref()?.get_ref()).ok()?,
            })
        })
        .collect()
}

/// Records each declared metric's value from a response: a number (or a numeric string) for
/// trends and gauges; for rates also true/false. A response without it adds no sample to a
/// trend or gauge; a rate's total is every sample of its request, so a response without the
/// value (or without a JSON body, or no response at all) counts as a fail.
fn feed(recorder: &Recorder, feeds: &[Feed], json: &serde_json::Value) {
    for f in feeds {
        let value = match f.path.query(json).first() {
            Some(serde_json::Value::Number(n)) => n.as_f64(),
            Some(serde_json::Value::Bool(b)) if f.kind == CustomKind::Rate => {
                Some(f64::from(u8::from(*b)))
            }
            Some(serde_json::Value::String(t)) => {
                t.trim().parse::<f64>().ok().filter(|v| v.is_finite())
            }
            _ => None,
        };
        match (f.kind, value) {
            (CustomKind::Rate, Some(v)) if v != 0.0 => recorder.record_pass(&f.metric),
            (CustomKind::Gauge, Some(v)) => recorder.set_declared_gauge(&f.metric, v),
            (_, Some(v)) => recorder.record_value(&f.metric, v),
            (_, None) => {}
        }
    }
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
