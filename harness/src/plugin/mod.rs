//! The WebAssembly plugin host: thresholds and fault schedules as components that teams build
//! and ship without recompiling the harness.
//!
//! Why it is built this way: a plugin is untrusted code running inside a CI gate, so it gets
//! nothing but values — an empty linker (no WASI, no host functions), a fuel budget per call, a
//! memory cap and a wall-clock deadline — and every way it can misbehave (trap, runaway loop,
//! unbounded allocation, malformed answer, wrong ABI) becomes a [`PluginError`] naming the
//! plugin, which the run turns into exit 3 after rolling faults back. Compiled components are
//! cached on disk so a run does not pay Cranelift's compile time twice.

pub mod fault;
pub mod summary;
pub mod threshold;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder, Trap};

/// The ABI this harness speaks; components for another major version are refused.
pub const ABI_PACKAGE: &str = "harness:plugin";
pub const ABI_MAJOR: u64 = 1;
pub const ABI_VERSION: &str = "1.1.0";

/// What one plugin call may use.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wasm instructions (roughly) per call.
    pub fuel: u64,
    /// Linear memory, bytes.
    pub memory: usize,
    /// Wall clock per call.
    pub deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        // An `evaluate` over a few thousand histogram buckets costs ~10^6 instructions; 500×
        // that is room for any honest plugin and still stops a loop in well under a second.
        Limits {
            fuel: 500_000_000,
            memory: 64 << 20,
            deadline: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin {plugin}: cannot read {path}: {message}")]
    Read {
        plugin: String,
        path: PathBuf,
        message: String,
    },
    #[error("plugin {plugin}: not a WebAssembly component ({message})")]
    Invalid { plugin: String, message: String },
    #[error("plugin {plugin} targets {found}; this harness speaks {ABI_PACKAGE}@{ABI_VERSION} (major version {ABI_MAJOR}; fault plugins need 1.1) — rebuild it against plugins/wit of this harness")]
    Abi { plugin: String, found: String },
    #[error("plugin {plugin} exports {found}, not the {expected} interface a {kind} plugin needs")]
    Kind {
        plugin: String,
        kind: &'static str,
        expected: String,
        found: String,
    },
    #[error("plugin {plugin}: {call} trapped: {message}")]
    Trap {
        plugin: String,
        call: &'static str,
        message: String,
    },
    #[error("plugin {plugin}: {call} rejected its config: {message}")]
    Config {
        plugin: String,
        call: &'static str,
        message: String,
    },
    #[error("plugin {plugin}: {call} returned malformed output: {message}")]
    Malformed {
        plugin: String,
        call: &'static str,
        message: String,
    },
}

/// Per-store state: only the memory limiter.
pub struct HostState {
    limits: StoreLimits,
}

/// One engine per process, with the epoch ticker behind the wall-clock deadline.
fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut c = Config::new();
        c.wasm_component_model(true)
            .consume_fuel(true)
            .epoch_interruption(true);
        let engine = Engine::new(&c).expect("wasmtime engine config is valid");
        let ticker = engine.clone();
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || loop {
                std::thread::sleep(EPOCH_TICK);
                ticker.increment_epoch();
            })
            .expect("spawn epoch ticker");
        engine
    })
}

const EPOCH_TICK: Duration = Duration::from_millis(10);

/// A compiled, version-checked component ready to instantiate.
pub struct Loaded {
    pub name: String,
    component: Component,
}

