#!/usr/bin/env bash
# Installs the Debian packages bee-trace's build needs, when run as root;
# otherwise says what to install.
set -euo pipefail

pkgs=(clang llvm libelf-dev zlib1g-dev pkg-config make iproute2 bpftool)
if [ "${1:-}" = "--aarch64" ]; then
  pkgs+=(gcc-aarch64-linux-gnu libelf-dev:arm64 zlib1g-dev:arm64 qemu-user-static)
fi
# What the integration tests run for real as a job would: sudo (whose
# expected reads of /etc/shadow must not add up to a signal), crontab, and
# a FUSE file system in Python (a job's server that stops answering).
if [ "${1:-}" = "--test" ]; then
  pkgs+=(sudo cron python3-fusepy)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "bee-trace needs these Debian packages: ${missing[*]}" >&2
  echo "install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
if printf '%s\n' "${missing[@]}" | grep -q ':arm64'; then
  dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
fi
echo "installing: ${missing[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
