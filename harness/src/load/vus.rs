//! The closed-model executor (k6's `constant-vus` and `ramping-vus`), driven by goose: goose
//! starts and stops virtual users along the stages; each VU loops "run one iteration (a
//! request of the mix, or the flow), think". The requests go through our client and recorder,
//! never goose's metrics, so every executor measures the same way; the VU's flow state (its
//! `once` variables, its cookie jar) is goose's per-user session data. Goose's killswitch is
//! process-wide and each attack resets it when it starts: several VU scenarios run as several
//! attacks at once, and a stop pulls the killswitch again until every attack has ended. Goose
//! plans in whole seconds, so stage durations are rounded to the second.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use goose::client::GooseClientBuilder;
use goose::config::{GooseConfiguration, GooseDefault, GooseDefaultType as _};
use goose::goose::{GooseUser, Scenario as GooseScenario, Transaction, TransactionResult};
use goose::GooseAttack;

use super::flow::VuState;
use super::{Executor, LoadCtx, LoadError};
use crate::scenario::{Segment, Stage};

pub struct Vus {
    start_vus: u32,
    stages: Vec<Stage>,
    think_time: Duration,
    pacing: Duration,
    /// This segment's VUs are its share of the run's count at every step; VU k here is the
    /// run's VU `segment.nth(k)`.
    segment: Segment,
}

impl Vus {
    pub fn new(
        start_vus: u32,
        stages: &[Stage],
        think_time: Duration,
        pacing: Duration,
        segment: Segment,
    ) -> Vus {
        Vus {
            start_vus,
            stages: stages.to_vec(),
            think_time,
            pacing,
            segment,
        }
    }

    /// A segment whose share is no VU at any step waits out the stages (goose refuses a plan
    /// of 0 users).
    async fn sit_out(&self, ctx: &LoadCtx) -> Result<(), LoadError> {
        let secs: f64 = self.stages.iter().map(|s| s.duration.0.as_secs_f64()).sum();
        let mut stop = ctx.stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs_f64(secs)) => {}
            _ = stop.wait_for(|s| *s) => {}
        }
        Ok(())
    }

    /// No VU at any step of this segment's plan.
    fn idle(&self) -> bool {
        self.test_plan()
            .split(';')
            .all(|step| step.split(',').next() == Some("0"))
    }

    /// Goose's test plan: `users,seconds;…`, one step per stage (plus the start level). A
    /// segment's ramps go in 1 s steps of its share of the run's level, so the workers' VUs
    /// sum to the run's at every second, not only at the stages' ends.
    pub fn test_plan(&self) -> String {
        let share = |n: f64| self.segment.share(n.floor() as u64);
        let mut steps = Vec::new();
        let mut level = f64::from(self.start_vus);
        if self.start_vus > 0 {
            steps.push(format!("{},0", share(level)));
        }
        for s in &self.stages {
            let secs = s.duration.0.as_secs_f64().round() as u64;
            let to = f64::from(s.target);
            match self.segment.is_whole() || secs <= 1 || to == level {
                true => steps.push(format!("{},{secs}", share(to))),
                false => steps.extend((1..=secs).map(|i| {
                    format!("{},1", share(level + (to - level) * i as f64 / secs as f64))
                })),
            }
            level = to;
        }
        // Goose holds the last level until told otherwise; k6 stops at the end of the stages.
        steps.push("0,0".to_owned());
        steps.join(";")
    }

    async fn drive(&self, ctx: LoadCtx) -> Result<(), LoadError> {
        let err = |e: goose::GooseError| LoadError::Goose(format!("{e:?}"));
        let iterations = Arc::new(AtomicU64::new(0));
        let running = Arc::new(AtomicU64::new(0));
        let (tx_ctx, tx_running) = (ctx.clone(), running.clone());
        let pacing = self.pacing;
        let transaction = Transaction::new(Arc::new(move |user: &mut GooseUser| {
            let (ctx, n) = (tx_ctx.clone(), iterations.fetch_add(1, Relaxed));
            let vu = user.weighted_users_index as u64;
            let (n, run_vu) = (tx_ctx.plan.segment.nth(n), tx_ctx.plan.segment.nth(vu));
            let running = tx_running.clone();
            Box::pin(async move {
                // Held while the operator paused it or set fewer VUs than goose runs.
                if !ctx.held(vu).await {
                    // Goose cannot end one user: a scenario whose data ran out idles to its end.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    return TransactionResult::Ok(());
                }
                let started = Instant::now();
                let work = &ctx.plan.workloads[ctx.workload];
                if user.get_session_data::<VuSession>().is_none() {
                    user.set_session_data(VuSession {
                        state: VuState::default(),
                        _running: Running::new(&running),
                    });
                }
                let session = user.get_session_data_mut::<VuSession>().expect("set above");
                let end = ctx
                    .plan
                    .iterate(work, &ctx, n, run_vu, None, &mut session.state)
                    .await;
                ctx.ended(&end);
                // Pacing: the next iteration starts `pacing` after this one started, or now.
                if let Some(rest) = pacing.checked_sub(started.elapsed()) {
                    tokio::time::sleep(rest).await;
                }
                TransactionResult::Ok(())
            })
        }))
        .set_name("mix");
        let mut scenario = GooseScenario::new("scenario").register_transaction(transaction);
        if !self.think_time.is_zero() {
            scenario = scenario
                .set_wait_time(self.think_time, self.think_time)
                .map_err(err)?;
        }
        let attack = GooseAttack::initialize_with_config(GooseConfiguration::default())
            .map_err(err)?
            // Goose builds a reqwest client per user before any user starts unless told to share
            // one; ours never uses it, and 5,000 of them held back the first request for 10-40 s.
            .set_client_builder_without_cookies(GooseClientBuilder::new().without_cookies())
            .map_err(err)?
            .register_scenario(scenario)
            .set_default(GooseDefault::Host, ctx.plan.base.as_str())
            .map_err(err)?
            .set_default(GooseDefault::TestPlan, self.test_plan().as_str())
            .map_err(err)?
            .set_default(GooseDefault::NoTelnet, true)
            .map_err(err)?
            .set_default(GooseDefault::NoPrintMetrics, true)
            .map_err(err)?
            // Goose's own metrics (which we never read) kept ≈ 35-50 bytes per iteration:
            // 6 MB over 130k requests at 50 VUs, none with them off.
            .set_default(GooseDefault::NoMetrics, true)
            .map_err(err)?
            .set_default(GooseDefault::Quiet, 1)
            .map_err(err)?;

        let (watcher, we_stopped) = watch_stop(ctx.clone(), running);
        let result = attack.execute().await;
        watcher.abort();
        ctx.gauge("vus", 0.0);
        result.map_err(err)?;
        // Goose replaces the process's SIGINT handler while it runs: a killswitch we did not
        // pull is the user's Ctrl-C.
        if goose::is_killswitch_triggered() && !we_stopped.load(Relaxed) {
            return Err(LoadError::Interrupted);
        }
        Ok(())
    }
}