/// Where compiled components are cached: `$HARNESS_CACHE_DIR` or `~/.cache/harness/plugins`.
fn cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("HARNESS_CACHE_DIR") {
        return Some(PathBuf::from(d).join("plugins"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/harness/plugins"))
}

/// FNV-1a: a stable content key for the cache (wasmtime itself rejects an artefact compiled by
/// another version or configuration, so a stale entry is recompiled, never trusted).
fn fnv64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Reads, compiles (or loads from cache) and ABI-checks the component at `path`.
pub fn load(
    path: &Path,
    expected_iface: &str,
    kind: &'static str,
) -> Result<Arc<Loaded>, PluginError> {
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let bytes = std::fs::read(path).map_err(|e| PluginError::Read {
        plugin: name.clone(),
        path: path.to_owned(),
        message: if e.kind() == std::io::ErrorKind::NotFound {
            "no such file (shipped plugins are built by `make plugins`)".into()
        } else {
            e.to_string()
        },
    })?;
    let invalid = |message: String| PluginError::Invalid {
        plugin: name.clone(),
        message,
    };
    if is_core_module(&bytes) {
        return Err(invalid("this is a core Wasm module; link it into a component with wasm-component-ld (see plugins/README.md)".into()));
    }
    let component = compile_cached(&bytes).map_err(|e| invalid(format!("{e:#}")))?;
    let ty = component.component_type();
    check_export(&ty, &name, expected_iface, kind)?;
    check_imports(&ty, &name)?;
    Ok(Arc::new(Loaded { name, component }))
}

/// The compiled component, from `~/.cache/harness/plugins` when this exact file was compiled
/// before (keyed by content hash and length), else compiled now and cached.
fn compile_cached(bytes: &[u8]) -> wasmtime::Result<Component> {
    let engine = engine();
    let key = format!("{:016x}-{}", fnv64(bytes), bytes.len());
    let cached = cache_dir().map(|d| d.join(format!("{key}.cwasm")));
    // SAFETY: the cache directory is written only by this function from components we
    // compiled; wasmtime verifies the artefact's engine version and configuration on load.
    let from_cache = cached
        .as_ref()
        .filter(|p| p.is_file())
        .and_then(|p| unsafe { Component::deserialize_file(engine, p) }.ok());
    if let Some(c) = from_cache {
        return Ok(c);
    }
    let c = Component::new(engine, bytes)?;
    if let (Some(p), Ok(art)) = (&cached, c.serialize()) {
        let _ = std::fs::create_dir_all(p.parent().expect("cache file has a parent"));
        let tmp = p.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&tmp, art).is_ok() {
            let _ = std::fs::rename(&tmp, p);
        }
    }
    Ok(c)
}

/// The component's `harness:plugin/<iface>@<version>` export: our major version, and the
/// interface a `kind` plugin needs.
fn check_export(
    ty: &wasmtime::component::types::Component,
    name: &str,
    expected_iface: &str,
    kind: &'static str,
) -> Result<(), PluginError> {
    let engine = engine();
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_owned()).collect();
    let Some(export) = exports
        .iter()
        .find(|n| n.starts_with(&format!("{ABI_PACKAGE}/")))
    else {
        let listed = if exports.is_empty() {
            "none".into()
        } else {
            exports.join(", ")
        };
        return Err(PluginError::Invalid {
            plugin: name.to_owned(),
            message: format!("it exports no {ABI_PACKAGE} interface (exports: {listed})"),
        });
    };
    let version = export.rsplit_once('@').map(|(_, v)| v).unwrap_or("");
    let major = version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u64>().ok());
    // 1.1 added fault-action cases, and a variant's cases are part of its type: a fault
    // schedule built against 1.0 cannot be instantiated (thresholds are unchanged).
    let fault_before_1_1 = expected_iface == "faults" && version.starts_with("1.0.");
    if major != Some(ABI_MAJOR) || fault_before_1_1 {
        let shown = if version.is_empty() {
            "(unversioned)"
        } else {
            version
        };
        return Err(PluginError::Abi {
            plugin: name.to_owned(),
            found: format!("{ABI_PACKAGE}@{shown}"),
        });
    }
    let iface = export
        .split_once('/')
        .map(|(_, r)| r.split('@').next().unwrap_or(r))
        .unwrap_or("");
    if iface != expected_iface {
        return Err(PluginError::Kind {
            plugin: name.to_owned(),
            kind,
            expected: format!("{ABI_PACKAGE}/{expected_iface}"),
            found: export.to_string(),
        });
    }
    Ok(())
}

/// The only import allowed is the ABI's own type-only `types` interface (the component model
/// imports the types an exported interface uses); anything with a function in it is a host
/// capability we do not grant.
fn check_imports(
    ty: &wasmtime::component::types::Component,
    name: &str,
) -> Result<(), PluginError> {
    let engine = engine();
    for (import, item) in ty.imports(engine) {
        let type_only = match &item.ty {
            ComponentItem::ComponentInstance(ci) => ci.exports(engine).all(|(_, e)| {
                !matches!(
                    e.ty,
                    ComponentItem::ComponentFunc(_)
                        | ComponentItem::CoreFunc(_)
                        | ComponentItem::Module(_)
                        | ComponentItem::Component(_)
                        | ComponentItem::ComponentInstance(_)
                )
            }),
            _ => false,
        };
        if !(type_only && import.starts_with(&format!("{ABI_PACKAGE}/types@"))) {
            return Err(PluginError::Invalid {
                plugin: name.to_owned(),
                message: format!(
                    "it imports `{import}`; plugins get no host functions (no WASI, no I/O)"
                ),
            });
        }
    }
    Ok(())
}

