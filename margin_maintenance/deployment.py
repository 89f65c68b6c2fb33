"""The deployment record (`deployments/<network>.json`) and the traders file next to it.

The record is what the keeper, the simulator and outside tools read (SPEC.md section 6): with it
and the ABIs in `.build/` a client can trade and liquidate. Records for local networks are
git-ignored (`deployments/*local*.json`).

Layout of `deployments/<network>.json`::

    {"network": "local", "chain_id": 31337, "start_block": 0,
     "clearinghouse": "0x..", "lp_token": "0x..",
     "collateral": {"address": "0x..", "decimals": 6},
     "markets": [{"id": 0, "symbol": "ETH-USD", "aggregator": "0x..", "feed": "0x.."}],
     "deployer": "0x..", "guardian": "0x..", "deployed_at": 1764000000,
     "configurator": "0x..", "schema_version": 2}

Schema versions: a record without `schema_version` is version 1 (no configurator: the engine
was its own administrator); version 2 adds `configurator`, the contract every admin call goes
to (owner, guardian, setters, admin events). Every version-1 key is kept as it was.

Layout of `deployments/<network>-traders.json` (written by `ape run seed`)::

    {"network": "local", "chain_id": 31337, "clearinghouse": "0x..", "deployed_at": 1764000000,
     "traders": [{"address": "0x..", "hd_index": 1001, "seed": 7, "market": "ETH-USD",
                  "side": "long", "leverage": 6.5, "collateral_usd": 3120.5}],
     "lps": [{"address": "0x..", "hd_index": 1000, "seed": 7, "deposit_usd": 2000000.0}]}

`hd_index` is the index of the account in the test mnemonic (`test:` in ape-config.yaml), so a
later run can allocate fresh indices instead of reusing someone else's account.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from margin_maintenance.system import System

SCHEMA_VERSION = 2  # what `deployment_from_system` writes; a record without one is version 1
REPO_ROOT = Path(__file__).resolve().parent.parent
DEPLOYMENTS_ENV = "MM_DEPLOYMENTS_DIR"  # overrides the folder the records live in


class DeploymentError(RuntimeError):
    """A record is missing, malformed, or does not match the connected chain."""


# ---- Paths ----


def network_slug(ecosystem: str, network: str) -> str:
    """File stem for a network: `local` for ethereum:local, `sepolia` for ethereum:sepolia,
    `arbitrum-mainnet` for arbitrum:mainnet (any `*local*` stem is git-ignored)."""
    net = network.lower().replace(":", "-")
    eco = ecosystem.lower()
    return net if eco == "ethereum" else f"{eco}-{net}"


def deployments_dir(directory: str | Path | None = None) -> Path:
    """The folder holding the records: `directory`, else $MM_DEPLOYMENTS_DIR, else
    `<repo>/deployments`."""
    if directory is not None:
        return Path(directory)
    if env := os.environ.get(DEPLOYMENTS_ENV):
        return Path(env)
    return REPO_ROOT / "deployments"


def record_path(network: str, directory: str | Path | None = None) -> Path:
    return deployments_dir(directory) / f"{network}.json"


def traders_path(network: str, directory: str | Path | None = None) -> Path:
    return deployments_dir(directory) / f"{network}-traders.json"


# ---- The deployment record ----


@dataclass(frozen=True)
class CollateralRecord:
    address: str
    decimals: int


@dataclass(frozen=True)
class MarketRecord:
    id: int
    symbol: str
    aggregator: str
    feed: str


@dataclass(frozen=True)
class Deployment:
    """Typed view of `deployments/<network>.json`."""

    network: str
    chain_id: int
    start_block: int
    clearinghouse: str
    lp_token: str
    collateral: CollateralRecord
    markets: tuple[MarketRecord, ...]
    deployer: str
    guardian: str | None = None
    deployed_at: int | None = None  # head block time when written: tells apart two deployments
    # at the same addresses (a restarted anvil replays the same deployer nonces)
    configurator: str | None = None  # the admin contract (schema 2; None in a version-1 record)
    schema_version: int = 1  # 1 when the record has none

    @property
    def unit(self) -> int:
        """One whole collateral token in token units."""
        return 10**self.collateral.decimals

    def market(self, key: int | str) -> MarketRecord:
        """A market by id or by symbol (case-insensitive, `ETH` matches `ETH-USD`)."""
        for m in self.markets:
            if isinstance(key, int) and m.id == key:
                return m
            if isinstance(key, str):
                k = key.upper()
                if m.symbol.upper() == k or m.symbol.upper().split("-")[0] == k:
                    return m
        known = ", ".join(f"{m.id}:{m.symbol}" for m in self.markets)
        raise DeploymentError(f"no market {key!r} in the deployment (markets: {known})")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["markets"] = [asdict(m) for m in self.markets]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Deployment:
        try:
            col = data["collateral"]
            return cls(
                network=str(data.get("network", "")),
                chain_id=int(data["chain_id"]),
                start_block=int(data["start_block"]),
                clearinghouse=str(data["clearinghouse"]),
                lp_token=str(data["lp_token"]),
                collateral=CollateralRecord(str(col["address"]), int(col["decimals"])),
                markets=tuple(
                    MarketRecord(
                        int(m["id"]), str(m["symbol"]), str(m["aggregator"]), str(m["feed"])
                    )
                    for m in data["markets"]
                ),
                deployer=str(data["deployer"]),
                guardian=None if data.get("guardian") is None else str(data["guardian"]),
                deployed_at=None if data.get("deployed_at") is None else int(data["deployed_at"]),
                configurator=None
                if data.get("configurator") is None
                else str(data["configurator"]),
                schema_version=int(data.get("schema_version", 1)),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise DeploymentError(f"malformed deployment record: {err!r}") from err


def chain_market_ids(ch: Any, feeds: list[Any]) -> list[int]:
    """Each feed's market id as the clearinghouse lists it (matched by feed address).

    `deploy_system` takes ids from `add_market`'s `tx.return_value`, which on the in-process
    chain is an `eth_call` replayed on the block's post-state, so it comes back one too high
    there; the chain's own listing is the reliable source."""
    by_feed = {str(ch.market(i).feed).lower(): i for i in range(int(ch.market_count()))}
    try:
        return [by_feed[str(getattr(f, "address", f)).lower()] for f in feeds]
    except KeyError as err:
        raise DeploymentError(f"feed {err} is not listed on the clearinghouse") from err


