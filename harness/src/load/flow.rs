//! One iteration of a scenario, whatever the executor: a mix sends one request; a flow runs
//! its steps in order — each a request whose answer may set variables (`extract`), be polled
//! until a check holds (`poll`), and be followed by a pause (`think_time`). Variables live for
//! the iteration, or for the VU when a step has `once = true`; `setup`'s are read by all.
//! A failed extraction or poll ends the iteration as failed, counted per step
//! (`iteration_failed`); it never panics and never sends an empty value on.

use std::sync::Arc;
use std::time::Instant;

use http::header::{COOKIE, SET_COOKIE};

use super::plan::{LoadPlan, Step, Want, WorkPlan};
use super::LoadCtx;
use crate::scenario::template::Env;
use crate::scenario::{DataSet, Segment};

/// The rows an iteration picked, one per data set it reads (by data set index).
#[derive(Debug, Clone, Default)]
pub struct Rows(Vec<Option<Vec<String>>>);

impl Rows {
    /// A row of each of `sets`; Err(set) when `set` has none left (`unique`).
    pub fn pick(data: &[Arc<DataSet>], sets: &[usize], seg: &Segment) -> Result<Rows, usize> {
        let mut rows = vec![None; data.len()];
        for &i in sets {
            rows[i] = Some(data[i].pick(seg).ok_or(i)?);
        }
        Ok(Rows(rows))
    }
}

impl Env for Rows {
    fn var(&self, _: &str) -> Option<&str> {
        None
    }
    fn data(&self, set: usize, column: usize) -> Option<&str> {
        self.0.get(set)?.as_ref()?.get(column).map(String::as_str)
    }
}

/// A cookie jar (k6's per-VU jar): name=value per domain and path, sent back to matching
/// requests. Expiry is honoured only as deletion (`Max-Age=0`, or an empty value).
#[derive(Debug, Clone, Default)]
pub struct Jar {
    cookies: Vec<Cookie>,
}

#[derive(Debug, Clone)]
struct Cookie {
    name: String,
    value: String,
    domain: String,
    host_only: bool,
    path: String,
}

impl Jar {
    /// Adds the `Cookie` header for the request's host and path.
    pub fn add_to<B>(&self, req: &mut http::Request<B>) {
        let host = req.uri().host().unwrap_or_default().to_ascii_lowercase();
        let path = req.uri().path().to_owned();
        let pairs: Vec<String> = self
            .cookies
            .iter()
            .filter(|c| {
                let domain = if c.host_only {
                    host == c.domain
                } else {
                    host == c.domain || host.ends_with(&format!(".{}", c.domain))
                };
                // RFC 6265 path-match: `/cart` matches `/cart` and `/cart/x`, not `/cartoon`.
                let under = path.starts_with(&c.path)
                    && (path.len() == c.path.len()
                        || c.path.ends_with('/')
                        || path.as_bytes()[c.path.len()] == b'/');
                domain && under
            })
            .map(|c| format!("{}={}", c.name, c.value))
            .collect();
        if pairs.is_empty() {
            return;
        }
        // A Cookie header the step sets itself comes first, the jar's after it.
        let own = req.headers().get(COOKIE).and_then(|v| v.to_str().ok());
        let line = match own {
            Some(own) => format!("{own}; {}", pairs.join("; ")),
            None => pairs.join("; "),
        };
        if let Ok(v) = http::HeaderValue::from_str(&line) {
            req.headers_mut().insert(COOKIE, v);
        }
    }

    /// Keeps the cookies an answer from `uri` sets.
    pub fn store(&mut self, uri: &http::Uri, headers: &http::HeaderMap) {
        for v in headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            let mut parts = v.split(';');
            let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let mut c = Cookie {
                name: name.trim().to_owned(),
                value: value.trim().to_owned(),
                domain: uri.host().unwrap_or_default().to_ascii_lowercase(),
                host_only: true,
                path: "/".to_owned(),
            };
            let mut delete = c.value.is_empty();
            for attr in parts {
                let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
                match k.trim().to_ascii_lowercase().as_str() {
                    "domain" if !v.trim().is_empty() => {
                        c.domain = v.trim().trim_start_matches('.').to_ascii_lowercase();
                        c.host_only = false;
                    }
                    "path" if v.trim().starts_with('/') => c.path = v.trim().to_owned(),
                    "max-age" => delete |= v.trim().parse::<i64>().is_ok_and(|s| s <= 0),
                    _ => {}
                }
            }
            self.cookies
                .retain(|o| !(o.name == c.name && o.domain == c.domain && o.path == c.path));
            if !delete {
                self.cookies.push(c);
            }
        }
    }
}

