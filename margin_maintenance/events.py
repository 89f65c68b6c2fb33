"""Reading the clearinghouse's client events as plain dicts (one `eth_getLogs` filter for
all event types, in chain order: `chain.logs.scan_events` over the Ape provider's web3)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from margin_maintenance.chain.logs import EventLog, scan_events

# Events of IClearinghouse.vyi that move a balance or name an account.
CLIENT_EVENTS: tuple[str, ...] = (
    "Deposited",
    "Withdrawn",
    "PositionChanged",
    "FundingSettled",
    "KeeperRewardPriced",
    "Liquidated",
    "LiquidationSkipped",
    "BadDebtSettled",
    "ProfitHaircut",
    "ClaimSettled",
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
    "LiquidationSkipped": ("account",),
    "KeeperRewardPriced": ("account",),
    "BadDebtSettled": ("account",),
    "ProfitHaircut": ("account",),
    "ClaimSettled": ("account",),
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


def event_to_dict(ev: EventLog) -> dict[str, Any]:
    """A decoded `chain.logs.EventLog` as `log_to_dict` gives the same log read through Ape,
    whose decoder hands a bool argument over as an int (0 or 1)."""
    out: dict[str, Any] = {
        "event": ev.event,
        "block_number": ev.block_number,
        "log_index": ev.log_index,
        "tx": ev.tx,
    }
    for k, v in ev.args.items():
        out[k] = _plain(int(v) if isinstance(v, bool) else v)
    return out


def fetch_events(
    contract: Any,
    names: Sequence[str] = CLIENT_EVENTS,
    start_block: int = 0,
    stop_block: int | None = None,
) -> list[dict[str, Any]]:
    """Every `names` event `contract` logged in [start_block, stop_block] (the head at the
    most), in chain order; a range the node refuses is asked again in smaller pieces."""
    from ape import chain

    abis = [getattr(contract, n).abi.model_dump(mode="json", by_alias=True) for n in names]
    height = chain.blocks.height
    stop = height if stop_block is None else min(stop_block, height)
    get_logs = chain.provider.web3.eth.get_logs
    events = scan_events(get_logs, str(contract.address), abis, max(0, start_block), stop)
    return [event_to_dict(e) for e in events]


def accounts_in(events: Iterable[dict[str, Any]]) -> list[str]:
    """Every trader and liquidator named by the events, in order of first appearance."""
    seen: dict[str, None] = {}
    for e in events:
        for f in ACCOUNT_FIELDS.get(e["event"], ()):
            seen.setdefault(str(e[f]), None)
    return list(seen)


__all__ = [
    "ACCOUNT_FIELDS",
    "CLIENT_EVENTS",
    "accounts_in",
    "event_to_dict",
    "fetch_events",
    "log_to_dict",
]
