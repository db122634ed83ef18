//! Sub-millisecond waits for the arrival-rate executor. tokio's timer wheel ticks every 1 ms
//! and rounds each deadline up to a tick (and the reactor's epoll timeout to a whole ms), so
//! an arrival due at 1.3 ms used to leave at 2–3 ms. Latency is measured from the intended
//! start, so that lag was the generator's own and showed as latency: p50 0.8–0.9 ms at 1k/s
//! and 1.2–1.4 ms at 20k/s against a server that answered in 0.2 ms. A timerfd in the same
//! reactor wakes at the deadline, within the kernel's timer slack (50 µs by default).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::time::Instant;

/// Wakes closer together than this are merged: at rates above 1,000/s the arrivals due up to
/// a planned wake leave together at it, so a high rate costs at most 1,000 wakes a second, as
/// tokio's tick did. Their intended start is that planned wake: the schedule is the profile
/// with its arrivals gathered to the quantum, and a wake that comes late (a starved generator)
/// is still late against it.
pub const QUANTUM: Duration = Duration::from_millis(1);

/// Waits shorter than this yield instead of sleeping (see [`PreciseTimer::sleep_until`]).
pub const YIELD_BELOW: Duration = Duration::from_micros(50);

/// When each arrival leaves and what its latency is measured from.
#[derive(Default)]
pub struct Pacer {
    timer: PreciseTimer,
    /// The wake planned last; arrivals due by then leave with it.
    planned: Option<Instant>,
}

impl Pacer {
    /// The intended start of the arrival due at `due` when it may leave now (it is due, or
    /// gathered to a wake that has passed); None when it has to [`Pacer::wait`].
    pub fn ready(&self, due: Instant) -> Option<Instant> {
        let now = Instant::now();
        match self.planned {
            Some(p) if due <= p => (p <= now).then_some(p),
            _ => (due <= now).then_some(due),
        }
    }

    /// Ends the gathering to the last wake: after the in-flight bound refused arrivals, the
    /// next one leaves at its own due time. Gathered to a quantum after the last wake instead,
    /// each freed slot stayed empty up to 1 ms (as with tokio's tick): with 50 in flight the
    /// executor sent 47k/s with both its core and the server's partly idle.
    pub fn forget(&mut self) {
        self.planned = None;
    }

    /// Waits for the arrival due at `due`; returns its intended start (`due`, or the planned
    /// wake it was gathered to). One already late returns at once with its own `due`.
    pub async fn wait(&mut self, due: Instant) -> Instant {
        if let Some(p) = self.planned.filter(|p| due <= *p) {
            self.timer.sleep_until(p).await;
            return p;
        }
        if due <= Instant::now() {
            return due;
        }
        let wake = self.planned.map_or(due, |p| due.max(p + QUANTUM));
        self.planned = Some(wake);
        self.timer.sleep_until(wake).await;
        wake
    }
}

/// A one-shot timerfd registered with the runtime's reactor; falls back to tokio's timer where
/// a timerfd cannot be made.
pub struct PreciseTimer {
    fd: Option<AsyncFd<OwnedFd>>,
}

impl PreciseTimer {
    pub fn new() -> PreciseTimer {
        // SAFETY: the OwnedFd is moved into the AsyncFd and stays open while it lives.
        let register = |fd| unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) };
        PreciseTimer {
            fd: timerfd().ok().and_then(|fd| register(fd).ok()),
        }
    }

    /// Sleeps until `at` (at once when it has passed). A wait shorter than [`YIELD_BELOW`]
    /// yields to the other tasks instead: a slot freed under saturation is refilled by an
    /// arrival a few µs away, and a sleep and wake for it would cost more than the wait.
    pub async fn sleep_until(&self, at: Instant) {
        let mut now = Instant::now();
        while at > now && at - now < YIELD_BELOW {
            tokio::task::yield_now().await;
            now = Instant::now();
        }
        if at <= now {
            return;
        }
        let slept = match &self.fd {
            Some(fd) => wait(fd, at - now).await,
            None => Err(io::ErrorKind::Unsupported.into()),
        };
        if slept.is_err() {
            tokio::time::sleep_until(at).await;
        }
    }
}

impl Default for PreciseTimer {
    fn default() -> Self {
        PreciseTimer::new()
    }
}