/// What a VU keeps between iterations: the variables of its `once` steps, whether they ran,
/// and its cookies.
#[derive(Debug, Clone, Default)]
pub struct VuState {
    vars: Vec<(String, String)>,
    once_done: bool,
    pub jar: Jar,
    /// The rows its `once` steps read (a VU logs in as one user and stays that user).
    rows: Option<Rows>,
}

/// Variables as a template sees them: the iteration's, the VU's, then setup's; data rows.
struct IterEnv<'a> {
    own: &'a [(String, String)],
    vu: &'a [(String, String)],
    setup: &'a [(String, String)],
    rows: &'a Rows,
    /// The VU's rows (its `once` steps' data sets), looked up first.
    vu_rows: Option<&'a Rows>,
}

impl Env for IterEnv<'_> {
    fn var(&self, name: &str) -> Option<&str> {
        [self.own, self.vu, self.setup]
            .iter()
            .find_map(|vars| vars.iter().rev().find(|(k, _)| k == name))
            .map(|(_, v)| v.as_str())
    }
    fn data(&self, set: usize, column: usize) -> Option<&str> {
        self.vu_rows
            .and_then(|r| r.data(set, column))
            .or_else(|| self.rows.data(set, column))
    }
}

/// How an iteration ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    Done,
    /// A step failed: its name and why.
    Failed(String, String),
    /// Data set `n` has no row left.
    Exhausted(usize),
    /// Cut off: the run stopped or the scenario's gracefulStop ran out.
    Cut,
}

impl LoadPlan {
    /// Runs iteration `n` of scenario `w` for VU `vu`, with the VU's state (a fresh one when
    /// the executor keeps none).
    pub async fn iterate(
        &self,
        w: &WorkPlan,
        ctx: &LoadCtx,
        n: u64,
        vu: u64,
        intended: Option<Instant>,
        state: &mut VuState,
    ) -> End {
        if w.flow.is_empty() {
            let done = self
                .execute(w, &ctx.client, &ctx.recorder, n, vu, intended)
                .await;
            return done.map_or_else(End::Exhausted, |()| End::Done);
        }
        let started = Instant::now(); // k6's iteration_duration: from the actual start
        let run_once = !state.once_done;
        let rows = match self.rows_for(w, state) {
            Ok(r) => r,
            Err(set) => return End::Exhausted(set),
        };
        let setup = ctx.setup_vars();
        let mut own = Vec::new();
        let mut sent = 0u64;
        let mut end = End::Done;
        let mut first = true;
        let mut once_ok = true;
        let mut stopped_at = None;
        for (i, step) in w.flow.iter().enumerate() {
            stopped_at = Some(i);
            if step.once && !run_once {
                continue;
            }
            if ctx.is_cut() {
                end = End::Cut;
                break;
            }
            let env = IterEnv {
                own: &own,
                vu: &state.vars,
                setup: &setup[..],
                rows: &rows,
                vu_rows: state.rows.as_ref(),
            };
            // Only the first request of an iteration is measured from its scheduled start.
            let from = if first { intended } else { None };
            first = false;
            let got = self
                .step(step, ctx, n, vu, from, &env, &mut state.jar, &mut sent)
                .await;
            match got {
                Ok(vars) if step.once => state.vars.extend(vars),
                Ok(vars) => own.extend(vars),
                Err(StepEnd::Failed(why)) => {
                    let name = self.requests[step.req].name.clone();
                    ctx.recorder.record_iteration_failed(&name);
                    once_ok &= !step.once;
                    end = End::Failed(name, why);
                    break;
                }
                Err(StepEnd::Cut) => {
                    once_ok &= !step.once;
                    end = End::Cut;
                    break;
                }
            }
            if !step.think.is_zero() && !ctx.pause(step.think).await {
                end = End::Cut;
                break;
            }
        }
        if run_once && once_ok && all_once_ran(w, &end, stopped_at) {
            state.once_done = true;
        }
        let took = (end != End::Cut).then(|| started.elapsed());
        ctx.recorder.record_flow_iteration(sent, took);
        end
    }

