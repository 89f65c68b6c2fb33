"""A small liquidation client in plain web3.py: no Ape, only the ABI and the deployment record.

Bot writers who do not use Ape need two files (SPEC.md section 6):

- the Clearinghouse ABI: `.build/Clearinghouse.json` (a per-contract artifact holding `abi`),
  or Ape's project manifest `.build/__local__.json` (`contractTypes.Clearinghouse.abi`, what
  `ape compile` writes), or any JSON file holding the ABI list or an object with `abi`;
- the deployment record `deployments/<network>.json` (read here as plain JSON): `chain_id`,
  `start_block`, `clearinghouse`, `collateral {address, decimals}`,
  `markets [{id, symbol, aggregator, feed}]`.

Library use::

    w3 = Web3(Web3.HTTPProvider("http://127.0.0.1:8545"))
    client = MarginClient.from_files(w3, "deployments/local.json")
    accounts = client.accounts_from_events()
    report = client.liquidate_report(client.liquidatable(accounts), sender, private_key=key)

Command line (also installed as `mm-client`)::

    python -m margin_maintenance.client --rpc http://127.0.0.1:8545 \\
        --deployment deployments/local.json status
    MM_PRIVATE_KEY=0x.. python -m margin_maintenance.client liquidate
    python -m margin_maintenance.client liquidate --unlocked-sender 0x..

This module imports nothing from Ape (a test checks it), only web3.py and its own dependencies
(eth-utils, eth-account), so it can be copied into a bot on its own.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from eth_account import Account
from eth_utils import event_abi_to_log_topic, to_checksum_address
from web3 import Web3
from web3.exceptions import ContractLogicError, Web3Exception, Web3RPCError
from web3.logs import DISCARD

log = logging.getLogger("margin_maintenance.client")

MAX_STATUS = 512  # accounts per margin_status call (DynArray bound in the contract)
MAX_BATCH = 64  # accounts per liquidate_many call (DynArray bound in the contract)
DEFAULT_LOG_CHUNK = 10_000  # blocks per eth_getLogs request (halved on provider errors)
GAS_HEADROOM_BPS = 12_000  # gas limit sent = estimate * 1.2, capped by the block gas limit
BPS = 10_000
WAD = 10**18
RECEIPT_TIMEOUT_S = 120  # seconds to wait for a liquidation receipt
ACCOUNT_EVENTS = ("Deposited", "PositionChanged")  # events that name every trader

DEFAULT_RPC = "http://127.0.0.1:8545"
DEFAULT_DEPLOYMENT = "deployments/local.json"
DEFAULT_BUILD_DIR = ".build"
DEFAULT_KEY_ENV = "MM_PRIVATE_KEY"  # name of the variable holding the liquidator's key
MANIFEST_NAME = "__local__.json"  # Ape 0.8's project manifest in .build/
MANIFEST_READ_TRIES = 12  # reads of a manifest caught mid-rewrite by `ape compile` ...
MANIFEST_RETRY_S = 0.25  # ... this many seconds apart

T = TypeVar("T")


class ClientError(RuntimeError):
    """A missing or malformed file, a record for another chain, or a refused transaction."""


# ---- Files: ABI / bytecode and the deployment record ----


@dataclass(frozen=True)
class Artifact:
    """A compiled contract: its ABI and, when the file has it, its deployment bytecode."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str | None  # 0x-prefixed init code


def _bytecode_of(entry: dict[str, Any]) -> str | None:
    """Init code from an Ape contract type (`deploymentBytecode.bytecode`), a Foundry or
    Hardhat artifact (`bytecode` as a string or `{object}`), if present."""
    for key in ("deploymentBytecode", "bytecode"):
        value = entry.get(key)
        if isinstance(value, dict):
            value = value.get("bytecode") or value.get("object")
        if isinstance(value, str) and value:
            return value if value.startswith("0x") else "0x" + value
    return None


