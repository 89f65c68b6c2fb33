"""The deployment record `deployments/<network>.json`: its one definition, Ape-free.

The record is what the keeper, the client, the simulator and outside tools read (SPEC.md
section 6): with it and the ABIs in `abi/` (or `.build/`) a client can trade and liquidate. It
is written by `ape run deploy` (`margin_maintenance.deployment.deployment_from_system`) and
read here with plain `json`, so the web3 client and the keeper need nothing of Ape. Records for
local networks are git-ignored (`deployments/*local*.json`).

Layout::

    {"network": "local", "chain_id": 31337, "start_block": 0,
     "clearinghouse": "0x..", "lp_token": "0x..",
     "collateral": {"address": "0x..", "decimals": 6},
     "markets": [{"id": 0, "symbol": "ETH-USD", "aggregator": "0x..", "feed": "0x.."}],
     "deployer": "0x..", "guardian": "0x..", "deployed_at": 1764000000,
     "configurator": "0x..", "lp_vault": "0x..", "lens": "0x..", "schema_version": 3}

Schema versions: a record without `schema_version` is version 1 (no configurator: the engine
was its own administrator); version 2 adds `configurator`, the contract every admin call goes
to (owner, guardian, setters, admin events); version 3 adds `lp_vault` (the LP vault, the same
address as `lp_token`, which names the share token as it always did) and `lens` (the stateless
ClearinghouseLens). Every older key is kept as it was.

`lp_vault`, `lens` and `price_verifier` (the engine's PriceVerifier, which checks the signed
prices its `*_with_prices` entry points bring) are optional: absent (or null) reads as None,
and `to_dict` leaves them out while they are None, so an older record reads unchanged and
round-trips byte for byte.

How strict a reader is, is a class attribute: `Deployment` (the Ape side, scripts) needs every
key a deployment writes (`REQUIRED_KEYS`) and raises `DeploymentError`; the client's
`DeploymentRecord` (checksummed addresses, `ClientError`) and the keeper's record (only
`clearinghouse`, `ValueError`) are subclasses that set other values. A key a reader does not
require reads as its default when absent (`""` for `network`, 0 for `start_block`, no markets,
None otherwise); a key that is present is always checked.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Self

SCHEMA_VERSION = 3  # what `deployment_from_system` writes; a record without one is version 1
REPO_ROOT = Path(__file__).resolve().parents[2]  # the checkout this package lives in
DEFAULT_DEPLOYMENTS_DIR = REPO_ROOT / "deployments"
DEPLOYMENTS_ENV = "MM_DEPLOYMENTS_DIR"  # overrides the folder the records live in
RECORD_WHAT = "deployment record"
RECORD_HINT = "run `ape run deploy` first"

# Every key a deployment writes and `Deployment` needs (the rest may be absent or null).
REQUIRED_KEYS: tuple[str, ...] = (
    "chain_id",
    "start_block",
    "clearinghouse",
    "lp_token",
    "collateral",
    "markets",
    "deployer",
)
# optional keys `to_dict` writes only when set
OMITTED_WHEN_NONE = ("lp_vault", "lens", "price_verifier")


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
    return DEFAULT_DEPLOYMENTS_DIR


def record_path(network: str, directory: str | Path | None = None) -> Path:
    return deployments_dir(directory) / f"{network}.json"


# ---- JSON files ----


def read_json(
    path: str | Path,
    what: str,
    hint: str | None = None,
    error: type[Exception] = DeploymentError,
) -> Any:
    """The JSON in `path`; a missing file or invalid JSON raises `error` naming `what`."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError as err:
        raise error(f"no {what} at {path}" + (f": {hint}" if hint else "")) from err
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise error(f"{path} is not valid JSON: {err}") from err


def read_json_object(
    path: str | Path,
    what: str,
    hint: str | None = None,
    error: type[Exception] = DeploymentError,
) -> dict[str, Any]:
    """`read_json`, refusing anything but a JSON object."""
    data = read_json(path, what, hint, error)
    if not isinstance(data, dict):
        raise error(f"{path} does not hold a JSON object: not a {what}")
    return data


