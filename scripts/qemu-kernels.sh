#!/usr/bin/env bash
# make qemu-kernels: boots Debian's own kernels under QEMU (software
# emulation) with an initramfs holding bee-trace, and runs in each guest:
#   1. `bee-trace check` (every probe loaded and attached for real);
#   2. a monitor run (with the hooks bee-trace picks there: fexit where the
#      kernel allows it) in which a planted SSH key, AWS credentials (matched
#      by name) and a sudoers.d file (matched by its directory) are read, a
#      missing .npmrc is opened, another process's /proc/<pid>/environ is
#      read, a helper (scripts/guest/probe.c) ptrace-attaches to and
#      process_vm_readv's its child and connects to 127.0.0.1:9, a planted
#      kill canary is read (the reader must die by SIGKILL, and the decoy and
#      its directory must be gone after exit), an exec happens, and a ping
#      to a blocked address is dropped by the packet backstop (which must be
#      attached on every kernel); the NDJSON output must carry each of them.
# Kernels: Debian 12's 6.1 and 6.12 (backports), amd64 and arm64; pass
# KERNELS="amd64:linux-image-6.1.0-56-amd64 ..." to pick others.
# Needs root only for apt-get; installs qemu-system-x86/arm, busybox-static
# and the arm64 cross build when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

KERNELS=${KERNELS:-"amd64:linux-image-6.1.0-56-amd64 amd64:linux-image-6.12.117+deb12-amd64 arm64:linux-image-6.1.0-56-arm64 arm64:linux-image-6.12.117+deb12-arm64"}
CACHE=${QEMU_CACHE:-/var/cache/bee-trace-qemu}
mkdir -p "$CACHE"
work=$(mktemp -d /tmp/bee-trace-qemu.XXXXXX)
trap 'rm -rf "$work"' EXIT

need() { command -v "$1" >/dev/null 2>&1; }
install_pkgs() {
  [ "$(id -u)" -eq 0 ] || { echo "install $* (or run as root)" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null
}
need qemu-system-x86_64 || install_pkgs qemu-system-x86
need qemu-system-aarch64 || install_pkgs qemu-system-arm
need cpio || install_pkgs cpio

# apt-get download of another architecture's packages (a guest's busybox
# and kernel) needs that architecture's package lists: a new machine has none.
foreign_arch() {
  local arch=$1
  [ "$arch" = "$(dpkg --print-architecture)" ] && return 0
  dpkg --print-foreign-architectures | grep -qx "$arch" && return 0
  [ "$(id -u)" -eq 0 ] || { echo "run as root: dpkg --add-architecture $arch && apt-get update" >&2; exit 1; }
  dpkg --add-architecture "$arch"
  apt-get update -qq
}

# busybox for the guest's architecture, from Debian's busybox-static.
busybox_for() {
  local arch=$1 out="$CACHE/busybox-$1"
  if [ ! -x "$out" ]; then
    foreign_arch "$arch"
    (cd "$work" && apt-get download "busybox-static:$arch" >/dev/null 2>&1)
    dpkg-deb -x "$work"/busybox-static_*_"$arch".deb "$work/bb-$arch"
    cp "$work/bb-$arch/bin/busybox" "$out"
    rm -f "$work"/busybox-static_*_"$arch".deb
  fi
  echo "$out"
}

kernel_for() {
  local pkg=$1 out="$CACHE/$1.vmlinuz"
  if [ ! -s "$out" ]; then
    (cd "$work" && apt-get download "$pkg" >/dev/null 2>&1)
    dpkg-deb -x "$work/${pkg}"_*.deb "$work/k-$pkg"
    cp "$work/k-$pkg"/boot/vmlinuz-* "$out"
    rm -rf "$work/${pkg}"_*.deb "$work/k-$pkg"
  fi
  echo "$out"
}

# Builds the binary for a guest (a failed build stops the script: a stale
# binary must never be tested in its place).
build_for() {
  case $1 in
    amd64) make -s build >/dev/null ;;
    arm64) make -s aarch64 >/dev/null ;;
  esac
}
binary_for() {
  case $1 in
    amd64) echo target/release/bee-trace ;;
    arm64) echo target/aarch64-unknown-linux-gnu/release/bee-trace ;;
  esac
}

