//! `harness` command line. Only this file turns errors into exit codes and prose.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use harness::reports::{self, Console};
use harness::{demos, exit, faults, local_stack as stack, RunError, RunOptions, StartError};

#[derive(Parser)]
#[command(
    name = "harness",
    version,
    about = "Load-and-chaos harness: real load, injected faults, a verdict CI can trust"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a scenario: drive load, watch probes, judge thresholds, write reports/<run-id>/.
    Run {
        scenario: PathBuf,
        #[command(flatten)]
        run: RunArgs,
        /// First undo faults that earlier, killed runs left on this scenario's actuators
        /// (without it the run refuses to start on top of them).
        #[arg(long)]
        recover: bool,
        /// Serve the live dashboard, /metrics, /api/run and the controls here (k6's port is
        /// 6565: --listen 127.0.0.1:6565). Off unless given.
        #[arg(long, value_name = "HOST:PORT")]
        listen: Option<std::net::SocketAddr>,
        /// Bearer token the live endpoint requires (generated and printed when --listen is not
        /// a loopback address and none is given).
        #[arg(
            long,
            env = "HARNESS_LISTEN_TOKEN",
            requires = "listen",
            hide_env_values = true
        )]
        listen_token: Option<String>,
        /// Run only this execution segment of the scenario (k6's `--execution-segment`),
        /// e.g. 1/4:2/4; its windows go to windows.hlog for `harness merge`.
        #[arg(long, value_name = "FROM:TO")]
        segment: Option<String>,
        /// Every segment of the run, e.g. 0,1/4,2/4,3/4,1 [default: 0,FROM,TO,1].
        #[arg(long, value_name = "POINTS", requires = "segment")]
        segment_sequence: Option<String>,
    },
    /// Coordinate a distributed run: wait for --workers workers, start them at one t0, merge
    /// their windows each second, judge thresholds, run probes, alerts and faults (once).
    Coordinate {
        scenario: PathBuf,
        #[arg(long)]
        workers: u64,
        /// Where workers dial in.
        #[arg(long, default_value = "0.0.0.0:6566", value_name = "HOST:PORT")]
        listen: std::net::SocketAddr,
        /// The bearer token every worker must present.
        #[arg(long, env = "HARNESS_COORDINATOR_TOKEN", hide_env_values = true)]
        token: String,
        /// Seconds the start barrier waits for every worker (then exit 3, report written).
        #[arg(long, default_value_t = 120)]
        ready_timeout: u64,
        /// Also serve the live dashboard and /metrics here.
        #[arg(long = "live", value_name = "HOST:PORT")]
        live: Option<std::net::SocketAddr>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Drive one worker's segment of a distributed run for the coordinator at --coordinator.
    Worker {
        scenario: PathBuf,
        /// The coordinator's HOST:PORT.
        #[arg(long)]
        coordinator: String,
        /// This worker's index, 0-based (Kubernetes sets JOB_COMPLETION_INDEX in an Indexed Job).
        #[arg(long, env = "JOB_COMPLETION_INDEX")]
        index: u64,
        #[arg(long)]
        workers: u64,
        #[arg(long, env = "HARNESS_COORDINATOR_TOKEN", hide_env_values = true)]
        token: String,
        /// Seconds to keep dialling the coordinator.
        #[arg(long, default_value_t = 120)]
        ready_timeout: u64,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Rebuild one run from its workers' directories (windows.hlog, windows.jsonl): summary,
    /// thresholds and reports as one process fed the same samples would write them.
    Merge {
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        /// The scenario file, when its threshold plugins are relative to it [default: the
        /// first directory's scenario.toml].
        #[arg(long)]
        scenario: Option<PathBuf>,
    },
    /// The main job: for each preset start the local stack, run ST-001 and peak through it, stop
    /// it; print the verdicts and the incident reproduction table. Exit 0 when the incident
    /// preset fails and the remediated one passes, as they should.
    Demo {
        /// Scenarios to run on each preset.
        #[arg(long = "scenario", default_values = ["scenarios/st-001.toml", "scenarios/peak.toml"])]
        scenarios: Vec<PathBuf>,
        /// Scenarios run on the incident preset only, after the others: injected stand-ins for
        /// the incident's own failures (its overloaded broker).
        #[arg(long = "incident-scenario", default_values = ["scenarios/peak-broker-pause.toml"])]
        incident_scenarios: Vec<PathBuf>,
        /// Presets, each on a fresh stack.
        #[arg(long = "preset", default_values = ["incident", "remediated"])]
        presets: Vec<String>,
        /// Multiplies stage durations (1 = the incident's timeline).
        #[arg(long, default_value_t = 1.0)]
        time_scale: f64,
        #[arg(long, default_value = "reports/.stack")]
        dir: PathBuf,
        #[arg(
            long,
            env = "DATABASE_URL",
            default_value = "mysql://root@127.0.0.1:3306/test"
        )]
        database_url: String,
        #[arg(long, default_value = "harness")]
        database: String,
        #[arg(long, default_value = "reports")]
        out: PathBuf,
        /// Leave the stack running afterwards.
        #[arg(long)]
        keep: bool,
    },
    /// Re-render a run's report (--format html|md|junit), or compare two runs (A B).
    Report {
        #[arg(required = true, num_args = 1..=2)]
        runs: Vec<PathBuf>,
        /// Format to regenerate for one run.
        #[arg(long, default_value = "html")]
        format: String,
    },
    /// Run the embedded fault relay with its Toxiproxy-compatible API until Ctrl-C.
    Proxy {
        /// Address of the HTTP API (Toxiproxy's default port is 8474).
        #[arg(long, default_value = "127.0.0.1:8474")]
        listen: String,
    },
    /// Check scenario files without sending any traffic.
    Validate {
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Accept a load over the scenario's [limits].
        #[arg(long)]
        allow_huge: bool,
    },
    /// Faults a killed run left behind (every run journals its faults to faults.jsonl).
    Faults {
        #[command(subcommand)]
        action: FaultsCmd,
    },
    /// Holds database sessions for a sql-lock or sql-connections fault until SIGTERM (started
    /// by a run; not for direct use).
    #[command(hide = true)]
    FaultAgent {
        #[arg(long)]
        token: String,
        #[arg(long)]
        spec: String,
    },
    /// Manage the local stack (MariaDB, PostgreSQL, broker, target app) on 127.0.0.1.
    Stack {
        #[command(subcommand)]
        action: StackCmd,
        /// Where the state file and logs live.
        #[arg(long, global = true, default_value = "reports/.stack")]
        dir: PathBuf,
    },
    /// Kubernetes manifests for a distributed run (coordinator Job and Service, workers as an
    /// Indexed Job, the scenario's files in a ConfigMap, the token in a Secret).
    K8s {
        #[command(subcommand)]
        cmd: K8sCmd,
    },
}