def write_json(path: str | Path, data: Any) -> Path:
    """Write `data` to `path` atomically (a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
    return path


# ---- The record ----


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
    """Typed view of `deployments/<network>.json` (see the module docstring).

    `chain_id`, `lp_token`, `collateral` and `deployer` are None only in a record read by a
    subclass that does not require them (the keeper's)."""

    REQUIRED_KEYS: ClassVar[tuple[str, ...]] = REQUIRED_KEYS
    ERROR: ClassVar[type[Exception]] = DeploymentError

    network: str
    chain_id: int | None
    start_block: int
    clearinghouse: str
    lp_token: str | None
    collateral: CollateralRecord | None
    markets: tuple[MarketRecord, ...]
    deployer: str | None
    guardian: str | None = None
    deployed_at: int | None = None  # head block time when written: tells apart two deployments
    # at the same addresses (a restarted anvil replays the same deployer nonces)
    configurator: str | None = None  # the admin contract (schema 2; None in a version-1 record)
    schema_version: int = 1  # 1 when the record has none
    lp_vault: str | None = None  # the LP vault (== lp_token since version 3); not written if None
    lens: str | None = None  # the ClearinghouseLens; not written while None
    price_verifier: str | None = None  # the engine's PriceVerifier; not written while None

    @property
    def unit(self) -> int:
        """One whole collateral token in token units."""
        if self.collateral is None:
            raise self.ERROR("the deployment record has no collateral")
        return 10**self.collateral.decimals

    def find_market(self, key: int | str) -> MarketRecord | None:
        """A market by id or by symbol (case-insensitive, `ETH` matches `ETH-USD`), or None."""
        for m in self.markets:
            if isinstance(key, int) and m.id == key:
                return m
            if isinstance(key, str):
                k = key.upper()
                if m.symbol.upper() == k or m.symbol.upper().split("-")[0] == k:
                    return m
        return None

    def market(self, key: int | str) -> MarketRecord:
        """`find_market`, raising when the record lists no such market."""
        found = self.find_market(key)
        if found is None:
            known = ", ".join(f"{m.id}:{m.symbol}" for m in self.markets)
            raise self.ERROR(f"no market {key!r} in the deployment (markets: {known})")
        return found

    @classmethod
    def read_address(cls, value: Any) -> str:
        """How an address is read (as written; the client checksums)."""
        return str(value)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["markets"] = [asdict(m) for m in self.markets]
        for key in OMITTED_WHEN_NONE:
            if d[key] is None:
                del d[key]
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str | Path | None = None) -> Self:
        """The record in `data` (as `cls`); raises `cls.ERROR` naming what is missing or bad.
        `source` (the file) prefixes the messages."""
        where = f"{source}: " if source is not None else ""
        if not isinstance(data, Mapping):
            raise cls.ERROR(f"{where}malformed {RECORD_WHAT}: not a JSON object")
        required = dict.fromkeys(("clearinghouse", *cls.REQUIRED_KEYS))  # always the address
        missing = [k for k in required if data.get(k) is None]
        if missing:
            names = ", ".join(repr(k) for k in missing)
            raise cls.ERROR(f"{where}malformed {RECORD_WHAT}: missing or null {names}")

        def opt(key: str, read: Callable[[Any], Any], default: Any = None) -> Any:
            value = data.get(key)
            return default if value is None else read(value)

        def collateral(col: Any) -> CollateralRecord:
            return CollateralRecord(cls.read_address(col["address"]), int(col["decimals"]))

        def markets(ms: Any) -> tuple[MarketRecord, ...]:
            return tuple(
                MarketRecord(
                    int(m["id"]),
                    str(m["symbol"]),
                    cls.read_address(m["aggregator"]),
                    cls.read_address(m["feed"]),
                )
                for m in ms
            )

        try:
            return cls(
                network=opt("network", str, ""),
                chain_id=opt("chain_id", int),
                start_block=opt("start_block", int, 0),
                clearinghouse=cls.read_address(data["clearinghouse"]),
                lp_token=opt("lp_token", cls.read_address),
                collateral=opt("collateral", collateral),
                markets=opt("markets", markets, ()),
                deployer=opt("deployer", cls.read_address),
                guardian=opt("guardian", cls.read_address),
                deployed_at=opt("deployed_at", int),
                configurator=opt("configurator", cls.read_address),
                schema_version=opt("schema_version", int, 1),
                lp_vault=opt("lp_vault", cls.read_address),
                lens=opt("lens", cls.read_address),
                price_verifier=opt("price_verifier", cls.read_address),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise cls.ERROR(f"{where}malformed {RECORD_WHAT}: {err!r}") from err

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """The record in the file `path` (as `cls`)."""
        return cls.from_dict(read_json_object(path, RECORD_WHAT, RECORD_HINT, cls.ERROR), path)

    def save(self, path: str | Path) -> Path:
        return write_json(path, self.to_dict())


def save_deployment(dep: Deployment, directory: str | Path | None = None) -> Path:
    """Write `dep` to `<deployments dir>/<dep.network>.json`."""
    return dep.save(record_path(dep.network, directory))


def load_deployment(network: str, directory: str | Path | None = None) -> Deployment:
    """The record `<deployments dir>/<network>.json` (its `network` defaults to the stem)."""
    dep = Deployment.load(record_path(network, directory))
    return dep if dep.network else replace(dep, network=network)


__all__ = [
    "DEFAULT_DEPLOYMENTS_DIR",
    "DEPLOYMENTS_ENV",
    "REQUIRED_KEYS",
    "SCHEMA_VERSION",
    "CollateralRecord",
    "Deployment",
    "DeploymentError",
    "MarketRecord",
    "deployments_dir",
    "load_deployment",
    "network_slug",
    "read_json",
    "read_json_object",
    "record_path",
    "save_deployment",
    "write_json",
]
