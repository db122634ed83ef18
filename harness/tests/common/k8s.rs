//! What `harness k8s render`'s manifests would start, without a cluster: every file of the
//! pods' files volume (ConfigMap items, and Secret items when the scenario has a private key)
//! written to `<dir>/<item path>` as the kubelet would mount it, and per pod the container's
//! argv and env with `secretKeyRef`s resolved from the Secret and the completion-index
//! `fieldRef` resolved to the worker's index. A caller maps the container's paths onto its
//! own with [`Launch::rewritten`] (`mount` → `dir`, `reports` → a temp dir, `service` → an
//! address it serves the coordinator on) and starts the commands itself.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// The documents of a YAML stream, as JSON values.
pub fn docs(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|d| Value::deserialize(d).expect("each document is YAML"))
        .collect()
}

/// The one object of `kind` whose `harness/role` label is `role` (None: any role).
pub fn find<'a>(docs: &'a [Value], kind: &str, role: Option<&str>) -> &'a Value {
    let hits: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == kind)
        .filter(|d| role.is_none_or(|r| d["metadata"]["labels"]["harness/role"] == r))
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "one {kind} with role {role:?} expected: {hits:?}"
    );
    hits[0]
}

/// A job's (only) container.
pub fn container(job: &Value) -> &Value {
    let cs = job["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    assert_eq!(cs.len(), 1, "one container per pod");
    &cs[0]
}

/// One process to start: argv (`harness …`) and its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl Launch {
    /// The value of env `name`.
    pub fn var(&self, name: &str) -> Option<&str> {
        let hit = self.env.iter().find(|(k, _)| k == name);
        hit.map(|(_, v)| v.as_str())
    }

    /// Every argv item and env value with each `from` replaced by its `to` (e.g.
    /// `[("/etc/harness", dir), ("/reports", out), ("harness-peak-coordinator:6566", addr)]`).
    pub fn rewritten(&self, pairs: &[(&str, &str)]) -> Launch {
        let map = |s: &String| {
            pairs
                .iter()
                .fold(s.clone(), |acc, (from, to)| acc.replace(from, to))
        };
        Launch {
            command: self.command.iter().map(map).collect(),
            env: self.env.iter().map(|(k, v)| (k.clone(), map(v))).collect(),
        }
    }
}

/// The manifests unpacked into a directory.
pub struct Unpacked {
    docs: Vec<Value>,
    /// Where the pods see `dir` (`/etc/harness`).
    pub mount: String,
    /// Where the pods write reports (`/reports`, an `emptyDir`).
    pub reports: String,
    /// `service-name:port`, what the workers' `--coordinator` names.
    pub service: String,
    /// The Indexed Job's completions.
    pub workers: u32,
    /// Every file written, under the `dir` given to [`unpack`].
    pub files: Vec<PathBuf>,
}

impl Unpacked {
    pub fn coordinator(&self) -> Launch {
        self.launch("coordinator", None)
    }

    /// Worker `index` (0-based, its segment), as the Indexed Job starts it.
    pub fn worker(&self, index: u32) -> Launch {
        assert!(index < self.workers, "worker {index} of {}", self.workers);
        self.launch("worker", Some(index))
    }

    fn launch(&self, role: &str, index: Option<u32>) -> Launch {
        let c = container(find(&self.docs, "Job", Some(role)));
        let command = strings(&c["command"]);
        let env = c["env"]
            .as_array()
            .expect("env")
            .iter()
            .map(|e| {
                let name = e["name"].as_str().expect("env name").to_owned();
                let value = self.env_value(e, index);
                (name, value)
            })
            .collect();
        Launch { command, env }
    }

