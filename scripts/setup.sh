#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian machine; safe to run again (each step checks
# first). The tansu broker is installed by `harness stack up` itself when missing.
set -euo pipefail

say() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# C toolchain for librdkafka (built by rdkafka-sys with ./configure + make) and MariaDB's server
# binaries for the private database the stack starts when DATABASE_URL does not answer.
need=()
# chromium: the report test renders report.html headless.
# libssl-dev: the toxiproxy_rust conformance test's HTTP client links OpenSSL.
# nginx-light: the third-party HTTPS/HTTP/2 server the client tests redirect to.
# prometheus: the stack's Prometheus (rules, remote write) and promtool for the rule checks.
# python3-venv: the venv kubernetes-validate is installed into (below).
for pkg in gcc g++ make pkg-config zlib1g-dev libc6-dev libssl-dev python3 python3-venv chromium nginx-light prometheus; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then need+=(mariadb-server); fi
# postgresql: initdb and postgres (in /usr/lib/postgresql/<version>/bin, off PATH) for the
# private PostgreSQL the stack starts when --postgres-url (POSTGRES_URL) does not answer.
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then need+=(postgresql); fi
if [ ${#need[@]} -gt 0 ]; then
  say "installing Debian packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# The pinned toolchain and the Wasm target (rust-toolchain.toml names both).
if ! command -v rustup >/dev/null 2>&1; then
  say "rustup is required (https://rustup.rs); the pinned toolchain is in rust-toolchain.toml"
  exit 1
fi
toolchain=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
if ! rustup target list --installed --toolchain "$toolchain" 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  say "installing Rust $toolchain with the wasm32-unknown-unknown target"
  rustup toolchain install "$toolchain" --profile minimal --component rustfmt,clippy --target wasm32-unknown-unknown
  # An already installed toolchain may not take the target from `install`; add it explicitly.
  rustup target add --toolchain "$toolchain" wasm32-unknown-unknown
fi
# kubernetes-validate (PyPI) for tests/k8s_render.rs: `harness k8s render`'s manifests checked
# against the Kubernetes schemas it bundles (1.37, 1.36 and 1.35 are the newest three of this
# release), offline. In its own venv, found there by the test; nothing is put on PATH.
kv_version=1.37.0
kv_venv="$HOME/.cache/harness/venv"
if [ "$("$kv_venv/bin/kubernetes-validate" --version 2>/dev/null || true)" != "$kv_version" ]; then
  say "installing kubernetes-validate $kv_version into $kv_venv"
  # A venv whose python is gone (or half made) is made again.
  "$kv_venv/bin/python" -c '' 2>/dev/null || python3 -m venv --clear "$kv_venv"
  "$kv_venv/bin/python" -m pip install --quiet --disable-pip-version-check "kubernetes-validate==$kv_version"
fi
say "ready"
