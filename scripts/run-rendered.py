#!/usr/bin/env python3
"""Runs a scenario as its rendered Kubernetes manifests would, on this host, without a cluster.

`harness k8s render` is called; the files volume (ConfigMap items, Secret items) is written
where the pods would mount it; then the coordinator's and each index's container command start
with the manifest's env only (the token from the Secret, JOB_COMPLETION_INDEX resolved), pod
paths and the coordinator Service mapped onto OUT and 127.0.0.1. The exit code is the coordinator's,
as the coordinator Job's would be. The README's four-worker comparison used it.

Usage: scripts/run-rendered.py HARNESS SCENARIO WORKERS OUT [-- RENDER_FLAGS...]
  e.g. scripts/run-rendered.py harness scenarios/peak.toml 4 /tmp/peak4 -- \
         --env HARNESS_TARGET_URL=$HARNESS_TARGET_URL
"""
import base64
import os
import re
import secrets
import subprocess
import sys

import yaml

PORT = 6566


def main():
    if len(sys.argv) < 5 or (len(sys.argv) > 5 and sys.argv[5] != "--"):
        sys.exit(__doc__)
    harness, scenario, workers, out = sys.argv[1:5]
    render_flags = sys.argv[6:]
    token = secrets.token_hex(16)
    rendered = subprocess.run(
        [harness, "k8s", "render", scenario, "--workers", workers, "--image", "local",
         "--token", token, *render_flags],
        capture_output=True, text=True)
    if rendered.returncode != 0:
        sys.exit(f"k8s render failed ({rendered.returncode}): {rendered.stderr.strip()}")
    docs = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    mount, reports = os.path.join(out, "mount"), os.path.join(out, "reports")
    os.makedirs(reports, exist_ok=True)
    secret = one(docs, "Secret")
    unpack(docs, secret, mount)
    service = one(docs, "Service")
    address = f'{service["metadata"]["name"]}:{service["spec"]["ports"][0]["port"]}'
    pairs = {"/etc/harness": mount, "/reports": reports, address: f"127.0.0.1:{PORT}",
             f"0.0.0.0:{PORT}": f"127.0.0.1:{PORT}"}
    coordinator = start(harness, docs, secret, "coordinator", None, pairs, out)
    children = [start(harness, docs, secret, "worker", i, pairs, out)
                for i in range(int(workers))]
    code = coordinator.wait()
    codes = [c.wait() for c in children]
    print(f"coordinator exit {code}; workers {codes}; logs and reports in {out}")
    sys.exit(code)


def one(docs, kind, role=None):
    """The one object of `kind` (with label harness/role = role, when given)."""
    hits = [d for d in docs if d["kind"] == kind and
            (role is None or d["metadata"].get("labels", {}).get("harness/role") == role)]
    if len(hits) != 1:
        sys.exit(f"expected one {kind} (role {role}), the manifests have {len(hits)}")
    return hits[0]


def secret_value(secret, key):
    if key in secret.get("stringData", {}):
        return secret["stringData"][key].encode()
    return base64.b64decode(secret["data"][key])


def unpack(docs, secret, mount):
    """Every item of the coordinator pod's projected files volume, as the kubelet writes it."""
    config = one(docs, "ConfigMap")
    pod = one(docs, "Job", "coordinator")["spec"]["template"]["spec"]
    for volume in pod["volumes"]:
        for source in volume.get("projected", {}).get("sources", []):
            for item in (source.get("configMap") or source.get("secret"))["items"]:
                key = item["key"]
                if "secret" in source:
                    data = secret_value(secret, key)
                elif key in config.get("binaryData", {}):
                    data = base64.b64decode(config["binaryData"][key])
                else:
                    data = config["data"][key].encode()
                path = os.path.join(mount, item["path"])
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as f:
                    f.write(data)


def start(harness, docs, secret, role, index, pairs, out):
    """The role's container command with only the manifest's env (plus PATH and HOME), as the
    pod gets it; `index` resolves the completion index."""
    container = one(docs, "Job", role)["spec"]["template"]["spec"]["containers"][0]
    # One pass, so a mapped path that contains another pod path (OUT under a `reports`
    # folder) is not mapped again.
    pattern = re.compile("|".join(map(re.escape, pairs)))

    def mapped(s):
        return pattern.sub(lambda m: pairs[m.group(0)], s)

    env = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    for e in container["env"]:
        if "value" in e:
            value = e["value"]
        elif "secretKeyRef" in e["valueFrom"]:
            value = secret_value(secret, e["valueFrom"]["secretKeyRef"]["key"]).decode()
        else:
            value = str(index)
        env[e["name"]] = mapped(value)
    command = container["command"]
    argv = [harness] + [mapped(a) for a in command[1:]]
    log = open(os.path.join(out, f"{role}{'' if index is None else index}.log"), "w")
    return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)


if __name__ == "__main__":
    main()
