"""The deployment record (`deployments/<network>.json`), Ape side, and the traders file next
to it.

The record itself (its dataclasses, `from_dict` / `to_dict`, `load` / `save`, the path helpers
and `DeploymentError`) is defined once, Ape-free, in `margin_maintenance.chain.record` (layout
and schema versions in its docstring) and re-exported here. This module adds what needs Ape or
the contracts: the record of a system just deployed (`deployment_from_system`), contract
handles for a recorded one (`attach`, `load_connected`), the chain checks and the test signer.

Layout of `deployments/<network>-traders.json` (written by `ape run seed`)::

    {"network": "local", "chain_id": 31337, "clearinghouse": "0x..", "deployed_at": 1764000000,
     "traders": [{"address": "0x..", "hd_index": 1001, "seed": 7, "market": "ETH-USD",
                  "side": "long", "leverage": 6.5, "collateral_usd": 3120.5}],
     "lps": [{"address": "0x..", "hd_index": 1000, "seed": 7, "deposit_usd": 2000000.0}]}

`hd_index` is the index of the account in the test mnemonic (`test:` in ape-config.yaml), so a
later run can allocate fresh indices instead of reusing someone else's account.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ape.exceptions import ApeException
from web3.exceptions import Web3Exception

from margin_maintenance.chain.record import (
    DEPLOYMENTS_ENV,
    REPO_ROOT,
    SCHEMA_VERSION,
    CollateralRecord,
    Deployment,
    DeploymentError,
    MarketRecord,
    deployments_dir,
    load_deployment,
    network_slug,
    read_json_object,
    record_path,
    save_deployment,
    write_json,
)
from margin_maintenance.system import System, engine_at

# ---- The record of a deployment (Ape) ----


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
        lp_vault=str(system.vault.address),
        lens=None if system.lens is None else str(system.lens.address),
        price_verifier=None if system.verifier is None else str(system.verifier.address),
    )


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
    """Contract handles for a recorded deployment (same shape `deploy_system` returns). On a
    deployment with a price verifier each market's feed is asked whether it is a
    SignedPriceFeed (its `push()`): then its push feed and feed id are attached too."""
    from margin_maintenance.attest import feed_id

    feeds, push_feeds, feed_ids = [], [], []
    for m in dep.markets:
        feed = push = project.PriceFeed.at(m.feed)
        fid = feed_id(m.symbol)
        if dep.price_verifier is not None:
            signed = project.SignedPriceFeed.at(m.feed)
            try:
                push, fid = project.PriceFeed.at(str(signed.push())), bytes(signed.feed_id())
                feed = signed
            except (ApeException, Web3Exception, ValueError):
                pass  # a push-only market
        feeds.append(feed)
        push_feeds.append(push)
        feed_ids.append(fid)
    return System(
        token=project.MockERC20.at(dep.collateral.address),
        vault=project.LPVault.at(dep.lp_token),
        clearinghouse=engine_at(project, dep.clearinghouse),
        configurator=None
        if dep.configurator is None
        else project.Configurator.at(dep.configurator),
        aggregators=[project.MockAggregator.at(m.aggregator) for m in dep.markets],
        feeds=feeds,
        push_feeds=push_feeds,
        feed_ids=feed_ids,
        market_ids=[m.id for m in dep.markets],
        symbols=[m.symbol for m in dep.markets],
        start_block=dep.start_block,
        lens=None if dep.lens is None else project.ClearinghouseLens.at(dep.lens),
        verifier=(
            None if dep.price_verifier is None else project.PriceVerifier.at(dep.price_verifier)
        ),
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


def traders_path(network: str, directory: str | Path | None = None) -> Path:
    return deployments_dir(directory) / f"{network}-traders.json"


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
    return write_json(traders_path(tf.network, directory), tf.to_dict())


def load_traders(network: str, directory: str | Path | None = None) -> TradersFile:
    data = read_json_object(
        traders_path(network, directory), "traders file", "run `ape run seed` first"
    )
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
    "DEPLOYMENTS_ENV",
    "REPO_ROOT",
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
