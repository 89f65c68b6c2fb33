#!/usr/bin/env bash
# Checks that make demo runs before anything slow starts, each with a clear message and a hint.
#   scripts/preflight.sh host   before the install: the machine's own tools and the crash data
#   scripts/preflight.sh demo   after the install: anvil, ape, silverback, a free loopback port
# Exit 1 on the first failed group, after printing every problem found in it.
set -uo pipefail
cd "$(dirname "$0")/.."

STAGE="${1:-host}"
PROBLEMS=()
problem() { PROBLEMS+=("$1"); }

# The crash windows the demo replays (scripts/demo.sh), shipped in data/crashes/.
DEMO_FILES=(eth_usdt_binance_1h_2020-03-12_black_thursday btc_usdt_binance_1h_2021-05-19_china_ban)
DATA_DIR="${MM_DATA_DIR:-data/crashes}"

if [[ "$STAGE" == "host" ]]; then
  if ! command -v python3 >/dev/null; then
    problem "python3 not found (the project needs CPython 3.11 with venv and pip)"
  elif ! python3 -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    problem "python3 is $(python3 -V 2>&1); the pinned packages need Python 3.11 or newer"
  fi
  command -v npm >/dev/null || problem "npm not found (anvil 1.7.1 is installed from npm)"
  for f in "${DEMO_FILES[@]}"; do
    [[ -f "$DATA_DIR/$f.csv" ]] || problem "crash file $DATA_DIR/$f.csv missing (MM_DATA_DIR=${MM_DATA_DIR:-unset})"
  done
elif [[ "$STAGE" == "demo" ]]; then
  for tool in anvil ape silverback; do
    command -v "$tool" >/dev/null || problem "$tool not on PATH (run \`make setup\`; make demo puts .venv/bin and node_modules/.bin on PATH)"
  done
  if command -v anvil >/dev/null && ! anvil --version >/dev/null 2>&1; then
    problem "anvil does not start: $(anvil --version 2>&1 | head -1)"
  fi
  python3 - <<'PY' 2>/dev/null || problem "cannot bind a loopback port on 127.0.0.1"
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.close()
PY
  OUT="${DEMO_OUT:-out/demo}"
  mkdir -p "$OUT" 2>/dev/null && [[ -w "$OUT" ]] || problem "$OUT is not writable"
else
  echo "preflight: unknown stage '$STAGE' (host or demo)" >&2
  exit 2
fi

if (( ${#PROBLEMS[@]} )); then
  echo "preflight ($STAGE) failed:" >&2
  for p in "${PROBLEMS[@]}"; do echo "  - $p" >&2; done
  exit 1
fi
echo "preflight ($STAGE): ok"
