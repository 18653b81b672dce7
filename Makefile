# bee-trace build entry points. `make` builds the release binary, installing
# missing Debian packages first when run as root.
CARGO ?= cargo
BIN := target/release/bee-trace

.PHONY: all build deps test unit integration lint bench fuzz coverage aarch64 check-kernel qemu-kernels clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	$(CARGO) build --release --locked

# Everything CI runs: format, lint, unit tests, then the integration tests
# against the release binary (they need root; tests/common/mod.rs says how
# a root-only test skips, and BEE_TRACE_REQUIRE_ROOT=1 makes a skip a failure).
test: build
	@scripts/install-deps.sh --test
	$(CARGO) fmt --check
	$(CARGO) clippy --release --locked --all-targets -- -D warnings
	$(CARGO) test --release --locked -- --test-threads=1

bench: build
	scripts/bench.sh

# Every cargo-fuzz target for FUZZ_SECS seconds each (default 60; nightly).
fuzz: deps
	scripts/fuzz.sh

# Line and branch coverage of src/ over the unit tests and, as root, the
# integration suite run against an instrumented binary (cargo-llvm-cov,
# nightly; about 15 minutes).
coverage: deps
	scripts/coverage.sh

aarch64:
	@scripts/install-deps.sh --aarch64
	rustup target add aarch64-unknown-linux-gnu
	$(CARGO) build --release --locked --target aarch64-unknown-linux-gnu
	qemu-aarch64-static -L /usr/aarch64-linux-gnu target/aarch64-unknown-linux-gnu/release/bee-trace --help >/dev/null
	@echo "built target/aarch64-unknown-linux-gnu/release/bee-trace"

check-kernel: build
	scripts/check-kernel.sh

# Boots Debian's 6.1 and 6.12 kernels (amd64, arm64) under QEMU and runs
# bee-trace check plus a short detection run in each (about 2 minutes).
qemu-kernels:
	scripts/qemu-kernels.sh

clean:
	$(CARGO) clean