/// A VU's goose session: its flow state, and its place in the running count. Goose drops the
/// session with the user when it stops one, which is what takes the VU out of the count.
#[derive(Clone)]
struct VuSession {
    state: VuState,
    _running: Running,
}

/// One VU in a count of VUs that have started iterating and not yet stopped.
struct Running(Arc<AtomicU64>);

impl Running {
    fn new(count: &Arc<AtomicU64>) -> Running {
        count.fetch_add(1, Relaxed);
        Running(count.clone())
    }
}

/// Goose's session data must be `Clone`; a copy is one more VU holding a place.
impl Clone for Running {
    fn clone(&self) -> Running {
        Running::new(&self.0)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// Publishes the running VU count every 250 ms (the VUs sending, not the plan: goose starts
/// them one by one) and forwards our stop signal to goose; the flag says whether we pulled
/// goose's killswitch.
fn watch_stop(
    gauges: LoadCtx,
    running: Arc<AtomicU64>,
) -> (
    tokio::task::JoinHandle<()>,
    Arc<std::sync::atomic::AtomicBool>,
) {
    let mut stop = gauges.stop.clone();
    let we_stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = we_stopped.clone();
    let watcher = tokio::spawn(async move {
        loop {
            let stopped = *stop.borrow();
            if stopped {
                // Again each pass: another scenario's attack starting resets the switch.
                flag.store(true, Relaxed);
                goose::trigger_killswitch("harness stop");
            } else {
                let set = gauges.shared.control(gauges.workload).get();
                let n = match (set.paused, set.vus) {
                    (true, _) => 0,
                    (false, Some(cap)) => running.load(Relaxed).min(u64::from(cap)),
                    (false, None) => running.load(Relaxed),
                };
                gauges.gauge("vus", n as f64);
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                changed = stop.changed(), if !stopped => {
                    if changed.is_err() {
                        flag.store(true, Relaxed);
                        goose::trigger_killswitch("harness stop");
                        return;
                    }
                }
            }
        }
    });
    (watcher, we_stopped)
}

impl Executor for Vus {
    fn run(
        &self,
        ctx: LoadCtx,
    ) -> Pin<Box<dyn Future<Output = Result<(), LoadError>> + Send + '_>> {
        Box::pin(async move {
            match self.idle() {
                true => self.sit_out(&ctx).await,
                false => self.drive(ctx).await,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Dur;

    #[test]
    fn stages_become_a_goose_test_plan() {
        let st = |s: u64, t: u32| Stage {
            duration: Dur(Duration::from_secs(s)),
            target: t,
        };
        let v = Vus::new(
            5,
            &[st(10, 100), st(30, 100), st(5, 0)],
            Duration::ZERO,
            Duration::ZERO,
            Segment::whole(),
        );
        assert_eq!(v.test_plan(), "5,0;100,10;100,30;0,5;0,0");
    }

    #[test]
    fn segments_share_every_second_of_a_ramp() {
        let st = |s: u64, t: u32| Stage {
            duration: Dur(Duration::from_secs(s)),
            target: t,
        };
        let plans: Vec<Vec<Vec<u64>>> = (0..3)
            .map(|i| {
                let seg = Segment::of_workers(i, 3).unwrap();
                let v = Vus::new(
                    1,
                    &[st(4, 7), st(2, 7)],
                    Duration::ZERO,
                    Duration::ZERO,
                    seg,
                );
                let plan = v.test_plan();
                plan.split(';')
                    .map(|s| s.split(',').map(|x| x.parse().unwrap()).collect())
                    .collect()
            })
            .collect();
        // Same steps everywhere; the users of each step sum to the run's level then.
        assert!(plans.iter().all(|p| p.len() == plans[0].len()));
        let levels: Vec<u64> = (0..plans[0].len())
            .map(|k| plans.iter().map(|p| p[k][0]).sum())
            .collect();
        assert_eq!(levels, vec![1, 2, 4, 5, 7, 7, 0]);
    }
}