    /// This iteration's rows: the sets `once` steps read are picked once per VU (kept in
    /// `state`), the others per iteration (both lists made with the plan). Err(set): `set` has
    /// no row left.
    fn rows_for(&self, w: &WorkPlan, state: &mut VuState) -> Result<Rows, usize> {
        if !state.once_done && state.rows.is_none() {
            state.rows = Some(Rows::pick(&self.data, &w.vu_sets, &self.segment)?);
        }
        Rows::pick(&self.data, &w.iteration_sets, &self.segment)
    }

    /// One step: the request (polled if it says so), then its extractions.
    #[allow(clippy::too_many_arguments)]
    async fn step(
        &self,
        step: &Step,
        ctx: &LoadCtx,
        n: u64,
        vu: u64,
        intended: Option<Instant>,
        env: &dyn Env,
        jar: &mut Jar,
        sent: &mut u64,
    ) -> Result<Vec<(String, String)>, StepEnd> {
        let r = &self.requests[step.req];
        let polling = step.poll.as_ref().filter(|p| n.is_multiple_of(p.every));
        if step.poll.is_some() && polling.is_none() {
            return Ok(Vec::new()); // not in this iteration's sample
        }
        if let Some(var) = r.missing_var(env) {
            return Err(StepEnd::Failed(format!("variable `{var}` is not set")));
        }
        let started = Instant::now();
        let want = match polling {
            Some(_) => Want::Probe,
            None => Want::Reply,
        };
        // A poll's checks count once, on its last answer (held, or given up on).
        let record = |reply: &super::plan::Reply| record_checks(ctx, r, reply);
        let reply = loop {
            *sent += 1;
            let reply = self
                .send(
                    &ctx.client,
                    &ctx.recorder,
                    r,
                    n,
                    vu,
                    intended,
                    env,
                    Some(jar),
                    want,
                )
                .await
                .ok_or_else(|| StepEnd::Failed("no answer".into()))?;
            let Some(p) = polling else { break reply };
            if reply.checks.get(p.until).copied().unwrap_or(false) {
                record(&reply);
                if let Some(trend) = &p.trend {
                    ctx.recorder.record_trend(trend, started.elapsed());
                }
                break reply;
            }
            let left = p.timeout.saturating_sub(started.elapsed());
            // A poll given up on still counts in the trend, as at least this long: leaving it
            // out would judge only the users who got an answer.
            let trend = |ctx: &LoadCtx| {
                if let Some(t) = &p.trend {
                    ctx.recorder.record_trend(t, started.elapsed());
                }
            };
            if left.is_zero() {
                record(&reply);
                trend(ctx);
                return Err(StepEnd::Failed(format!(
                    "poll: check `{}` did not hold within {:?}",
                    r.checks[p.until].name, p.timeout
                )));
            }
            if !ctx.pause(p.interval.min(left)).await {
                record(&reply);
                trend(ctx);
                return Err(StepEnd::Cut);
            }
        };
        extract_all(step, &reply)
    }

    /// Runs `setup` (before the load) or `teardown` (after it) once; returns the variables
    /// it set, or the failed step and why.
    pub async fn run_once(
        &self,
        ctx: &LoadCtx,
        teardown: bool,
    ) -> Result<Vec<(String, String)>, (String, String)> {
        let steps = if teardown {
            &self.teardown
        } else {
            &self.setup
        };
        let setup = ctx.setup_vars();
        let mut own = Vec::new();
        let mut jar = Jar::default();
        let mut sent = 0;
        for step in steps {
            let Ok(rows) = Rows::pick(
                &self.data,
                &self.requests[step.req].data_sets,
                &self.segment,
            ) else {
                let name = self.requests[step.req].name.clone();
                return Err((name, "its data file has no row left".into()));
            };
            let env = &IterEnv {
                own: &own,
                vu: &[],
                setup: &setup[..],
                rows: &rows,
                vu_rows: None,
            };
            match self
                .step(step, ctx, 0, 0, None, env, &mut jar, &mut sent)
                .await
            {
                Ok(vars) => own.extend(vars),
                Err(StepEnd::Failed(why)) => {
                    return Err((self.requests[step.req].name.clone(), why))
                }
                Err(StepEnd::Cut) => {
                    return Err((self.requests[step.req].name.clone(), "interrupted".into()))
                }
            }
            if !step.think.is_zero() {
                tokio::time::sleep(step.think).await;
            }
        }
        ctx.recorder.record_flow_iteration(sent, None);
        Ok(own)
    }
}

