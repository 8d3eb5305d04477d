# Brightline: the two commands are `make demo` and `make test` (see README.md).
#
# A CARGO_TARGET_DIR set in the environment is honoured (keep one outside the clone across runs, e.g.
# ~/.cache/brightline/target, since cold Rust builds are slow); otherwise builds go to ./target.
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
# The fuzzer builds with sanitizer flags; its own directory keeps it from invalidating the main build.
FUZZ_TARGET_DIR := $(TARGET_DIR)-fuzz
# Tests find the dev stack through this file, whichever checkout their binaries were built in.
export BL_STACK_ENV := $(CURDIR)/.data/stack.env
FUZZ_SECONDS ?= 20
BIN := $(TARGET_DIR)/debug

.PHONY: demo test bench stop deps stack build web fmt-check clippy test-rust test-web fuzz schemas clean-data

## demo: install what is missing, build, start the stack with simulated cameras, say what runs where
demo: deps stack build
	@deploy/dev/demo.sh $(BIN)

## test: the same set-up, then formatting, lints and every test (the fuzz run included)
test: deps stack fmt-check clippy fuzz test-rust test-web

# The intake benchmark (tests/loadgen): `make bench SOAK_SECS=1800` adds the 30-minute memory soak.
BENCH_EDGES ?= 1000
BENCH_EVENTS ?= 100000
BENCH_RATE ?= 2000
BENCH_CONNECTED ?= 10000
SOAK_SECS ?= 0

## bench: the benchmarks; they print tables and pass or fail nothing
bench: deps stack
	cargo run --quiet --release -p bl-proto --example bench-decode
	@echo
	cargo run --quiet --release -p edge-agent --example bench-uplink
	@echo
	cargo run --quiet --release -p edge-agent --example bench-talk
	@echo
	BL_LOG=error cargo run --quiet --release -p bl-e2e --example bench-talk-chain
	@echo
	cargo run --quiet --release -p media-gateway --example bench-record
	@echo
	cargo build --quiet --release -p media-gateway --bin media-gateway --example bench-fanout
	$(TARGET_DIR)/release/examples/bench-fanout
	@echo
	cargo run --quiet --release -p edge-agent -- detect --empty-clips 100 \
	  --scenario tests/camsim/scenarios/kitchen-night.toml --scenario edge-agent/tests/scenarios/night-small-rodents.toml
	@echo
	cargo run --quiet --release -p edge-agent -- detect --scenario tests/camsim/scenarios/kitchen-day.toml
	@echo
	cargo build --quiet --release -p camsim
	cargo run --quiet --release -p edge-agent --example bench-detectors
	@echo
	cargo run --quiet --release -p edge-agent --example bench-cameras
	@echo
	cargo run --quiet --release -p edge-agent --example bench-memory
	@echo
	cargo build --quiet --release -p dispatch -p bl-loadgen
	$(TARGET_DIR)/release/loadgen --dispatch $(TARGET_DIR)/release/dispatch --edges $(BENCH_EDGES) \
	  --events $(BENCH_EVENTS) --rate $(BENCH_RATE) --connected $(BENCH_CONNECTED) --soak-secs $(SOAK_SECS)

## stop: stop everything `make demo` started
stop:
	@deploy/dev/service.sh stop all
	@deploy/dev/stack.sh stop

deps:
	@deploy/dev/install-deps.sh
	@deploy/dev/install-tools.sh
	@deploy/dev/install-models.sh
	@deploy/dev/install-s3test.sh

stack:
	@deploy/dev/stack.sh start

build: web
	cargo build --workspace --bins

## web: the web console and field app (web/dist, served by dispatch); npm ci only when the lock changed
web:
	@cd web && { [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund; } && npm run --silent build

## test-web: browser tests (headless Chromium) against a real dispatch on a fresh database, with camsim and the gateway
test-web: web
	cargo build -p dispatch -p camsim -p media-gateway -p edge-agent --bins
	cd web && npm run --silent unit
	node web/e2e/run.mjs $(BIN)/dispatch

fmt-check:
	cargo fmt --all -- --check

clippy:
	cargo clippy --workspace --all-targets -- -D warnings

test-rust:
	cargo nextest run --workspace --no-fail-fast

## fuzz: decode arbitrary bytes as every message, topic, id and token for a bounded time
fuzz:
	@mkdir -p .data/logs .data/fuzz/decode
	@# libFuzzer adds what it finds to the first corpus folder: that is .data/, the seeds stay as checked in.
	cd proto/fuzz && RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$(FUZZ_TARGET_DIR) \
	  cargo fuzz run --sanitizer none decode ../../.data/fuzz/decode corpus/decode -- -max_total_time=$(FUZZ_SECONDS) \
	  >../../.data/logs/fuzz.log 2>&1 || { tail -n 40 ../../.data/logs/fuzz.log; exit 1; }
	@grep -E '^Done [0-9]+ runs' .data/logs/fuzz.log || tail -n 3 .data/logs/fuzz.log

## schemas: regenerate docs/reference/schema from the proto types and docs/reference/openapi.json from
## dispatch's handlers (tests check both match)
schemas:
	cargo run --quiet -p bl-proto --bin export-schemas
	cargo run --quiet -p dispatch -- openapi docs/reference/openapi.json

## clean-data: stop the stack and delete .data/ (databases, broker state, logs)
clean-data: stop
	rm -rf .data
