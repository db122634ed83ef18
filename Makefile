# The two commands of the README are `make demo` and `make test`; everything else is a step of
# theirs. The cargo target dir lives outside the clone so fresh clones (and CI) reuse the build.
SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/harness/target
CARGO ?= cargo
BIN := $(CARGO_TARGET_DIR)/debug
HARNESS := $(BIN)/harness
STACK_DIR ?= reports/.stack
TEST_STACK_DIR ?= reports/.stack-test

.PHONY: demo test lint bench setup build plugins stack-up stack-down stack-status clean

# Plugins are components for wasm32-unknown-unknown, linked by the toolchain's own
# wasm-component-ld (DESIGN.md §1); outputs are copied to plugins/build/<name>.wasm.
SYSROOT = $(shell rustc --print sysroot)
PLUGIN_LINKER = $(SYSROOT)/lib/rustlib/x86_64-unknown-linux-gnu/bin/wasm-component-ld
SHIPPED_PLUGINS := k6-thresholds st-001 peak lock-contention slow-inserts chaos-schedule
FIXTURE_PLUGINS := trap spin hog malformed abi2 fault-trap

setup:
	@scripts/setup.sh

build: setup plugins
	$(CARGO) build --workspace --bins

## The shipped plugins and the test fixtures, built from source.
plugins: setup
	CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=$(PLUGIN_LINKER) \
	  $(CARGO) build --release --target wasm32-unknown-unknown --manifest-path plugins/Cargo.toml
	@mkdir -p plugins/build/fixtures
	@for p in $(SHIPPED_PLUGINS); do cp $(CARGO_TARGET_DIR)/wasm32-unknown-unknown/release/$$(echo $$p | tr - _).wasm plugins/build/$$p.wasm; done
	@for p in $(FIXTURE_PLUGINS); do cp $(CARGO_TARGET_DIR)/wasm32-unknown-unknown/release/fixture_$$(echo $$p | tr - _).wasm plugins/build/fixtures/$$p.wasm; done
	@echo "plugins: $(SHIPPED_PLUGINS) → plugins/build/"

## Main job: start the local stack, run the demo scenario through it, print the verdict.
demo: build
	$(HARNESS) demo --dir $(STACK_DIR)

## Gates: formatting and clippy (warnings are errors) for both workspaces; plugins/ is
## checked for its real target, wasm32, and its native-tested k6-rules crate natively too.
lint: setup
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	cd plugins && $(CARGO) fmt --all --check
	cd plugins && $(CARGO) clippy --workspace --all-targets --target wasm32-unknown-unknown -- -D warnings
	cd plugins && $(CARGO) clippy -p k6-rules --all-targets -- -D warnings

## Every test: the lint gates first, then unit tests and end-to-end tests against a real
## MariaDB and tansu broker.
test: lint build
	@set -e; trap '$(HARNESS) stack down --dir $(TEST_STACK_DIR) >/dev/null' EXIT; \
	$(HARNESS) stack up --no-app --dir $(TEST_STACK_DIR); \
	eval "$$($(HARNESS) stack env --dir $(TEST_STACK_DIR))"; \
	export HARNESS_PLUGIN_DIR=$(CURDIR)/plugins/build; \
	( a=0; b=0; $(CARGO) test --workspace --no-fail-fast 2>&1 || a=$$?; \
	  $(CARGO) test --manifest-path plugins/Cargo.toml -p k6-rules 2>&1 || b=$$?; exit $$((a | b)) ) | tee $(TEST_STACK_DIR)/cargo-test.log; \
	status=$${PIPESTATUS[0]}; \
	awk '/^test result:/ { p += $$4; f += $$6 } END { printf "total: %d passed, %d failed\n", p, f }' $(TEST_STACK_DIR)/cargo-test.log; \
	exit $$status

stack-up: build
	$(HARNESS) stack up --dir $(STACK_DIR)

stack-down:
	$(HARNESS) stack down --dir $(STACK_DIR)

stack-status:
	$(HARNESS) stack status --dir $(STACK_DIR)

## Benchmark: the harness beside wrk, oha, k6 and goose on one trivial endpoint, as ratios.
bench: setup plugins
	@scripts/bench-tools.sh
	$(CARGO) build --release -p harness --bin harness --example trivial_server --example bench --example goose_bench
	$(CARGO_TARGET_DIR)/release/examples/bench $(CARGO_TARGET_DIR)/release/harness $(CARGO_TARGET_DIR)/release/examples/trivial_server
	$(CARGO) build --release -p harness --example coordinator_bench
	$(CARGO_TARGET_DIR)/release/examples/coordinator_bench 2000 5
	$(CARGO) build --release -p harness --example plugin_bench
	$(CARGO_TARGET_DIR)/release/examples/plugin_bench $(CARGO_TARGET_DIR)/release/harness $(CARGO_TARGET_DIR)/release/examples/trivial_server plugins/build
