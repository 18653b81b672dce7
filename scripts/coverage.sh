#!/usr/bin/env bash
# make coverage: line and branch coverage of bee-trace's user-space code
# (src/), measured over every unit test and the root integration suite: the
# tests start the bee-trace binary built with coverage instrumentation, so
# what the real runs execute counts. Branch coverage needs the nightly
# toolchain (-Z coverage-options=branch, which cargo-llvm-cov --branch sets).
# Writes the per-file table to target/coverage/summary.txt and an HTML report
# under target/coverage/html; prints the totals.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || echo "coverage: not root, so the integration tests skip and the figure leaves them out" >&2
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
rustup component add llvm-tools-preview --toolchain nightly >/dev/null 2>&1
command -v cargo-llvm-cov >/dev/null || cargo install cargo-llvm-cov --locked
ignore='(^|/)(tests|fuzz|target)/|/\.cargo/|/rustc/'
cargo +nightly llvm-cov clean --workspace
# The run's own verdict counts: a failing test fails make coverage.
cargo +nightly llvm-cov --branch --no-report --locked -- --test-threads=1
mkdir -p target/coverage
cargo +nightly llvm-cov report --branch --ignore-filename-regex "$ignore" >target/coverage/summary.txt
cargo +nightly llvm-cov report --branch --ignore-filename-regex "$ignore" --html --output-dir target/coverage >/dev/null
# TOTAL row: regions, missed, cover, functions, missed, executed, lines,
# missed, cover, branches, missed, cover.
awk '$1 == "TOTAL" { printf "coverage of src/: lines %s (%s of %s missed), branches %s (%s of %s missed)\n", $10, $9, $8, $13, $12, $11 }' target/coverage/summary.txt
echo "per file: target/coverage/summary.txt; HTML: target/coverage/html/index.html"