/// The flags `run`, `coordinate` and `worker` share.
#[derive(clap::Args)]
struct RunArgs {
    /// Base URL of the target (overrides the scenario's target.url).
    #[arg(long)]
    target: Option<String>,
    /// Override a scenario value, e.g. --set executor.max_in_flight=200 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Directory for run reports.
    #[arg(long, default_value = "reports")]
    out: PathBuf,
    /// Multiply every stage duration (and alert `for`, drain timeout) by this factor.
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// No progress line.
    #[arg(long)]
    quiet: bool,
    /// Run a load over the scenario's [limits] (rate, VUs, duration).
    #[arg(long)]
    allow_huge: bool,
}

impl RunArgs {
    fn options(self, scenario: PathBuf) -> RunOptions {
        RunOptions {
            scenario,
            sets: self.sets,
            target: self.target,
            out_dir: self.out,
            time_scale: self.time_scale,
            progress: !self.quiet,
            vars: Default::default(),
            allow_huge: self.allow_huge,
            hurry: None,
            recover: false,
            listen: None,
            segment: Default::default(),
            coordinate: None,
        }
    }
}

#[derive(Subcommand)]
enum K8sCmd {
    /// Print the manifests as one YAML stream (`kubectl apply -f -`); prints nothing on error.
    Render {
        scenario: PathBuf,
        /// Worker pods (the Indexed Job's completions and parallelism).
        #[arg(long)]
        workers: u32,
        /// Image with the harness binary and its plugins (see Containerfile).
        #[arg(long)]
        image: String,
        /// Prefix of the objects' names [default: harness-<scenario file stem>].
        #[arg(long)]
        name: Option<String>,
        /// Namespace of every object [default: none, kubectl's current one].
        #[arg(long)]
        namespace: Option<String>,
        /// CPU request and limit of each container.
        #[arg(long, default_value = "1")]
        cpu: String,
        /// Memory request and limit of each container.
        #[arg(long, default_value = "512Mi")]
        memory: String,
        /// The coordinator's bearer token [default: 32 random hex digits].
        #[arg(long, env = "HARNESS_COORDINATOR_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// The coordinator's port.
        #[arg(long, default_value_t = 6566)]
        port: u16,
        /// NAME=VALUE set in both containers, for the scenario's {env:NAME} (repeatable).
        #[arg(long = "env", value_name = "NAME=VALUE")]
        env: Vec<String>,
        /// Passed to the coordinator and the workers, as `harness run` takes it.
        #[arg(long, default_value_t = 1.0)]
        time_scale: f64,
        /// Passed to the coordinator and the workers (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
}

#[derive(Subcommand)]
enum FaultsCmd {
    /// Undo every fault a killed run left in force (toxics, app faults, paused or killed
    /// processes, database lock sessions), from the runs' fault journals.
    Recover {
        /// Run directories (or directories of runs); default: every run under --out.
        run_dirs: Vec<PathBuf>,
        #[arg(long, default_value = "reports")]
        out: PathBuf,
    },
    /// List the runs whose journals have faults not rolled back.
    Status {
        #[arg(long, default_value = "reports")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum StackCmd {
    /// Start MariaDB and PostgreSQL (each existing or private), broker and target app;
    /// idempotent. Writes a pid file per started process under `<dir>/pids/`.
    Up {
        /// Server tried first; a private mariadbd starts when it does not answer.
        #[arg(
            long,
            env = "DATABASE_URL",
            default_value = "mysql://root@127.0.0.1:3306/test"
        )]
        database_url: String,
        /// Database the target app uses on that server.
        #[arg(long, default_value = "harness")]
        database: String,
        /// PostgreSQL tried first; a private one (Debian's postgresql binaries) starts when it
        /// does not answer within 3 s.
        #[arg(
            long,
            env = "POSTGRES_URL",
            default_value = "postgres://postgres@127.0.0.1:5432/test"
        )]
        postgres_url: String,
        #[arg(long, default_value = "incident")]
        preset: String,
        /// Only the database and broker (the tests start their own app).
        #[arg(long)]
        no_app: bool,
        /// Extra flags passed to target-app, e.g. --app-arg=--external-call-ms=200
        #[arg(long = "app-arg", allow_hyphen_values = true)]
        app_args: Vec<String>,
        /// Rule files the stack's Prometheus evaluates (repeatable; default
        /// scenarios/alerts/incident.rules.yml when run from the repo).
        #[arg(long = "prometheus-rules", value_name = "FILE")]
        prometheus_rules: Vec<PathBuf>,
    },
    /// Stop everything the stack started and remove its files.
    Down,
    /// Show each component and whether it runs.
    Status,
    /// Print `export` lines (HARNESS_DATABASE_URL, HARNESS_POSTGRES_URL, HARNESS_KAFKA,
    /// HARNESS_TARGET_URL, …, and for process faults the pid files HARNESS_BROKER_PID_FILE,
    /// HARNESS_APP_PID_FILE, HARNESS_DEPENDENCY_PID_FILE plus HARNESS_BIN and HARNESS_STACK_DIR).
    Env,
    /// Start one part again as `up` started it (stopping it first if it still runs), record its
    /// new pid and wait until it answers. A process fault's restart command:
    /// `["{env:HARNESS_BIN}", "stack", "restart", "broker", "--dir", "{env:HARNESS_STACK_DIR}"]`.
    Restart {
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(stack::StackState::RESTARTABLE))]
        part: String,
    },
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            std::process::exit(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::PASS
            });
        }
    };
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let code = match rt.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::RUNTIME
        }
    };
    std::process::exit(code);
}

async fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        r @ Cmd::Run { .. } => Ok(run_cmd(r).await),
        c @ Cmd::Coordinate { .. } => Ok(coordinate(c).await),
        w @ Cmd::Worker { .. } => Ok(worker_cmd(w).await),
        Cmd::Merge {
            dirs,
            out,
            scenario,
        } => Ok(merge(&dirs, &out, scenario.as_deref()).await),
        Cmd::Demo {
            scenarios,
            incident_scenarios,
            presets,
            dir,
            database_url,
            database,
            out,
            time_scale,
            keep,
        } => {
            let opts = demos::DemoOptions {
                dir,
                database_url,
                database,
                out,
                scenarios,
                incident_only: incident_scenarios,
                presets,
                time_scale,
                keep,
            };
            demo(&opts).await
        }
        Cmd::Validate {
            scenarios,
            sets,
            allow_huge,
        } => Ok(validate(scenarios, sets, allow_huge)),
        Cmd::Report { runs, format } => report(runs, format),
        Cmd::Proxy { listen } => proxy(&listen).await,
        Cmd::Stack { action, dir } => stack_cmd(action, dir).await,
        Cmd::K8s { cmd } => Ok(k8s_cmd(cmd)),
        Cmd::Faults { action } => faults_cmd(action).await,
        Cmd::FaultAgent { token: _, spec } => {
            let spec: faults::AgentSpec = serde_json::from_str(&spec)
                .map_err(|e| anyhow::anyhow!("fault-agent --spec: {e}"))?;
            let log: faults::AgentLog = std::sync::Arc::new(|m| eprintln!("fault-agent: {m}"));
            Ok(faults::serve_agent(spec, interrupted(), log).await)
        }
    }
}

