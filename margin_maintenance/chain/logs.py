"""Event-log scans: one implementation of chunked `eth_getLogs` for the web3 client, the
keeper's account index and the Ape-side readers (`events.fetch_events`).

A scan asks the node for the logs of one address and a set of event topics over a block range,
`chunk` blocks per request, and yields them in chain order (block, then log index). A request
the node refuses (too many results, too wide a range: a JSON-RPC error, an HTTP error or a
timeout) is split: the range is halved and asked again, down to one block; a refused connection
is no refusal of the range and is raised at once, as is a one-block range the node still
refuses. The width that worked is kept for the rest of the scan.

`get_logs` is anything that takes an `eth_getLogs` filter and returns the logs: web3's
`w3.eth.get_logs` (HexBytes topics, int numbers) or a raw JSON-RPC call over
`chain.rpc.JsonRpc` (block numbers sent as hex; hex strings back); both read the same.
`scan_logs` yields the logs as the node gave them (cheap: the keeper and the client read one
indexed address from topic 1); `scan_events` decodes them with the event ABIs.

Ape-free: web3.py's exceptions, eth-abi and eth-utils only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import eth_abi
import requests
from eth_utils import event_abi_to_log_topic, keccak, to_checksum_address
from eth_utils.abi import collapse_if_tuple
from web3.exceptions import Web3RPCError

from .rpc import RpcError

log = logging.getLogger(__name__)

DEFAULT_LOG_CHUNK = 10_000  # blocks per eth_getLogs request (halved when the node refuses)
# What a node's refusal of a range looks like: a JSON-RPC error (web3 7's Web3RPCError, a
# ValueError on older paths, `chain.rpc`'s RpcError) or an HTTP error or timeout (requests'
# errors are OSErrors) ...
REFUSALS: tuple[type[BaseException], ...] = (Web3RPCError, RpcError, ValueError, OSError)
# ... but for a refused connection, which no smaller range helps.
NOT_REFUSALS: tuple[type[BaseException], ...] = (requests.ConnectionError,)

GetLogs = Callable[[dict[str, Any]], Sequence[Mapping[str, Any]]]
EventAbi = Mapping[str, Any]


# ---- Values as either backend gives them ----


def as_int(value: Any) -> int:
    """A block number or log index: an int (web3) or a hex string (raw JSON-RPC)."""
    return int(value, 16) if isinstance(value, str) else int(value)


def as_bytes(value: Any) -> bytes:
    """A topic, data or hash: bytes/HexBytes (web3) or a 0x-hex string (raw JSON-RPC)."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    text = str(value)
    return bytes.fromhex(text[2:] if text.startswith("0x") else text)


def as_hex(value: Any) -> str:
    """`as_bytes` as a 0x-prefixed lower-case hex string."""
    return "0x" + as_bytes(value).hex()


