#!/usr/bin/env bash
# Can this kernel run bee-trace? PASS/WARN/FAIL per requirement; exits
# non-zero when a mandatory one fails.
set -u
BIN=${BEE_TRACE_BIN:-$(dirname "$0")/../target/release/bee-trace}
fail=0
pass() { echo "PASS $*"; }
warn() { echo "WARN $*"; }
bad() { echo "FAIL $*"; fail=1; }

config=""
for c in /proc/config.gz "/boot/config-$(uname -r)"; do
  [ -r "$c" ] && { config=$c; break; }
done
opt() {
  case "$config" in
    *.gz) zcat "$config" | grep -E "^CONFIG_$1=" | cut -d= -f2 ;;
    "") echo "" ;;
    *) grep -E "^CONFIG_$1=" "$config" | cut -d= -f2 ;;
  esac
}
if [ -z "$config" ]; then
  warn "kernel config not found (/proc/config.gz, /boot/config-$(uname -r)): options unchecked, the load test below decides"
else
  for o in BPF BPF_SYSCALL BPF_JIT BPF_EVENTS DEBUG_INFO_BTF TRACEPOINTS; do
    v=$(opt "$o")
    if [ "$v" = y ]; then pass "CONFIG_$o=y"; else bad "CONFIG_$o is ${v:-not set} (needed)"; fi
  done
  for o in KPROBES BPF_LSM; do
    v=$(opt "$o")
    if [ "$v" = y ]; then pass "CONFIG_$o=y (optional)"; else warn "CONFIG_$o is ${v:-not set} (optional upgrades unavailable)"; fi
  done
fi

if [ -r /sys/kernel/btf/vmlinux ]; then pass "BTF at /sys/kernel/btf/vmlinux"; else bad "no /sys/kernel/btf/vmlinux (needs CONFIG_DEBUG_INFO_BTF=y)"; fi

if [ -d /sys/kernel/tracing/events ] || [ -d /sys/kernel/debug/tracing/events ]; then
  pass "tracefs mounted"
else
  warn "tracefs not mounted (bee-trace mounts it at /sys/kernel/tracing itself)"
fi

cg=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/self/mounts)
if [ -n "$cg" ]; then pass "cgroup v2 at $cg"; else warn "no cgroup v2 mount (bee-trace mounts a private one for egress control)"; fi

if [ "$(id -u)" -ne 0 ]; then
  warn "not root: skipping the real load test (run as root for it)"
elif [ ! -x "$BIN" ]; then
  bad "$BIN not built: run make"
else
  out=$("$BIN" check 2>/dev/null); rc=$?
  while IFS= read -r l; do
    case "$l" in
      attached*) read -r _ family probe <<< "$l"; pass "probe $family $probe" ;;
      FAILED*) read -r _ family probe <<< "$l"; bad "probe $family $probe" ;;
      "hooks "*)
        # "hooks <family> <kind> [(why)]": name the family and the kind.
        read -r _ family kind why <<< "$l"
        if [ "$kind" = fexit ]; then
          pass "hooks for $family: fexit (the cheaper hooks)"
        else
          warn "hooks for $family: $kind ${why:+$why }— works, at a higher cost to every syscall (docs/performance.md)"
        fi ;;
    esac
  done <<< "$out"
  [ $rc -eq 0 ] || fail=1
fi
exit $fail
