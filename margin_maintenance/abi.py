"""Plain ABI files for bot writers: one JSON list per deployable contract, in `abi/`.

`ape compile` keeps every ABI inside its build manifest (`.build/__local__.json`, several MB,
Ape's own format). A bot written in any language needs only the ABI list, so this module
writes `abi/<Name>.json` for every deployable under `contracts/` and `abi/mocks/<Name>.json`
for the local-network mocks (the collateral token and the aggregator a local deployment uses,
and the adversarial tokens of the tests). Modules (`contracts/modules/`, no ABI of their own),
interfaces and the test harnesses (`contracts/test/`) are skipped. The files are tracked:
`make compile`, `make test` and `make demo` refresh them, and `tests/test_abi.py` fails when
they differ from the compiled contracts.

    python -m margin_maintenance.abi            # write abi/ from .build/__local__.json
    python -m margin_maintenance.abi --check    # exit 1 and name the stale files
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
MANIFEST = REPO_ROOT / ".build" / "__local__.json"  # what `ape compile` writes
ABI_DIR = REPO_ROOT / "abi"
EIP170_LIMIT = 24_576  # bytes of runtime code a contract may deploy (EIP-170)
SIZE_BUDGET = 23_500  # the project's budget per deployable: 1 kB of headroom under EIP-170


def deployables(manifest: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Contract types that deploy, not a module, an interface or a test harness
    (`contracts/test/`: module internals exposed for the parity tests, never deployed)."""
    out = {}
    for name, ct in manifest.get("contractTypes", {}).items():
        source = str(ct.get("sourceId", ""))
        if any(f"/{kind}/" in source for kind in ("modules", "interfaces", "test")):
            continue
        out[name] = ct
    return out


def abi_path(name: str, source_id: str, root: Path = ABI_DIR) -> Path:
    """`abi/<Name>.json`, or `abi/mocks/<Name>.json` for a contract under `contracts/mocks/`."""
    return root / "mocks" / f"{name}.json" if "/mocks/" in source_id else root / f"{name}.json"


def render(abi: Sequence[Mapping[str, Any]]) -> str:
    """Stable text: two-space indent, keys in the compiler's order, a final newline."""
    return json.dumps(list(abi), indent=2) + "\n"


ENGINE = "Clearinghouse"
EXTENSION = "ClearinghouseExtension"  # run by the engine's `__default__`, at its address


def merge_engine_abi(
    engine: Sequence[Mapping[str, Any]], extension: Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """The engine's ABI as callers see it: its own entries, then the extension's functions
    and events it does not already list (the extension's constructor stays its own)."""

    def key(entry: Mapping[str, Any]) -> tuple:
        return (entry.get("type"), entry.get("name"), json.dumps(entry.get("inputs", [])))

    seen = {key(e) for e in engine}
    extra = [e for e in extension if e.get("type") in ("function", "event") and key(e) not in seen]
    return [*engine, *extra]


def contract_abi(manifest: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    """A deployable's ABI; the engine's merged with its extension's."""
    types = manifest.get("contractTypes", {})
    abi = list(types[name].get("abi", []))
    if name == ENGINE and EXTENSION in types:
        abi = merge_engine_abi(abi, types[EXTENSION].get("abi", []))
    return abi


def expected_files(manifest: Mapping[str, Any], root: Path = ABI_DIR) -> dict[Path, str]:
    """Every ABI file `abi/` should hold, with its text (`Clearinghouse.json` holds the
    extension's functions too: one address, one interface)."""
    return {
        abi_path(name, str(ct.get("sourceId", "")), root): render(contract_abi(manifest, name))
        for name, ct in deployables(manifest).items()
    }


def stale_files(manifest: Mapping[str, Any], root: Path = ABI_DIR) -> list[str]:
    """Files missing, different from the compiled ABI, or left over from a removed contract."""
    want = expected_files(manifest, root)
    stale = [
        str(p.relative_to(root))
        for p, text in want.items()
        if not p.is_file() or p.read_text() != text
    ]
    present = set(root.rglob("*.json")) if root.is_dir() else set()
    stale += [
        str(p.relative_to(root)) + " (removed: no such contract)" for p in present - set(want)
    ]
    return sorted(stale)


def write_abis(manifest: Mapping[str, Any], root: Path = ABI_DIR) -> list[str]:
    """Write `abi/` (removing files of contracts that no longer exist); returns what changed."""
    changed = stale_files(manifest, root)
    want = expected_files(manifest, root)
    for p in (set(root.rglob("*.json")) if root.is_dir() else set()) - set(want):
        p.unlink()
    for p, text in want.items():
        if not p.is_file() or p.read_text() != text:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
    return changed


def runtime_sizes(manifest: Mapping[str, Any]) -> dict[str, int]:
    """Runtime code size in bytes of every deployable (what EIP-170 limits)."""
    sizes = {}
    for name, ct in deployables(manifest).items():
        code = (ct.get("runtimeBytecode") or {}).get("bytecode") or "0x"
        sizes[name] = (len(code) - 2) // 2
    return sizes


def load_manifest(path: Path = MANIFEST) -> dict[str, Any]:
    """The build manifest; refused when it holds no deployable (a failed `ape compile` leaves
    one behind), so that `abi/` is never emptied to match a broken build."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `ape compile` (or `make compile`) first")
    manifest = json.loads(path.read_text())
    if not deployables(manifest):
        raise FileNotFoundError(f"{path} holds no compiled contract: did `ape compile` fail?")
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m margin_maintenance.abi", description=__doc__)
    p.add_argument("--check", action="store_true", help="only report stale files (exit 1)")
    p.add_argument("--manifest", type=Path, default=MANIFEST)
    p.add_argument("--out", type=Path, default=ABI_DIR)
    args = p.parse_args(argv)
    try:
        manifest = load_manifest(args.manifest)
    except FileNotFoundError as err:
        sys.stderr.write(f"abi: {err}\n")
        return 2
    if args.check:
        stale = stale_files(manifest, args.out)
        for name in stale:
            sys.stderr.write(f"abi: stale {args.out.name}/{name}\n")
        if stale:
            sys.stderr.write("abi: run `make abi` and commit abi/\n")
        return 1 if stale else 0
    for name in write_abis(manifest, args.out):
        sys.stdout.write(f"abi: updated {args.out.name}/{name}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
