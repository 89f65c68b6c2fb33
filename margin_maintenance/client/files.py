"""Files a client needs: plain ABIs (abi/, a single file or Ape's build manifest) and the
deployment record (defined in `margin_maintenance.chain.record`, read here as the client needs
it: checksummed addresses, `ClientError`).

Part of `margin_maintenance.client` (see its docstring).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address

from margin_maintenance.abi import ENGINE, EXTENSION, merge_engine_abi
from margin_maintenance.chain.record import CollateralRecord, Deployment, MarketRecord, read_json

from .settings import (
    ABI_DIR_NAME,
    DEFAULT_BUILD_DIR,
    MANIFEST_NAME,
    MANIFEST_READ_TRIES,
    MANIFEST_RETRY_S,
    REPO_ROOT,
    ClientError,
)

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
    return read_json(path, what, error=ClientError)


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
    """A compiled contract from a build folder; the engine's ABI merged with its extension's
    (the functions it runs at its own address by delegatecall), as `abi/` holds it."""
    artifact = _load_one_from_build(name, build)
    if name != ENGINE:
        return artifact
    try:
        extension = _load_one_from_build(EXTENSION, build)
    except ClientError:
        return artifact  # a build from before the extension
    return Artifact(name, merge_engine_abi(artifact.abi, extension.abi), artifact.bytecode)


def _load_one_from_build(name: str, build: Path) -> Artifact:
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


# The record's parts under the client's older names.
CollateralInfo = CollateralRecord
MarketInfo = MarketRecord

# The keys a client needs; the others may be absent (`lp_token`, `deployer`: None; no markets).
CLIENT_KEYS = ("chain_id", "start_block", "clearinghouse", "collateral")


class DeploymentRecord(Deployment):
    """`deployments/<network>.json` as a client reads it (`Deployment` with fewer required keys,
    checksummed addresses and `ClientError`; `load(path)` and `from_dict(data)` as there)."""

    REQUIRED_KEYS = CLIENT_KEYS
    ERROR = ClientError

    @classmethod
    def read_address(cls, value: Any) -> str:
        return to_checksum_address(value)

    def market(self, market_id: int) -> MarketRecord | None:  # type: ignore[override]
        """The market with this id, or None (the client's lookup never raises)."""
        return self.find_market(market_id)