def _artifact_from_json(data: Any, name: str, source: Path) -> Artifact:
    if isinstance(data, list):  # a bare ABI
        return Artifact(name, data, None)
    if isinstance(data, dict):
        if isinstance(data.get("abi"), list):
            return Artifact(name, data["abi"], _bytecode_of(data))
        types = data.get("contractTypes")
        if isinstance(types, dict):
            entry = types.get(name)
            if isinstance(entry, dict) and isinstance(entry.get("abi"), list):
                return Artifact(name, entry["abi"], _bytecode_of(entry))
            raise ClientError(f"{source} has no contract type {name!r} (run `ape compile`)")
    raise ClientError(f"{source} holds neither an ABI nor an artifact with 'abi'")


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as err:
        raise ClientError(f"no {what} at {path}") from err
    except json.JSONDecodeError as err:
        raise ClientError(f"{path} is not valid JSON: {err}") from err


def _read_manifest(path: Path) -> Any:
    """Ape rewrites `.build/__local__.json` in place on every compile (unlink, then write), so a
    read racing `ape compile` can find no file or half of one: try again for a few seconds."""
    for _ in range(MANIFEST_READ_TRIES - 1):
        try:
            return _read_json(path, "project manifest")
        except ClientError:
            time.sleep(MANIFEST_RETRY_S)
    return _read_json(path, "project manifest")


def load_artifact(
    name: str = "Clearinghouse",
    path: str | Path | None = None,
    build_dir: str | Path = DEFAULT_BUILD_DIR,
) -> Artifact:
    """`name`'s ABI (and bytecode) from `path` if given, else from `<build_dir>/<name>.json`,
    else from Ape's manifest `<build_dir>/__local__.json`."""
    if path is not None:
        p = Path(path)
        return _artifact_from_json(_read_json(p, f"ABI file for {name}"), name, p)
    build = Path(build_dir)
    single = build / f"{name}.json"
    if single.exists():
        return _artifact_from_json(_read_json(single, "artifact"), name, single)
    manifest = build / MANIFEST_NAME
    missing = (
        f"no {name}.json or {MANIFEST_NAME} in {build} (run `ape compile`, or pass an ABI path)"
    )
    if not build.is_dir():
        raise ClientError(missing)
    try:
        return _artifact_from_json(_read_manifest(manifest), name, manifest)
    except ClientError as err:
        if manifest.exists():
            raise
        raise ClientError(missing) from err


def load_abi(
    path: str | Path | None = None,
    build_dir: str | Path = DEFAULT_BUILD_DIR,
    name: str = "Clearinghouse",
) -> list[dict[str, Any]]:
    """The Clearinghouse ABI (see `load_artifact` for where it is looked for)."""
    return load_artifact(name, path, build_dir).abi


@dataclass(frozen=True)
class CollateralInfo:
    address: str
    decimals: int


@dataclass(frozen=True)
class MarketInfo:
    id: int
    symbol: str
    aggregator: str
    feed: str


