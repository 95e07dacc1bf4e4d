#!/usr/bin/env bash
# The device check (README "Device check"): st-native's CUDA correctness,
# speed, AutoAttack and memory figures beside the PyTorch references, in one
# run of at most 8 minutes on one H100, on a machine with only Python's
# torch (no cargo, no Node, no network).
#
#   benches/device-check.sh bundle            # here: build and fill device-bundle/ (<= 64 MiB)
#   benches/device-check.sh run [OUT]         # there: run it, report in OUT (default $OUT or ./device-report)
#   benches/device-check.sh --dry-run [OUT]   # here or in CI: bundle, then the same run on the CPU, tiny sizes
#
# The binary links libtorch dynamically; `run` finds it through
# LD_LIBRARY_PATH, set to the folder of the torch that `python3` imports
# (torch 2.11.0, the version it was built against). Its build-time rpath
# names this machine's libtorch folder, which does not exist there and is
# skipped.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
bundle="${DEVICE_BUNDLE:-$root/device-bundle}"
limit_bytes=$((64 * 1024 * 1024))
mode="${1:-}"
shift || true

python_with_torch() {
  # The device has python3 with torch; here the project's provisioned one.
  if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"; return; fi
  for p in "$root/.venv/bin/python" python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import torch' >/dev/null 2>&1; then echo "$p"; return; fi
  done
  echo "device-check: no Python with torch found (set PYTHON)" >&2
  exit 1
}

torch_lib() {
  "$1" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))'
}

make_bundle() {
  local py; py="$(python_with_torch)"
  export LIBTORCH_USE_PYTORCH=1
  export VIRTUAL_ENV="${VIRTUAL_ENV:-$(dirname "$(dirname "$py")")}"
  # The addon build's --target (scripts/cargo-target.mjs), so its compiled
  # dependencies are reused.
  local triple; triple="$(rustc -vV | sed -n 's/^host: //p')"
  (cd "$root" && cargo build --release -q --target "$triple" --example device_check)
  # torchattacks for the AutoAttack reference (as scripts/python-test-deps.mjs
  # installs it). One Python start for every fact (importing torch is slow).
  local query='import os, torch
try:
    import torchattacks as ta
    t = [os.path.dirname(ta.__file__), ta.__version__]
except ImportError:
    t = ["", ""]
print(os.path.join(os.path.dirname(torch.__file__), "lib")); print(torch.__version__); print(t[0]); print(t[1])'
  local info; info="$("$py" -W ignore -c "$query")"
  if [ -z "$(echo "$info" | sed -n 3p)" ]; then
    "$py" -m pip install --quiet --disable-pip-version-check --no-deps torchattacks==3.5.1
    info="$("$py" -W ignore -c "$query")"
  fi
  local lib ver ta ta_ver
  lib="$(echo "$info" | sed -n 1p)"; ver="$(echo "$info" | sed -n 2p)"
  ta="$(echo "$info" | sed -n 3p)"; ta_ver="$(echo "$info" | sed -n 4p)"
  local tmp="$bundle.tmp-$$"
  rm -rf "$tmp"
  mkdir -p "$tmp/bin" "$tmp/reference" "$tmp/site"
  cp "$root/target/$triple/release/examples/device_check" "$tmp/bin/"
  strip --strip-debug "$tmp/bin/device_check" 2>/dev/null || true
  cp "$root/benches/device_check.py" "$root/benches/device-check.sh" "$tmp/"
  cp "$root"/benches/reference/{st_reference.py,autoattack_reference.py,models.py} "$tmp/reference/"
  cp -r "$ta" "$tmp/site/torchattacks"
  find "$tmp/site" -name __pycache__ -prune -exec rm -rf {} +
  # The binary must resolve every library from torch's folder alone.
  local missing
  missing="$(LD_LIBRARY_PATH="$lib" ldd "$tmp/bin/device_check" | grep 'not found' || true)"
  if [ -n "$missing" ]; then echo "device-check: unresolved libraries: $missing" >&2; exit 1; fi
  local rpath; rpath="$(readelf -d "$tmp/bin/device_check" | grep -E 'R(UN)?PATH' || true)"
  cat >"$tmp/MANIFEST.json" <<JSON
{"commit": "$(cd "$root" && git rev-parse HEAD 2>/dev/null || echo unknown)",
 "built": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
 "torch": "$ver",
 "torchattacks": "$ta_ver",
 "rpath": "$(echo "$rpath" | sed 's/.*\[\(.*\)\]/\1/' | tr -d '\n')"}
JSON
  local size; size="$(du -sb "$tmp" | cut -f1)"
  if [ "$size" -gt "$limit_bytes" ]; then
    echo "device-check: bundle is $size bytes, over the 64 MiB a device call carries" >&2
    rm -rf "$tmp"; exit 1
  fi
  rm -rf "$bundle"
  mv "$tmp" "$bundle"
  echo "device-check: bundle $bundle, $((size / 1024)) KiB (limit 65536 KiB)"
}

run_check() {
  local out="$1"; shift
  local py; py="$(python_with_torch)"
  local lib; lib="$(torch_lib "$py")"
  export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export PYTHONUNBUFFERED=1
  mkdir -p "$out"
  # The bundle's own copy of the orchestrator: the one that matches its binary.
  "$py" -W ignore "$bundle/device_check.py" --bundle "$bundle" --out "$out" "$@"
}

case "$mode" in
  bundle) make_bundle ;;
  run)
    # On the device, this script runs from inside the bundle.
    [ -x "$here/bin/device_check" ] && bundle="$here"
    run_check "${1:-${OUT:-$PWD/device-report}}" ;;
  --dry-run)
    if [ "${DEVICE_CHECK_SKIP_BUNDLE:-}" != 1 ]; then make_bundle; fi
    export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
    run_check "${1:-$root/target/device-check-dry-run}" --dry-run ;;
  *)
    echo "usage: benches/device-check.sh bundle | run [OUT] | --dry-run [OUT]" >&2
    exit 2 ;;
esac
