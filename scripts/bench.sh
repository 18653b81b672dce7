#!/usr/bin/env bash
# make bench: overhead and capacity of bee-trace, measured in one run against
# a baseline taken side by side (monitor off, monitor on, alternating).
#  1. open+close of a non-sensitive file: median ns/op with the monitor on,
#     divided by the median with it off (goal <= 1.10).
#  3. connect() latency: UDP socket+connect+close to an allowed address
#     (198.51.100.7:443 via a veth pair), median ns/op with the egress
#     hooks attached (network_monitor, an allowlist policy in block mode, so
#     every connect goes through every check) divided by the median without.
#  2. sensitive-file events: bursts of opens of a planted key, as fast as one
#     process can open; the highest rate at which every event arrived with
#     zero loss.
#  5. open+close on kernels that allow the fexit hooks: Debian's 6.12 and
#     6.1 (amd64) booted under QEMU with software emulation, off vs on with
#     the hooks bee-trace picks (fexit there) vs on with --hooks tracepoints,
#     alternating inside each guest (scripts/qemu-kernels.sh --bench).
#     QEMU_BENCH=0 skips it.
#  4. rule evaluation: `bee-trace replay` of a synthetic record (TRACES job
#     steps x PER events that exercise every built-in rule), against the
#     same replay with every event filtered out by --until (reading and
#     parsing only). Reports the ratio, the evaluation cost per event and
#     per trace (goal: well under 1 ms per trace).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/bee-trace}
[ "$(id -u)" -eq 0 ] || { echo "make bench needs root" >&2; exit 1; }
work=$(mktemp -d /tmp/bee-trace-bench.XXXXXX)
trap 'rm -rf "$work"; [ -n "${mon:-}" ] && kill "$mon" 2>/dev/null; true' EXIT
cc -O2 -o "$work/openloop" scripts/bench/openloop.c
cc -O2 -o "$work/connectloop" scripts/bench/connectloop.c
echo plain > "$work/plain.txt"
mkdir -p "$work/home/.ssh" && echo planted > "$work/home/.ssh/id_bench"

ROUNDS=${ROUNDS:-7}
N=${N:-200000}