# The guest's /init: everything it prints goes to the serial console, and the
# last line says PASS or FAIL.
write_init() {
  cat > "$1" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
mkdir -p /tmp /root/.ssh; mount -t tmpfs tmp /tmp
echo "GUEST kernel $(uname -r) $(uname -m)"
fail() { echo "GUEST-RESULT FAIL: $*"; poweroff -f; }
# tracefs is left unmounted on purpose: bee-trace must mount it itself.
/bee-trace check > /tmp/check.txt || { cat /tmp/check.txt; fail "bee-trace check"; }
cat /tmp/check.txt
# The packet backstop (cgroup_skb) must load on every kernel: block mode
# rests on it for raw and ping sockets.
grep -q '^attached  network  cgroup_skb/egress (backstop' /tmp/check.txt || fail "egress backstop not attached"
ip link set lo up
echo planted-not-a-key > /root/.ssh/id_guest
mkdir -p /root/.aws /etc/sudoers.d
SECRET_TOKEN=x sleep 3600 & victim=$!  # alive however slow the emulated steps are
printf 'canaries:\n  - path: /root/.config/decoy/credentials\n    type: aws\n    action: kill\nnetwork:\n  mode: block\n  blocked_ips: ["127.0.0.3"]\n' > /tmp/policy.yml
mkdir -p /run
# Stopped by SIGTERM once everything below is done, not after a fixed time:
# an emulated guest on a busy host can take many seconds for the steps.
/bee-trace --config /tmp/policy.yml --format json --output /tmp/out.json --ready-file /tmp/ready --duration 600 2>/tmp/err &
mon=$!
# An emulated arm64 guest on a busy host can take a minute to load and
# attach everything (the ready file is written only once all is attached).
i=0; while [ ! -e /tmp/ready ] && [ $i -lt 1800 ]; do sleep 0.1; i=$((i+1)); done
[ -e /tmp/ready ] || { cat /tmp/err; fail "monitor not ready"; }
echo "GUEST monitor ready after $i waits of 0.1 s"
cat /root/.ssh/id_guest >/dev/null
# Planted after the start, so the kernel knows them by name, not by inode.
echo planted > /root/.aws/credentials; echo planted > /etc/sudoers.d/guest
cat /root/.aws/credentials >/dev/null
cat /etc/sudoers.d/guest >/dev/null
cat /root/.npmrc 2>/dev/null
cat /proc/$victim/environ >/dev/null
child=$(/probe)
# The canary is a tripwire: its reader dies by SIGKILL before it can read.
cat /root/.config/decoy/credentials >/tmp/canary.out 2>/dev/null; canary_status=$?
/bin/true
# A ping (a raw or ping socket: no sock_addr hook) to a blocked address is
# dropped by the packet backstop, so the send fails.
ping -c 1 -W 2 127.0.0.3 >/tmp/ping.out 2>&1 && { cat /tmp/ping.out; fail "ping to a blocked address got through"; }
kill -TERM $mon
wait $mon || { cat /tmp/err; fail "monitor exit status"; }
cat /tmp/err
/bee-trace check | grep '^hooks'
seen() { grep "$1" /tmp/out.json | grep -q "$2" || fail "$3 not seen"; }
seen '"path":"/root/.aws/credentials"' '"access":"read"' "credentials read (name match)"
seen '"path":"/etc/sudoers.d/guest"' '"access":"read"' "sudoers.d read (directory match)"
seen '"path":"/root/.npmrc"' '"result":"ENOENT"' "refused .npmrc open"
seen '"kind":"ptrace"' "\"target_pid\":$child" "ptrace attach"
seen '"kind":"process_vm_readv"' "\"target_pid\":$child" "process_vm_readv"
seen '"daddr":"127.0.0.1"' '"dport":9' "connect to 127.0.0.1:9"
seen '"daddr":"127.0.0.3"' '"result":"dropped"' "blocked ping"
[ "$canary_status" = 137 ] || fail "canary reader not killed (status $canary_status)"
[ -s /tmp/canary.out ] && fail "canary reader printed: $(cat /tmp/canary.out)"
seen '"path":"/root/.config/decoy/credentials"' '"action":"killed"' "canary kill"
[ -e /root/.config/decoy ] && fail "canary directory left behind"
grep -q '"path":"/root/.ssh/id_guest"' /tmp/out.json || fail "key read not seen"
grep -q '"kind":"proc_environ"' /tmp/out.json || fail "environ read not seen"
grep -q "\"target_pid\":$victim" /tmp/out.json || fail "environ target not named"
grep -q '"kind":"exec"' /tmp/out.json || fail "exec not seen"
echo "GUEST-RESULT PASS"
poweroff -f
EOF
  chmod +x "$1"
}

