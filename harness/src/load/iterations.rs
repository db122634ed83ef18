//! k6's iteration-count executors on our own tasks, one per VU: `shared-iterations` (the VUs
//! take iterations from one count until it is used up, so exactly that many run) and
//! `per-vu-iterations` (each VU runs its own count). Goose cannot end one user from inside a
//! transaction nor share a count between users, so these two do not run on it. Either ends at
//! `maxDuration` at the latest.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use super::flow::{End, VuState};
use super::{Executor, LoadCtx, LoadError};
use crate::scenario::Segment;

pub struct Iterations {
    vus: u32,
    iterations: u64,
    shared: bool,
    max_duration: Duration,
    /// VU k here is the run's VU `segment.nth(k)`; a shared count's n-th iteration likewise.
    segment: Segment,
}

impl Iterations {
    pub fn shared(vus: u32, iterations: u64, max_duration: Duration, seg: Segment) -> Iterations {
        Iterations {
            vus: seg.share(u64::from(vus)) as u32,
            iterations: seg.share(iterations),
            shared: true,
            max_duration,
            segment: seg,
        }
    }

    pub fn per_vu(vus: u32, iterations: u64, max_duration: Duration, seg: Segment) -> Iterations {
        Iterations {
            vus: seg.share(u64::from(vus)) as u32,
            // Each VU runs its own count; the VUs are what is shared out.
            iterations,
            shared: false,
            max_duration,
            segment: seg,
        }
    }

    async fn drive(&self, ctx: LoadCtx) -> Result<(), LoadError> {
        let next = Arc::new(AtomicU64::new(0));
        let deadline = tokio::time::Instant::now() + self.max_duration;
        let mut vus = tokio::task::JoinSet::new();
        ctx.gauge("vus", f64::from(self.vus));
        for vu in 0..u64::from(self.vus) {
            let (ctx, next, seg) = (ctx.clone(), next.clone(), self.segment.clone());
            let (total, shared) = (self.iterations, self.shared);
            // Iteration numbers (and `{vu}`) are the whole run's, so workers never repeat one.
            let run_vu = seg.nth(vu);
            vus.spawn(Box::pin(async move {
                let mut state = VuState::default();
                let work = &ctx.plan.workloads[ctx.workload];
                for k in 0.. {
                    let local = next.fetch_add(u64::from(shared), Relaxed);
                    let n = if shared {
                        seg.nth(local)
                    } else {
                        run_vu * total + k
                    };
                    let done = if shared { local >= total } else { k >= total };
                    if done || ctx.halted() || tokio::time::Instant::now() >= deadline {
                        break;
                    }
                    // Held by the operator: waits, but never past maxDuration.
                    let held = tokio::time::timeout_at(deadline, ctx.held(vu)).await;
                    if !matches!(held, Ok(true)) {
                        break;
                    }
                    let end = ctx
                        .plan
                        .iterate(work, &ctx, n, run_vu, None, &mut state)
                        .await;
                    ctx.ended(&end);
                    if end == End::Cut {
                        break;
                    }
                }
            }));
        }
        while vus.join_next().await.is_some() {}
        ctx.gauge("vus", 0.0);
        Ok(())
    }
}

impl Executor for Iterations {
    fn run(
        &self,
        ctx: LoadCtx,
    ) -> Pin<Box<dyn Future<Output = Result<(), LoadError>> + Send + '_>> {
        Box::pin(self.drive(ctx))
    }
}