enum StepEnd {
    Failed(String),
    Cut,
}

/// Whether every `once` step of the flow ran this iteration (the loop stopped after the last
/// one, or not at all): then later iterations skip them, even if a later step failed (a poll
/// timing out must not log the VU in again).
fn all_once_ran(w: &WorkPlan, end: &End, stopped_at: Option<usize>) -> bool {
    match (
        end == &End::Done,
        w.flow.iter().rposition(|st| st.once),
        stopped_at,
    ) {
        (true, _, _) | (_, None, _) => true,
        (false, Some(l), Some(at)) => at > l,
        (false, Some(_), None) => false,
    }
}

/// Records the checks of `r` as `reply` judged them.
fn record_checks(ctx: &LoadCtx, r: &super::plan::PreparedRequest, reply: &super::plan::Reply) {
    let results: Vec<(&str, bool)> = r
        .checks
        .iter()
        .zip(&reply.checks)
        .map(|(c, ok)| (c.name.as_str(), *ok))
        .collect();
    ctx.recorder.record_checks(&results);
}

/// The variables a step's extractions set from its answer; the first that finds nothing
/// ends the iteration.
fn extract_all(step: &Step, reply: &super::plan::Reply) -> Result<Vec<(String, String)>, StepEnd> {
    let mut vars = Vec::with_capacity(step.extract.len());
    for e in &step.extract {
        let value = e
            .apply(&reply.headers, reply.body.as_deref(), reply.json.as_ref())
            .map_err(|why| match reply.error {
                Some(kind) => StepEnd::Failed(format!(
                    "extract `{}`: no answer ({})",
                    e.var,
                    kind.as_str()
                )),
                None => StepEnd::Failed(format!("extract `{}`: {why}", e.var)),
            })?;
        vars.push((e.var.clone(), value));
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jar_sends_cookies_back_by_domain_and_path_and_deletes_them() {
        let mut jar = Jar::default();
        let uri: http::Uri = "http://shop.test/login".parse().unwrap();
        let mut h = http::HeaderMap::new();
        h.append(SET_COOKIE, "sid=1; Path=/".parse().unwrap());
        h.append(SET_COOKIE, "cart=2; Path=/cart".parse().unwrap());
        h.append(SET_COOKIE, "wide=3; Domain=shop.test".parse().unwrap());
        jar.store(&uri, &h);
        let sent = |u: &str, jar: &Jar| {
            let mut req = http::Request::get(u).body(()).unwrap();
            jar.add_to(&mut req);
            req.headers()
                .get(COOKIE)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(
            sent("http://shop.test/", &jar).as_deref(),
            Some("sid=1; wide=3")
        );
        assert_eq!(
            sent("http://shop.test/cart/x", &jar).as_deref(),
            Some("sid=1; cart=2; wide=3")
        );
        assert_eq!(
            sent("http://api.shop.test/", &jar).as_deref(),
            Some("wide=3")
        );
        assert_eq!(sent("http://other.test/", &jar), None);
        assert_eq!(
            sent("http://shop.test/cartoon", &jar).as_deref(),
            Some("sid=1; wide=3")
        );
        let mut del = http::HeaderMap::new();
        del.append(SET_COOKIE, "sid=; Max-Age=0; Path=/".parse().unwrap());
        jar.store(&uri, &del);
        assert_eq!(sent("http://shop.test/", &jar).as_deref(), Some("wide=3"));
    }
}