/// `harness run`.
async fn run_cmd(cmd: Cmd) -> i32 {
    let Cmd::Run {
        scenario,
        run,
        recover,
        listen,
        listen_token,
        segment,
        segment_sequence,
    } = cmd
    else {
        unreachable!("called with Cmd::Run")
    };
    let Some(segment) = parse_segment(segment, segment_sequence) else {
        return exit::USAGE;
    };
    let mut opts = run.options(scenario);
    opts.recover = recover;
    opts.listen = listen.map(|addr| harness::ListenSpec {
        addr,
        token: listen_token,
    });
    opts.segment = segment;
    run_and_print(opts).await
}

/// `--segment` and `--segment-sequence` (the whole run without them); None after saying why.
fn parse_segment(segment: Option<String>, sequence: Option<String>) -> Option<harness::Segment> {
    let Some(s) = segment else {
        return Some(Default::default());
    };
    harness::Segment::parse(&s, sequence.as_deref())
        .map_err(|e| eprintln!("error: --segment: {e}"))
        .ok()
}

/// `harness coordinate`: a run whose load the workers drive.
async fn coordinate(cmd: Cmd) -> i32 {
    let Cmd::Coordinate {
        scenario,
        workers,
        listen,
        token,
        ready_timeout,
        live,
        run,
    } = cmd
    else {
        unreachable!("called with Cmd::Coordinate")
    };
    let mut opts = run.options(scenario);
    opts.listen = live.map(|addr| harness::ListenSpec { addr, token: None });
    opts.coordinate = Some(harness::distributed::CoordinateSpec {
        listen,
        token,
        workers,
        ready_timeout: std::time::Duration::from_secs(ready_timeout),
    });
    run_and_print(opts).await
}

async fn worker_cmd(cmd: Cmd) -> i32 {
    let Cmd::Worker {
        scenario,
        coordinator,
        index,
        workers,
        token,
        ready_timeout,
        run,
    } = cmd
    else {
        unreachable!("called with Cmd::Worker")
    };
    let spec = harness::distributed::WorkerSpec {
        coordinator,
        token,
        index,
        workers,
        ready_timeout: std::time::Duration::from_secs(ready_timeout),
    };
    worker(run.options(scenario), spec).await
}

