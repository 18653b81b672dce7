#!/usr/bin/env bash
# Regenerates vmlinux/<arch>/vmlinux.h.
#   x86_64:  from this machine's /sys/kernel/btf/vmlinux
#   aarch64: from Debian's arm64 kernel package: its vmlinuz is an
#            uncompressed Image; the BTF blob inside starts with the magic
#            0xeB9F and its header gives its length.
# Needs bpftool and python3; the aarch64 step needs apt-get (arm64 enabled).
set -euo pipefail
cd "$(dirname "$0")/.."
which="${1:-all}"

if [ "$which" = all ] || [ "$which" = x86_64 ]; then
  bpftool btf dump file /sys/kernel/btf/vmlinux format c > vmlinux/x86_64/vmlinux.h
  echo "x86_64: from /sys/kernel/btf/vmlinux of $(uname -r)"
fi

if [ "$which" = all ] || [ "$which" = aarch64 ]; then
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  dpkg --print-foreign-architectures | grep -qx arm64 || { dpkg --add-architecture arm64; apt-get update -qq; }
  pkg=$(apt-cache depends linux-image-arm64:arm64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  (cd "$tmp" && apt-get download "${pkg%:arm64}:arm64" >/dev/null 2>&1)
  dpkg-deb -x "$tmp"/*.deb "$tmp/x"
  image=$(ls "$tmp"/x/boot/vmlinuz-*)
  python3 - "$image" "$tmp/btf" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
off = 0
while True:
    off = data.find(b"\x9f\xeb\x01\x00", off)
    if off < 0:
        sys.exit("no BTF blob found in " + sys.argv[1])
    hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from("<IIIII", data, off + 4)
    if hdr_len == 24 and type_off == 0 and str_off == type_len and type_len > 1 << 20:
        open(sys.argv[2], "wb").write(data[off:off + hdr_len + str_off + str_len])
        break
    off += 4
PY
  bpftool btf dump file "$tmp/btf" format c > vmlinux/aarch64/vmlinux.h
  echo "aarch64: from $pkg ($(basename "$image"))"
fi
