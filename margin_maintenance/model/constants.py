"""The engine's constants, read from the Vyper sources once, never retyped.

`WAD = 10**18` in `contracts/modules/constants.vy` becomes `constant("WAD")` here; a constant
that changes in a contract changes here with it. Only integer literals and the operators
`+ - * // ** << >>` are evaluated (on other constants of the same file too), which is all the
contracts use for numeric constants.
"""

from __future__ import annotations

import ast
import operator
import re
from functools import cache
from pathlib import Path

CONTRACTS = Path(__file__).resolve().parent.parent.parent / "contracts"
SOURCES = (  # where each constant lives; the first file that defines a name wins
    CONTRACTS / "modules" / "constants.vy",
    CONTRACTS / "modules" / "codec.vy",
    CONTRACTS / "modules" / "margin_math.vy",
    CONTRACTS / "modules" / "funding.vy",
    CONTRACTS / "LPVault.vy",
    CONTRACTS / "Configurator.vy",
)
_LINE = re.compile(r"^(?P<name>[A-Z][A-Z0-9_]*): constant\((?P<type>\w+)\) = (?P<expr>[^#]+)")
_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
    ast.Pow: operator.pow,
    ast.LShift: operator.lshift,
    ast.RShift: operator.rshift,
}


def _evaluate(expr: str, known: dict[str, int]) -> int:
    def ev(node: ast.AST) -> int:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name) and node.id in known:
            return known[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        raise ValueError(f"not a numeric constant expression: {expr!r}")

    return ev(ast.parse(expr.strip(), mode="eval").body)


def parse_constants(source: str) -> dict[str, int]:
    """Every numeric `NAME: constant(type) = expr` of a Vyper source, in file order."""
    out: dict[str, int] = {}
    for line in source.splitlines():
        m = _LINE.match(line)
        if m is None or m["type"] in ("address", "bytes32", "String", "Bytes"):
            continue
        try:
            out[m["name"]] = _evaluate(m["expr"], out)
        except ValueError:
            continue  # not numeric (a string or an address): the model has no use for it
    return out


@cache
def constants() -> dict[str, int]:
    merged: dict[str, int] = {}
    for path in SOURCES:
        for name, value in parse_constants(path.read_text()).items():
            merged.setdefault(name, value)
    return merged


def constant(name: str) -> int:
    """One engine constant by its Vyper name (`constant("MAX_POSITIONS")`)."""
    try:
        return constants()[name]
    except KeyError:
        raise KeyError(f"no numeric constant {name} in {[p.name for p in SOURCES]}") from None


WAD = constant("WAD")  # fixed-point one (prices, sizes, fractions)
BPS = constant("BPS")  # basis points in one
MAX_POSITIONS = constant("MAX_POSITIONS")  # open positions per account
MAX_BATCH = constant("MAX_BATCH")  # accounts per liquidate_many
MAX_STATUS = constant("MAX_STATUS")  # accounts per margin_status
MAX_SIZE = constant("MAX_SIZE")  # largest |size| of a position (WAD)
MAX_PRICE = constant("MAX_PRICE")  # largest price a position stores (WAD)
HALF = constant("HALF")  # width of each half of a packed position
VIRTUAL_SHARES = constant("VIRTUAL_SHARES")  # pool share-price inflation guard
VIRTUAL_ASSETS = constant("VIRTUAL_ASSETS")