/// `harness worker`: its segment for the coordinator; 0 when done, 3 when the coordinator
/// could not be reached or went away (the load stopped).
async fn worker(mut opts: RunOptions, spec: harness::distributed::WorkerSpec) -> i32 {
    opts.segment = match harness::Segment::of_workers(spec.index, spec.workers) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let label = opts.segment.label();
    eprintln!(
        "worker {} of {}: segment {label}, coordinator {}",
        spec.index, spec.workers, spec.coordinator
    );
    match harness::distributed::work(&opts, &spec, interrupted()).await {
        Ok(harness::distributed::WorkerEnd::Done { dir, requests }) => {
            eprintln!(
                "worker {}: done, {requests} requests; {}",
                spec.index,
                dir.display()
            );
            exit::PASS
        }
        Ok(harness::distributed::WorkerEnd::Lost(why)) => {
            eprintln!("error: worker {}: {why}", spec.index);
            exit::RUNTIME
        }
        Ok(harness::distributed::WorkerEnd::Interrupted) => exit::INTERRUPTED,
        Err(e) => {
            eprintln!("error: {e}");
            run_error_code(&e)
        }
    }
}

/// `harness merge`: the merged run's table, as `harness run` prints it.
async fn merge(dirs: &[PathBuf], out: &std::path::Path, scenario: Option<&std::path::Path>) -> i32 {
    use harness::distributed::MergeError;
    match harness::distributed::merge(dirs, out, scenario).await {
        Ok(outcome) => {
            print!("{}", reports::table(&outcome.summary));
            println!("{}", reports::describe(&outcome.dir));
            outcome.summary.exit_code
        }
        Err(MergeError::Run(e)) => {
            eprintln!("error: {e}");
            run_error_code(&e)
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::USAGE
        }
    }
}

/// `harness k8s render`: the manifests on stdout; any error is the input's (exit 2).
fn k8s_cmd(cmd: K8sCmd) -> i32 {
    let K8sCmd::Render {
        scenario,
        workers,
        image,
        name,
        namespace,
        cpu,
        memory,
        token,
        port,
        env,
        time_scale,
        sets,
    } = cmd;
    let opts = harness::kube::RenderOptions {
        time_scale,
        sets,
        scenario,
        workers,
        image,
        name,
        namespace,
        cpu,
        memory,
        token,
        port,
        env,
    };
    match harness::kube::render(&opts) {
        Ok(yaml) => {
            print!("{yaml}");
            exit::PASS
        }
        Err(harness::kube::K8sError::Yaml(e)) => {
            eprintln!("error: cannot write YAML: {e}");
            exit::RUNTIME
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::USAGE
        }
    }
}

/// `harness proxy`: the fault relay's Toxiproxy-compatible API until Ctrl-C.
async fn proxy(listen: &str) -> anyhow::Result<i32> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let relay = faults::Relay::new();
    eprintln!(
        "fault relay API (Toxiproxy-compatible) on http://{}",
        listener.local_addr()?
    );
    faults::serve_api(listener, relay.clone(), interrupted()).await?;
    relay.shutdown();
    Ok(exit::PASS)
}

/// `harness faults recover|status`.
async fn faults_cmd(action: FaultsCmd) -> anyhow::Result<i32> {
    let (roots, undo) = match action {
        FaultsCmd::Recover { run_dirs, out } if run_dirs.is_empty() => (vec![out], true),
        FaultsCmd::Recover { run_dirs, .. } => (run_dirs, true),
        FaultsCmd::Status { out } => (vec![out], false),
    };
    let mut readings = Vec::new();
    for root in &roots {
        readings.extend(faults::unreverted(root)?);
    }
    if readings.is_empty() {
        let roots: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
        println!(
            "no fault left in force by any run under {}",
            roots.join(", ")
        );
        return Ok(exit::PASS);
    }
    let mut code = exit::PASS;
    for r in &readings {
        let dir = r.path.parent().unwrap_or(&r.path).display().to_string();
        if r.writer_alive || !undo {
            let state = match r.writer_alive {
                true => format!("run in progress, harness pid {}", r.pid),
                false => format!("harness pid {} is gone", r.pid),
            };
            println!("{dir} ({state}): {} fault(s) in force", r.open.len());
            for o in &r.open {
                println!("  - {} {} (from {})", o.kind, o.target, o.plugin);
            }
            code = if r.writer_alive { exit::RUNTIME } else { code };
            continue;
        }
        println!(
            "{dir} (harness pid {} is gone): recovering {} fault(s)",
            r.pid,
            r.open.len()
        );
        let failed = faults::recover(r).await?;
        for o in r.open.iter().rev() {
            match failed.iter().find(|(f, _)| f.id == o.id) {
                Some((_, e)) => {
                    code = exit::RUNTIME;
                    println!("  FAILED {} {}: {e}", o.kind, o.target);
                }
                None => println!("  undone {} {}", o.kind, o.target),
            }
        }
    }
    Ok(code)
}

