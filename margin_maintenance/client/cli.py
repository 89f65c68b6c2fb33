"""The `mm-client` command line.

Part of `margin_maintenance.client` (see its docstring).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any
from urllib.parse import urlsplit

import requests
from web3 import Web3
from web3.exceptions import Web3Exception

from margin_maintenance.keeper import decisions
from margin_maintenance.model.constants import MAX_BATCH

from .core import MarginClient
from .files import default_path
from .plan import LiquidationPlan, PlannedTarget, ProfitCheck
from .settings import (
    DEFAULT_DEPLOYMENT,
    DEFAULT_KEY_ENV,
    DEFAULT_LOG_CHUNK,
    DEFAULT_RPC,
    DEFAULT_RPC_TIMEOUT_S,
    EXIT_ERROR,
    EXIT_UNREACHABLE,
    JSON_UNITS,
    KEEPER_BATCH_BASE_GAS,
    KEEPER_ETH_MARKET_ID,
    KEEPER_GAS_PER_ACCOUNT,
    WAD,
    ClientError,
)

# ---- Command line ----


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def _fmt_units(amount: int, decimals: int) -> str:
    return f"{amount / 10**decimals:,.2f}"


def _fmt_usd(amount: Fraction | Decimal | None, places: int = 2) -> str:
    return "-" if amount is None else f"{float(amount):,.{places}f}"


def _usd_json(amount: Fraction | Decimal | None) -> float | None:
    return None if amount is None else round(float(amount), 6)


def safe_url(url: str) -> str:
    """`url` as it is safe to print: no user:password, no path or query (which can hold an
    API key, as Infura's do), `/...` standing for a dropped path."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        return url
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    port = f":{parts.port}" if parts.port is not None else ""
    rest = "/..." if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{host}{port}{rest}"


def _chained(err: BaseException) -> Iterator[BaseException]:
    """`err` and every exception behind it (causes, contexts, urllib3's `reason`, args)."""
    seen: set[int] = set()
    stack: list[Any] = [err]
    while stack:
        e = stack.pop()
        if not isinstance(e, BaseException) or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        stack += [getattr(e, "reason", None), e.__cause__, e.__context__, *e.args]


def unreachable_reason(err: BaseException) -> str:
    """A few words on why an HTTP request to the node failed."""
    for e in _chained(err):
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, TimeoutError | requests.Timeout):
            return "timed out"
        if isinstance(e, requests.HTTPError) and e.response is not None:
            return f"HTTP {e.response.status_code}"
        if isinstance(e, requests.exceptions.InvalidURL | requests.exceptions.InvalidSchema):
            return "not an http(s) URL"
        if isinstance(e, requests.exceptions.MissingSchema):
            return "not an http(s) URL"
    for e in _chained(err):
        if type(e).__name__ == "gaierror":  # socket.gaierror: DNS
            return "host not found"
    return "connection failed"


def unreachable_message(url: str, err: BaseException) -> str:
    host = urlsplit(url).hostname or ""
    local = host in ("localhost", "::1") or host.startswith("127.")
    hint = "start anvil (see README)" if local else "check --rpc or MM_RPC_URL"
    reason = unreachable_reason(err)
    return f"mm-client: cannot reach the node at {safe_url(url)} ({reason}); {hint}"


def connect(url: str, timeout_s: float = DEFAULT_RPC_TIMEOUT_S) -> Web3:
    """A web3 handle on `url` (HTTP JSON-RPC), each request bounded by `timeout_s`."""
    return Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout_s}))