def chain_order(logs: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """`logs` sorted by (block number, log index)."""
    return sorted(logs, key=lambda x: (as_int(x["blockNumber"]), as_int(x["logIndex"])))


def topic_address(entry: Mapping[str, Any], position: int = 1) -> str:
    """The address indexed as topic `position` of a log, checksummed."""
    return to_checksum_address(as_bytes(entry["topics"][position])[-20:])


# ---- Topics ----


def signature_topic(signature: str) -> str:
    """topic0 of an event, from its canonical signature, e.g. 'Deposited(address,uint256)'."""
    return "0x" + keccak(text=signature).hex()


def event_topic(abi: EventAbi) -> str:
    """topic0 of an event ABI entry (a JSON ABI dict)."""
    if abi.get("anonymous"):
        raise ValueError(f"event {abi.get('name')} is anonymous: it has no topic0")
    return "0x" + event_abi_to_log_topic(dict(abi)).hex()


def events_by_topic(abis: Iterable[EventAbi]) -> dict[str, EventAbi]:
    """topic0 -> event ABI, in the order given."""
    return {event_topic(abi): abi for abi in abis}


# ---- Ranges and the refused-range fallback ----


def is_refusal(err: BaseException) -> bool:
    """Whether a smaller range may succeed where this error came back (see `REFUSALS`)."""
    return isinstance(err, REFUSALS) and not isinstance(err, NOT_REFUSALS)


def log_filter(
    address: str, topic0: str | Sequence[str], from_block: int, to_block: int
) -> dict[str, Any]:
    """An `eth_getLogs` filter: `address`'s logs whose topic0 is `topic0` (one topic) or any
    of them (a sequence: an OR-list)."""
    return {
        "address": address,
        "fromBlock": from_block,
        "toBlock": to_block,
        "topics": [topic0 if isinstance(topic0, str) else list(topic0)],
    }


def fetch_range(
    get_logs: GetLogs,
    address: str,
    topics: Sequence[str],
    from_block: int,
    to_block: int,
    split_topics: bool = False,
) -> list[Mapping[str, Any]]:
    """Every matching log in [from_block, to_block], as the node listed them: one request with
    the topics as an OR-list, or with `split_topics` one request per topic (no OR-list at all)."""
    groups: list[str | list[str]] = list(topics) if split_topics else [list(topics)]
    found: list[Mapping[str, Any]] = []
    for group in groups:
        found.extend(get_logs(log_filter(address, group, from_block, to_block)))
    return found


def scan_logs(
    get_logs: GetLogs,
    address: str,
    topics: Sequence[str],
    start: int,
    stop: int,
    chunk: int = DEFAULT_LOG_CHUNK,
    *,
    split_topics: bool = False,
) -> Iterator[Mapping[str, Any]]:
    """`address`'s logs with topic0 in `topics` over [start, stop], in chain order, `chunk`
    blocks per request; a range the node refuses is halved and asked again (see the module
    docstring). With `split_topics`, one request per topic and range (for a node that takes
    no topic OR-list)."""
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    lo = start
    while lo <= stop:
        hi = min(lo + chunk - 1, stop)
        try:
            logs = fetch_range(get_logs, address, topics, lo, hi, split_topics)
        except REFUSALS as err:
            if chunk == 1 or not is_refusal(err):
                raise
            chunk = max(1, chunk // 2)
            log.info("get_logs %d..%d refused (%s); %d blocks per request", lo, hi, err, chunk)
            continue
        yield from chain_order(logs)
        lo = hi + 1


# ---- Decoding ----


@dataclass(frozen=True)
class EventLog:
    """One decoded log: the event's name, where it is, and its arguments in ABI order."""

    event: str
    address: str  # the emitting contract, checksummed
    block_number: int
    log_index: int
    tx: str  # the transaction hash, 0x-hex
    args: dict[str, Any]


def _is_dynamic(abi_type: str) -> bool:
    """Whether an indexed argument of this type is stored as the hash of its value."""
    return abi_type in ("string", "bytes") or abi_type.endswith("]") or abi_type.startswith("(")


def checksummed(abi_input: Mapping[str, Any], value: Any) -> Any:
    """`value` as eth-abi decoded it for `abi_input`, with every address checksummed (eth-abi
    gives them in lower case), in arrays and tuples too."""
    abi_type = str(abi_input["type"])
    if abi_type.endswith("]"):
        inner = {**abi_input, "type": abi_type[: abi_type.rindex("[")]}
        return [checksummed(inner, v) for v in value]
    if abi_type == "tuple":
        return tuple(checksummed(c, v) for c, v in zip(abi_input["components"], value, strict=True))
    if abi_type == "address":
        return to_checksum_address(value)
    return value


def decode_args(abi: EventAbi, topics: Sequence[Any], data: Any) -> dict[str, Any]:
    """An event's arguments from a log's topics and data, in ABI order. An indexed argument of
    a dynamic type (string, bytes, array, tuple) is its 32-byte topic: the value is not in the
    log."""
    inputs = list(abi["inputs"])
    indexed = [i for i in inputs if i.get("indexed")]
    plain = [i for i in inputs if not i.get("indexed")]
    values: dict[str, Any] = {}
    for item, topic in zip(indexed, topics[1:], strict=True):
        abi_type = collapse_if_tuple(dict(item))
        raw = as_bytes(topic)
        values[item["name"]] = (
            raw if _is_dynamic(abi_type) else checksummed(item, eth_abi.decode([abi_type], raw)[0])
        )
    decoded = eth_abi.decode([collapse_if_tuple(dict(i)) for i in plain], as_bytes(data))
    for item, value in zip(plain, decoded, strict=True):
        values[item["name"]] = checksummed(item, value)
    return {i["name"]: values[i["name"]] for i in inputs}


def decode_log(abi: EventAbi, entry: Mapping[str, Any]) -> EventLog:
    """One raw log (web3's or raw JSON-RPC's) decoded with its event's ABI."""
    return EventLog(
        event=str(abi["name"]),
        address=to_checksum_address(str(entry["address"])),
        block_number=as_int(entry["blockNumber"]),
        log_index=as_int(entry["logIndex"]),
        tx=as_hex(entry["transactionHash"]),
        args=decode_args(abi, entry["topics"], entry["data"]),
    )


def decode_logs(
    abis: Mapping[str, EventAbi], logs: Iterable[Mapping[str, Any]]
) -> Iterator[EventLog]:
    """The logs whose topic0 is in `abis` (topic0 -> ABI), decoded; others are passed over."""
    for entry in logs:
        topics = entry["topics"]
        abi = abis.get(as_hex(topics[0])) if topics else None
        if abi is not None:
            yield decode_log(abi, entry)


def scan_events(
    get_logs: GetLogs,
    address: str,
    abis: Iterable[EventAbi],
    start: int,
    stop: int,
    chunk: int = DEFAULT_LOG_CHUNK,
) -> Iterator[EventLog]:
    """`scan_logs` for the events `abis` (JSON ABI entries), decoded, in chain order."""
    by_topic = events_by_topic(abis)
    logs = scan_logs(get_logs, address, list(by_topic), start, stop, chunk)
    yield from decode_logs(by_topic, logs)


__all__ = [
    "DEFAULT_LOG_CHUNK",
    "NOT_REFUSALS",
    "REFUSALS",
    "EventLog",
    "GetLogs",
    "as_bytes",
    "as_hex",
    "as_int",
    "chain_order",
    "checksummed",
    "decode_args",
    "decode_log",
    "decode_logs",
    "event_topic",
    "events_by_topic",
    "fetch_range",
    "is_refusal",
    "log_filter",
    "scan_events",
    "scan_logs",
    "signature_topic",
    "topic_address",
]
