#!/usr/bin/env bash
# make demo: local anvil, deploy (markets on signed prices over their push feeds), seed LPs and
# traders, start the attestation service and the keeper as their own processes, replay two real
# crashes (the first through the push feed; the second signed by the service while the push
# feed lags a heartbeat behind, so the keeper liquidates on signed prices), stop everything
# started here, print a report
# (status, per-crash figures in $OUT/report.md and $OUT/demo.png, then the audit, whose exit
# code is the demo's).
# Settings: DEMO_TRADERS (default 200), DEMO_COMPRESS (default 60), DEMO_STEPS (rows per crash,
# default: all), DEMO_SKIP (rows skipped at the start of each file). Everything runs on 127.0.0.1; every process started here is stopped by its pid.
set -euo pipefail
cd "$(dirname "$0")/.."

TRADERS="${DEMO_TRADERS:-200}"
COMPRESS="${DEMO_COMPRESS:-60}"
STEPS_ARG=()
if [[ -n "${DEMO_STEPS:-}" ]]; then STEPS_ARG=(--max-steps "$DEMO_STEPS"); fi
# DEMO_SKIP: rows to skip at the start of each file (the files start two days before the crash).
if [[ -n "${DEMO_SKIP:-}" ]]; then STEPS_ARG+=(--skip "$DEMO_SKIP"); fi
OUT="${DEMO_OUT:-out/demo}"  # logs, records and the report
mkdir -p "$OUT"
# Everything the slow steps need, checked first: fails within seconds with what is missing.
bash scripts/preflight.sh host
bash scripts/preflight.sh demo

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export APE_FOUNDRY_HOST="http://127.0.0.1:${PORT}"
export MM_DEPLOYMENTS_DIR="$OUT/deployments"
export MM_DEPLOYMENT="$OUT/deployments/local.json"
export MM_DB_PATH="$OUT/keeper.sqlite"
# Silverback writes ~/.silverback/profile.toml; keep it inside the project.
export HOME="$PWD/.home"
mkdir -p "$HOME" "$MM_DEPLOYMENTS_DIR"
rm -f "$MM_DB_PATH" "$MM_DEPLOYMENTS_DIR"/*.json
NET=(--network ethereum:local:foundry)

ANVIL_PID=""
KEEPER_PID=""
ATTEST_PID=""
# One empty block, so a Silverback runner waiting for the next block wakes up and sees a stop.
mine_block() {
  python3 - "$PORT" <<'PY' >/dev/null 2>&1 || true
import json, sys, urllib.request
body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "evm_mine", "params": []}).encode()
req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}", body, {"Content-Type": "application/json"})
urllib.request.urlopen(req, timeout=2).read()
PY
}
# Silverback logs the first SIGTERM and stops at its loop's next wake-up (the next block, else
# the next whole minute); a second signal stops it at once. Each signal is followed by a block.
stop_keeper() {
  [[ -n "$KEEPER_PID" ]] || return 0
  local t0=$SECONDS
  for signal in TERM TERM; do
    kill -0 "$KEEPER_PID" 2>/dev/null || break
    kill -"$signal" "$KEEPER_PID" 2>/dev/null || true
    mine_block
    for _ in $(seq 1 20); do kill -0 "$KEEPER_PID" 2>/dev/null || break; sleep 0.25; done
  done
  kill -KILL "$KEEPER_PID" 2>/dev/null || true
  wait "$KEEPER_PID" 2>/dev/null || true
  echo "keeper stopped in $(( SECONDS - t0 )) s"
  KEEPER_PID=""
}
cleanup() {
  stop_keeper
  if [[ -n "$ATTEST_PID" ]]; then kill "$ATTEST_PID" 2>/dev/null || true; fi
  if [[ -n "$ANVIL_PID" ]]; then kill "$ANVIL_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT

step() { printf '\n==> %s\n' "$*"; }
START=$(date +%s)

step "anvil on 127.0.0.1:${PORT}"
anvil --host 127.0.0.1 --port "$PORT" --silent --gas-limit 60000000 > "$OUT/anvil.log" 2>&1 &
ANVIL_PID=$!
for _ in $(seq 1 50); do
  if python3 - "$PORT" <<'PY' 2>/dev/null; then break; fi
import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=0.2).close()
PY
  sleep 0.2
done

step "deploy (signed prices: each market reads the newer of its signed and push prices)"
ape run deploy "${NET[@]}" --signed-prices -v WARNING  # its own summary, not Ape's tx lines

step "seed ${TRADERS} traders and an LP"
ape run seed "${NET[@]}" --traders "$TRADERS" --seed 7 --insurance-usd 50000

APORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export MM_ATTEST_URL="http://127.0.0.1:${APORT}"
step "attestation service on ${MM_ATTEST_URL} (3 of 5 signers; log: $OUT/attest.log)"
python -m margin_maintenance.attest --deployment "$MM_DEPLOYMENT" --signers 3/5 \
  --port "$APORT" > "$OUT/attest.log" 2>&1 &
ATTEST_PID=$!
for _ in $(seq 1 50); do
  python3 - "$MM_ATTEST_URL" <<'PY' 2>/dev/null && break
import sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/live", timeout=1).read()
PY
  kill -0 "$ATTEST_PID" 2>/dev/null || { echo "attestation service exited; see $OUT/attest.log"; exit 1; }
  sleep 0.2
done

step "keeper (Silverback bot, its own process, on push and signed prices; log: $OUT/keeper.log)"
silverback run margin_maintenance.keeper.bot:bot "${NET[@]}" --account TEST::5 \
  > "$OUT/keeper.log" 2>&1 &
KEEPER_PID=$!
# Ready once its startup handler has opened the index (MM_DB_PATH) and handled the head block.
for _ in $(seq 1 120); do
  [[ -f "$MM_DB_PATH" ]] && grep -q "keeper ready" "$OUT/keeper.log" 2>/dev/null && break
  kill -0 "$KEEPER_PID" 2>/dev/null || { echo "keeper exited at start; see $OUT/keeper.log"; exit 1; }
  sleep 0.25
done
sleep 1

step "replay 2020-03-12 ETH crash (hourly, x${COMPRESS} compressed)"
ape run replay "${NET[@]}" --file eth_usdt_binance_1h_2020-03-12 --market ETH-USD \
  --compress "$COMPRESS" --wait-keeper "${DEMO_KEEPER_WAIT:-20}" "${STEPS_ARG[@]}"
step "replay 2021-05-19 BTC crash (hourly, x${COMPRESS} compressed) on signed prices, the push feed a heartbeat behind"
ape run replay "${NET[@]}" --file btc_usdt_binance_1h_2021-05-19 --market BTC-USD \
  --compress "$COMPRESS" --wait-keeper "${DEMO_KEEPER_WAIT:-20}" "${STEPS_ARG[@]}" \
  --attest-url "$MM_ATTEST_URL"
sleep 6  # let the keeper finish the last blocks

step "stop the keeper and the attestation service"
stop_keeper
kill "$ATTEST_PID" 2>/dev/null || true
wait "$ATTEST_PID" 2>/dev/null || true
ATTEST_PID=""

step "report"
# The riskiest 15 accounts (with the table's header) and the pool; every account in status.txt.
ape run status "${NET[@]}" --limit 0 > "$OUT/status.txt"
ape run status "${NET[@]}" --limit 15
# Per-crash figures, $OUT/report.md and $OUT/demo.png. A report that fails is flagged but
# leaves the exit code to the audit.
REPORT_RC=0
ape run report "${NET[@]}" --out "$OUT" \
  --name "2020-03-12 ETH crash" --name "2021-05-19 BTC crash" || REPORT_RC=$?
AUDIT_RC=0
ape run audit "${NET[@]}" | tee "$OUT/audit.txt" || AUDIT_RC=$?
grep -E "liquidat|Liquidat" "$OUT/keeper.log" | tail -5 || true
echo
if [[ "$REPORT_RC" -ne 0 ]]; then echo "report FAILED (exit $REPORT_RC); see the output above"; fi
echo "demo finished in $(( $(date +%s) - START )) s; logs, records, report.md and demo.png in $OUT/"
exit "$AUDIT_RC"
