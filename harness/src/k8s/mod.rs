//! `harness k8s render`: one scenario as Kubernetes manifests, printed by `main.rs` as one YAML
//! stream. A Secret (the coordinator's bearer token, and a TLS client key when the scenario
//! names one), a ConfigMap with every file the scenario names (`files.rs`), the coordinator's
//! Job and Service, and the workers as an Indexed Job whose completion index is the worker's
//! segment (`objects.rs`). The pods run the same `harness coordinate` / `harness worker` argv
//! any other scheduler would; nothing here talks to a cluster.

mod files;
mod objects;

use std::path::{Path, PathBuf};

use crate::scenario::{Scenario, ScenarioError};

/// Where the ConfigMap is mounted in both pods: each file sits at its path relative to the
/// common ancestor directory of the files the scenario names.
pub const MOUNT: &str = "/etc/harness";
/// The `emptyDir` the runs write their reports to (`--out`).
pub const REPORTS: &str = "/reports";
/// The image's built plugins (`Containerfile`), the pods' `HARNESS_PLUGIN_DIR` unless the
/// ConfigMap carries the default `k6-thresholds` plugin.
pub const IMAGE_PLUGINS: &str = "/opt/harness/plugins";

/// What `harness k8s render` was asked for.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    pub scenario: PathBuf,
    /// Worker pods: the Indexed Job's completions and parallelism, and every `--workers`.
    pub workers: u32,
    pub image: String,
    /// Prefix of every object's name; default `harness-<scenario file stem>`.
    pub name: Option<String>,
    /// Omitted from the objects when None (kubectl's current namespace applies).
    pub namespace: Option<String>,
    /// Requests and limits of every container (Kubernetes quantities).
    pub cpu: String,
    pub memory: String,
    /// The coordinator's bearer token; generated when None.
    pub token: Option<String>,
    /// The coordinator's port (its `--listen`, the Service's port, the workers' `--coordinator`).
    pub port: u16,
    /// `NAME=VALUE` set in both containers (the scenario's `{env:NAME}`).
    pub env: Vec<String>,
    /// `--time-scale` and `--set KEY=VALUE` for both commands, as `harness run` takes them.
    pub time_scale: f64,
    pub sets: Vec<String>,
}

