//! The objects, as JSON values serde_yaml writes: Secret, ConfigMap, the coordinator's
//! Service and Job, the workers' Indexed Job. Both pods mount the ConfigMap (and the Secret's
//! key files) as one projected volume at [`MOUNT`] and write reports to an `emptyDir` at
//! [`REPORTS`]; they run as the image's non-root user under the restricted Pod Security
//! Standard.

use serde_json::{json, Value};

use super::files::{base64, Layout};
use super::{Names, RenderOptions, IMAGE_PLUGINS, MOUNT, REPORTS};

/// The Secret's key holding the coordinator's bearer token.
pub(super) const TOKEN_KEY: &str = "token";
/// The image's user (`Containerfile`).
const UID: u32 = 10001;
/// Where Kubernetes puts an Indexed Job pod's index (it also sets `JOB_COMPLETION_INDEX`).
const INDEX_ANNOTATION: &str = "metadata.annotations['batch.kubernetes.io/job-completion-index']";

/// Everything `render` prints, in apply order.
pub(super) fn all(
    opts: &RenderOptions,
    names: &Names,
    layout: &Layout,
    token: &str,
    env: &[(String, String)],
) -> Vec<Value> {
    let pod = Pod {
        opts,
        names,
        layout,
        env,
    };
    vec![
        secret(opts, names, layout, token),
        config_map(opts, names, layout),
        service(opts, names),
        pod.coordinator_job(),
        pod.worker_job(),
    ]
}

fn metadata(opts: &RenderOptions, names: &Names, name: &str, role: Option<&str>) -> Value {
    let mut m = json!({ "name": name, "labels": labels(names, role) });
    if let Some(ns) = &opts.namespace {
        m["namespace"] = json!(ns);
    }
    m
}

fn labels(names: &Names, role: Option<&str>) -> Value {
    let mut l = json!({ "app.kubernetes.io/name": "harness", "harness/run": names.run });
    if let Some(role) = role {
        l["harness/role"] = json!(role);
    }
    l
}

/// The token under `stringData`, and the scenario's private key files (text or base64).
fn secret(opts: &RenderOptions, names: &Names, layout: &Layout, token: &str) -> Value {
    let mut string_data = json!({ TOKEN_KEY: token });
    let mut data = serde_json::Map::new();
    for f in layout.files.iter().filter(|f| f.secret) {
        match f.text() {
            Some(t) => string_data[&f.key] = json!(t),
            None => {
                data.insert(f.key.clone(), json!(base64(&f.bytes)));
            }
        }
    }
    let mut s = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(opts, names, &names.secret, None),
        "type": "Opaque",
        "stringData": string_data,
    });
    if !data.is_empty() {
        s["data"] = Value::Object(data);
    }
    s
}

/// Text files under `data`, the rest (Wasm) base64 under `binaryData`.
fn config_map(opts: &RenderOptions, names: &Names, layout: &Layout) -> Value {
    let mut data = serde_json::Map::new();
    let mut binary = serde_json::Map::new();
    for f in layout.files.iter().filter(|f| !f.secret) {
        match f.text() {
            Some(t) => data.insert(f.key.clone(), json!(t)),
            None => binary.insert(f.key.clone(), json!(base64(&f.bytes))),
        };
    }
    let mut c = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(opts, names, &names.config_map, None),
        "data": data,
    });
    if !binary.is_empty() {
        c["binaryData"] = Value::Object(binary);
    }
    c
}

/// ClusterIP in front of the coordinator pod: the workers' `--coordinator`.
fn service(opts: &RenderOptions, names: &Names) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(opts, names, &names.coordinator, Some("coordinator")),
        "spec": {
            "type": "ClusterIP",
            "selector": labels(names, Some("coordinator")),
            "ports": [{
                "name": "coordinator",
                "protocol": "TCP",
                "port": opts.port,
                "targetPort": opts.port,
            }],
        },
    })
}

/// What both pods share.
struct Pod<'a> {
    opts: &'a RenderOptions,
    names: &'a Names,
    layout: &'a Layout,
    env: &'a [(String, String)],
}

