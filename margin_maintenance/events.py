"""Reading the clearinghouse's client events as plain dicts (one `eth_getLogs` filter for
all event types, in chain order)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

# Events of IClearinghouse.vyi that move a balance or name an account.
CLIENT_EVENTS: tuple[str, ...] = (
    "Deposited",
    "Withdrawn",
    "PositionChanged",
    "Liquidated",
    "BadDebtSettled",
    "ProfitHaircut",
    "InsuranceFunded",
    "LiquidityAdded",
    "LiquidityRemoved",
)
# Event fields that hold an account (trader, liquidator, LP, funder).
ACCOUNT_FIELDS: dict[str, tuple[str, ...]] = {
    "Deposited": ("account",),
    "Withdrawn": ("account",),
    "PositionChanged": ("account",),
    "Liquidated": ("account", "liquidator"),
    "BadDebtSettled": ("account",),
    "ProfitHaircut": ("account",),
}


def _plain(value: Any) -> Any:
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)


def log_to_dict(log: Any) -> dict[str, Any]:
    """An Ape `ContractLog` as {"event", "block_number", "log_index", "tx", **arguments}."""
    out: dict[str, Any] = {
        "event": log.event_name,
        "block_number": int(log.block_number),
        "log_index": int(log.log_index),
        "tx": _plain(log.transaction_hash),
    }
    for k, v in log.event_arguments.items():
        out[k] = _plain(v)
    return out


def fetch_events(
    contract: Any,
    names: Sequence[str] = CLIENT_EVENTS,
    start_block: int = 0,
    stop_block: int | None = None,
) -> list[dict[str, Any]]:
    """Every `names` event `contract` logged in [start_block, stop_block], in chain order."""
    from ape import chain
    from ape.types.events import LogFilter
    from eth_utils import encode_hex, keccak

    abis = [getattr(contract, n).abi for n in names]
    selectors = [encode_hex(keccak(text=abi.selector)) for abi in abis]
    stop = chain.blocks.height if stop_block is None else stop_block
    log_filter = LogFilter(
        addresses=[contract.address],
        events=abis,
        topic_filter=[selectors],
        start_block=start_block,
        stop_block=stop,
    )
    events = [log_to_dict(x) for x in chain.provider.get_contract_logs(log_filter)]
    events.sort(key=lambda e: (e["block_number"], e["log_index"]))
    return events


def accounts_in(events: Iterable[dict[str, Any]]) -> list[str]:
    """Every trader and liquidator named by the events, in order of first appearance."""
    seen: dict[str, None] = {}
    for e in events:
        for f in ACCOUNT_FIELDS.get(e["event"], ()):
            seen.setdefault(str(e[f]), None)
    return list(seen)


__all__ = ["ACCOUNT_FIELDS", "CLIENT_EVENTS", "accounts_in", "fetch_events", "log_to_dict"]
