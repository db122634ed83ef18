//! One run, scenario to verdict. [`run`] is the short driver: prepare the scenario, load every
//! plugin, check the target answers, then hand over to [`live::Run`], which owns the run while
//! it goes (start, a tick each second, finish). Whatever ends the run, every fault applied is
//! rolled back and a report is written.

mod hub;
mod journals;
mod live;
mod merge;
mod operator;
mod preflight;
mod probes;
mod prom_alerts;
mod steady;
mod summary;
mod window_log;
mod wire;
mod worker;

pub use hub::CoordinateSpec;
pub use merge::{merge, MergeError};
pub use worker::{work, WorkerEnd, WorkerSpec};

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use crate::event::{Event, Observer};
use crate::load::{client::HttpClient, plan::LoadPlan, plan::PlanError};
use crate::metrics::{tags::RESPONSE_TAGS, Recorder, RunMetrics, TagFilter};
use crate::plugin::fault::{FaultPlugin, TickState};
use crate::plugin::{Limits, PluginError};
use crate::report::{self, console::Console, ReportError, Summary};
use crate::scenario::{expand_env, EnvError, Located, Scenario, ScenarioError, Vars};
use crate::verdict::{self, Judges};

use preflight::Refusal;
use summary::{Findings, Identity, Status};

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub scenario: PathBuf,
    /// `--set key.path=value` overrides.
    pub sets: Vec<String>,
    /// `--target`: replaces the scenario's `target.url`.
    pub target: Option<String>,
    /// Reports go to `<out_dir>/<run-id>/`.
    pub out_dir: PathBuf,
    pub time_scale: f64,
    /// Print the progress line each second on stderr.
    pub progress: bool,
    /// Values for `{env:NAME}`, consulted before the process environment.
    pub vars: Vars,
    /// `--allow-huge`: run a load over the scenario's `[limits]`.
    pub allow_huge: bool,
    /// Flips to true on a second Ctrl-C/SIGTERM: an interrupted run then stops waiting for
    /// requests in flight at once (faults are still rolled back, the report still written).
    pub hurry: Option<tokio::sync::watch::Receiver<bool>>,
    /// `--recover`: undo the faults earlier, killed runs left on this run's actuators before
    /// starting (without it such a run is refused).
    pub recover: bool,
    /// `--listen`: the live endpoint's address and token.
    pub listen: Option<crate::serve::ListenSpec>,
    /// `--segment`: the part of the run this process drives (`0:1`, the whole, by default).
    pub segment: crate::scenario::Segment,
    /// `harness coordinate`: workers drive the load; this process judges, probes and faults.
    pub coordinate: Option<CoordinateSpec>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("--time-scale must be a positive number, got {0}")]
    TimeScale(f64),
    #[error(
        "--time-scale {scale} makes the stages last {secs} s; scaled stages must last at least 1 s"
    )]
    TimeScaleTooSmall { scale: f64, secs: f64 },
    /// The same message whether the URL came from the file, `{env:…}` or `--target`.
    #[error("target `{0}` is not an http:// or https:// URL (from {1})")]
    TargetScheme(String, &'static str),
    #[error("target.url: {0} (or pass --target URL)")]
    Target(EnvError),
    #[error("{0}")]
    Plan(#[from] PlanError),
    /// A plugin refused its config, or a fault plugin needs an actuator the scenario does not
    /// name (validation errors, placed at the plugin's entry).
    #[error("{0}")]
    PluginSetup(Located),
    /// A value only its expansion shows wrong (e.g. a database URL from `{env:…}`).
    #[error("{0}")]
    Preflight(Located),
    #[error(transparent)]
    Report(#[from] ReportError),
    /// `--listen`'s port is taken (or the address is not this machine's).
    #[error(transparent)]
    Listen(#[from] crate::serve::ServeError),
    /// The coordinator's port for its workers is taken.
    #[error("cannot listen for workers on {0}: {1}")]
    Workers(std::net::SocketAddr, std::io::Error),
}

/// Why the plugins of a scenario cannot run it. Each names the scenario entry it came from.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A missing, broken or wrong-ABI plugin (the world: exit 3).
    #[error("{at}: {source}")]
    Plugin { at: String, source: PluginError },
    /// A plugin refused its config (the file: exit 2).
    #[error("{0}")]
    Config(Located),
    /// A fault plugin needs an actuator the scenario does not name.
    #[error("{0}")]
    Actuator(Located),
}

impl StartError {
    /// `source` from the `[[field]]` entry whose plugin path is at `span`.
    fn at(s: &Scenario, span: std::ops::Range<usize>, field: &str, source: PluginError) -> Self {
        let field = format!("{field}.plugin");
        match source {
            PluginError::Config { .. } => {
                StartError::Config(s.locate(span, &field, source.to_string()))
            }
            source => {
                let l = s.locate(span, &field, String::new());
                let at = format!("{}:{}:{}: {}", l.file, l.line, l.column, l.field);
                StartError::Plugin { at, source }
            }
        }
    }
}

pub struct RunOutcome {
    pub summary: Summary,
    pub dir: PathBuf,
}

/// Loads and validates a scenario with the run's overrides applied (what `validate` checks).
pub fn prepare(opts: &RunOptions) -> Result<Scenario, RunError> {
    if !(opts.time_scale > 0.0 && opts.time_scale.is_finite()) {
        return Err(RunError::TimeScale(opts.time_scale));
    }
    let mut s = Scenario::load(&opts.scenario, &opts.sets)?;
    if opts.time_scale != 1.0 {
        s.scale_time(opts.time_scale);
        let secs = s.total_duration().as_secs_f64();
        if secs < 1.0 {
            return Err(RunError::TimeScaleTooSmall {
                scale: opts.time_scale,
                secs,
            });
        }
    }
    s.check_limits(opts.allow_huge)?;
    Ok(s)
}

/// Runs a scenario until done, aborted by a threshold, or `interrupt` resolves (Ctrl-C or
/// SIGTERM), printing on the console (the progress line only when `opts.progress`).
pub async fn run(
    opts: &RunOptions,
    interrupt: impl Future<Output = ()>,
) -> Result<RunOutcome, RunError> {
    run_observed(opts, interrupt, &mut Console::new(opts.progress)).await
}

/// [`run`], telling `observer` what happens instead of printing.
pub async fn run_observed(
    opts: &RunOptions,
    interrupt: impl Future<Output = ()>,
    observer: &mut dyn Observer,
) -> Result<RunOutcome, RunError> {
    let mut base = Base::new(opts)?;
    // The port before anything else: a taken one is a usage error that sends nothing.
    let bound = opts.listen.as_ref().map(crate::serve::bind).transpose()?;
    let workers_port = match &opts.coordinate {
        Some(c) => Some((hub::bind(c).map_err(|e| RunError::Workers(c.listen, e))?, c)),
        None => None,
    };
    if let Some(b) = &bound {
        let url = format!("http://{}/", b.addr);
        let token = b.token.as_deref().filter(|_| b.generated);
        observer.event(Event::Listening { url: &url, token });
    }
    // Plugins first: a missing, broken or wrong-ABI plugin is a runtime error before any load.
    let (judges, faults) = match start_plugins(&base.scenario, opts) {
        Ok(x) => x,
        Err(StartError::Actuator(e) | StartError::Config(e)) => {
            return Err(RunError::PluginSetup(e))
        }
        Err(e @ StartError::Plugin { .. }) => {
            observer.event(Event::NotStarted {
                error: &e.to_string(),
            });
            return base.stop_early(e.to_string(), String::new());
        }
    };
    // The run directory exists from here on, so even a killed run leaves one.
    report::start_dir(&base.dir, base.scenario.source_text())?;
    let checked = match journals::guard(&base, observer).await {
        Ok(()) => preflight::check(&base).await,
        Err(e) => Err(e),
    };
    match checked {
        Ok(()) => {}
        Err(Refusal::File(e)) => return Err(RunError::Preflight(e)),
        Err(Refusal::World(reason)) => {
            observer.event(Event::NotStarted { error: &reason });
            return base.stop_early(reason, judges.evaluator.clone());
        }
    }
    let hub = match workers_port {
        None => None,
        Some((listener, spec)) => {
            observer.event(Event::AwaitingWorkers {
                addr: &spec.listen.to_string(),
                workers: spec.workers,
            });
            match hub::gather(listener, spec, &base.scenario.name).await {
                Ok(hub) => {
                    base.restart_clock(false)?;
                    Some(hub)
                }
                Err(reason) => {
                    observer.event(Event::NotStarted { error: &reason });
                    return base.stop_early(reason, judges.evaluator.clone());
                }
            }
        }
    };
    let mut run = live::Run::start(base, judges, faults, bound, hub, observer).await;
    let status = run.drive(interrupt).await;
    let status = run.teardown(status).await;
    run.finish(status).await
}

/// What a run knows before it sends anything.
struct Base<'a> {
    opts: &'a RunOptions,
    scenario: Arc<Scenario>,
    /// The target's base URL, without a trailing slash.
    target: String,
    plan: Arc<LoadPlan>,
    run_id: String,
    /// `<out_dir>/<run_id>`.
    dir: PathBuf,
    started_at: String,
    recorder: Arc<Recorder>,
    client: HttpClient,
}

impl<'a> Base<'a> {
    fn new(opts: &'a RunOptions) -> Result<Base<'a>, RunError> {
        let scenario = Arc::new(prepare(opts)?);
        let (target, from) = match &opts.target {
            Some(t) => (t.clone(), "--target"),
            None => {
                let url = expand_env(&scenario.target.url, &opts.vars).map_err(RunError::Target)?;
                (url, "target.url")
            }
        };
        if !target.starts_with("http://") && !target.starts_with("https://") {
            return Err(RunError::TargetScheme(target, from));
        }
        let target = target.trim_end_matches('/').to_owned();
        let plan = Arc::new(LoadPlan::new(&scenario, &target, opts.segment.clone())?);
        let run_id = run_id(&scenario.name);
        let filters = tag_filters(&scenario, &target).map_err(RunError::Preflight)?;
        let recorder = Arc::new(Recorder::new(&plan.names()).with_filters(filters));
        let t = &scenario.target;
        // Validation built the same TLS settings; only a file changed since can fail here.
        let client = HttpClient::new(&t.tls, &scenario.dir, t.http_version, recorder.traffic())
            .map_err(|e| RunError::Preflight(scenario.locate_key(e.field, e.message)))?;
        Ok(Base {
            opts,
            dir: opts.out_dir.join(&run_id),
            recorder,
            started_at: crate::clock::rfc3339(SystemTime::now()),
            client,
            scenario,
            target,
            plan,
            run_id,
        })
    }

    /// Second 0 is now: a new recorder, the same request names, tag filters and byte counters
    /// (a worker's, at the coordinator's t0; nothing was recorded before).
    /// A coordinator's too, once its workers are at the barrier: however long they took to
    /// dial in, its seconds and its load time count from the load, not from the wait.
    fn restart_clock(&mut self, keep_seconds: bool) -> Result<(), RunError> {
        let filters = tag_filters(&self.scenario, &self.target).map_err(RunError::Preflight)?;
        let fresh = Recorder::new(&self.plan.names())
            .with_filters(filters)
            .with_traffic(self.recorder.traffic());
        self.recorder = Arc::new(match keep_seconds {
            true => fresh.keep_seconds(),
            false => fresh,
        });
        Ok(())
    }

    fn identity(&self) -> Identity<'_> {
        Identity {
            scenario: &self.scenario,
            file: self.opts.scenario.display().to_string(),
            time_scale: self.opts.time_scale,
            run_id: &self.run_id,
            target: &self.target,
            started_at: &self.started_at,
        }
    }

    /// Writes the report of `summary` (every run that started gets one), and k6's summary of
    /// the same measurements.
    fn write(&self, summary: Summary, metrics: &RunMetrics) -> Result<RunOutcome, RunError> {
        report::write_all(&self.dir, &summary, &metrics.windows)?;
        let k6 = report::k6_summary::render(
            &self.scenario,
            metrics,
            &summary.thresholds,
            summary.elapsed_s,
        );
        report::write_json(&self.dir.join("k6-summary.json"), &k6)?;
        Ok(RunOutcome {
            summary,
            dir: self.dir.clone(),
        })
    }

    /// A run that ends before any load is sent: an error summary, the report written all the same.
    fn stop_early(&self, reason: String, evaluator: String) -> Result<RunOutcome, RunError> {
        let findings = Findings {
            evaluator,
            ..Default::default()
        };
        let metrics = self.recorder.finish();
        let summary = summary::build(&self.identity(), Status::Error(reason), &metrics, findings);
        self.write(summary, &metrics)
    }
}

fn run_id(name: &str) -> String {
    let stamp = crate::clock::file_stamp(SystemTime::now());
    let slug = crate::report::slug(name);
    format!("{slug}-{stamp}-{:04x}", fastrand::u16(..))
}

/// Loads every plugin the scenario names and passes each its config (what `validate` checks
/// too): the k6-thresholds evaluator, `[[threshold_plugins]]` and `[[faults]]`; a fault
/// plugin that would set an app fault needs `[actuators].app_faults`.
pub fn start_plugins(
    s: &Scenario,
    opts: &RunOptions,
) -> Result<(Judges, Vec<FaultPlugin>), StartError> {
    let limits = Limits::default();
    let judges = Judges::start(s, &opts.scenario, opts.time_scale, limits).map_err(|e| {
        let span = match e.index {
            Some(i) => s.threshold_plugins[i].plugin.span(),
            None => s.locate_span("thresholds"),
        };
        StartError::at(s, span, "threshold_plugins", e.source)
    })?;
    let mut faults = Vec::new();
    for spec in &s.faults {
        let path = verdict::resolve(spec.plugin.get_ref(), &opts.scenario);
        let config = verdict::config_json(spec, opts.time_scale);
        let located = |e| StartError::at(s, spec.plugin.span(), "faults", e);
        // A second instance, so the dry run leaves the real one's state untouched. A trap in
        // the dry run is the real run's to report (with its faults rolled back), except when
        // the scenario names no app fault API, where it always was an error before any load.
        let dry = FaultPlugin::start(&path, &config, limits).map_err(located)?;
        let missing = match first_missing_actuator(s, dry) {
            Ok(m) => m,
            Err(e) if s.actuators.app_faults.is_none() => return Err(located(e)),
            Err(_) => None,
        };
        if let Some((key, message)) = missing {
            let e = s.locate(spec.plugin.span(), &key, message);
            return Err(StartError::Actuator(e));
        }
        faults.push(FaultPlugin::start(&path, &config, limits).map_err(located)?);
    }
    Ok((judges, faults))
}

/// Ticks a fault plugin once a second over the planned stages, sending nothing, and describes
/// the first fault it would send to an actuator the scenario does not name: (field, message).
fn first_missing_actuator(
    s: &Scenario,
    mut p: FaultPlugin,
) -> Result<Option<(String, String)>, PluginError> {
    let planned = s.total_duration().as_secs_f64();
    let mut t = 0.0;
    while t <= planned {
        let state = TickState {
            elapsed_s: t,
            stage: summary::stage_at(s, t).0 as u32,
            ..Default::default()
        };
        for a in p.on_tick(&state)? {
            if let Some((key, what)) = missing_actuator(s, &a) {
                let name = p.name();
                return Ok(Some((
                    key,
                    format!("fault plugin {name} {what} (at {t:.0} s of the stages)"),
                )));
            }
        }
        t += 1.0;
    }
    Ok(None)
}

/// The scenario field an action needs and the scenario lacks, with what the action does.
fn missing_actuator(s: &Scenario, a: &crate::fault::action::Action) -> Option<(String, String)> {
    use crate::fault::action::Action;
    let acts = &s.actuators;
    match a {
        Action::SetAppFault { field, .. } if acts.app_faults.is_none() => Some((
            "actuators.app_faults".into(),
            format!(
                "sets app fault `{field}` but the scenario names no app fault API: add \
                 [actuators] app_faults = \"<URL of the target's fault admin endpoint>\""
            ),
        )),
        Action::Sql(f) if !acts.sql.contains_key(&f.database) => Some((
            "actuators.sql".into(),
            format!(
                "holds {} in database `{db}` but the scenario names no such database: add \
                 [actuators.sql.{db}] url = \"mysql://… or postgres://…\"",
                f.name,
                db = f.database
            ),
        )),
        Action::Process { process, .. } if !acts.processes.contains_key(process) => Some((
            "actuators.processes".into(),
            format!(
                "pauses or kills process `{process}` but the scenario names no such process: \
                 add [actuators.processes.{process}] pid_file = \"…\""
            ),
        )),
        Action::Process {
            process,
            kill: true,
            ..
        } if acts.processes[process].restart.is_empty() => Some((
            format!("actuators.processes.{process}.restart"),
            format!(
                "kills process `{process}`, which has no `restart` command to start it \
                     again at rollback"
            ),
        )),
        _ => None,
    }
}

/// One filter per tag set the thresholds ask for (and k6's default one), selecting the
/// requests whose fixed tags match (the response tags are matched per sample). A set whose
/// fixed tags match no request is refused: its count would be a 0 that judged nothing.
fn tag_filters(s: &Scenario, target: &str) -> Result<Vec<TagFilter>, Located> {
    let mut sets = s.threshold_tag_sets();
    // k6's default sub-metric, `http_req_duration{expected_response:true}` (k6-summary.json).
    let expected = vec![("expected_response".to_owned(), "true".to_owned())];
    if !sets.contains(&expected) {
        sets.push(expected);
    }
    let requests: Vec<_> = s
        .all_requests()
        .map(|r| (&r.name, s.request_tags(r, target)))
        .collect();
    let mut filters = Vec::new();
    for tags in &sets {
        let fixed: Vec<&(String, String)> = tags
            .iter()
            .filter(|(k, _)| !RESPONSE_TAGS.contains(&k.as_str()))
            .collect();
        let names: std::collections::HashSet<String> = requests
            .iter()
            .filter(|(_, own)| fixed.iter().all(|(k, v)| own.get(k) == Some(v)))
            .map(|(name, _)| (*name).clone())
            .collect();
        if names.is_empty() {
            return Err(selects_nothing(s, target, tags, &fixed));
        }
        filters.push(TagFilter::new(tags, names));
    }
    Ok(filters)
}

/// Why a tag set selects no request, with what a request of the file carries instead.
fn selects_nothing(
    s: &Scenario,
    target: &str,
    tags: &[(String, String)],
    fixed: &[&(String, String)],
) -> Located {
    let written: Vec<String> = tags.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    let example = s.all_requests().next().map(|r| {
        let own = s.request_tags(r, target);
        let shown: Vec<String> = fixed
            .iter()
            .filter_map(|(k, _)| own.get(k).map(|v| format!("{k}:{v}")))
            .collect();
        format!(" (request `{}` carries {})", r.name, shown.join(", "))
    });
    s.locate_key(
        "thresholds",
        format!(
            "the tags {{{}}} select no request{}: the gate would judge nothing",
            written.join(","),
            example.unwrap_or_default()
        ),
    )
}