impl Pod<'_> {
    fn scenario(&self) -> String {
        format!("{MOUNT}/{}", self.layout.scenario)
    }

    /// The run's own flags, the same for coordinator and workers.
    fn with_run_args(&self, command: &[String]) -> Vec<String> {
        let o = self.opts;
        let mut out = command.to_vec();
        if o.time_scale != 1.0 {
            out.extend(["--time-scale".to_owned(), o.time_scale.to_string()]);
        }
        for s in &o.sets {
            out.extend(["--set".to_owned(), s.clone()]);
        }
        out
    }

    fn coordinator_job(&self) -> Value {
        let o = self.opts;
        let command = [
            "harness".to_owned(),
            "coordinate".into(),
            self.scenario(),
            "--workers".into(),
            o.workers.to_string(),
            "--listen".into(),
            format!("0.0.0.0:{}", o.port),
            "--out".into(),
            REPORTS.into(),
        ];
        let command = self.with_run_args(&command);
        let mut c = self.container("coordinator", &command, Vec::new());
        c["ports"] = json!([{ "name": "coordinator", "containerPort": o.port, "protocol": "TCP" }]);
        let spec = json!({ "backoffLimit": 0, "template": self.template("coordinator", c) });
        self.job(&self.names.coordinator, "coordinator", spec)
    }

    /// Completion index = the worker's segment; every pod starts at once.
    fn worker_job(&self) -> Value {
        let o = self.opts;
        let command = [
            "harness".to_owned(),
            "worker".into(),
            self.scenario(),
            "--coordinator".into(),
            format!("{}:{}", self.names.coordinator, o.port),
            "--workers".into(),
            o.workers.to_string(),
            "--out".into(),
            REPORTS.into(),
        ];
        let index = json!({
            "name": "JOB_COMPLETION_INDEX",
            "valueFrom": { "fieldRef": { "fieldPath": INDEX_ANNOTATION } },
        });
        let command = self.with_run_args(&command);
        let c = self.container("worker", &command, vec![index]);
        let spec = json!({
            "completionMode": "Indexed",
            "completions": o.workers,
            "parallelism": o.workers,
            "backoffLimit": 0,
            "template": self.template("worker", c),
        });
        self.job(&self.names.workers, "worker", spec)
    }

    fn job(&self, name: &str, role: &str, spec: Value) -> Value {
        json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": metadata(self.opts, self.names, name, Some(role)),
            "spec": spec,
        })
    }

    fn container(&self, role: &str, command: &[String], mut env: Vec<Value>) -> Value {
        let plugin_dir = match &self.layout.plugin_dir {
            Some(d) => format!("{MOUNT}/{d}"),
            None => IMAGE_PLUGINS.to_owned(),
        };
        env.push(json!({
            "name": "HARNESS_COORDINATOR_TOKEN",
            "valueFrom": { "secretKeyRef": { "name": self.names.secret, "key": TOKEN_KEY } },
        }));
        env.push(json!({ "name": "HARNESS_PLUGIN_DIR", "value": plugin_dir }));
        env.extend(
            self.env
                .iter()
                .map(|(k, v)| json!({ "name": k, "value": v })),
        );
        let amount = json!({ "cpu": self.opts.cpu, "memory": self.opts.memory });
        json!({
            "name": role,
            "image": self.opts.image,
            "command": command,
            "env": env,
            "resources": { "requests": amount, "limits": amount },
            "volumeMounts": [
                { "name": "files", "mountPath": MOUNT, "readOnly": true },
                { "name": "reports", "mountPath": REPORTS },
            ],
            "securityContext": {
                "allowPrivilegeEscalation": false,
                "capabilities": { "drop": ["ALL"] },
            },
        })
    }

    fn template(&self, role: &str, container: Value) -> Value {
        json!({
            "metadata": { "labels": labels(self.names, Some(role)) },
            "spec": {
                "restartPolicy": "Never",
                "automountServiceAccountToken": false,
                // A run drains for at most 30 s after SIGTERM, then rolls back and reports.
                "terminationGracePeriodSeconds": 60,
                "securityContext": {
                    "runAsNonRoot": true,
                    "runAsUser": UID,
                    "runAsGroup": UID,
                    "fsGroup": UID,
                    "seccompProfile": { "type": "RuntimeDefault" },
                },
                "containers": [container],
                "volumes": self.volumes(),
            },
        })
    }

    /// The ConfigMap's items (and the Secret's key files) at their paths under [`MOUNT`].
    fn volumes(&self) -> Value {
        let items = |secret: bool| -> Vec<Value> {
            let files = self.layout.files.iter().filter(|f| f.secret == secret);
            files
                .map(|f| json!({ "key": f.key, "path": f.rel }))
                .collect()
        };
        let mut sources =
            vec![json!({ "configMap": { "name": self.names.config_map, "items": items(false) } })];
        let secret_items = items(true);
        if !secret_items.is_empty() {
            sources.push(json!({ "secret": { "name": self.names.secret, "items": secret_items } }));
        }
        json!([
            { "name": "files", "projected": { "sources": sources } },
            { "name": "reports", "emptyDir": {} },
        ])
    }
}