def with_chain_market_ids(system: System) -> System:
    """`system` with market ids read from the clearinghouse (see `chain_market_ids`)."""
    return replace(system, market_ids=chain_market_ids(system.clearinghouse, system.feeds))


def deployment_from_system(
    system: System,
    network: str,
    chain_id: int,
    deployer: Any,
    guardian: Any | None = None,
    deployed_at: int | None = None,
) -> Deployment:
    """The record of a system just built by `deploy_system` (market ids read from the chain;
    `deployed_at` defaults to the head block's time)."""
    from ape import chain

    system = with_chain_market_ids(system)
    if deployed_at is None:
        deployed_at = int(chain.blocks.head.timestamp)
    return Deployment(
        network=network,
        chain_id=int(chain_id),
        start_block=int(system.start_block),
        clearinghouse=str(system.clearinghouse.address),
        lp_token=str(system.lp_token.address),
        collateral=CollateralRecord(str(system.token.address), int(system.token.decimals())),
        markets=tuple(
            MarketRecord(int(i), s, str(a.address), str(f.address))
            for i, s, a, f in zip(
                system.market_ids, system.symbols, system.aggregators, system.feeds, strict=True
            )
        ),
        deployer=str(getattr(deployer, "address", deployer)),
        guardian=None if guardian is None else str(getattr(guardian, "address", guardian)),
        deployed_at=deployed_at,
        configurator=str(system.configurator.address),
        schema_version=SCHEMA_VERSION,
    )


def _write_json(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)  # atomic: a reader never sees half a file
    return path