def _usd_arg(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation as err:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from err
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0: {text!r}")
    return value


def _int_at_least(low: int, high: int | None = None) -> Any:
    """An argparse type: an integer in [low, high]."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from err
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(
                f"must be >= {low}" if high is None else f"must be in {low}..{high}"
            )
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mm-client",
        description="Read account health and liquidate on a Margin Maintenance clearinghouse "
        "with plain web3.py (no Ape): the deployment record and the ABIs are all it needs. "
        f"--json output: {JSON_UNITS} (the top-level 'decimals'); USD figures are estimates.",
    )
    p.add_argument(
        "--rpc",
        default=os.environ.get("MM_RPC_URL", DEFAULT_RPC),
        help=f"HTTP JSON-RPC endpoint (env MM_RPC_URL; default {DEFAULT_RPC})",
    )
    p.add_argument(
        "--rpc-timeout",
        type=float,
        default=DEFAULT_RPC_TIMEOUT_S,
        metavar="S",
        help=f"seconds per JSON-RPC request (default {DEFAULT_RPC_TIMEOUT_S:g})",
    )
    p.add_argument(
        "--deployment",
        default=os.environ.get("MM_DEPLOYMENT") or str(default_path(DEFAULT_DEPLOYMENT)),
        help=f"deployment record (env MM_DEPLOYMENT; default ./{DEFAULT_DEPLOYMENT} if it "
        "exists, else the checkout's)",
    )
    abi = p.add_mutually_exclusive_group()
    abi.add_argument("--abi", default=None, metavar="FILE", help="the Clearinghouse ABI, one file")
    abi.add_argument(
        "--abi-dir",
        default=None,
        metavar="DIR",
        help="folder of plain ABIs, <Name>.json or mocks/<Name>.json (default ./abi if it "
        "exists, else the checkout's abi/, else .build)",
    )
    abi.add_argument(
        "--build-dir",
        default=None,
        metavar="DIR",
        help="where `ape compile` wrote Clearinghouse.json or __local__.json (fallback .build)",
    )
    p.add_argument("--from-block", type=int, default=None, help="default: the record's start")
    p.add_argument("--log-chunk", type=int, default=DEFAULT_LOG_CHUNK, help="blocks per getLogs")
    p.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = p.add_subparsers(dest="command", required=True)

    st = sub.add_parser("status", help="health of every account seen in the events")
    st.add_argument("--all", action="store_true", help="list healthy accounts too")
    st.add_argument("--json", action="store_true", help="one JSON document on stdout")

    lq = sub.add_parser(
        "liquidate",
        help="liquidate the liquidatable accounts worth it (the keeper's profit rule)",
        description="Liquidate every liquidatable account seen whose liquidation pays, as the "
        "reference keeper decides it: each reward must pay its own marginal gas and each "
        "liquidate_many batch must net --min-profit USD after its gas (eth_gasPrice x "
        "--gas-per-account per account + --batch-base-gas, at the ETH price).",
    )
    who = lq.add_mutually_exclusive_group()
    who.add_argument(
        "--private-key-env",
        default=DEFAULT_KEY_ENV,
        metavar="NAME",
        help=f"environment variable holding the sender's private key (default {DEFAULT_KEY_ENV})",
    )
    who.add_argument(
        "--unlocked-sender", default=None, metavar="ADDRESS", help="an account the node signs for"
    )
    lq.add_argument("--account", action="append", default=None, help="only these (repeatable)")
    lq.add_argument(
        "--dry-run",
        action="store_true",
        help="list what would be sent (per target: reward, gas cost, decision); needs no key",
    )
    lq.add_argument("--json", action="store_true", help="one JSON document on stdout")
    rule = lq.add_mutually_exclusive_group()
    rule.add_argument(
        "--min-profit",
        type=_usd_arg,
        default=Decimal(0),
        metavar="USD",
        help="USD a batch must net after gas (the keeper's MM_MIN_PROFIT; default 0)",
    )
    rule.add_argument(
        "--no-profit-check",
        action="store_true",
        help="send every liquidatable account, paying or not (to settle bad debt, say)",
    )
    lq.add_argument(
        "--token-usd",
        type=_usd_arg,
        default=Decimal(1),
        metavar="USD",
        help="USD per whole collateral token (default 1)",
    )
    lq.add_argument(
        "--eth-usd",
        type=_usd_arg,
        default=None,
        metavar="USD",
        help="USD per ETH for gas costs (default: the price of --eth-market-id on chain)",
    )
    lq.add_argument(
        "--eth-market-id",
        type=_int_at_least(0),
        default=KEEPER_ETH_MARKET_ID,
        metavar="ID",
        help=f"the ETH-USD market (default {KEEPER_ETH_MARKET_ID})",
    )
    lq.add_argument(
        "--gas-per-account",
        type=_int_at_least(1),
        default=KEEPER_GAS_PER_ACCOUNT,
        metavar="GAS",
        help=f"marginal gas of one account in a batch (default {KEEPER_GAS_PER_ACCOUNT:,})",
    )
    lq.add_argument(
        "--batch-base-gas",
        type=_int_at_least(0),
        default=KEEPER_BATCH_BASE_GAS,
        metavar="GAS",
        help=f"gas of a batch before any account (default {KEEPER_BATCH_BASE_GAS:,})",
    )
    lq.add_argument(
        "--batch-size",
        type=_int_at_least(1, MAX_BATCH),
        default=MAX_BATCH,
        metavar="N",
        help=f"accounts per liquidate_many at most (1..{MAX_BATCH}, default {MAX_BATCH})",
    )

    pv = sub.add_parser("preview", help="liquidation_preview of one account")
    pv.add_argument("account")
    pv.add_argument("--json", action="store_true", help="one JSON document on stdout")
    return p


def json_header(client: MarginClient) -> dict[str, Any]:
    """What every `--json` document starts with: where, when, and the token's decimals."""
    record = client.record
    return {
        "clearinghouse": record.clearinghouse,
        "chain_id": record.chain_id,
        "block": int(client.w3.eth.block_number),
        "token": record.collateral.address,
        "decimals": record.collateral.decimals,
        "units": JSON_UNITS,
    }


def _emit(client: MarginClient, body: dict[str, Any]) -> None:
    _out(json.dumps({**json_header(client), **body}, indent=2))


def _cmd_status(client: MarginClient, args: argparse.Namespace) -> int:
    accounts = client.accounts_from_events(args.from_block)
    rows = client.status(accounts)
    liq = [r for r in rows if r.liquidatable]
    if args.json:
        _emit(
            client,
            {
                "accounts": len(rows),
                "liquidatable": [r.account for r in liq],
                "rows": [asdict(r) for r in (rows if args.all else liq)],
            },
        )
        return 0
    dec = client.record.collateral.decimals
    _out(f"{len(rows)} accounts, {len(liq)} liquidatable")
    for r in rows if args.all else liq:
        ratio = "-" if r.maintenance == 0 else f"{r.margin_ratio:.3f}"
        flag = "LIQUIDATABLE" if r.liquidatable else ""
        _out(
            f"{r.account}  equity {_fmt_units(r.equity, dec):>16}  "
            f"maintenance {_fmt_units(r.maintenance, dec):>14}  ratio {ratio:>8}  {flag}"
        )
    return 0


def profit_check_from(args: argparse.Namespace) -> ProfitCheck | None:
    if args.no_profit_check:
        return None
    return ProfitCheck(
        min_profit_usd=args.min_profit,
        token_usd=args.token_usd,
        eth_usd=args.eth_usd,
        eth_market_id=args.eth_market_id,
        gas_per_account=args.gas_per_account,
        base_gas=args.batch_base_gas,
    )


def _liquidator(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """(unlocked sender, private key). A dry run needs neither and reads no key."""
    if args.unlocked_sender is not None:
        return args.unlocked_sender, None
    if args.dry_run:
        return None, None
    key = os.environ.get(args.private_key_env)
    if not key:
        raise ClientError(
            f"${args.private_key_env} is not set: export the liquidator's key there, "
            "pass --unlocked-sender ADDRESS, or use --dry-run"
        )
    return None, key


def _rule_line(plan: LiquidationPlan) -> str:
    cost = plan.cost
    if not plan.targets:
        return "nothing to price"
    if cost is None:
        return "no profit check: every one is sent"
    return (
        f"min profit {_fmt_usd(Decimal(cost.min_profit_usd))} USD per batch; gas price "
        f"{cost.gas_price_wei / 10**9:,.3f} gwei, ETH {_fmt_usd(Decimal(cost.eth_usd))} USD, "
        f"{cost.per_account_gas:,} gas per account + {cost.base_gas:,} per tx"
    )


def _target_line(t: PlannedTarget, dec: int) -> str:
    decision = f"send (batch {t.batch + 1})" if t.batch is not None else f"skip: {t.reason}"
    priced = (
        ""
        if t.reward_usd is None
        else f" ({_fmt_usd(t.reward_usd)} USD)  gas {_fmt_usd(t.gas_cost_usd, 4)} USD"
    )
    return f"  {t.account}  reward {_fmt_units(t.reward, dec):>12}{priced}  {decision}"


def _batch_line(plan: LiquidationPlan, i: int, dec: int) -> str:
    gas = plan.batch_gas(i)
    cost = plan.cost
    usd = (
        ""
        if cost is None
        else f" ({_fmt_usd(decisions.gas_cost_usd(gas, cost.gas_price_wei, cost.eth_usd), 4)} USD)"
    )
    n = len(plan.batches[i])
    return (
        f"  batch {i + 1}: liquidate_many({n} account{'s' if n != 1 else ''}), reward "
        f"{_fmt_units(plan.batch_reward(i), dec)}, ~{gas:,} gas{usd}"
    )


def _target_json(t: PlannedTarget) -> dict[str, Any]:
    return {
        "account": t.account,
        "reward": t.reward,
        "fraction_wad": t.fraction_wad,
        "bad_debt": t.bad_debt,
        "reward_usd": _usd_json(t.reward_usd),
        "gas_cost_usd": _usd_json(t.gas_cost_usd),
        "send": t.send,
        "batch": t.batch,
        "reason": t.reason,
    }


def plan_json(plan: LiquidationPlan) -> dict[str, Any]:
    cost = plan.cost
    return {
        "liquidatable": plan.liquidatable,
        "to_send": plan.to_send,
        "profit_check": None
        if cost is None
        else {
            "min_profit_usd": _usd_json(Decimal(cost.min_profit_usd)),
            "token_usd": _usd_json(Decimal(cost.token_usd)),
            "eth_usd": _usd_json(Decimal(cost.eth_usd)),
            "gas_price_wei": cost.gas_price_wei,
            "gas_per_account": cost.per_account_gas,
            "batch_base_gas": cost.base_gas,
        },
        "targets": [_target_json(t) for t in plan.targets],
        "batches": [
            {"accounts": list(b), "reward": plan.batch_reward(i), "gas": plan.batch_gas(i)}
            for i, b in enumerate(plan.batches)
        ],
    }


def _cmd_liquidate(client: MarginClient, args: argparse.Namespace) -> int:
    sender, key = _liquidator(args)
    accounts = args.account if args.account else client.accounts_from_events(args.from_block)
    report = client.liquidate_report(
        accounts, sender, key, dry_run=args.dry_run, profit=profit_check_from(args)
    )
    plan, dec = report.plan, client.record.collateral.decimals
    if args.json:
        body: dict[str, Any] = {"dry_run": args.dry_run, "accounts": len(accounts)}
        body |= plan_json(plan)
        if not args.dry_run:
            body |= {
                "liquidated": list(report.liquidated),
                "reward": report.reward,
                "tx_hashes": list(report.tx_hashes),
                "gas_used": report.gas_used,
                "skipped": list(report.skipped),
            }
        _emit(client, body)
        return 0
    if args.dry_run:
        _out(
            f"dry run: {len(plan.targets)} liquidatable of {len(accounts)} accounts, "
            f"{len(plan.to_send)} would be sent in {len(plan.batches)} tx ({_rule_line(plan)})"
        )
        for t in plan.targets:
            _out(_target_line(t, dec))
        for i in range(len(plan.batches)):
            _out(_batch_line(plan, i, dec))
        return 0
    _out(
        f"liquidated {len(report.liquidated)} of {len(accounts)} accounts in "
        f"{len(report.tx_hashes)} tx, reward {_fmt_units(report.reward, dec)}, "
        f"gas {report.gas_used:,}"
        + (f"; {len(report.unprofitable)} not worth it" if report.unprofitable else "")
    )
    for h in report.tx_hashes:
        _out(f"  {h}")
    for t in plan.targets:
        if not t.send:
            _out(_target_line(t, dec))
    return 0


def _cmd_preview(client: MarginClient, args: argparse.Namespace) -> int:
    p = client.preview(args.account)
    dec = client.record.collateral.decimals
    if args.json:
        _emit(
            client,
            {
                "account": p.account,
                "liquidatable": p.liquidatable,
                "fraction_wad": p.fraction_wad,
                "reward": p.reward,
                "bad_debt": p.bad_debt,
            },
        )
        return 0
    _out(
        f"{p.account}: fraction {p.fraction_wad / WAD:.4f}, reward {_fmt_units(p.reward, dec)}, "
        f"bad debt {_fmt_units(p.bad_debt, dec)}"
    )
    return 0


COMMANDS = {"status": _cmd_status, "liquidate": _cmd_liquidate, "preview": _cmd_preview}


def main(argv: Sequence[str] | None = None, *, w3: Web3 | None = None) -> int:
    """The command line; `w3` replaces the `--rpc` connection (tests, embedding)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        client = MarginClient.from_files(
            w3 or connect(args.rpc, args.rpc_timeout),
            args.deployment,
            args.abi,
            args.build_dir,
            abi_dir=args.abi_dir,
            log_chunk=args.log_chunk,
            batch_size=getattr(args, "batch_size", MAX_BATCH),
        )
        return COMMANDS[args.command](client, args)
    except requests.RequestException as err:  # before OSError: requests' errors are OSErrors
        sys.stderr.write(unreachable_message(args.rpc, err) + "\n")
        return EXIT_UNREACHABLE
    except (ClientError, Web3Exception, OSError, ValueError) as err:  # node, revert, file, key
        sys.stderr.write(f"mm-client: {err}\n")
        return EXIT_ERROR
