#!/usr/bin/env bash
# Run boot-trace's KVM engine on a real KVM: Debian's kvm_amd inside a QEMU TCG guest whose CPU emulates
# AMD SVM with nested paging. See docs/nested-kvm.md.
#
#   scripts/nested-kvm.sh [--wall SECONDS] [--outer-memory MIB] OUT capture|benchmark [ARGS...]
#
# Runs `boot-trace capture|benchmark ARGS... --engine kvm` inside the outer guest and copies its output
# folder to OUT (plus nested-console.log, nested-inner.log, nested.json). Exits with the inner command's
# status; 124 when --wall (default 600 s) ended the outer QEMU. Builds dist/ first if it is missing.
# Everything downloaded or built lands in ~/.cache/boot-trace (nested/, kernels/, ...), never in the repo.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -f "$root/dist/capture/nested/main.js" ]; then
  (cd "$root" && npm run build) >&2
fi
exec node "$root/dist/capture/nested/main.js" "$@"