start_mon() {
  rm -f "$work/ready" "$work/events.ndjson"
  "$BIN" --probe-type "${2:-all}" --format json --output "$work/events.ndjson" --ready-file "$work/ready" \
    --report-json "$1" ${3:+--config "$3"} 2>"$work/mon.err" &
  mon=$!
  for _ in $(seq 600); do [ -e "$work/ready" ] && return 0; sleep 0.05; done
  echo "bee-trace did not become ready: $(cat "$work/mon.err")" >&2; exit 1
}
stop_mon() { kill -TERM "$mon"; wait "$mon"; mon=; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# alternate WHAT PROBE CONFIG GOAL CMD...: runs CMD (which prints ns/op)
# ROUNDS times without and with bee-trace (--probe-type PROBE, --config
# CONFIG unless empty), alternating; prints both medians and their ratio.
alternate() {
  local what=$1 probe=$2 config=$3 goal=$4 r moff mon_
  shift 4
  local off=() on=()
  for r in $(seq "$ROUNDS"); do
    off+=("$("$@")")
    start_mon "$work/alt.json" "$probe" "$config"
    on+=("$("$@")")
    stop_mon
  done
  moff=$(printf '%s\n' "${off[@]}" | median)
  mon_=$(printf '%s\n' "${on[@]}" | median)
  echo "  $what off: median ${moff} ns/op  [${off[*]}]"
  echo "  $what on:  median ${mon_} ns/op  [${on[*]}]"
  awk -v a="$mon_" -v b="$moff" -v g="$goal" 'BEGIN {printf "  ratio on/off: %.3f%s\n", a/b, g}'
}

echo "open+close of a non-sensitive file ($ROUNDS rounds x $N, alternating):"
"$BIN" check 2>/dev/null | grep '^hooks' | sed 's/^/  /' || true
alternate monitor all "" " (goal <= 1.10)" "$work/openloop" "$work/plain.txt" "$N"

echo "sensitive-file events, bursts from one process (file_monitor):"
best=0
for burst in 10000 50000 200000; do
  start_mon "$work/burst.json" file_monitor
  t0=$(date +%s%N)
  "$work/openloop" "$work/home/.ssh/id_bench" "$burst" >/dev/null
  t1=$(date +%s%N)
  stop_mon
  # Other processes on the host may add events of their own: all of this
  # burst arrived when at least burst events came and none was lost.
  got=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(sum(r['counts'].get('file',{}).values()), r['lost']['kernel'].get('file',0)+r['lost']['channel']+r['lost']['undecodable'])" "$work/burst.json")
  read -r count lost <<< "$got"
  rate=$(( burst * 1000000000 / (t1 - t0) ))
  echo "  burst $burst: $count received, $lost lost, at $rate events/s"
  if [ "$lost" -eq 0 ] && [ "$count" -ge "$burst" ] && [ "$rate" -gt "$best" ]; then best=$rate; fi
done
echo "  highest rate with zero loss: $best events/s"

echo "connect() with the egress hooks attached (allowlist policy, block mode):"
cat > "$work/egress.yml" <<'YAML'
network:
  mode: block
  blocked_ips: ["203.0.113.0/24", "2001:db8:dead::/48"]
  blocked_ports: [4444]
  allowed_endpoints: ["127.0.0.1", "198.51.100.0/24:443"]
YAML
# A veth pair gives 198.51.100.0/24 a route, so the UDP connects below
# succeed without any packet leaving the machine.
ip link add btbench0 type veth peer name btbench1
trap 'ip link del btbench0 2>/dev/null; rm -rf "$work"; [ -n "${mon:-}" ] && kill "$mon" 2>/dev/null; true' EXIT
ip addr add 198.51.100.254/24 dev btbench0
ip link set btbench0 up && ip link set btbench1 up
CN=${CN:-100000}
alternate hooks network_monitor "$work/egress.yml" "" "$work/connectloop" 198.51.100.7 443 "$CN"

echo "rule evaluation (bee-trace replay of a synthetic record, built-in rules):"
TRACES=${TRACES:-2000}
PER=${PER:-100}
python3 scripts/bench/rules_record.py "$work/rules.rec" "$TRACES" "$PER"
events=$((TRACES * PER))
t_parse=(); t_full=()
for _ in $(seq "$ROUNDS"); do
  a=$(date +%s%N); "$BIN" replay "$work/rules.rec" --until 1970-01-01T00:00:00Z >/dev/null 2>&1; b=$(date +%s%N)
  t_parse+=($((b - a)))
  a=$(date +%s%N); "$BIN" replay "$work/rules.rec" >"$work/signals.ndjson" 2>/dev/null; b=$(date +%s%N)
  t_full+=($((b - a)))
done
mp=$(printf '%s\n' "${t_parse[@]}" | median)
mf=$(printf '%s\n' "${t_full[@]}" | median)
nsig=$(wc -l < "$work/signals.ndjson")
echo "  $events events in $TRACES traces, $nsig signals"
echo "  read+parse only: median $((${mp%.*} / 1000000)) ms; with the rules: median $((${mf%.*} / 1000000)) ms"
awk -v p="$mp" -v f="$mf" -v n="$events" -v t="$TRACES" 'BEGIN {
  d = f - p; if (d < 0) d = 0;
  printf "  ratio %.2f; evaluation %.0f ns per event, %.1f us per trace (goal: well under 1000 us)\n", f / p, d / n, d / t / 1000 }'

if [ "${QEMU_BENCH:-1}" = 1 ]; then
  echo "open+close where the kernel allows fexit (guests under QEMU, software emulation; goal <= 1.10):"
  if ! ROUNDS=${QEMU_ROUNDS:-7} N=${QEMU_N:-20000} scripts/qemu-kernels.sh --bench 2>&1 | grep -v 'Finished' | sed 's/^/  /'; then
    echo "  not measured: scripts/qemu-kernels.sh --bench failed (see above)"
  fi
fi