# The bench guest's /init: open+close of a plain file with bee-trace off, on
# with the hooks it picks (auto: fexit where allowed), and on with --hooks
# tracepoints, alternating, ROUNDS times; the host computes the medians.
write_bench_init() {
  cat > "$1" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
mkdir -p /tmp; mount -t tmpfs tmp /tmp; echo plain > /tmp/plain.txt
echo "GUEST kernel \$(uname -r) \$(uname -m)"
mon() {
  rm -f /tmp/ready /tmp/bench-out.json
  /bee-trace --probe-type all --format json --output /tmp/bench-out.json --ready-file /tmp/ready "\$@" 2>/tmp/err &
  pid=\$!
  i=0; while [ ! -e /tmp/ready ] && [ \$i -lt 300 ]; do sleep 0.1; i=\$((i+1)); done
  [ -e /tmp/ready ] || { cat /tmp/err; echo "GUEST-RESULT FAIL: monitor not ready"; poweroff -f; }
}
for r in \$(seq $ROUNDS); do
  echo "GUEST-BENCH off \$(/openloop /tmp/plain.txt $N)"
  mon; echo "GUEST-BENCH auto \$(/openloop /tmp/plain.txt $N)"; kill \$pid; wait \$pid
  mon --hooks tracepoints; echo "GUEST-BENCH tracepoints \$(/openloop /tmp/plain.txt $N)"; kill \$pid; wait \$pid
done
# Per-program cost (kernel.bpf_stats_enabled): run count and ns per run of
# each program bee-trace holds while the loop runs, with the hooks it picks.
echo 1 > /proc/sys/kernel/bpf_stats_enabled
mon; /openloop /tmp/plain.txt $N >/dev/null
for f in /proc/\$pid/fdinfo/*; do
  grep -q '^prog_tag' \$f 2>/dev/null || continue
  awk '/^prog_id/{id=\$2} /^run_time_ns/{t=\$2} /^run_cnt/{c=\$2} END {if (c>0) printf "GUEST-PROG id %s runs %d ns/run %.0f\n", id, c, t/c}' \$f
done
kill \$pid; wait \$pid
echo 0 > /proc/sys/kernel/bpf_stats_enabled
/bee-trace check | grep '^hooks'
echo "GUEST-RESULT PASS"
poweroff -f
EOF
  chmod +x "$1"
}

# Copies the binary and the shared libraries it needs into the root.
add_binary() {
  local arch=$1 bin=$2 root=$3 sysroot=""
  cp "$bin" "$root/bee-trace"
  [ "$arch" = arm64 ] && sysroot=/usr/aarch64-linux-gnu
  case $arch in
    amd64) libs="/lib64/ld-linux-x86-64.so.2 /lib/x86_64-linux-gnu/libc.so.6 /lib/x86_64-linux-gnu/libgcc_s.so.1" ;;
    arm64) libs="$sysroot/lib/ld-linux-aarch64.so.1 $sysroot/lib/libc.so.6 $sysroot/lib/libgcc_s.so.1" ;;
  esac
  for l in $libs; do
    local dest
    case $arch:$l in
      amd64:/lib64/*) dest=$root/lib64 ;;
      amd64:*) dest=$root/lib/x86_64-linux-gnu ;;
      arm64:*) dest=$root/lib ;;
    esac
    mkdir -p "$dest"; cp -L "$l" "$dest/"
  done
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# --bench: open+close overhead inside each guest (see write_bench_init).
BENCH=0
if [ "${1:-}" = "--bench" ]; then
  BENCH=1
  ROUNDS=${ROUNDS:-5}; N=${N:-20000}
  KERNELS=${BENCH_KERNELS:-"amd64:linux-image-6.12.117+deb12-amd64 amd64:linux-image-6.1.0-56-amd64"}
  cc -O2 -static -o "$work/openloop-amd64" scripts/bench/openloop.c
fi

status=0
for spec in $KERNELS; do
  arch=${spec%%:*}; pkg=${spec#*:}
  root="$work/root-$arch-$pkg"; mkdir -p "$root"/{bin,proc,sys,dev}
  cp "$(busybox_for "$arch")" "$root/bin/busybox"
  if [ "$BENCH" = 1 ]; then
    [ "$arch" = amd64 ] || { echo "--bench runs amd64 guests only" >&2; exit 2; }
    write_bench_init "$root/init"
    cp "$work/openloop-amd64" "$root/openloop"
  else
    write_init "$root/init"
  fi
  build_for "$arch"
  add_binary "$arch" "$(binary_for "$arch")" "$root"
  if [ "$BENCH" != 1 ]; then
    case $arch in
      amd64) cc -O2 -static -o "$root/probe" scripts/guest/probe.c ;;
      arm64) aarch64-linux-gnu-gcc -O2 -static -o "$root/probe" scripts/guest/probe.c ;;
    esac
  fi
  # Root owns everything in the guest (bee-trace trusts a policy only in
  # root-owned directories), whoever builds the archive.
  (cd "$root" && find . | cpio -o -H newc -R 0:0 --quiet | gzip -1) > "$work/initrd-$arch.gz"
  kernel=$(kernel_for "$pkg")
  case $arch in
    amd64) qemu=(qemu-system-x86_64 -accel tcg -cpu max -m 1024 -append "console=ttyS0 panic=-1 quiet") ;;
    arm64) qemu=(qemu-system-aarch64 -M virt -accel tcg -cpu max -m 1024 -append "console=ttyAMA0 panic=-1 quiet") ;;
  esac
  log="$work/$pkg.log"
  t0=$(date +%s)
  timeout 300 "${qemu[@]}" -nographic -no-reboot -kernel "$kernel" -initrd "$work/initrd-$arch.gz" >"$log" 2>&1 || true
  secs=$(( $(date +%s) - t0 ))
  if [ "$BENCH" = 1 ]; then
    if ! grep -q "GUEST-RESULT PASS" "$log"; then
      echo "FAIL  $pkg: the bench guest did not finish"; tr -d '\r' < "$log" | tail -20; status=1; continue
    fi
    echo "open+close under QEMU (software emulation), $pkg, $ROUNDS rounds x $N, alternating:"
    tr -d '\r' < "$log" | grep -a '^hooks' | sed 's/^/  /'
    tr -d '\r' < "$log" | grep -a '^GUEST-PROG' | sed 's/^GUEST-PROG/  program/'
    offs=$(tr -d '\r' < "$log" | awk '$1=="GUEST-BENCH" && $2=="off" {print $3}')
    off=$(echo "$offs" | median)
    echo "  off          median $off ns/op  [$(echo $offs)]"
    for mode in auto tracepoints; do
      vals=$(tr -d '\r' < "$log" | awk -v m="$mode" '$1=="GUEST-BENCH" && $2==m {print $3}')
      on=$(echo "$vals" | median)
      awk -v a="$on" -v b="$off" -v m="$mode" -v v="$(echo $vals)" \
        'BEGIN {printf "  %-12s median %s ns/op  [%s]  ratio on/off %.3f\n", m, a, v, a/b}'
    done
    continue
  fi
  if grep -q "GUEST-RESULT PASS" "$log"; then
    echo "PASS  $pkg ($arch, ${secs}s)"
  else
    echo "FAIL  $pkg ($arch, ${secs}s)"; status=1
  fi
  grep -aE "GUEST|^attached|^failed|^FAILED|^hooks|probes attached|error" "$log" | sed 's/^/      /' | tr -d '\r'
done
exit $status