def _read_json(path: Path, what: str, hint: str) -> dict[str, Any]:
    if not path.exists():
        raise DeploymentError(f"no {what} at {path}: {hint}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DeploymentError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(data, dict):
        raise DeploymentError(f"{path} does not hold a JSON object")
    return data


def save_deployment(dep: Deployment, directory: str | Path | None = None) -> Path:
    return _write_json(record_path(dep.network, directory), dep.to_dict())


def load_deployment(network: str, directory: str | Path | None = None) -> Deployment:
    data = _read_json(
        record_path(network, directory), "deployment record", "run `ape run deploy` first"
    )
    dep = Deployment.from_dict(data)
    return dep if dep.network else replace(dep, network=network)


# ---- Connecting to a recorded deployment ----


def check_chain(dep: Deployment, chain_id: int, code_at: Any) -> None:
    """Refuse a record made for another chain, or one whose contracts are gone (a restarted
    anvil keeps chain id 31337 but forgets every contract). `code_at(address)` returns code."""
    if int(chain_id) != dep.chain_id:
        raise DeploymentError(
            f"record {dep.network!r} is for chain {dep.chain_id}, connected to {chain_id}"
        )
    if not code_at(dep.clearinghouse):
        raise DeploymentError(
            f"no contract at {dep.clearinghouse} (stale record for {dep.network!r}?): "
            "run `ape run deploy` again"
        )


def attach(project: Any, dep: Deployment) -> System:
    """Contract handles for a recorded deployment (same shape `deploy_system` returns)."""
    return System(
        token=project.MockERC20.at(dep.collateral.address),
        vault=project.LPVault.at(dep.lp_token),
        clearinghouse=project.Clearinghouse.at(dep.clearinghouse),
        configurator=None
        if dep.configurator is None
        else project.Configurator.at(dep.configurator),
        aggregators=[project.MockAggregator.at(m.aggregator) for m in dep.markets],
        feeds=[project.PriceFeed.at(m.feed) for m in dep.markets],
        market_ids=[m.id for m in dep.markets],
        symbols=[m.symbol for m in dep.markets],
        start_block=dep.start_block,
    )


def connected_network() -> str:
    """The record name of the network Ape is connected to (`local` for ethereum:local)."""
    from ape import chain

    net = chain.provider.network
    return network_slug(net.ecosystem.name, net.name)


def load_connected(project: Any, directory: str | Path | None = None) -> tuple[Deployment, System]:
    """The record of the connected network, checked against the chain, and its handles."""
    from ape import chain

    dep = load_deployment(connected_network(), directory)
    check_chain(dep, chain.chain_id, chain.provider.get_code)
    return dep, attach(project, dep)


def test_signer(address: str) -> Any:
    """The test account (first `number_of_accounts` of the test mnemonic) with this address,
    e.g. the recorded deployer, which owns the mock token and aggregators on local networks."""
    from ape import accounts

    for acct in accounts.test_accounts:
        if str(acct.address).lower() == str(address).lower():
            return acct
    raise DeploymentError(
        f"{address} is not one of the test accounts; it cannot sign here (a live deployment's "
        "owner signs with its own account)"
    )


# ---- The traders file ----


@dataclass(frozen=True)
class TraderRecord:
    address: str
    hd_index: int  # index in the test mnemonic
    seed: int  # population seed that made it
    market: str  # symbol
    side: str  # "long" | "short"
    leverage: float
    collateral_usd: float


@dataclass(frozen=True)
class LPRecord:
    address: str
    hd_index: int
    seed: int
    deposit_usd: float


@dataclass(frozen=True)
class TradersFile:
    network: str
    chain_id: int
    clearinghouse: str
    traders: tuple[TraderRecord, ...] = ()
    lps: tuple[LPRecord, ...] = ()
    deployed_at: int | None = None  # the deployment record's, to match the two files

    @property
    def addresses(self) -> list[str]:
        return [t.address for t in self.traders]

    @property
    def next_hd_index(self) -> int | None:
        idx = [t.hd_index for t in self.traders] + [lp.hd_index for lp in self.lps]
        return max(idx) + 1 if idx else None

    def extended(self, traders: list[TraderRecord], lps: list[LPRecord]) -> TradersFile:
        return TradersFile(
            self.network,
            self.chain_id,
            self.clearinghouse,
            self.traders + tuple(traders),
            self.lps + tuple(lps),
            self.deployed_at,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "network": self.network,
            "chain_id": self.chain_id,
            "clearinghouse": self.clearinghouse,
            "deployed_at": self.deployed_at,
            "traders": [asdict(t) for t in self.traders],
            "lps": [asdict(lp) for lp in self.lps],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TradersFile:
        try:
            return cls(
                network=str(data["network"]),
                chain_id=int(data["chain_id"]),
                clearinghouse=str(data["clearinghouse"]),
                traders=tuple(TraderRecord(**t) for t in data.get("traders", [])),
                lps=tuple(LPRecord(**lp) for lp in data.get("lps", [])),
                deployed_at=None if data.get("deployed_at") is None else int(data["deployed_at"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise DeploymentError(f"malformed traders file: {err!r}") from err


def save_traders(tf: TradersFile, directory: str | Path | None = None) -> Path:
    return _write_json(traders_path(tf.network, directory), tf.to_dict())


def load_traders(network: str, directory: str | Path | None = None) -> TradersFile:
    data = _read_json(traders_path(network, directory), "traders file", "run `ape run seed` first")
    return TradersFile.from_dict(data)


def traders_for(dep: Deployment, directory: str | Path | None = None) -> TradersFile:
    """The traders file of this deployment, or an empty one when there is none or it belongs
    to an earlier deployment (another chain, clearinghouse address or deployment time)."""
    empty = TradersFile(dep.network, dep.chain_id, dep.clearinghouse, deployed_at=dep.deployed_at)
    try:
        tf = load_traders(dep.network, directory)
    except DeploymentError:
        if traders_path(dep.network, directory).exists():
            raise
        return empty
    if (
        tf.clearinghouse.lower() != dep.clearinghouse.lower()
        or tf.chain_id != dep.chain_id
        or tf.deployed_at != dep.deployed_at
    ):
        return empty
    return tf


__all__ = [
    "SCHEMA_VERSION",
    "CollateralRecord",
    "Deployment",
    "DeploymentError",
    "LPRecord",
    "MarketRecord",
    "TraderRecord",
    "TradersFile",
    "attach",
    "chain_market_ids",
    "check_chain",
    "connected_network",
    "deployment_from_system",
    "deployments_dir",
    "load_connected",
    "load_deployment",
    "load_traders",
    "network_slug",
    "record_path",
    "save_deployment",
    "save_traders",
    "test_signer",
    "traders_for",
    "traders_path",
    "with_chain_market_ids",
]
