//! The open-model executor (k6's `constant-arrival-rate` and `ramping-arrival-rate`): arrival
//! n — one iteration, a mix's request or a whole flow — starts at the time the stage profile
//! says, whatever the earlier responses did. Latency is measured from that intended start, so
//! a stalled server shows up as latency instead of as silently fewer requests (no coordinated
//! omission). An arrival that finds `max_in_flight` iterations (k6's `maxVUs`) already running
//! is not started and counts as a dropped iteration. Arrivals leave at their due time, or
//! gathered to the timer's 1 ms quantum above 1,000/s (`timer.rs`), and their latency counts
//! from that time: no lag of the generator's own timer.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::control::{Pace, Setting};
use super::flow::VuState;
use super::schedule::Profile;
use super::timer::Pacer;
use super::{Executor, LoadCtx, LoadError};
use crate::scenario::{Segment, Stage};

pub struct ArrivalRate {
    profile: Profile,
    /// This segment's share of `maxVUs`.
    max_in_flight: u32,
    /// Arrival n of the whole run's schedule leaves here only when this segment owns it.
    segment: Segment,
}

impl ArrivalRate {
    /// Rates are per `time_unit` (k6's `timeUnit`, usually 1 s).
    pub fn new(
        start_rate: u32,
        stages: &[Stage],
        max_in_flight: u32,
        time_unit: Duration,
        segment: Segment,
    ) -> ArrivalRate {
        ArrivalRate {
            profile: Profile::new(start_rate, stages).per(time_unit.as_secs_f64()),
            max_in_flight: (segment.share(u64::from(max_in_flight)) as u32).max(1),
            segment,
        }
    }

    async fn drive(&self, ctx: LoadCtx) -> Result<(), LoadError> {
        let permits = Arc::new(Semaphore::new(self.max_in_flight as usize));
        let mut pacer = Pacer::default();
        let start = tokio::time::Instant::now();
        let mut stop = ctx.stop.clone();
        let mut control = ctx.shared.control(ctx.workload).watch();
        let mut pace = Pace::default();
        let mut last_second = u64::MAX;
        let mut n: u64 = 0;
        let spawner = Spawner::new(&ctx);
        let end = tokio::time::sleep_until(start + Duration::from_secs_f64(self.profile.total()));
        tokio::pin!(end);
        loop {
            if ctx.halted() {
                break;
            }
            let setting = *control.borrow_and_update();
            if setting != pace.setting() {
                let now = start.elapsed().as_secs_f64();
                self.follow(setting, now, &mut pace, &mut n);
                pacer.forget();
                self.publish(&ctx, &pace, now, &permits);
            }
            let Some(next) = self.next_arrival(&pace, &mut n) else {
                break;
            };
            let Some(at) = next else {
                // Paused, or a rate of 0: nothing leaves until the operator or the end says so.
                tokio::select! {
                    _ = control.changed() => continue,
                    _ = stop.changed() => continue,
                    _ = &mut end => break,
                }
            };
            let due = start + Duration::from_secs_f64(at);
            let intended = match pacer.ready(due) {
                Some(at) => at,
                None => tokio::select! {
                    at = pacer.wait(due) => at,
                    _ = stop.changed() => continue,
                    _ = control.changed() => continue,
                },
            };
            if at as u64 != last_second {
                last_second = at as u64;
                self.publish(&ctx, &pace, at, &permits);
            }
            match permits.clone().try_acquire_owned() {
                Err(_) => {
                    // Every permit taken: wait for one to come back (no spinning: the CPU
                    // goes to the iterations that hold them). This arrival and every other
                    // one that came due meanwhile were refused, k6's dropped iterations.
                    tokio::select! {
                        p = permits.acquire() => drop(p),
                        _ = stop.changed() => {}
                    }
                    let now = start.elapsed().as_secs_f64();
                    ctx.recorder
                        .record_dropped_n(self.refused(&mut pace, &mut n, now));
                    pacer.forget();
                    continue;
                }
                Ok(permit) => spawner.spawn(n, intended, permit),
            }
            n += 1;
            if pace.rate().is_some() {
                pace.sent();
            }
            // Behind schedule nothing above awaits: let the stop signal and the ticks in.
            if n.is_multiple_of(256) {
                tokio::task::yield_now().await;
            }
        }
        // Iterations in flight finish within their own timeouts, or are cut (gracefulStop).
        ctx.gauge("target_rate", 0.0);
        let _all = permits.acquire_many(self.max_in_flight).await;
        ctx.gauge("in_flight", 0.0);
        Ok(())
    }

