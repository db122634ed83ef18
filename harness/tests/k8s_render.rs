//! `harness k8s render`: the manifests validate (kubernetes-validate, strict, offline schemas)
//! for the newest Kubernetes minor its pinned release ships and the two before it; the workers
//! are an Indexed Job wired to the coordinator's Service and the token Secret; the ConfigMap
//! carries every file the scenario names, byte for byte, at its path beside the scenario, so
//! the harness accepts the unpacked scenario; over 1 MiB and broken scenarios are exit 2 with
//! nothing printed. kubernetes-validate comes from `scripts/setup.sh` (which `make test` runs);
//! without it these tests fail, never skip.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::k8s::{self, container, find};
use harness::kube::{render, RenderOptions};
use serde_json::{json, Value};

const IMAGE: &str = "registry.example.com/harness:test";
const TOKEN: &str = "0123456789abcdef0123456789abcdef";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// `scripts/setup.sh`'s venv, else PATH.
fn kubernetes_validate() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let venv = home.join(".cache/harness/venv/bin/kubernetes-validate");
    if venv.is_file() {
        return venv;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("kubernetes-validate"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "kubernetes-validate is missing: scripts/setup.sh installs it into {} (make test \
                 runs setup first)",
                venv.display()
            )
        })
}

/// The newest Kubernetes version the installed kubernetes-validate ships (its default) and
/// the two minors before it, e.g. ["1.37.0", "1.36.0", "1.35.0"].
fn newest_three_minors(kv: &Path) -> Vec<String> {
    let help = Command::new(kv).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&help.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let newest = text
        .split("Defaults to ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .unwrap_or_else(|| panic!("no default version in kubernetes-validate --help: {text}"));
    let parts: Vec<u32> = newest.split('.').map(|p| p.parse().unwrap()).collect();
    (0..3)
        .map(|back| format!("{}.{}.0", parts[0], parts[1] - back))
        .collect()
}

fn harness_cli(args: &[&str], plugin_dir: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_harness"));
    cmd.args(args);
    if let Some(d) = plugin_dir {
        cmd.env("HARNESS_PLUGIN_DIR", d);
    }
    cmd.output().unwrap()
}

fn peak() -> RenderOptions {
    let mut o = RenderOptions::new(repo().join("scenarios/peak.toml"), 4, IMAGE);
    o.token = Some(TOKEN.into());
    o
}

/// A scenario in `dir/scenarios/` with a data file in `data/` and the peak plugin as a
/// threshold plugin in `dir/plugins/build/` (beside a copy of k6-thresholds), as in the repo.
fn journey(dir: &Path, csv: &str) -> PathBuf {
    let build = dir.join("plugins/build");
    std::fs::create_dir_all(&build).unwrap();
    std::fs::create_dir_all(dir.join("scenarios/data")).unwrap();
    for p in ["peak", "k6-thresholds"] {
        let built = repo().join(format!("plugins/build/{p}.wasm"));
        std::fs::copy(&built, build.join(format!("{p}.wasm")))
            .unwrap_or_else(|e| panic!("{}: {e} (make plugins builds it)", built.display()));
    }
    std::fs::write(dir.join("scenarios/data/users.csv"), csv).unwrap();
    let text = r#"name = "journey"
# A comment with a tab	and a trailing space 
[target]
url = "{env:HARNESS_TARGET_URL}"
[data.users]
file = "data/users.csv"
[scenarios.browse]
executor = "constant-arrival-rate"
rate = 5
duration = "10s"
preAllocatedVUs = 5
[[scenarios.browse.flow]]
name = "user"
path = "/users/{{users.id}}"
[thresholds]
http_req_failed = ["rate<0.01"]
[[threshold_plugins]]
plugin = "../plugins/build/peak.wasm"
config = { min_success_rate = 0.97, max_lag = 5000, drain_within_s = 60 }
"#;
    common::scenario(&dir.join("scenarios"), "journey.toml", text)
}

#[test]
fn rendered_manifests_validate_for_the_three_newest_kubernetes_minors() {
    let kv = kubernetes_validate();
    let dir = common::temp_dir("k8s-validate");
    let peak_yaml = dir.join("peak.yaml");
    std::fs::write(&peak_yaml, render(&peak()).unwrap()).unwrap();
    let scenario = journey(&dir.join("tree"), "id,name\n1,Zoë\n");
    let o = harness_cli(
        &[
            "k8s",
            "render",
            scenario.to_str().unwrap(),
            "--workers",
            "4",
            "--image",
            IMAGE,
            "--namespace",
            "load-tests",
            "--cpu",
            "500m",
            "--memory",
            "1Gi",
            "--env",
            "HARNESS_TARGET_URL=http://shop.load-tests.svc:8080",
        ],
        Some(&dir.join("tree/plugins/build")),
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let journey_yaml = dir.join("journey.yaml");
    std::fs::write(&journey_yaml, &o.stdout).unwrap();
    let versions = newest_three_minors(&kv);
    for v in &versions {
        let out = Command::new(&kv)
            .args(["--strict", "--quiet", "-k", v])
            .args([&peak_yaml, &journey_yaml])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kubernetes-validate --strict -k {v} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    eprintln!("validated against Kubernetes {}", versions.join(", "));
}

#[test]
fn the_workers_are_an_indexed_job_wired_to_the_coordinator_service_and_the_token_secret() {
    let docs = k8s::docs(&render(&peak()).unwrap());
    let kinds: Vec<_> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["Secret", "ConfigMap", "Service", "Job", "Job"]);
    let workers = find(&docs, "Job", Some("worker"));
    let spec = &workers["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(
        (spec["completions"].as_u64(), spec["parallelism"].as_u64()),
        (Some(4), Some(4))
    );
    assert_eq!(spec["backoffLimit"], 0);
    assert_eq!(spec["template"]["spec"]["restartPolicy"], "Never");
    let w = container(workers);
    assert_eq!(
        w["command"],
        json!([
            "harness",
            "worker",
            "/etc/harness/scenarios/peak.toml",
            "--coordinator",
            "harness-peak-coordinator:6566",
            "--workers",
            "4",
            "--out",
            "/reports"
        ])
    );
    let env = |c: &Value, name: &str| -> Value {
        let all = c["env"].as_array().unwrap();
        let hit = all.iter().find(|e| e["name"] == name);
        hit.unwrap_or_else(|| panic!("no env {name} in {}", c["env"]))
            .clone()
    };
    let index = env(w, "JOB_COMPLETION_INDEX");
    assert_eq!(
        index["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    );
    let coordinator = find(&docs, "Job", Some("coordinator"));
    assert_eq!(coordinator["spec"]["backoffLimit"], 0);
    let c = container(coordinator);
    assert_eq!(
        c["command"],
        json!([
            "harness",
            "coordinate",
            "/etc/harness/scenarios/peak.toml",
            "--workers",
            "4",
            "--listen",
            "0.0.0.0:6566",
            "--out",
            "/reports"
        ])
    );
    let secret = find(&docs, "Secret", None);
    for pod in [c, w] {
        let token = env(pod, "HARNESS_COORDINATOR_TOKEN")["valueFrom"]["secretKeyRef"].clone();
        assert_eq!(token["name"], secret["metadata"]["name"]);
        assert_eq!(secret["stringData"][token["key"].as_str().unwrap()], TOKEN);
        assert_eq!(
            env(pod, "HARNESS_PLUGIN_DIR")["value"],
            "/etc/harness/shipped-plugins"
        );
        let amount = json!({ "cpu": "1", "memory": "512Mi" });
        assert_eq!(
            pod["resources"],
            json!({ "requests": amount, "limits": amount })
        );
        assert!(pod["env"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["name"] != "HARNESS_TARGET_URL"));
    }
    let coordinator_env = c["env"].as_array().unwrap();
    assert!(coordinator_env
        .iter()
        .all(|e| e["name"] != "JOB_COMPLETION_INDEX"));

    // The Service selects the coordinator's pod (not a worker's) on the port it listens on.
    let svc = find(&docs, "Service", None);
    assert_eq!(svc["metadata"]["name"], "harness-peak-coordinator");
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    let selects = |job: &Value| {
        let labels = &job["spec"]["template"]["metadata"]["labels"];
        let sel = svc["spec"]["selector"].as_object().unwrap();
        !sel.is_empty() && sel.iter().all(|(k, v)| labels[k] == *v)
    };
    assert!(selects(coordinator) && !selects(workers));
    let port = &svc["spec"]["ports"][0];
    assert_eq!(
        (port["port"].as_u64(), port["targetPort"].as_u64()),
        (Some(6566), Some(6566))
    );
    assert_eq!(c["ports"][0]["containerPort"], 6566);
    assert!(docs
        .iter()
        .all(|d| d["metadata"].get("namespace").is_none()));

    // Resolved as a scheduler would start them.
    let dir = common::temp_dir("k8s-wiring");
    let u = k8s::unpack(&render(&peak()).unwrap(), &dir);
    assert_eq!(
        (u.mount.as_str(), u.reports.as_str()),
        ("/etc/harness", "/reports")
    );
    assert_eq!(u.service, "harness-peak-coordinator:6566");
    assert_eq!(u.worker(2).var("JOB_COMPLETION_INDEX"), Some("2"));
    assert_eq!(u.worker(3).var("HARNESS_COORDINATOR_TOKEN"), Some(TOKEN));
    assert_eq!(
        u.coordinator().var("HARNESS_COORDINATOR_TOKEN"),
        Some(TOKEN)
    );
}

#[test]
fn options_reach_every_object_and_the_cli_prints_what_the_library_renders() {
    let mut o = peak();
    o.namespace = Some("load-tests".into());
    o.name = Some("black-friday".into());
    o.cpu = "2".into();
    o.memory = "1Gi".into();
    o.port = 7000;
    o.env = vec!["HARNESS_TARGET_URL=http://shop:8080".into()];
    let docs = k8s::docs(&render(&o).unwrap());
    assert!(docs
        .iter()
        .all(|d| d["metadata"]["namespace"] == "load-tests"));
    assert!(docs
        .iter()
        .all(|d| d["metadata"]["labels"]["harness/run"] == "black-friday"));
    let w = container(find(&docs, "Job", Some("worker")));
    assert!(w["command"]
        .as_array()
        .unwrap()
        .contains(&json!("black-friday-coordinator:7000")));
    assert_eq!(
        w["resources"]["requests"],
        json!({ "cpu": "2", "memory": "1Gi" })
    );
    let target = w["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "HARNESS_TARGET_URL");
    assert_eq!(target.unwrap()["value"], "http://shop:8080");
    assert_eq!(
        find(&docs, "Service", None)["spec"]["ports"][0]["port"],
        7000
    );

    let generated = k8s::docs(
        &render(&RenderOptions::new(
            repo().join("scenarios/peak.toml"),
            1,
            IMAGE,
        ))
        .unwrap(),
    );
    let token = find(&generated, "Secret", None)["stringData"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        token.len() == 32 && token.chars().all(|c| c.is_ascii_hexdigit()),
        "{token}"
    );

    let peak = repo().join("scenarios/peak.toml");
    let o = harness_cli(
        &[
            "k8s",
            "render",
            peak.to_str().unwrap(),
            "--workers",
            "4",
            "--image",
            IMAGE,
            "--token",
            TOKEN,
        ],
        None,
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        render(&self::peak()).unwrap()
    );
}

#[test]
fn the_config_map_holds_every_named_file_byte_for_byte_at_its_path_beside_the_scenario() {
    let dir = common::temp_dir("k8s-files");
    let tree = dir.join("tree");
    let csv = "id,name\n1,Zoë \n2,\tTab\n";
    let scenario = journey(&tree, csv);
    let build = tree.join("plugins/build");
    let o = harness_cli(
        &[
            "k8s",
            "render",
            scenario.to_str().unwrap(),
            "--workers",
            "2",
            "--image",
            IMAGE,
        ],
        Some(&build),
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let yaml = String::from_utf8(o.stdout).unwrap();
    let docs = k8s::docs(&yaml);
    let cm = find(&docs, "ConfigMap", None);
    let data: Vec<_> = cm["data"].as_object().unwrap().keys().cloned().collect();
    let binary: Vec<_> = cm["binaryData"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(data, ["scenarios_data_users.csv", "scenarios_journey.toml"]);
    assert_eq!(
        binary,
        [
            "plugins_build_peak.wasm",
            "shipped-plugins_k6-thresholds.wasm"
        ]
    );

    let mounted = dir.join("mounted");
    let u = k8s::unpack(&yaml, &mounted);
    let expect = [
        ("scenarios/journey.toml", scenario.clone()),
        (
            "scenarios/data/users.csv",
            tree.join("scenarios/data/users.csv"),
        ),
        ("plugins/build/peak.wasm", build.join("peak.wasm")),
        (
            "shipped-plugins/k6-thresholds.wasm",
            build.join("k6-thresholds.wasm"),
        ),
    ];
    assert_eq!(u.files.len(), expect.len(), "{:?}", u.files);
    for (rel, source) in &expect {
        let got = std::fs::read(mounted.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert!(
            got == std::fs::read(source).unwrap(),
            "{rel} differs from {}",
            source.display()
        );
    }
    let wasm = k8s::unbase64(
        cm["binaryData"]["plugins_build_peak.wasm"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(wasm, std::fs::read(build.join("peak.wasm")).unwrap());
    let c = u.coordinator();
    assert_eq!(c.command[2], "/etc/harness/scenarios/journey.toml");
    assert_eq!(
        c.var("HARNESS_PLUGIN_DIR"),
        Some("/etc/harness/shipped-plugins")
    );

    // The unpacked tree is a scenario the harness accepts, plugins and data included.
    let root = mounted.to_str().unwrap();
    let c = c.rewritten(&[("/etc/harness", root), ("/reports", dir.to_str().unwrap())]);
    let mut validate = Command::new(env!("CARGO_BIN_EXE_harness"));
    validate
        .args(["validate", &c.command[2]])
        .env_remove("HARNESS_PLUGIN_DIR");
    validate.envs(c.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    validate.env("HARNESS_TARGET_URL", "http://127.0.0.1:9");
    let out = validate.output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("thresholds judged by") && said.contains("k6-thresholds"),
        "{said}"
    );
}

#[test]
fn a_config_map_over_one_mebibyte_is_refused_naming_the_file() {
    let dir = common::temp_dir("k8s-huge");
    let mut csv = String::from("id,name\n");
    for i in 0..60_000 {
        csv.push_str(&format!("{i},user number {i}\n"));
    }
    assert!(csv.len() > 1024 * 1024);
    let scenario = journey(&dir, &csv);
    let o = harness_cli(
        &[
            "k8s",
            "render",
            scenario.to_str().unwrap(),
            "--workers",
            "2",
            "--image",
            IMAGE,
        ],
        Some(&dir.join("plugins/build")),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(o.stdout.is_empty(), "nothing printed on an error");
    assert!(err.contains("over Kubernetes' limit of 1 MiB"), "{err}");
    assert!(err.contains("data/users.csv"), "names the file: {err}");
    assert!(
        err.contains("image"),
        "says to bake plugins into the image: {err}"
    );
}

#[test]
fn a_broken_scenario_is_a_located_error_and_exit_2_with_nothing_printed() {
    let dir = common::temp_dir("k8s-broken");
    let text = "name = \"broken\"\n[target]\nurl = \"http://127.0.0.1:9\"\nurll = \"typo\"\n";
    let bad = common::scenario(&dir, "bad.toml", text);
    let e = render(&RenderOptions::new(&bad, 2, IMAGE)).unwrap_err();
    assert!(matches!(e, harness::kube::K8sError::Scenario(_)), "{e:?}");
    let o = harness_cli(
        &[
            "k8s",
            "render",
            bad.to_str().unwrap(),
            "--workers",
            "2",
            "--image",
            IMAGE,
        ],
        None,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(o.stdout.is_empty());
    assert!(
        err.contains(&format!("{}:4:", bad.display())),
        "file:line:column: {err}"
    );
    let missing = harness_cli(
        &[
            "k8s",
            "render",
            "/nonexistent/x.toml",
            "--workers",
            "2",
            "--image",
            IMAGE,
        ],
        None,
    );
    assert_eq!(missing.status.code(), Some(2));
    let zero = harness_cli(
        &[
            "k8s",
            "render",
            bad.to_str().unwrap(),
            "--workers",
            "0",
            "--image",
            IMAGE,
        ],
        None,
    );
    assert_eq!(zero.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&zero.stderr).contains("--workers"));
}
