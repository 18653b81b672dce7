#!/usr/bin/env bash
# make fuzz: runs every cargo-fuzz target (fuzz/fuzz_targets) for a bounded
# time each (FUZZ_SECS, default 60) on the nightly toolchain, installing
# cargo-fuzz from crates.io when it is missing. A crash fails the run and
# leaves its input under fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${FUZZ_SECS:-60}"
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz" >&2
  cargo +nightly install --locked cargo-fuzz
fi
targets=$(cargo +nightly fuzz list)
cargo +nightly fuzz build -O
for t in $targets; do
  mkdir -p "fuzz/corpus/$t"
  echo "fuzz: $t for ${secs}s" >&2
  cargo +nightly fuzz run -O "$t" "fuzz/corpus/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 2>&1 |
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|==|SUMMARY|Done)' || true
  # cargo fuzz exits non-zero on a crash; the pipeline above hides that.
  if ls "fuzz/artifacts/$t"/crash-* "fuzz/artifacts/$t"/oom-* "fuzz/artifacts/$t"/timeout-* >/dev/null 2>&1; then
    echo "fuzz: $t found a failing input: $(ls fuzz/artifacts/$t)" >&2
    exit 1
  fi
done
echo "fuzz: every target ran ${secs}s without a failure"