impl RenderOptions {
    /// The CLI's defaults: 1 CPU and 512Mi per container, port 6566, a generated token.
    pub fn new(scenario: impl Into<PathBuf>, workers: u32, image: impl Into<String>) -> Self {
        RenderOptions {
            scenario: scenario.into(),
            workers,
            image: image.into(),
            name: None,
            namespace: None,
            cpu: "1".into(),
            memory: "512Mi".into(),
            token: None,
            port: 6566,
            env: Vec::new(),
            time_scale: 1.0,
            sets: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum K8sError {
    #[error("{0}")]
    Scenario(#[from] ScenarioError),
    #[error("--{flag}: {message}")]
    Option { flag: &'static str, message: String },
    #[error("cannot read {}, which the scenario names: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Layout { path: PathBuf, message: String },
    #[error(
        "the ConfigMap would hold {total} bytes, over Kubernetes' limit of 1 MiB (1048576 \
         bytes); largest: {largest}. Bake the plugins into the image instead (its plugins are \
         in {IMAGE_PLUGINS}; a scenario path that is absolute is not packed)"
    )]
    TooLarge { total: usize, largest: String },
    #[error("cannot write YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
}

/// The object names of one rendering.
struct Names {
    /// `harness/run` label and prefix of the rest.
    run: String,
    secret: String,
    config_map: String,
    /// The coordinator's Job and its Service.
    coordinator: String,
    workers: String,
}

/// Longest `--name`: `<name>-workers-<index>` is a pod's hostname, at most 63 characters.
const MAX_NAME: usize = 40;

/// The manifests for `opts` as one YAML stream (`---` between documents). Nothing is printed:
/// a broken scenario or option is an error and the caller prints nothing else.
pub fn render(opts: &RenderOptions) -> Result<String, K8sError> {
    let names = names(opts)?;
    check_options(opts)?;
    let env = parse_env(&opts.env)?;
    let scenario = Scenario::load(&opts.scenario, &[])?;
    let layout = files::collect(&scenario, &opts.scenario)?;
    let token = match &opts.token {
        Some(t) => t.clone(),
        None => new_token(),
    };
    let docs = objects::all(opts, &names, &layout, &token, &env);
    let mut out = String::new();
    for doc in docs {
        if !out.is_empty() {
            out.push_str("---\n");
        }
        out.push_str(&serde_yaml::to_string(&doc)?);
    }
    Ok(out)
}

fn names(opts: &RenderOptions) -> Result<Names, K8sError> {
    let run = match &opts.name {
        Some(n) => {
            let ok = regex::Regex::new("^[a-z]([-a-z0-9]*[a-z0-9])?$").expect("valid regex");
            if !ok.is_match(n) || n.len() > MAX_NAME {
                let message = format!(
                    "`{n}` is not a name for Kubernetes objects: lower-case letters, digits and \
                     '-', starting with a letter, at most {MAX_NAME} characters"
                );
                return Err(K8sError::Option {
                    flag: "name",
                    message,
                });
            }
            n.clone()
        }
        None => derived_name(&opts.scenario),
    };
    Ok(Names {
        secret: format!("{run}-secret"),
        config_map: format!("{run}-files"),
        coordinator: format!("{run}-coordinator"),
        workers: format!("{run}-workers"),
        run,
    })
}

/// `harness-<stem>`, lower-cased, anything but letters and digits as one '-'.
fn derived_name(scenario: &Path) -> String {
    let stem = scenario
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase());
    let mut name = String::from("harness");
    for part in stem
        .unwrap_or_default()
        .split(|c: char| !c.is_ascii_alphanumeric())
    {
        if !part.is_empty() {
            name.push('-');
            name.push_str(part);
        }
    }
    name.truncate(MAX_NAME);
    name.trim_end_matches('-').to_owned()
}

fn check_options(opts: &RenderOptions) -> Result<(), K8sError> {
    let bad = |flag, message: String| Err(K8sError::Option { flag, message });
    if opts.workers == 0 {
        return bad("workers", "at least one worker".into());
    }
    if opts.image.trim().is_empty() || opts.image.contains(char::is_whitespace) {
        return bad(
            "image",
            format!("`{}` is not an image reference", opts.image),
        );
    }
    let quantity = regex::Regex::new(
        r"^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$",
    )
    .expect("valid regex");
    for (flag, q) in [("cpu", &opts.cpu), ("memory", &opts.memory)] {
        if !quantity.is_match(q) {
            return bad(
                flag,
                format!("`{q}` is not a Kubernetes quantity (e.g. 500m, 2, 512Mi)"),
            );
        }
    }
    if let Some(ns) = &opts.namespace {
        let label = regex::Regex::new("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$").expect("valid regex");
        if !label.is_match(ns) || ns.len() > 63 {
            return bad(
                "namespace",
                format!("`{ns}` is not a namespace name (RFC 1123 label)"),
            );
        }
    }
    if let Some(t) = &opts.token {
        if t.is_empty() || !t.chars().all(|c| c.is_ascii_graphic()) {
            return bad("token", "printable ASCII without spaces, not empty".into());
        }
    }
    if opts.port == 0 {
        return bad("port", "a port from 1 to 65535".into());
    }
    Ok(())
}

/// Env set by the manifests themselves; `--env` may not set them too.
const OWN_ENV: [&str; 3] = [
    "HARNESS_COORDINATOR_TOKEN",
    "HARNESS_PLUGIN_DIR",
    "JOB_COMPLETION_INDEX",
];

fn parse_env(list: &[String]) -> Result<Vec<(String, String)>, K8sError> {
    let name_ok = regex::Regex::new("^[-._a-zA-Z][-._a-zA-Z0-9]*$").expect("valid regex");
    let mut out: Vec<(String, String)> = Vec::new();
    for item in list {
        let bad = |message: String| K8sError::Option {
            flag: "env",
            message: format!("`{item}`: {message}"),
        };
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| bad("NAME=VALUE expected".into()))?;
        if !name_ok.is_match(k) {
            return Err(bad(format!("`{k}` is not an environment variable name")));
        }
        if OWN_ENV.contains(&k) {
            return Err(bad(format!("{k} is set by the manifests themselves")));
        }
        if out.iter().any(|(n, _)| n == k) {
            return Err(bad(format!("{k} given twice")));
        }
        out.push((k.to_owned(), v.to_owned()));
    }
    Ok(out)
}

/// 32 hex digits from the kernel's randomness (fastrand only if /dev/urandom cannot be read).
fn new_token() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    let urandom = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if urandom.is_err() {
        fastrand::fill(&mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_derived_from_the_file_stem() {
        assert_eq!(
            derived_name(Path::new("scenarios/peak.toml")),
            "harness-peak"
        );
        assert_eq!(
            derived_name(Path::new("x/ST_001 db-lock.toml")),
            "harness-st-001-db-lock"
        );
        assert_eq!(derived_name(Path::new("x/--.toml")), "harness");
        let long = derived_name(Path::new(&format!("{}.toml", "a".repeat(90))));
        assert_eq!(long.len(), MAX_NAME);
    }

    #[test]
    fn options_are_checked_before_the_scenario_is_read() {
        let mut o = RenderOptions::new("/nonexistent.toml", 2, "img");
        o.memory = "lots".into();
        let e = render(&o).unwrap_err().to_string();
        assert!(e.starts_with("--memory: `lots`"), "{e}");
        o.memory = "1.5Gi".into();
        o.env = vec!["JOB_COMPLETION_INDEX=3".into()];
        let e = render(&o).unwrap_err().to_string();
        assert!(e.contains("set by the manifests"), "{e}");
        o.env.clear();
        o.name = Some("Bad_Name".into());
        assert!(render(&o).unwrap_err().to_string().starts_with("--name:"));
    }

    #[test]
    fn a_generated_token_is_32_hex_digits() {
        let t = new_token();
        assert_eq!(t.len(), 32);
        assert!(t.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(t, new_token());
    }
}
