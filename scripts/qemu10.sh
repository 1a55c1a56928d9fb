#!/usr/bin/env bash
# QEMU 10 from Debian bookworm-backports, unpacked into the boot-trace cache (never installed: the system's
# QEMU 7.2 stays what everything else uses), for whole-boot traces that read registers at each system call
# (docs/whole-boot.md). Prints the wrapper's path; use it with BOOT_TRACE_QEMU=<path>.
# Optional: exits 0 with a note when backports cannot be reached, so a setup without it still succeeds.
set -euo pipefail
cache="${BOOT_TRACE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/boot-trace}/qemu10"
wrapper="$cache/qemu-system-x86_64"
if [ -x "$wrapper" ] && "$wrapper" --version >/dev/null 2>&1; then echo "$wrapper"; exit 0; fi
if ! grep -qs '^VERSION_CODENAME=bookworm' /etc/os-release; then
  echo "qemu10: not Debian 12 (bookworm); skipped" >&2; exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$cache"
echo "deb http://deb.debian.org/debian bookworm-backports main" > "$work/sources.list"
# A private package list: the machine's apt sources are left as they are.
apt_opts=(-o Dir::Etc::sourcelist="$work/sources.list" -o Dir::Etc::sourceparts=/nonexistent
          -o Dir::State::lists="$work/lists" -o Dir::Cache="$work/cache" -o APT::Sandbox::User=root)
if ! apt-get "${apt_opts[@]}" update -qq >/dev/null 2>&1; then
  echo "qemu10: bookworm-backports not reachable; skipped (whole-boot traces use QEMU 7.2)" >&2; exit 0
fi
(cd "$work" && apt-get "${apt_opts[@]}" download -qq qemu-system-x86/bookworm-backports qemu-system-common/bookworm-backports qemu-system-data/bookworm-backports >/dev/null 2>&1) || {
  echo "qemu10: download from bookworm-backports failed; skipped" >&2; exit 0; }
rm -rf "$cache/root"
for deb in "$work"/*.deb; do dpkg -x "$deb" "$cache/root"; done
# Its own firmware and no modules from the system's QEMU 7.2 (they refuse to load in another build).
cat > "$wrapper" <<WRAP
#!/bin/sh
exec env QEMU_MODULE_DIR="$cache/root/usr/lib/x86_64-linux-gnu/qemu" "$cache/root/usr/bin/qemu-system-x86_64" -L "$cache/root/usr/share/qemu" "\$@"
WRAP
chmod +x "$wrapper"
"$wrapper" --version | head -1 >&2
echo "$wrapper"
