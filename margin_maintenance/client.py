"""A small liquidation client in plain web3.py: no Ape, only the ABI and the deployment record.

Bot writers who do not use Ape need two things (SPEC.md section 6):

- the ABIs: the tracked folder `abi/` (one plain JSON list per deployable, `abi/Clearinghouse.json`,
  `abi/PriceFeed.json`, ...; test mocks in `abi/mocks/`), or what `ape compile` writes to
  `.build/` (a per-contract artifact `.build/Clearinghouse.json` holding `abi`, or the project
  manifest `.build/__local__.json`, `contractTypes.Clearinghouse.abi`), or any JSON file holding
  the ABI list or an object with `abi`;
- the deployment record `deployments/<network>.json` (read here as plain JSON): `chain_id`,
  `start_block`, `clearinghouse`, `collateral {address, decimals}`,
  `markets [{id, symbol, aggregator, feed}]`.

Which accounts are worth liquidating is decided by the reference keeper's own pure rules
(`margin_maintenance/keeper/decisions.py`: `select_targets`, `plan_batches`, `CostModel`), with
the node's gas price and the keeper's gas-per-account figures, so this client and the keeper
pick the same targets.

Library use::

    w3 = Web3(Web3.HTTPProvider("http://127.0.0.1:8545"))
    client = MarginClient.from_files(w3, "deployments/local.json")
    accounts = client.accounts_from_events()
    plan = client.plan(accounts, ProfitCheck(min_profit_usd=Decimal(5)))
    report = client.liquidate_report(accounts, None, private_key=key, profit=ProfitCheck())

Command line (`bin/mm-client` in a checkout, also installed as `mm-client`)::

    bin/mm-client --rpc http://127.0.0.1:8545 --deployment deployments/local.json status
    bin/mm-client liquidate --dry-run --min-profit 5
    MM_PRIVATE_KEY=0x.. bin/mm-client liquidate --min-profit 5
    bin/mm-client liquidate --unlocked-sender 0x..

`--json` documents carry `token` (the collateral's address) and `decimals` at the top level;
every token amount in them is an integer in token units (divide by 10**decimals), USD figures
are estimates (JSON numbers), fractions are WAD integers.

This module imports nothing from Ape (a test checks it), only web3.py, its own dependencies
(eth-utils, eth-account, requests) and the keeper's `decisions.py` (pure, standard library only),
so the two files can be copied into a bot on their own.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from eth_account import Account
from eth_utils import event_abi_to_log_topic, to_checksum_address
from web3 import Web3
from web3.exceptions import ContractLogicError, Web3Exception, Web3RPCError
from web3.logs import DISCARD

from margin_maintenance.chain.types import AccountStatus
from margin_maintenance.keeper import decisions
from margin_maintenance.model.constants import MAX_BATCH, MAX_STATUS

log = logging.getLogger("margin_maintenance.client")

DEFAULT_LOG_CHUNK = 10_000  # blocks per eth_getLogs request (halved on provider errors)
GAS_HEADROOM_BPS = 12_000  # gas limit sent = estimate * 1.2, capped by the block gas limit
BPS = 10_000
WAD = 10**18
RECEIPT_TIMEOUT_S = 120  # seconds to wait for a liquidation receipt
ACCOUNT_EVENTS = ("Deposited", "PositionChanged")  # events that name every trader
# The reference keeper's defaults (KeeperSettings: MM_GAS_PER_ACCOUNT, MM_BATCH_BASE_GAS,
# MM_BLOCK_GAS_FILL_BPS, MM_ETH_MARKET_ID); a test checks they still agree.
KEEPER_GAS_PER_ACCOUNT = 35_000  # marginal gas of one more account in a liquidate_many
KEEPER_BATCH_BASE_GAS = 60_000  # gas of a liquidate_many before any account
KEEPER_BLOCK_GAS_FILL_BPS = 9_000  # share of the block gas limit one batch may plan for
KEEPER_ETH_MARKET_ID = 0  # the market whose price prices gas (ETH-USD)

REPO_ROOT = Path(__file__).resolve().parent.parent  # the checkout, when run from one
ABI_DIR_NAME = "abi"  # tracked plain ABIs: abi/<Name>.json, test mocks in abi/mocks/
DEFAULT_RPC = "http://127.0.0.1:8545"
DEFAULT_RPC_TIMEOUT_S = 30.0  # seconds per JSON-RPC request
DEFAULT_DEPLOYMENT = "deployments/local.json"
DEFAULT_BUILD_DIR = ".build"
DEFAULT_KEY_ENV = "MM_PRIVATE_KEY"  # name of the variable holding the liquidator's key
MANIFEST_NAME = "__local__.json"  # Ape 0.8's project manifest in .build/
MANIFEST_READ_TRIES = 12  # reads of a manifest caught mid-rewrite by `ape compile` ...
MANIFEST_RETRY_S = 0.25  # ... this many seconds apart
EXIT_ERROR = 1  # a refused transaction, a bad file, a revert
EXIT_UNREACHABLE = 2  # no node at --rpc (bin/mm-client also exits 2 without a venv)
JSON_UNITS = "token amounts are integers in token units: divide by 10**decimals"

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


def default_path(relative: str | Path, cwd: Path | None = None) -> Path:
    """`relative` under the working directory if it exists there, else under the checkout
    this module lives in (so `bin/mm-client` finds the repo's `abi/` from anywhere)."""
    here = (cwd or Path.cwd()) / relative
    return here if here.exists() else REPO_ROOT / relative


def default_abi_dir(cwd: Path | None = None) -> Path | None:
    """`./abi` if it exists, else `<repo>/abi` next to the package, else None."""
    path = default_path(ABI_DIR_NAME, cwd)
    return path if path.is_dir() else None


def _abi_dir_file(abi_dir: Path, name: str) -> Path | None:
    for path in (abi_dir / f"{name}.json", abi_dir / "mocks" / f"{name}.json"):
        if path.is_file():
            return path
    return None


def _load_from_build(name: str, build: Path) -> Artifact:
    single = build / f"{name}.json"
    if single.exists():
        return _artifact_from_json(_read_json(single, "artifact"), name, single)
    manifest = build / MANIFEST_NAME
    missing = (
        f"no {name}.json or {MANIFEST_NAME} in {build} "
        "(run `ape compile`, or pass --abi-dir DIR / --abi FILE)"
    )
    if not build.is_dir():
        raise ClientError(missing)
    try:
        return _artifact_from_json(_read_manifest(manifest), name, manifest)
    except ClientError as err:
        if manifest.exists():
            raise
        raise ClientError(missing) from err


def load_artifact(
    name: str = "Clearinghouse",
    path: str | Path | None = None,
    build_dir: str | Path | None = None,
    abi_dir: str | Path | None = None,
) -> Artifact:
    """`name`'s ABI (and bytecode, from a build artifact), from the first of:

    1. `path`, a single JSON file;
    2. `abi_dir` if given: `<abi_dir>/<name>.json` or `<abi_dir>/mocks/<name>.json`;
    3. `build_dir` if given: `<build_dir>/<name>.json`, else Ape's `<build_dir>/__local__.json`;
    4. the default ABI folder (`default_abi_dir`) if it holds the file, else `.build/` as in 3.
    """
    if path is not None:
        p = Path(path)
        return _artifact_from_json(_read_json(p, f"ABI file for {name}"), name, p)
    if abi_dir is not None:
        found = _abi_dir_file(Path(abi_dir), name)
        if found is None:
            raise ClientError(f"no {name}.json in {abi_dir} (or in its mocks/)")
        return _artifact_from_json(_read_json(found, "ABI file"), name, found)
    if build_dir is not None:
        return _load_from_build(name, Path(build_dir))
    default_dir = default_abi_dir()
    found = _abi_dir_file(default_dir, name) if default_dir is not None else None
    if found is not None:
        return _artifact_from_json(_read_json(found, "ABI file"), name, found)
    return _load_from_build(name, Path(DEFAULT_BUILD_DIR))


def load_abi(
    path: str | Path | None = None,
    build_dir: str | Path | None = None,
    name: str = "Clearinghouse",
    abi_dir: str | Path | None = None,
) -> list[dict[str, Any]]:
    """The Clearinghouse ABI (see `load_artifact` for where it is looked for)."""
    return load_artifact(name, path, build_dir, abi_dir).abi


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

    def market(self, market_id: int) -> MarketInfo | None:
        return next((m for m in self.markets if m.id == market_id), None)

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
class ProfitCheck:
    """The keeper's profit rule (`decisions.plan_batches`) and the figures it needs: an account
    goes out only if its reward pays its own marginal gas, and a batch only if it nets at least
    `min_profit_usd` after its gas (`eth_gasPrice` x the keeper's gas figures, at `eth_usd`)."""

    min_profit_usd: Decimal = Decimal(0)  # USD a batch must net after gas (MM_MIN_PROFIT)
    token_usd: Decimal = Decimal(1)  # USD per whole collateral token (MM_TOKEN_USD)
    eth_usd: Decimal | None = None  # USD per ETH; None: market eth_market_id's price on chain
    eth_market_id: int = KEEPER_ETH_MARKET_ID
    gas_per_account: int = KEEPER_GAS_PER_ACCOUNT
    base_gas: int = KEEPER_BATCH_BASE_GAS


@dataclass(frozen=True)
class PlannedTarget:
    """A liquidatable, priced account and what the plan does with it."""

    account: str
    reward: int  # expected keeper reward, token units
    fraction_wad: int  # share of every position closed, WAD
    bad_debt: int  # token units
    batch: int | None  # index into LiquidationPlan.batches; None: not sent
    reason: str  # why it is not sent ("" when it is)
    reward_usd: Fraction | None = None  # None without a profit check
    gas_cost_usd: Fraction | None = None  # its marginal gas (keeper figure) at the node's price

    @property
    def send(self) -> bool:
        return self.batch is not None


@dataclass(frozen=True)
class LiquidationPlan:
    """What a liquidation pass would send: targets ranked by reward (`select_targets`) and the
    `liquidate_many` batches worth sending (`plan_batches`, when there is a profit check)."""

    targets: tuple[PlannedTarget, ...] = ()
    batches: tuple[tuple[str, ...], ...] = ()
    not_liquidatable: tuple[str, ...] = ()  # healthy, or previewed as closing nothing
    cost: decisions.CostModel | None = None  # None: every liquidatable account is sent
    batch_size: int = MAX_BATCH

    @property
    def liquidatable(self) -> list[str]:
        return [t.account for t in self.targets]

    @property
    def to_send(self) -> list[str]:
        return [a for b in self.batches for a in b]

    @property
    def unprofitable(self) -> list[str]:
        return [t.account for t in self.targets if not t.send]

    def batch_reward(self, index: int) -> int:
        wanted = set(self.batches[index])
        return sum(t.reward for t in self.targets if t.account in wanted)

    def batch_gas(self, index: int) -> int:
        """The keeper's gas figure for batch `index` (base + per account)."""
        per, base = (
            (self.cost.per_account_gas, self.cost.base_gas)
            if self.cost is not None
            else (KEEPER_GAS_PER_ACCOUNT, KEEPER_BATCH_BASE_GAS)
        )
        return decisions.batch_gas(len(self.batches[index]), per, base)


@dataclass(frozen=True)
class LiquidationReport:
    """What `liquidate_report` did: accounts liquidated (from `Liquidated` events in the
    receipts), the reward credited to the sender, and the transactions sent."""

    reward: int = 0  # token units, credited to the sender's collateral
    liquidated: tuple[str, ...] = ()
    tx_hashes: tuple[str, ...] = ()
    gas_used: int = 0
    skipped: tuple[str, ...] = ()  # asked for but healthy when checked (nothing sent for them)
    unprofitable: tuple[str, ...] = ()  # liquidatable, left out by the profit check
    plan: LiquidationPlan = field(default_factory=LiquidationPlan)


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


def output_fields(out: Any, names: Sequence[str]) -> tuple[Any, ...]:
    """The values of a view's decoded output, in the order of `names`, whatever shape the ABI
    gave it: several unnamed outputs (web3 returns a list), one struct (web3 returns a tuple;
    `w3.codec.decode` a 1-tuple holding it), or named fields (a mapping, or a named tuple with
    `decode_tuples=True`). The encoded bytes are the same in every case."""
    if isinstance(out, Mapping):
        return tuple(out[n] for n in names)
    if hasattr(out, "_asdict"):
        return output_fields(out._asdict(), names)
    values = tuple(out)
    if len(values) == 1 and len(names) > 1 and isinstance(values[0], list | tuple | Mapping):
        return output_fields(values[0], names)
    if len(values) != len(names):
        raise ClientError(f"expected {len(names)} values ({', '.join(names)}), got {out!r}")
    return values


PREVIEW_FIELDS = ("fraction", "reward", "bad_debt")  # IClearinghouse.LiquidationPreview
POSITION_FIELDS = ("size", "entry_price")  # IClearinghouse.Position


def plan_liquidations(
    statuses: Iterable[AccountStatus],
    previews: Mapping[str, Preview],
    batch_size: int = MAX_BATCH,
    cost: decisions.CostModel | None = None,
) -> LiquidationPlan:
    """Rank the liquidatable accounts and batch them with the keeper's rules: `select_targets`
    (priced, closing something, by reward), then `plan_batches` under `cost` (each reward pays
    its own gas, each batch clears `cost.min_profit_usd` after its gas); without `cost` every
    target is sent, `batch_size` per batch."""
    rows = list(statuses)
    keeper_previews = {
        a: decisions.Preview(p.fraction_wad, p.reward, p.bad_debt) for a, p in previews.items()
    }
    targets = decisions.select_targets(rows, keeper_previews, len(rows))
    if cost is None:
        batches = decisions.chunked(targets, batch_size) if targets else []
    else:
        batches, _ = decisions.plan_batches(targets, batch_size, max(1, len(targets)), cost)
    batch_of = {t.account: i for i, b in enumerate(batches) for t in b}
    priced = {t.account for t in targets}
    return LiquidationPlan(
        targets=tuple(_planned(t, batch_of.get(t.account), cost) for t in targets),
        batches=tuple(tuple(t.account for t in b) for b in batches),
        not_liquidatable=tuple(r.account for r in rows if r.account not in priced),
        cost=cost,
        batch_size=batch_size,
    )


def _planned(
    t: decisions.Target, batch: int | None, cost: decisions.CostModel | None
) -> PlannedTarget:
    if cost is None:
        return PlannedTarget(t.account, t.reward, t.fraction, t.bad_debt, batch, "")
    if batch is not None:
        reason = ""
    elif not cost.covers_marginal_gas(t.reward):
        reason = "reward does not pay its gas"
    else:
        reason = "its batch nets under the minimum profit"
    return PlannedTarget(
        t.account,
        t.reward,
        t.fraction,
        t.bad_debt,
        batch,
        reason,
        decisions.reward_usd(t.reward, cost.token_usd, cost.token_decimals),
        decisions.gas_cost_usd(cost.per_account_gas, cost.gas_price_wei, cost.eth_usd),
    )


def _is_healthy_revert(err: Exception) -> bool:
    return "healthy" in str(err).lower()


def _has_function(abi: Sequence[dict[str, Any]], name: str) -> bool:
    return any(e.get("type") == "function" and e.get("name") == name for e in abi)


# ---- The client ----


class MarginClient:
    """Reads account health and liquidates through one Clearinghouse, with plain web3.py."""

    def __init__(
        self,
        w3: Web3,
        record: DeploymentRecord | dict[str, Any],
        abi: list[dict[str, Any]],
        *,
        feed_abi: list[dict[str, Any]] | None = None,
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
        self.feed_abi = feed_abi  # PriceFeed ABI: prices a market when the ABI has no mark_price
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
        build_dir: str | Path | None = None,
        *,
        abi_dir: str | Path | None = None,
        **kwargs: Any,
    ) -> MarginClient:
        """A client from the record and the ABIs (see `load_artifact` for where they are looked
        for); the PriceFeed ABI is read from the same folder when it is there."""
        record = DeploymentRecord.load(deployment)
        abi = load_abi(abi_path, build_dir, abi_dir=abi_dir)
        try:
            feed_abi: list[dict[str, Any]] | None = load_abi(None, build_dir, "PriceFeed", abi_dir)
        except ClientError:
            feed_abi = None
        return cls(w3, record, abi, feed_abi=feed_abi, **kwargs)

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
                if chunk == 1 or isinstance(err, requests.ConnectionError):
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
        out = self.contract.functions.liquidation_preview(addr).call()
        fraction, reward, bad_debt = output_fields(out, PREVIEW_FIELDS)
        return Preview(addr, int(fraction), int(reward), int(bad_debt))

    def position(self, account: str, market_id: int) -> tuple[int, int]:
        """(size, entry price): signed WAD base units and a WAD price."""
        out = self.contract.functions.position(to_checksum_address(account), market_id).call()
        size, entry_price = output_fields(out, POSITION_FIELDS)
        return int(size), int(entry_price)

    def mark_price(self, market_id: int) -> int:
        """Market `market_id`'s oracle price, WAD: the clearinghouse's `mark_price` view when
        the ABI has it, else the record's feed adapter (`PriceFeed.latest_price`)."""
        if _has_function(self.abi, "mark_price"):
            return int(self.contract.functions.mark_price(market_id).call())
        market = self.record.market(market_id)
        if market is None or self.feed_abi is None:
            raise ClientError(
                f"cannot price market {market_id}: the ABI has no mark_price and "
                + ("the record lists no such market" if market is None else "no PriceFeed ABI")
                + " (pass --eth-usd)"
            )
        feed = self.w3.eth.contract(address=market.feed, abi=self.feed_abi)
        return int(feed.functions.latest_price().call())

    def cost_model(self, check: ProfitCheck) -> decisions.CostModel:
        """The keeper's cost model at the node's gas price (`eth_gasPrice`, as the keeper reads
        it) and the ETH price (`check.eth_usd`, else market `check.eth_market_id`'s price)."""
        if check.eth_usd is not None:
            eth_usd = check.eth_usd
        else:
            try:
                eth_usd = Decimal(self.mark_price(check.eth_market_id)) / WAD
            except ContractLogicError as err:
                raise ClientError(f"ETH price unavailable ({err}); pass --eth-usd") from err
        return decisions.CostModel(
            gas_price_wei=int(self.w3.eth.gas_price),
            eth_usd=eth_usd,
            token_usd=check.token_usd,
            token_decimals=self.record.collateral.decimals,
            per_account_gas=check.gas_per_account,
            base_gas=check.base_gas,
            min_profit_usd=check.min_profit_usd,
        )

    def plan(self, accounts: Sequence[str], profit: ProfitCheck | None = None) -> LiquidationPlan:
        """Read status, preview the liquidatable accounts, and plan with the keeper's rules
        (`plan_liquidations`); batches sized to the block as the keeper sizes them."""
        rows = self.status(unique_addresses(accounts))
        previews = {r.account: self.preview(r.account) for r in rows if r.liquidatable}
        sizing = profit or ProfitCheck()
        block_gas_limit = int(self.w3.eth.get_block("latest")["gasLimit"])
        size = decisions.batch_size_for(
            block_gas_limit * KEEPER_BLOCK_GAS_FILL_BPS // BPS,
            sizing.gas_per_account,
            sizing.base_gas,
            cap=self.batch_size,
        )
        if size == 0:
            raise ClientError(f"block gas limit {block_gas_limit} fits no liquidation")
        # Gas and the ETH price are read only when there is something to price.
        cost = self.cost_model(profit) if profit is not None and previews else None
        return plan_liquidations(rows, previews, size, cost)

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
        profit: ProfitCheck | None = None,
    ) -> LiquidationReport:
        """Liquidate with `liquidate_many`, in the batches `plan` makes.

        `sender` is an account unlocked on the node (`eth_sendTransaction`) unless `private_key`
        is given, in which case transactions are signed here (`sender` may then be None; if
        given it must match the key); a dry run needs neither. With `profit` the keeper's
        profit rule decides which accounts go out; without it every liquidatable one does.
        Each batch's gas is estimated before sending; an estimate that reverts because the
        batch is healthy by then (a competitor was first) skips the batch; any other revert (a
        stale price, say) raises ClientError."""
        if not dry_run:
            sender = self._sender(sender, private_key)
        plan = self.plan(account_list, profit)
        skipped = list(plan.not_liquidatable)
        unprofitable = tuple(plan.unprofitable)
        if dry_run or not plan.batches:
            if not plan.batches:
                log.info("nothing worth sending among %d accounts", len(plan.not_liquidatable))
            return LiquidationReport(skipped=tuple(skipped), unprofitable=unprofitable, plan=plan)
        assert sender is not None

        block_gas_limit = int(self.w3.eth.get_block("latest")["gasLimit"])
        nonce = int(self.w3.eth.get_transaction_count(sender, "pending"))
        reward, gas_used = 0, 0
        liquidated: list[str] = []
        hashes: list[str] = []
        for batch in (list(b) for b in plan.batches):
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
        return LiquidationReport(
            reward,
            tuple(liquidated),
            tuple(hashes),
            gas_used,
            tuple(skipped),
            unprofitable,
            plan,
        )

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


__all__ = [
    "MAX_BATCH",
    "MAX_STATUS",
    "AccountStatus",
    "Artifact",
    "ClientError",
    "CollateralInfo",
    "DeploymentRecord",
    "LiquidationPlan",
    "LiquidationReport",
    "MarginClient",
    "MarketInfo",
    "PlannedTarget",
    "Preview",
    "ProfitCheck",
    "batched",
    "connect",
    "default_abi_dir",
    "gas_limit_for",
    "json_header",
    "load_abi",
    "load_artifact",
    "main",
    "output_fields",
    "plan_liquidations",
    "unique_addresses",
    "unreachable_message",
]


if __name__ == "__main__":
    sys.exit(main())