fn is_core_module(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[4..8] == [1, 0, 0, 0]
}

/// A store with the limits applied, and the empty linker.
fn store_and_linker(limits: &Limits) -> (Store<HostState>, Linker<HostState>) {
    let engine = engine();
    let state = HostState {
        limits: StoreLimitsBuilder::new()
            .memory_size(limits.memory)
            .instances(4)
            .tables(8)
            .memories(2)
            .trap_on_grow_failure(true)
            .build(),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limits);
    let mut linker = Linker::new(engine);
    // Satisfies the type-only `types` import; it defines nothing callable.
    linker
        .instance(&format!("{ABI_PACKAGE}/types@{ABI_VERSION}"))
        .expect("fresh linker");
    (store, linker)
}

/// The steps every world shares: load and check the component, instantiate it in a limited
/// store, and pass it its config. `instantiate` and `configure` are the world's bindings.
#[allow(clippy::type_complexity)]
fn start<B>(
    path: &Path,
    iface: &str,
    kind: &'static str,
    config: &str,
    limits: &Limits,
    instantiate: impl FnOnce(
        &mut Store<HostState>,
        &Component,
        &Linker<HostState>,
    ) -> wasmtime::Result<B>,
    configure: impl FnOnce(&B, &mut Store<HostState>, &str) -> wasmtime::Result<Result<(), String>>,
) -> Result<(Arc<Loaded>, Store<HostState>, B), PluginError> {
    let loaded = load(path, iface, kind)?;
    let (mut store, linker) = store_and_linker(limits);
    arm(&mut store, limits);
    let trap = |call: &'static str, e: &wasmtime::Error| PluginError::Trap {
        plugin: loaded.name.clone(),
        call,
        message: describe_trap(e, limits),
    };
    let bindings =
        instantiate(&mut store, &loaded.component, &linker).map_err(|e| trap("instantiate", &e))?;
    arm(&mut store, limits);
    match configure(&bindings, &mut store, config) {
        Ok(Ok(())) => Ok((loaded.clone(), store, bindings)),
        Ok(Err(message)) => Err(PluginError::Config {
            plugin: loaded.name.clone(),
            call: "configure",
            message,
        }),
        Err(e) => Err(trap("configure", &e)),
    }
}

/// Arms fuel and the deadline before one call.
fn arm(store: &mut Store<HostState>, limits: &Limits) {
    store.set_fuel(limits.fuel).expect("fuel is enabled");
    let ticks = (limits.deadline.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
    store.set_epoch_deadline(ticks);
}

/// A wasmtime error from a call, in words a plugin author can act on.
fn describe_trap(e: &wasmtime::Error, limits: &Limits) -> String {
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => format!(
            "ran out of fuel ({} instructions per call): a runaway loop?",
            limits.fuel
        ),
        Some(Trap::Interrupt) => format!(
            "exceeded its wall-clock deadline of {} ms",
            limits.deadline.as_millis()
        ),
        Some(Trap::UnreachableCodeReached) => {
            "hit `unreachable` (a panic inside the plugin)".into()
        }
        _ => {
            let text = format!("{e:#}");
            if text.contains("memory") && (text.contains("grow") || text.contains("limit")) {
                format!(
                    "exceeded its memory limit of {} MiB ({text})",
                    limits.memory >> 20
                )
            } else {
                text
            }
        }
    }
}

/// Wall time spent in one plugin's calls (µs), for the report and the benchmark.
#[derive(Debug, Default, Clone, Copy, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct CallStats {
    pub calls: u64,
    pub total_us: f64,
    pub max_us: f64,
}

impl CallStats {
    fn add(&mut self, d: Duration) {
        let us = d.as_secs_f64() * 1e6;
        self.calls += 1;
        self.total_us += us;
        self.max_us = self.max_us.max(us);
    }
}
