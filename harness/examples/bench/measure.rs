//! How every row is measured: generators pinned to core 1 (the server to core 0); requests
//! counted at the server over an interval the bench times itself, the same for every tool; CPU
//! from the generator's own rusage (wait4); RSS from /proc while it runs.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The counting window opens this long after the server sees a generator's first request
/// (connections are up, VUs started) …
pub const WARM: Duration = Duration::from_secs(1);
/// … and lasts this long. Every generator is told to run [`RUN_SECS`], which covers both.
pub const WINDOW: Duration = Duration::from_secs(5);
pub const RUN_SECS: u64 = 7;

/// One generator process, start to exit.
pub struct Measured {
    /// user + sys CPU seconds of the generator (and its threads).
    pub cpu: f64,
    pub stdout: String,
    /// Peak RSS (rusage), KiB.
    pub max_rss_kb: u64,
}

/// A generator run counted at the server.
pub struct Counted {
    /// Requests the server answered per second inside the window.
    pub rate: f64,
    /// Requests answered inside the window, and the generator's CPU seconds (all threads)
    /// inside it.
    pub window_requests: f64,
    pub window_cpu: f64,
    /// The generator exited before the window closed (its figure is not comparable).
    pub short: bool,
}

impl Counted {
    /// Requests per generator CPU-second inside the window (start-up and shutdown excluded,
    /// as they are from the rate).
    pub fn per_cpu(&self) -> f64 {
        self.window_requests / self.window_cpu
    }

    /// CPU µs per request inside the window.
    pub fn cpu_us(&self) -> f64 {
        1e6 / self.per_cpu()
    }
}

pub fn pinned(core: u32, program: &str, args: &[String]) -> Command {
    let mut c = Command::new("taskset");
    c.arg("-c").arg(core.to_string()).arg(program).args(args);
    c
}

/// Runs to completion; `during(pid)` runs on this thread while the generator does.
pub fn measure(mut cmd: Command, during: impl FnOnce(u32)) -> Measured {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn generator");
    let pid = child.id();
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        out.read_to_string(&mut s).ok();
        s
    });
    during(pid);
    let mut status = 0;
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting on our own child; rusage is a plain out-parameter.
    unsafe { libc::wait4(pid as i32, &mut status, 0, &mut ru) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    std::mem::forget(child);
    Measured {
        cpu: secs(ru.ru_utime) + secs(ru.ru_stime),
        stdout: reader.join().unwrap(),
        max_rss_kb: ru.ru_maxrss as u64,
    }
}

/// Runs `cmd` and counts its requests at `server` over [`WINDOW`], opened [`WARM`] after the
/// first request arrives.
pub fn counted(cmd: Command, server: &Server) -> Counted {
    let before = server.answered();
    let (mut requests, mut secs, mut cpu, mut short) = (0.0, 1.0, 0.0, true);
    measure(cmd, |pid| {
        if !server.wait_for(before + 1, Duration::from_secs(30)) {
            return;
        }
        std::thread::sleep(WARM);
        let (c1, t1, cpu1) = (server.answered(), Instant::now(), cpu_secs(pid));
        std::thread::sleep(WINDOW);
        let (c2, t2, cpu2) = (server.answered(), Instant::now(), cpu_secs(pid));
        requests = (c2 - c1) as f64;
        secs = (t2 - t1).as_secs_f64();
        cpu = cpu2 - cpu1;
        short = !alive(pid);
    });
    Counted {
        rate: requests / secs,
        window_requests: requests,
        window_cpu: cpu,
        short,
    }
}

/// CPU seconds the process's threads have run so far (schedstat, nanoseconds).
pub fn cpu_secs(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    let ns: u64 = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    ns as f64 / 1e9
}

/// Still running (not exited and waiting to be reaped)?
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()
                .map(|r| !r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

pub fn rss_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The trivial server, pinned to core 0, and its request counter.
pub struct Server {
    child: Child,
    /// `host:port` it serves on.
    pub addr: String,
    stats: String,
}

impl Server {
    /// Starts `bin` with `args`; it prints its address, then its stats address.
    pub fn start(bin: &str, args: &[String]) -> Server {
        let mut child = pinned(0, bin, args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start trivial server");
        let mut lines = BufReader::new(child.stdout.take().unwrap());
        let mut line = || {
            let mut l = String::new();
            lines.read_line(&mut l).unwrap();
            l.trim().to_owned()
        };
        let (addr, stats) = (line(), line());
        Server { child, addr, stats }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Requests answered so far.
    pub fn answered(&self) -> u64 {
        let mut s = String::new();
        TcpStream::connect(&self.stats)
            .and_then(|mut c| c.read_to_string(&mut s))
            .expect("server stats");
        s.trim().parse().expect("a count")
    }

    /// Polls until `n` requests were answered; false after `limit`.
    pub fn wait_for(&self, n: u64, limit: Duration) -> bool {
        let started = Instant::now();
        while self.answered() < n {
            if started.elapsed() > limit {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn which(name: &str) -> Option<String> {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
        .map(|p| p.display().to_string())
}
