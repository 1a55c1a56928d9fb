#!/usr/bin/env bash
# Sets up a fresh Debian machine for boot-trace: the Debian packages its engines and tests use, then the
# npm packages (which also builds dist/). Safe to run again. Needs root (or sudo) for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential libc6-dev linux-libc-dev binutils time mawk xz-utils zstd lz4 cpio busybox-static qemu-system-x86 chromium)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  echo "setup: installing ${missing[*]}" >&2
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Optional: QEMU 10 (bookworm-backports) unpacked into the cache, for whole-boot traces that read registers
# (BOOT_TRACE_QEMU, docs/whole-boot.md); everything works with the system's QEMU 7.2 when it cannot be had.
bash scripts/qemu10.sh >/dev/null || echo "setup: QEMU 10 not set up (optional)" >&2

npm ci --no-audit --no-fund
