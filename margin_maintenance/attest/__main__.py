"""`python -m margin_maintenance.attest`: run the attestation service for a deployment.

    python -m margin_maintenance.attest --deployment deployments/local.json --signers 3/5
    python -m margin_maintenance.attest --deployment out/demo/deployments/local.json \\
        --source csv --csv data/crashes/eth_usdt_binance_1h_2020-03-12_black_thursday.csv \\
        --symbol ETH-USD --factor 60 --start-price 2000
    python -m margin_maintenance.attest --deployment deployments/local.json --source push \\
        --rpc http://127.0.0.1:8545

It prints the URL it serves on (`--port 0` picks a free one) and runs until interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from margin_maintenance.chain.record import Deployment, DeploymentError, read_json

from .service import Attestor, AttestServer, CsvSource, ManualSource, PushSource
from .signers import SignerSet, parse_kn


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m margin_maintenance.attest", description=__doc__)
    ap.add_argument("--deployment", required=True, help="the deployment record (JSON)")
    ap.add_argument("--signers", default="3/5", help="k/n: n local keys, k sign each report")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--source", choices=("manual", "csv", "push"), default="manual")
    ap.add_argument("--csv", help="crash file for --source csv")
    ap.add_argument("--symbol", help="the market the CSV prices (e.g. ETH-USD)")
    ap.add_argument("--factor", type=float, default=60.0, help="CSV time compression")
    ap.add_argument("--start-price", type=float, default=None, help="rescale the CSV to this")
    ap.add_argument("--rpc", help="JSON-RPC URL for --source push")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        dep = Deployment.from_dict(read_json(args.deployment, "deployment record"), args.deployment)
        k, n = parse_kn(args.signers)
    except (DeploymentError, ValueError) as err:
        print(f"attest: {err}", file=sys.stderr)
        return 2
    if dep.price_verifier is None or dep.chain_id is None:
        print("attest: the record names no price verifier (deploy again)", file=sys.stderr)
        return 2
    symbols = [m.symbol for m in dep.markets]
    attestor = Attestor(SignerSet.local(k, n), dep.chain_id, dep.price_verifier, symbols)
    if args.source == "csv":
        if not args.csv or args.symbol not in symbols:
            print(f"attest: --source csv needs --csv and --symbol in {symbols}", file=sys.stderr)
            return 2
        source = CsvSource(args.csv, args.symbol, args.factor, start_price=args.start_price)
    elif args.source == "push":
        if not args.rpc:
            print("attest: --source push needs --rpc", file=sys.stderr)
            return 2
        from margin_maintenance.chain.rpc import JsonRpc

        source = PushSource(JsonRpc(args.rpc), {m.symbol: m.aggregator for m in dep.markets})
    else:
        source = ManualSource()
    server = AttestServer(attestor, source, args.host, args.port).start()
    print(f"attest: serving {', '.join(symbols)} signed {k}/{n} on {server.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