    /// Takes the operator's new setting at `now`; a resume puts the schedule at its `now`.
    fn follow(&self, setting: Setting, now: f64, pace: &mut Pace, n: &mut u64) {
        if let Some(resume) = pace.change(setting, now, |t| self.arrivals_before(t)) {
            *n = (*n).max(resume);
        }
    }

    /// When the next arrival is due: Some(None) while paused or at a rate of 0, None once
    /// the stages are over.
    /// On the schedule, `n` first moves to the next arrival this segment owns.
    fn next_arrival(&self, pace: &Pace, n: &mut u64) -> Option<Option<f64>> {
        if pace.rate().is_none() {
            *n = self.segment.nth(self.segment.share(*n));
        }
        let n = *n;
        match pace.rate() {
            _ if pace.paused() => Some(None),
            None => self.profile.arrival_time(n).map(Some),
            Some(_) => Some(pace.next().filter(|at| *at < self.profile.total())),
        }
    }

    /// Skips the arrivals that came due while every permit was taken (on the schedule or at
    /// the operator's rate); returns how many were refused.
    fn refused(&self, pace: &mut Pace, n: &mut u64, now: f64) -> u64 {
        match pace.rate() {
            None => {
                let next = self.arrivals_before(now).max(*n + 1);
                let seg = &self.segment;
                seg.share(next) - seg.share(std::mem::replace(n, next))
            }
            Some(_) => {
                let sent = pace.sent_count();
                let next = pace.due_before(now).max(sent + 1);
                pace.skip_to(next);
                next - sent
            }
        }
    }

    fn arrivals_before(&self, t: f64) -> u64 {
        self.profile.arrivals_before(t)
    }

    /// The executor's gauges for the second of `t`: the rate it aims at (the operator's, 0
    /// while paused) and the iterations in flight.
    fn publish(&self, ctx: &LoadCtx, pace: &Pace, t: f64, permits: &Semaphore) {
        let rate = match pace.rate() {
            _ if pace.paused() => 0.0,
            Some(r) => r,
            None => {
                self.profile.value_at(t) * (self.segment.to.as_f64() - self.segment.from.as_f64())
            }
        };
        ctx.gauge("target_rate", rate);
        let busy = f64::from(self.max_in_flight) - permits.available_permits() as f64;
        ctx.gauge("in_flight", busy);
    }
}

/// What every iteration of this scenario shares: the context (one Arc clone per request
/// instead of cloning every field), and the VU states of flows with `once` steps (then the
/// cookies go with them; otherwise each iteration starts with an empty jar).
struct Spawner {
    ctx: Arc<LoadCtx>,
    pool: Arc<Mutex<Vec<VuState>>>,
    keep_state: bool,
}

impl Spawner {
    fn new(ctx: &LoadCtx) -> Spawner {
        Spawner {
            ctx: Arc::new(ctx.clone()),
            pool: Arc::default(),
            keep_state: ctx.plan.workloads[ctx.workload].has_once,
        }
    }

    fn spawn(&self, n: u64, due: tokio::time::Instant, permit: OwnedSemaphorePermit) {
        spawn_iteration(
            self.ctx.clone(),
            self.pool.clone(),
            self.keep_state,
            n,
            due,
            permit,
        );
    }
}

/// Starts arrival `n` (intended to start at `due`) as its own task, holding `permit` while it
/// runs.
fn spawn_iteration(
    ctx: Arc<LoadCtx>,
    pool: Arc<Mutex<Vec<VuState>>>,
    keep_state: bool,
    n: u64,
    due: tokio::time::Instant,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let intended = due.into_std();
    // Boxed: the request future is large, and spawning it by value copies it through every
    // layer of the spawn path.
    tokio::spawn(Box::pin(async move {
        let work = &ctx.plan.workloads[ctx.workload];
        let mut state = match keep_state {
            true => pool.lock().expect("pool").pop().unwrap_or_default(),
            false => VuState::default(),
        };
        let end = ctx
            .plan
            .iterate(work, &ctx, n, 0, Some(intended), &mut state)
            .await;
        ctx.ended(&end);
        if keep_state {
            // The VU keeps its cookies with its `once` login, as a k6 VU does.
            pool.lock().expect("pool").push(state);
        }
        drop(permit);
    }));
}

impl Executor for ArrivalRate {
    fn run(
        &self,
        ctx: LoadCtx,
    ) -> Pin<Box<dyn Future<Output = Result<(), LoadError>> + Send + '_>> {
        Box::pin(self.drive(ctx))
    }
}
