"""The engine's modules (`contracts/modules/`): each states its own reentrancy pragma.

A Vyper 0.4.3 module's external functions (and public getters) follow that module's own
`# pragma nonreentrancy` line, not the deployable's, so a module that exports anything without
the pragma would give the engine reentrant entry points while `Clearinghouse.vy` says `on`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

MODULES = Path(__file__).resolve().parent.parent / "contracts" / "modules"
EXPORTS = re.compile(r"^@external\b|^\w+: public\(", re.MULTILINE)


def _sources() -> list[Path]:
    return sorted(MODULES.glob("*.vy"))


def _exporting() -> list[Path]:
    """Modules with an external function or a public getter (the pure helpers have none)."""
    return [p for p in _sources() if EXPORTS.search(p.read_text())]


def test_modules__the_exporting_ones__found():
    assert {p.stem for p in _exporting()} >= {"ledger", "markets", "trading", "liquidation"}


@pytest.mark.parametrize("path", _exporting(), ids=lambda p: p.stem)
def test_module__with_externals__states_nonreentrancy_on(path: Path):
    text = path.read_text()
    assert "\n# pragma nonreentrancy on\n" in text, f"{path.name} exports without the pragma"


def test_modules__the_engine_wires_every_stateful_module():
    engine = (MODULES.parent / "Clearinghouse.vy").read_text()
    for path in _sources():
        text = path.read_text()
        stateful = re.search(
            r"^\w+: (public\()?(HashMap|uint256|int256|bool|address|immutable|transient)",
            text,
            re.MULTILINE,
        )
        if stateful:
            assert f"initializes: {path.stem}" in engine, (
                f"{path.name} has state the engine does not initialize"
            )
