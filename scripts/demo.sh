#!/usr/bin/env bash
# make demo: local anvil, deploy, seed LPs and traders, start the keeper as its own process,
# replay two real crashes through the oracle, stop everything started here, print a report
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
OUT=out/demo
mkdir -p "$OUT"

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
cleanup() {
  if [[ -n "$KEEPER_PID" ]] && kill -0 "$KEEPER_PID" 2>/dev/null; then
    kill -TERM "$KEEPER_PID" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$KEEPER_PID" 2>/dev/null || break; sleep 1; done
    kill -KILL "$KEEPER_PID" 2>/dev/null || true
  fi
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

step "deploy"
ape run deploy "${NET[@]}"

step "seed ${TRADERS} traders and an LP"
ape run seed "${NET[@]}" --traders "$TRADERS" --seed 7 --insurance-usd 50000

step "keeper (Silverback bot, its own process; log: $OUT/keeper.log)"
silverback run margin_maintenance.keeper.bot:bot "${NET[@]}" --account TEST::5 \
  > "$OUT/keeper.log" 2>&1 &
KEEPER_PID=$!
sleep 8

step "replay 2020-03-12 ETH crash (hourly, x${COMPRESS} compressed)"
ape run replay "${NET[@]}" --file eth_usdt_binance_1h_2020-03-12 --market ETH-USD \
  --compress "$COMPRESS" --wait-keeper "${DEMO_KEEPER_WAIT:-20}" "${STEPS_ARG[@]}"
step "replay 2021-05-19 BTC crash (hourly, x${COMPRESS} compressed)"
ape run replay "${NET[@]}" --file btc_usdt_binance_1h_2021-05-19 --market BTC-USD \
  --compress "$COMPRESS" --wait-keeper "${DEMO_KEEPER_WAIT:-20}" "${STEPS_ARG[@]}"
sleep 6  # let the keeper finish the last blocks

step "stop the keeper"
kill -TERM "$KEEPER_PID" 2>/dev/null || true
for _ in $(seq 1 30); do kill -0 "$KEEPER_PID" 2>/dev/null || break; sleep 1; done
kill -KILL "$KEEPER_PID" 2>/dev/null || true
KEEPER_PID=""

step "report"
ape run status "${NET[@]}" | tee "$OUT/status.txt" | tail -25
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