/// `harness demo`: both tables, and exit 0 when every preset judged as the incident says it
/// should (incident runs fail their gates, remediated runs pass).
async fn demo(opts: &demos::DemoOptions) -> anyhow::Result<i32> {
    let outcome = demos::run(opts, interrupted(), &mut Console::new(true)).await?;
    println!("\n## Verdicts\n\n{}", demos::verdict_table(&outcome.runs));
    println!(
        "## The incident, reproduced\n\n{}",
        demos::reproduction_table(&outcome.runs)
    );
    println!(
        "Both tables: {}; each run's report directory is in the verdict table.",
        outcome.markdown.display()
    );
    if outcome.interrupted {
        return Ok(exit::INTERRUPTED);
    }
    let expected = outcome.runs.iter().all(|r| match r.preset.as_str() {
        "incident" => r.summary.exit_code == exit::THRESHOLDS_FAILED,
        "remediated" => r.summary.exit_code == exit::PASS,
        _ => r.summary.exit_code != exit::RUNTIME,
    });
    Ok(if expected {
        exit::PASS
    } else {
        exit::THRESHOLDS_FAILED
    })
}

/// `harness validate`: loads each scenario and its plugins, sends nothing.
fn validate(scenarios: Vec<PathBuf>, sets: Vec<String>, allow_huge: bool) -> i32 {
    let mut code = exit::PASS;
    for path in scenarios {
        let opts = RunOptions {
            scenario: path.clone(),
            sets: sets.clone(),
            target: None,
            out_dir: PathBuf::new(),
            time_scale: 1.0,
            progress: false,
            vars: Default::default(),
            allow_huge,
            hurry: None,
            recover: false,
            listen: None,
            segment: Default::default(),
            coordinate: None,
        };
        let s = match harness::prepare(&opts) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                code = run_error_code(&e);
                continue;
            }
        };
        // Plugins are loaded and configured too: a bad path, ABI, config or actuator shows here.
        match harness::start_plugins(&s, &opts) {
            Ok((judges, faults)) => println!(
                "ok  {} ({}: {} scenario(s), {} requests, {} stages, {:.0} s, {} thresholds, {} threshold plugins, {} fault plugins; thresholds judged by {})",
                path.display(),
                s.executor_kind(),
                s.workloads.len(),
                s.all_requests().count(),
                s.workloads.iter().map(|w| w.executor.stages().len()).sum::<usize>(),
                s.total_duration().as_secs_f64(),
                s.thresholds.values().map(Vec::len).sum::<usize>(),
                s.threshold_plugins.len(),
                faults.len(),
                judges.evaluator
            ),
            Err(e) => {
                eprintln!("error: {e}");
                code = start_error_code(&e);
            }
        }
    }
    code
}

/// `harness report RUN [--format …]` re-renders one run; `harness report A B` compares two.
fn report(runs: Vec<PathBuf>, format: String) -> anyhow::Result<i32> {
    if let [a, b] = runs.as_slice() {
        let (a, b) = (reports::load_summary(a)?, reports::load_summary(b)?);
        print!("{}", reports::compare(&a, &b));
        return Ok(exit::PASS);
    }
    let format: reports::Format = match format.parse() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit::USAGE);
        }
    };
    let written = reports::regenerate(&runs[0], format)?;
    println!("wrote {}", written.display());
    Ok(exit::PASS)
}

