"""Keeper settings: environment variables with the `MM_` prefix, documented defaults.

Where the clearinghouse is, in order of precedence:

1. `MM_CLEARINGHOUSE` (address) and `MM_START_BLOCK` (first block to scan, default 0);
2. `MM_DEPLOYMENT`: path to the deployment record (`deployments/<network>.json`, SPEC.md
   section 6, defined in `margin_maintenance.chain.record`, plain `json`): `clearinghouse`,
   `start_block` (default 0), `chain_id` (checked against the chain when present);
3. `<deployments dir>/<network>.json` when it exists, the folder being `MM_DEPLOYMENTS_DIR`
   or the repository's `deployments/` and `<network>` being `local` for ethereum:local,
   `<ecosystem>-<network>` off Ethereum (the names `ape run deploy` writes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from margin_maintenance.chain.logs import DEFAULT_LOG_CHUNK
from margin_maintenance.chain.record import (
    DEFAULT_DEPLOYMENTS_DIR,
    REPO_ROOT,
    Deployment,
    network_slug,
    record_path,
)

from . import decisions


class KeeperSettings(BaseSettings):
    """Every knob of the reference keeper (`MM_<NAME>` in the environment)."""

    model_config = SettingsConfigDict(env_prefix="MM_", extra="ignore")

    # Where the system is
    deployment: Path | None = None  # deployment record (JSON); see module docstring
    deployments_dir: Path = DEFAULT_DEPLOYMENTS_DIR  # where records live by network name
    clearinghouse: str | None = None  # overrides the record's address
    start_block: int | None = Field(default=None, ge=0)  # overrides the record's start block

    # State
    db_path: Path = Path(".keeper/keeper.sqlite")  # account index + checkpoint (SQLite)

    # Behaviour
    dry_run: bool = False  # plan and log, never send a transaction
    min_profit: float = Field(default=0.0, ge=0)  # USD a batch must net after gas
    batch_cap: int = Field(default=64, ge=1, le=64)  # accounts per liquidate_many at most
    max_batches_per_block: int = Field(default=8, ge=1)  # liquidate_many txs per iteration
    gas_per_account: int = Field(
        default=decisions.GAS_PER_ACCOUNT, gt=0
    )  # marginal gas per account in a batch
    batch_base_gas: int = Field(
        default=decisions.BATCH_BASE_GAS, ge=0
    )  # gas of a batch before any account
    block_gas_fill_bps: int = Field(
        default=decisions.BLOCK_GAS_FILL_BPS, ge=1, le=10_000
    )  # share of a block to use
    status_chunk: int = Field(default=512, ge=1, le=512)  # accounts per margin_status call
    log_chunk: int = Field(default=DEFAULT_LOG_CHUNK, ge=1)  # blocks per eth_getLogs request
    confirmations: int = Field(default=0, ge=0)  # index events this many blocks behind head
    # LP vault requests: execute when the fee pays the gas, always (serve LPs at a loss), or
    # never; at most `request_cap` pending requests are looked at per pass.
    requests: Literal["profitable", "always", "off"] = "profitable"
    request_gas: int = Field(default=decisions.REQUEST_GAS, gt=0)
    request_cap: int = Field(default=16, ge=1)

    # Signed prices: the attestation service (`python -m margin_maintenance.attest`); with it
    # the keeper reads accounts at the service's reports newer than the chain's and sends
    # them with its batches (`liquidate_with_prices`)
    attest_url: str | None = None

    # Prices for the profit check
    token_usd: float = Field(default=1.0, ge=0)  # USD per whole collateral token
    eth_usd: float | None = Field(default=None, ge=0)  # USD per ETH; None: read from a market
    eth_market_id: int = Field(
        default=decisions.ETH_MARKET_ID, ge=0
    )  # market whose feed prices ETH (ETH-USD)

    # Distributed runner (`silverback worker` processes): the lease that serialises passes
    redis_url: str | None = None  # lease store; default: the Silverback broker's Redis url
    lease_ttl: float = Field(default=120.0, gt=0)  # seconds a dead worker can hold the lease

    # Fallback loop runner only (Silverback reacts to blocks itself)
    poll_interval: float = Field(default=1.0, gt=0)  # seconds between head checks


@dataclass(frozen=True)
class Watch:
    """The clearinghouse to watch, where to start scanning, and the chain it lives on."""

    clearinghouse: str
    start_block: int
    chain_id: int | None  # from the record, to check against the connected chain


class WatchRecord(Deployment):
    """The deployment record as the keeper reads it: only `clearinghouse` is required (no
    `start_block` scans from 0, no `chain_id` skips the chain check); errors are ValueError."""

    REQUIRED_KEYS = ("clearinghouse",)
    ERROR = ValueError


def read_deployment(path: Path) -> dict[str, Any]:
    """The deployment record at `path` as a dict (see `WatchRecord`)."""
    return WatchRecord.load(path).to_dict()


def resolve_watch(settings: KeeperSettings, network: str | None = None) -> Watch:
    """Apply the precedence in the module docstring; raise with a hint when nothing is set.
    `network` is the record's file stem (see `network_slug`)."""
    record: WatchRecord | None = None
    path = settings.deployment
    if path is None and network and settings.clearinghouse is None:
        default = record_path(network, settings.deployments_dir)
        path = default if default.exists() else None
    if path is not None:
        record = WatchRecord.load(path)
    address = settings.clearinghouse or (record.clearinghouse if record else None)
    if not address:
        raise ValueError(
            "no clearinghouse: set MM_CLEARINGHOUSE (and MM_START_BLOCK) or MM_DEPLOYMENT"
        )
    start = settings.start_block
    if start is None:
        start = record.start_block if record else 0
    return Watch(str(address), start, record.chain_id if record else None)


__all__ = [
    "REPO_ROOT",
    "KeeperSettings",
    "Watch",
    "WatchRecord",
    "network_slug",
    "read_deployment",
    "resolve_watch",
]