    fn env_value(&self, e: &Value, index: Option<u32>) -> String {
        if let Some(v) = e["value"].as_str() {
            return v.to_owned();
        }
        let from = &e["valueFrom"];
        if let Some(r) = from.get("secretKeyRef") {
            let name = r["name"].as_str().expect("secret name");
            let bytes = item(&self.docs, "Secret", name, r["key"].as_str().expect("key"));
            return String::from_utf8(bytes).expect("a UTF-8 secret value");
        }
        let annotation = "metadata.annotations['batch.kubernetes.io/job-completion-index']";
        if from["fieldRef"]["fieldPath"] == annotation {
            return index
                .expect("the completion index only in the workers")
                .to_string();
        }
        panic!("env {e} is neither a value, a secret nor the completion index")
    }
}

/// Writes the files volume of the coordinator's pod (the workers' is the same) under `dir`.
pub fn unpack(yaml: &str, dir: &Path) -> Unpacked {
    let docs = docs(yaml);
    let job = find(&docs, "Job", Some("coordinator"));
    let workers = find(&docs, "Job", Some("worker"))["spec"]["completions"]
        .as_u64()
        .expect("completions") as u32;
    let spec = &job["spec"]["template"]["spec"];
    let (mut mount, mut reports, mut files) = (String::new(), String::new(), Vec::new());
    for m in container(job)["volumeMounts"]
        .as_array()
        .expect("volumeMounts")
    {
        let path = m["mountPath"].as_str().expect("mountPath").to_owned();
        let volumes = spec["volumes"].as_array().expect("volumes");
        let v = volumes
            .iter()
            .find(|v| v["name"] == m["name"])
            .expect("a mount's volume");
        if v.get("emptyDir").is_some() {
            reports = path;
            continue;
        }
        mount = path;
        for (kind, source) in sources(v) {
            let name = source["name"].as_str().expect("source name");
            for it in source["items"].as_array().expect("items") {
                let rel = it["path"].as_str().expect("item path");
                assert!(!rel.starts_with('/') && !rel.split('/').any(|p| p == ".."));
                let file = dir.join(rel);
                std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                let key = it["key"].as_str().expect("item key");
                std::fs::write(&file, item(&docs, kind, name, key)).unwrap();
                files.push(file);
            }
        }
    }
    let svc = find(&docs, "Service", None);
    let port = &svc["spec"]["ports"][0]["port"];
    let service = format!("{}:{port}", svc["metadata"]["name"].as_str().unwrap());
    Unpacked {
        docs,
        mount,
        reports,
        service,
        workers,
        files,
    }
}

/// A files volume's sources as (kind, source): a projected volume's, or a plain one.
fn sources(v: &Value) -> Vec<(&'static str, &Value)> {
    if let Some(c) = v.get("configMap") {
        return vec![("ConfigMap", c)];
    }
    let list = v["projected"]["sources"]
        .as_array()
        .expect("a projected volume");
    list.iter()
        .map(|s| match (s.get("configMap"), s.get("secret")) {
            (Some(c), _) => ("ConfigMap", c),
            (_, Some(s)) => ("Secret", s),
            _ => panic!("unexpected projected source {s}"),
        })
        .collect()
}

/// The bytes of `key` in the ConfigMap or Secret `name`: `data`/`stringData` as text,
/// `binaryData`/a Secret's `data` decoded from base64.
pub fn item(docs: &[Value], kind: &str, name: &str, key: &str) -> Vec<u8> {
    let obj = docs
        .iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"));
    let (text, coded) = match kind {
        "Secret" => ("stringData", "data"),
        _ => ("data", "binaryData"),
    };
    if let Some(t) = obj[text][key].as_str() {
        return t.as_bytes().to_vec();
    }
    let b64 = obj[coded][key].as_str();
    unbase64(b64.unwrap_or_else(|| panic!("{kind} {name} has no key {key}")))
}

fn strings(v: &Value) -> Vec<String> {
    let list = v.as_array().expect("a list of strings");
    list.iter()
        .map(|s| s.as_str().expect("a string").to_owned())
        .collect()
}

/// Standard base64 with padding.
pub fn unbase64(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap_or_else(|e| panic!("not base64: {e}"))
}