@dataclass(frozen=True)
class DeploymentRecord:
    """The fields of `deployments/<network>.json` a client needs (others are ignored)."""

    chain_id: int
    start_block: int
    clearinghouse: str
    collateral: CollateralInfo
    markets: tuple[MarketInfo, ...] = ()
    network: str = ""

    @property
    def unit(self) -> int:
        """One whole collateral token in token units."""
        return 10**self.collateral.decimals

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeploymentRecord:
        try:
            col = data["collateral"]
            return cls(
                chain_id=int(data["chain_id"]),
                start_block=int(data["start_block"]),
                clearinghouse=to_checksum_address(data["clearinghouse"]),
                collateral=CollateralInfo(
                    to_checksum_address(col["address"]), int(col["decimals"])
                ),
                markets=tuple(
                    MarketInfo(
                        int(m["id"]),
                        str(m["symbol"]),
                        to_checksum_address(m["aggregator"]),
                        to_checksum_address(m["feed"]),
                    )
                    for m in data.get("markets", [])
                ),
                network=str(data.get("network", "")),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ClientError(f"malformed deployment record: {err!r}") from err

    @classmethod
    def load(cls, path: str | Path) -> DeploymentRecord:
        data = _read_json(Path(path), "deployment record (run `ape run deploy`)")
        if not isinstance(data, dict):
            raise ClientError(f"{path} does not hold a JSON object")
        return cls.from_dict(data)


# ---- Results ----


@dataclass(frozen=True)
class AccountStatus:
    """One row of `margin_status` (amounts in collateral-token units)."""

    account: str
    equity: int  # collateral + unrealised PnL
    maintenance: int  # maintenance requirement (rounded up)
    initial: int  # initial requirement (rounded up)
    liquidatable: bool  # has a position and equity < maintenance

    @property
    def margin_ratio(self) -> float:
        """equity / maintenance: below 1 is liquidatable (inf without a position)."""
        return self.equity / self.maintenance if self.maintenance else float("inf")


@dataclass(frozen=True)
class Preview:
    """`liquidation_preview(account)`: what a liquidation by a third party would do now."""

    account: str
    fraction_wad: int  # share of every position closed, WAD (0 = healthy)
    reward: int  # keeper reward, token units
    bad_debt: int  # token units

    @property
    def liquidatable(self) -> bool:
        return self.fraction_wad > 0


@dataclass(frozen=True)
class LiquidationReport:
    """What `liquidate_report` did: accounts liquidated (from `Liquidated` events in the
    receipts), the reward credited to the sender, and the transactions sent."""

    reward: int = 0  # token units, credited to the sender's collateral
    liquidated: tuple[str, ...] = ()
    tx_hashes: tuple[str, ...] = ()
    gas_used: int = 0
    skipped: tuple[str, ...] = ()  # asked for but healthy when checked (nothing sent for them)


# ---- Pure helpers ----


def batched(items: Sequence[T], size: int) -> Iterator[list[T]]:
    if size <= 0:
        raise ValueError("batch size must be positive")
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


def unique_addresses(addresses: Iterable[str]) -> list[str]:
    """Checksummed addresses without repeats, in order of first appearance."""
    seen: dict[str, None] = {}
    for a in addresses:
        seen.setdefault(to_checksum_address(a), None)
    return list(seen)


def gas_limit_for(estimate: int, block_gas_limit: int) -> int:
    """The estimate with headroom, never above the block gas limit."""
    return min(estimate * GAS_HEADROOM_BPS // BPS, block_gas_limit)


def _is_healthy_revert(err: Exception) -> bool:
    return "healthy" in str(err).lower()


# ---- The client ----


class MarginClient:
    """Reads account health and liquidates through one Clearinghouse, with plain web3.py."""

    def __init__(
        self,
        w3: Web3,
        record: DeploymentRecord | dict[str, Any],
        abi: list[dict[str, Any]],
        *,
        log_chunk: int = DEFAULT_LOG_CHUNK,
        status_chunk: int = MAX_STATUS,
        batch_size: int = MAX_BATCH,
        check_chain: bool = True,
    ) -> None:
        if not 1 <= status_chunk <= MAX_STATUS:
            raise ValueError(f"status_chunk must be in 1..{MAX_STATUS}")
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be in 1..{MAX_BATCH}")
        if log_chunk < 1:
            raise ValueError("log_chunk must be positive")
        self.w3 = w3
        self.record = (
            record if isinstance(record, DeploymentRecord) else DeploymentRecord.from_dict(record)
        )
        self.abi = abi
        self.contract = w3.eth.contract(address=self.record.clearinghouse, abi=abi)
        self.log_chunk = log_chunk
        self.status_chunk = status_chunk
        self.batch_size = batch_size
        events = {e["name"]: e for e in abi if e.get("type") == "event"}
        missing = [n for n in ACCOUNT_EVENTS if n not in events]
        if missing:
            raise ClientError(f"the ABI has no {', '.join(missing)} event (not a Clearinghouse?)")
        self._account_topics = [
            Web3.to_hex(event_abi_to_log_topic(events[n])) for n in ACCOUNT_EVENTS
        ]
        if check_chain:
            self.check_chain()

    @classmethod
    def from_files(
        cls,
        w3: Web3,
        deployment: str | Path,
        abi_path: str | Path | None = None,
        build_dir: str | Path = DEFAULT_BUILD_DIR,
        **kwargs: Any,
    ) -> MarginClient:
        return cls(w3, DeploymentRecord.load(deployment), load_abi(abi_path, build_dir), **kwargs)

    def check_chain(self) -> None:
        """Refuse a record made for another chain, or whose contract is gone (a restarted
        anvil keeps chain id 31337 but forgets every contract)."""
        chain_id = int(self.w3.eth.chain_id)
        if chain_id != self.record.chain_id:
            raise ClientError(
                f"the record is for chain {self.record.chain_id}, the node is chain {chain_id}"
            )
        if not self.w3.eth.get_code(self.record.clearinghouse):
            raise ClientError(
                f"no contract at {self.record.clearinghouse} (stale record? deploy again)"
            )

    # ---- Reads ----

    def accounts_from_events(
        self, from_block: int | None = None, to_block: int | None = None
    ) -> list[str]:
        """Every account named by a `Deposited` or `PositionChanged` event in
        [from_block (default: the record's start block), to_block (default: head)], in order of
        first appearance. One `eth_getLogs` per `log_chunk` blocks; a chunk the node refuses
        (too many results or too wide a range) is split in two and retried."""
        start = self.record.start_block if from_block is None else int(from_block)
        stop = int(self.w3.eth.block_number) if to_block is None else int(to_block)
        found: list[str] = []
        lo, chunk = start, self.log_chunk
        while lo <= stop:
            hi = min(lo + chunk - 1, stop)
            try:
                logs = self.w3.eth.get_logs(
                    {
                        "address": self.record.clearinghouse,
                        "fromBlock": lo,
                        "toBlock": hi,
                        "topics": [self._account_topics],
                    }
                )
            except (Web3RPCError, ValueError, OSError) as err:
                if chunk == 1:
                    raise
                chunk = max(1, chunk // 2)
                log.info("get_logs %d..%d refused (%s); %d blocks per request", lo, hi, err, chunk)
                continue
            for entry in sorted(logs, key=lambda x: (x["blockNumber"], x["logIndex"])):
                topics = entry["topics"]
                if len(topics) > 1:  # topic 1 is the indexed account of both events
                    found.append(to_checksum_address(bytes(topics[1])[-20:]))
            lo = hi + 1
        return unique_addresses(found)

    def status(
        self, accounts: Sequence[str], block_identifier: int | str = "latest"
    ) -> list[AccountStatus]:
        """`margin_status` over `accounts`, `status_chunk` (at most 512) per call."""
        rows: list[AccountStatus] = []
        addresses = [to_checksum_address(a) for a in accounts]
        for chunk in batched(addresses, self.status_chunk):
            out = self.contract.functions.margin_status(chunk).call(
                block_identifier=block_identifier
            )
            rows.extend(
                AccountStatus(to_checksum_address(a), int(e), int(m), int(i), bool(liq))
                for a, e, m, i, liq in out
            )
        return rows

    def liquidatable(self, accounts: Sequence[str]) -> list[str]:
        """The liquidatable accounts among `accounts` (input order, no repeats)."""
        return [s.account for s in self.status(unique_addresses(accounts)) if s.liquidatable]

    def preview(self, account: str) -> Preview:
        """What `liquidate(account)` would do now, if sent by a third party."""
        addr = to_checksum_address(account)
        fraction, reward, bad_debt = self.contract.functions.liquidation_preview(addr).call()
        return Preview(addr, int(fraction), int(reward), int(bad_debt))

    # ---- Liquidation ----

    def liquidate(
        self, account_list: Sequence[str], sender: str | None, private_key: str | None = None
    ) -> int:
        """Liquidate the liquidatable accounts in `account_list` with `liquidate_many`;
        the total reward credited to `sender` (token units), 0 when nothing was sent."""
        return self.liquidate_report(account_list, sender, private_key).reward

    def liquidate_report(
        self,
        account_list: Sequence[str],
        sender: str | None,
        private_key: str | None = None,
        *,
        dry_run: bool = False,
    ) -> LiquidationReport:
        """Liquidate with `liquidate_many`, `batch_size` accounts per transaction.

        `sender` is an account unlocked on the node (`eth_sendTransaction`) unless `private_key`
        is given, in which case transactions are signed here (`sender` may then be None; if
        given it must match the key). `liquidate_many` skips healthy accounts without
        reverting, so the accounts are screened with `margin_status` first: if none is
        liquidatable nothing is sent. Each batch's gas is estimated before sending; an
        estimate that reverts because the batch is healthy by then (a competitor was first)
        skips the batch; any other revert (a stale price, say) raises ClientError."""
        sender = self._sender(sender, private_key)
        wanted = unique_addresses(account_list)
        targets = self.liquidatable(wanted)
        target_set = set(targets)
        skipped = [a for a in wanted if a not in target_set]
        if not targets:
            log.info("none of %d accounts is liquidatable: nothing sent", len(wanted))
            return LiquidationReport(skipped=tuple(skipped))
        if dry_run:
            log.info("dry run: would liquidate %d accounts", len(targets))
            return LiquidationReport(skipped=tuple(skipped))

        block_gas_limit = int(self.w3.eth.get_block("latest")["gasLimit"])
        nonce = int(self.w3.eth.get_transaction_count(sender, "pending"))
        reward, gas_used = 0, 0
        liquidated: list[str] = []
        hashes: list[str] = []
        for batch in batched(targets, self.batch_size):
            fn = self.contract.functions.liquidate_many(batch)
            try:
                estimate = int(fn.estimate_gas({"from": sender}))
            except ContractLogicError as err:
                if _is_healthy_revert(err) or not self.liquidatable(batch):
                    log.info("batch of %d healthy by now (%s): skipped", len(batch), err)
                    skipped.extend(batch)
                    continue
                raise ClientError(f"liquidate_many would revert: {err}") from err
            tx = fn.build_transaction(
                {"from": sender, "nonce": nonce, "gas": gas_limit_for(estimate, block_gas_limit)}
            )
            if private_key is not None:
                signed = self.w3.eth.account.sign_transaction(tx, private_key)
                tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
            else:
                tx_hash = self.w3.eth.send_transaction(tx)
            nonce += 1
            receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT_S)
            hashes.append(Web3.to_hex(tx_hash))
            gas_used += int(receipt["gasUsed"])
            if receipt["status"] != 1:
                raise ClientError(f"liquidate_many reverted on chain: {hashes[-1]}")
            events = self.contract.events.Liquidated().process_receipt(receipt, errors=DISCARD)
            done = [to_checksum_address(ev["args"]["account"]) for ev in events]
            reward += sum(
                int(ev["args"]["keeper_reward"])
                for ev in events
                if to_checksum_address(ev["args"]["liquidator"]) == sender
            )
            liquidated.extend(done)
            skipped.extend(a for a in batch if a not in done)
            log.info(
                "liquidate_many(%d) %s: %d liquidated, gas %d (estimate %d)",
                len(batch),
                hashes[-1],
                len(done),
                receipt["gasUsed"],
                estimate,
            )
        return LiquidationReport(reward, tuple(liquidated), tuple(hashes), gas_used, tuple(skipped))

    @staticmethod
    def _sender(sender: str | None, private_key: str | None) -> str:
        if private_key is None:
            if sender is None:
                raise ClientError("a sender is needed: an unlocked account or a private key")
            return to_checksum_address(sender)
        signer = to_checksum_address(Account.from_key(private_key).address)
        if sender is not None and to_checksum_address(sender) != signer:
            raise ClientError(f"the private key signs for {signer}, not for {sender}")
        return signer


# ---- Command line ----


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def _fmt_units(amount: int, decimals: int) -> str:
    return f"{amount / 10**decimals:,.2f}"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mm-client",
        description="Read account health and liquidate on a Margin Maintenance clearinghouse "
        "with plain web3.py (no Ape): the deployment record and the ABI are all it needs.",
    )
    p.add_argument(
        "--rpc",
        default=os.environ.get("MM_RPC_URL", DEFAULT_RPC),
        help=f"HTTP JSON-RPC endpoint (env MM_RPC_URL; default {DEFAULT_RPC})",
    )
    p.add_argument(
        "--deployment",
        default=os.environ.get("MM_DEPLOYMENT", DEFAULT_DEPLOYMENT),
        help=f"deployment record (env MM_DEPLOYMENT; default {DEFAULT_DEPLOYMENT})",
    )
    p.add_argument("--abi", default=None, help="Clearinghouse ABI JSON (default: from --build-dir)")
    p.add_argument(
        "--build-dir",
        default=DEFAULT_BUILD_DIR,
        help="where `ape compile` wrote Clearinghouse.json or __local__.json (default .build)",
    )
    p.add_argument("--from-block", type=int, default=None, help="default: the record's start")
    p.add_argument("--log-chunk", type=int, default=DEFAULT_LOG_CHUNK, help="blocks per getLogs")
    p.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = p.add_subparsers(dest="command", required=True)

    st = sub.add_parser("status", help="health of every account seen in the events")
    st.add_argument("--all", action="store_true", help="list healthy accounts too")
    st.add_argument("--json", action="store_true", help="one JSON document on stdout")

    lq = sub.add_parser("liquidate", help="liquidate every liquidatable account seen")
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
    lq.add_argument("--dry-run", action="store_true", help="report targets, send nothing")

    pv = sub.add_parser("preview", help="liquidation_preview of one account")
    pv.add_argument("account")
    return p


def _cmd_status(client: MarginClient, args: argparse.Namespace) -> int:
    accounts = client.accounts_from_events(args.from_block)
    rows = client.status(accounts)
    liq = [r for r in rows if r.liquidatable]
    if args.json:
        doc = {
            "clearinghouse": client.record.clearinghouse,
            "block": int(client.w3.eth.block_number),
            "accounts": len(rows),
            "liquidatable": [r.account for r in liq],
            "rows": [asdict(r) for r in (rows if args.all else liq)],
        }
        _out(json.dumps(doc, indent=2))
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


def _cmd_liquidate(client: MarginClient, args: argparse.Namespace) -> int:
    key: str | None = None
    if args.unlocked_sender is None:
        key = os.environ.get(args.private_key_env)
        if not key:
            raise ClientError(
                f"${args.private_key_env} is not set: export the liquidator's key there "
                "or pass --unlocked-sender ADDRESS"
            )
    accounts = args.account if args.account else client.accounts_from_events(args.from_block)
    report = client.liquidate_report(accounts, args.unlocked_sender, key, dry_run=args.dry_run)
    dec = client.record.collateral.decimals
    if args.dry_run:
        skipped = set(report.skipped)
        targets = [a for a in unique_addresses(accounts) if a not in skipped]
        _out(f"dry run: {len(targets)} liquidatable of {len(accounts)} accounts")
        for a in targets:
            _out(f"  {a}")
        return 0
    _out(
        f"liquidated {len(report.liquidated)} of {len(accounts)} accounts in "
        f"{len(report.tx_hashes)} tx, reward {_fmt_units(report.reward, dec)}, "
        f"gas {report.gas_used:,}"
    )
    for h in report.tx_hashes:
        _out(f"  {h}")
    return 0


def _cmd_preview(client: MarginClient, args: argparse.Namespace) -> int:
    p = client.preview(args.account)
    dec = client.record.collateral.decimals
    _out(
        f"{p.account}: fraction {p.fraction_wad / WAD:.4f}, reward {_fmt_units(p.reward, dec)}, "
        f"bad debt {_fmt_units(p.bad_debt, dec)}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        w3 = Web3(Web3.HTTPProvider(args.rpc))
        client = MarginClient.from_files(
            w3, args.deployment, args.abi, args.build_dir, log_chunk=args.log_chunk
        )
        commands = {"status": _cmd_status, "liquidate": _cmd_liquidate, "preview": _cmd_preview}
        return commands[args.command](client, args)
    except (ClientError, Web3Exception, OSError) as err:  # a node error, a revert, no node
        sys.stderr.write(f"mm-client: {err}\n")
        return 1


__all__ = [
    "MAX_BATCH",
    "MAX_STATUS",
    "AccountStatus",
    "Artifact",
    "ClientError",
    "CollateralInfo",
    "DeploymentRecord",
    "LiquidationReport",
    "MarginClient",
    "MarketInfo",
    "Preview",
    "batched",
    "gas_limit_for",
    "load_abi",
    "load_artifact",
    "main",
    "unique_addresses",
]


if __name__ == "__main__":
    sys.exit(main())