fn timerfd() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the fd it returns is owned from here on.
    let fd = unsafe {
        libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Arms the timer `d` (> 0: zero would disarm it) from now, which also clears an expiry left
/// by a wait that was cancelled, and waits for it to fire.
async fn wait(fd: &AsyncFd<OwnedFd>, d: Duration) -> io::Result<()> {
    let spec = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: libc::timespec {
            tv_sec: d.as_secs() as libc::time_t,
            tv_nsec: d.subsec_nanos() as libc::c_long,
        },
    };
    let raw = fd.get_ref().as_raw_fd();
    // SAFETY: `raw` is our timerfd; `spec` outlives the call; no old value is asked for.
    if unsafe { libc::timerfd_settime(raw, 0, &spec, std::ptr::null_mut()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    loop {
        let mut ready = fd.readable().await?;
        // A readiness left from before the re-arm reads EAGAIN: try_io clears it, wait again.
        let read = ready.try_io(|fd| {
            let mut ticks = [0u8; 8];
            // SAFETY: reading 8 bytes into an 8-byte buffer from our own fd.
            let n = unsafe { libc::read(fd.get_ref().as_raw_fd(), ticks.as_mut_ptr().cast(), 8) };
            match n {
                8 => Ok(()),
                _ => Err(io::Error::last_os_error()),
            }
        });
        if let Ok(result) = read {
            return result;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Median lateness of 50 sleeps of 300 µs.
    async fn median_lateness<F: std::future::Future>(sleep: impl Fn(Instant) -> F) -> Duration {
        let mut late = Vec::new();
        for _ in 0..50 {
            let due = Instant::now() + Duration::from_micros(300);
            sleep(due).await;
            assert!(Instant::now() >= due, "never early");
            late.push(Instant::now() - due);
        }
        late.sort();
        late[25]
    }

    #[tokio::test]
    async fn a_wait_ends_at_its_deadline_not_at_the_next_millisecond() {
        let t = PreciseTimer::new();
        assert!(t.fd.is_some(), "timerfd available on Linux");
        // A few tries: a busy machine can make one round's medians noise, while tokio's
        // timer can never win a round against a timer that does wake at its deadline.
        let mut rounds = Vec::new();
        for _ in 0..5 {
            let precise = median_lateness(|due| t.sleep_until(due)).await;
            let tick = median_lateness(tokio::time::sleep_until).await;
            if precise * 2 < tick && precise < Duration::from_micros(400) {
                return;
            }
            rounds.push((precise, tick));
        }
        panic!("median lateness (timerfd, tokio's timer) in each round: {rounds:?}");
    }

    /// One pass of the gathering rules; None when this process was descheduled past a due
    /// time mid-pass (then the late arrival rightly leaves at once, and the pass proves
    /// nothing), so the test retries instead of failing on a busy machine.
    async fn gathering_pass() -> Option<()> {
        let mut p = Pacer::default();
        let t0 = Instant::now() + Duration::from_millis(2);
        assert_eq!(p.wait(t0).await, t0);
        let spaced = t0 + QUANTUM + Duration::from_micros(100);
        assert_eq!(p.wait(spaced).await, spaced);
        // Less than a quantum later: gathered to one quantum after the last wake, counted
        // from there.
        let close = spaced + Duration::from_micros(900);
        let wake = spaced + QUANTUM;
        // Its own due time only when it was already late on arrival (descheduled between
        // `spaced` and here); a pacer that never gathers fails every pass instead.
        let got = p.wait(close).await;
        if got == close {
            return None;
        }
        assert_eq!(got, wake);
        assert!(Instant::now() >= wake, "never before its intended start");
        assert_eq!(p.wait(close + Duration::from_micros(50)).await, wake);
        // After the bound refused arrivals, the next leaves at its own time, not a quantum on.
        p.forget();
        let refill = Instant::now() + Duration::from_micros(200);
        assert_eq!(p.wait(refill).await, refill);
        Some(())
    }

    #[tokio::test]
    async fn arrivals_a_quantum_apart_keep_their_times_and_closer_ones_share_a_wake() {
        let mut undisturbed = 0;
        for _ in 0..50 {
            if gathering_pass().await.is_some() {
                undisturbed += 1;
                break;
            }
        }
        assert_eq!(undisturbed, 1, "every pass was descheduled past a due time");
        // Already late: its own due time, at once.
        let past = Instant::now() - Duration::from_millis(5);
        let mut q = Pacer::default();
        assert_eq!(q.wait(past).await, past);
    }

    #[tokio::test]
    async fn a_cancelled_wait_does_not_end_the_next_one_early() {
        let t = PreciseTimer::new();
        let short = Instant::now() + Duration::from_millis(1);
        let _ = tokio::time::timeout(Duration::from_micros(100), t.sleep_until(short)).await;
        tokio::time::sleep(Duration::from_millis(3)).await;
        let due = Instant::now() + Duration::from_millis(5);
        t.sleep_until(due).await;
        assert!(Instant::now() >= due);
    }
}