async fn stack_cmd(action: StackCmd, dir: PathBuf) -> anyhow::Result<i32> {
    let mut console = Console::new(true);
    match action {
        StackCmd::Up {
            database_url,
            database,
            postgres_url,
            preset,
            no_app,
            app_args,
            prometheus_rules,
        } => {
            let opts = stack::UpOptions {
                dir: dir.clone(),
                database_url,
                database_name: database,
                postgres_url,
                with_app: !no_app,
                preset,
                app_args,
                prometheus_rules: match prometheus_rules.is_empty() {
                    true => stack::default_rules(),
                    false => prometheus_rules
                        .iter()
                        .map(std::path::absolute)
                        .collect::<Result<_, _>>()?,
                },
                scrape_live: stack::DEFAULT_LIVE.to_owned(),
            };
            let state = stack::up(&opts, &mut console).await?;
            for line in stack::status_lines(&state) {
                println!("{line}");
            }
            Ok(exit::PASS)
        }
        StackCmd::Down => {
            stack::down(&dir)?;
            println!("stack down");
            Ok(exit::PASS)
        }
        StackCmd::Status => match stack::StackState::load(&dir)? {
            None => {
                println!("stack is down (no {})", dir.join("state.json").display());
                Ok(exit::RUNTIME)
            }
            Some(state) => {
                for line in stack::status_lines(&state) {
                    println!("{line}");
                }
                Ok(if state.healthy() {
                    exit::PASS
                } else {
                    exit::RUNTIME
                })
            }
        },
        StackCmd::Env => {
            let state = stack::StackState::load(&dir)?
                .ok_or_else(|| stack::StackError::NotUp(dir.join("state.json")))?;
            for line in state.env_lines() {
                println!("{line}");
            }
            Ok(exit::PASS)
        }
        StackCmd::Restart { part } => {
            let state = stack::StackState::restart(&dir, &part).await?;
            for line in stack::status_lines(&state) {
                println!("{line}");
            }
            Ok(exit::PASS)
        }
    }
}

/// Runs a scenario, prints the summary table and where the report is; returns the exit code.
/// The first Ctrl-C/SIGTERM stops the run; a second tells it to stop waiting for requests.
async fn run_and_print(mut opts: RunOptions) -> i32 {
    let (hurry_tx, hurry) = tokio::sync::watch::channel(false);
    opts.hurry = Some(hurry);
    let signal = interrupted();
    let first = async move {
        signal.await;
        // Listening again only now: one signal must not count as two.
        tokio::spawn(async move {
            interrupted().await;
            let _ = hurry_tx.send(true);
        });
    };
    match harness::run(&opts, first).await {
        Ok(outcome) => {
            print!("{}", reports::table(&outcome.summary));
            println!("{}", reports::describe(&outcome.dir));
            outcome.summary.exit_code
        }
        Err(e) => {
            eprintln!("error: {e}");
            run_error_code(&e)
        }
    }
}

/// A run that could not start: a bad scenario or option is a usage error (2), a report that
/// could not be written a runtime error (3).
fn run_error_code(e: &RunError) -> i32 {
    match e {
        RunError::Scenario(_)
        | RunError::TimeScale(_)
        | RunError::TimeScaleTooSmall { .. }
        | RunError::TargetScheme(..)
        | RunError::Plan(_)
        | RunError::Target(_)
        | RunError::PluginSetup(_)
        | RunError::Preflight(_)
        | RunError::Listen(_)
        | RunError::Workers(..) => exit::USAGE,
        RunError::Report(_) => exit::RUNTIME,
    }
}

/// A plugin that cannot run is a runtime error (3); a missing actuator is a scenario error (2).
fn start_error_code(e: &StartError) -> i32 {
    match e {
        StartError::Actuator(_) | StartError::Config(_) => exit::USAGE,
        StartError::Plugin { .. } => exit::RUNTIME,
    }
}

/// Resolves on the next Ctrl-C or SIGTERM. The handlers are installed when this is called, not
/// when the future is first polled, so a signal during the preflight is kept for the run
/// (which then stops and reports) instead of killing the process.
fn interrupted() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    }
}
