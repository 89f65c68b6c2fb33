"""The one log scan (`margin_maintenance.chain.logs`): chunking, the refused-range fallback,
decoding, chain order.

The first group runs on a fake `eth_getLogs` (a list of raw logs, as a JSON-RPC node returns
them, that refuses ranges wider than it allows). The integration group scans the events of a
system deployed by the Ape fixtures on the connected chain, through the provider's own web3
(in-process and on anvil) and through a plain `Web3(HTTPProvider)` and a raw JSON-RPC call
(anvil only: `--network ethereum:local:foundry`; they skip in-process, which has no URI).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import eth_abi
import pytest
import requests
from eth_utils import to_checksum_address
from support.constants import ETH, USDC, WAD
from support.deployers import crash, deploy_world
from support.lp import withdraw_by_request
from web3 import Web3
from web3.exceptions import Web3RPCError

from margin_maintenance.chain.logs import (
    EventLog,
    as_bytes,
    as_hex,
    as_int,
    decode_args,
    decode_logs,
    event_topic,
    events_by_topic,
    is_refusal,
    scan_events,
    scan_logs,
    signature_topic,
    topic_address,
)
from margin_maintenance.chain.rpc import JsonRpc, RpcError
from margin_maintenance.events import CLIENT_EVENTS, fetch_events, log_to_dict
from margin_maintenance.keeper.index import Web3LogSource

ABI = json.loads((Path(__file__).resolve().parents[1] / "abi" / "Clearinghouse.json").read_text())
EVENTS = {e["name"]: e for e in ABI if e.get("type") == "event"}
DEPOSITED, CHANGED = EVENTS["Deposited"], EVENTS["PositionChanged"]
T_DEPOSITED, T_CHANGED = event_topic(DEPOSITED), event_topic(CHANGED)
CH = to_checksum_address("0x" + "c1" * 20)  # the contract the fake node holds logs for
OTHER = to_checksum_address("0x" + "0e" * 20)
TRADERS = [to_checksum_address(f"0x{i:040x}") for i in (0xA1CE, 0xB0B, 0xCAFE)]


# ---- A fake node ----


def topic(value: str) -> str:
    """An address as a 32-byte topic, 0x-hex."""
    return "0x" + "00" * 12 + value[2:].lower()


def raw_log(
    address: str, block: int, index: int, topics: Sequence[str], data: bytes = b""
) -> dict[str, Any]:
    """A log as a JSON-RPC node returns it: hex strings throughout."""
    return {
        "address": address.lower(),
        "blockNumber": hex(block),
        "logIndex": hex(index),
        "transactionHash": "0x" + f"{block:032x}{index:032x}",
        "topics": list(topics),
        "data": "0x" + data.hex(),
    }


def deposited(block: int, index: int, who: str, amount: int, address: str = CH) -> dict:
    return raw_log(
        address, block, index, [T_DEPOSITED, topic(who)], eth_abi.encode(["uint256"], [amount])
    )


def changed(block: int, index: int, who: str, market: int, size: int) -> dict:
    data = eth_abi.encode(
        ["int256", "int256", "uint256", "int256", "uint256"], [size, size, 2_000 * WAD, -5, 7]
    )
    return raw_log(CH, block, index, [T_CHANGED, topic(who), "0x" + f"{market:064x}"], data)


def book() -> list[dict[str, Any]]:
    """Deposits and trades of three traders over blocks 3..40, another contract's log, and a
    block with two logs (the node lists them out of order below)."""
    a, b, c = TRADERS
    return [
        deposited(3, 0, a, 100),
        changed(5, 1, a, 0, WAD),
        deposited(9, 0, b, 200),
        deposited(9, 4, OTHER, 1, address=OTHER),  # another contract: never asked for
        changed(17, 2, b, 1, -WAD),
        deposited(17, 0, c, 300),  # block 17 holds two of ours: c's deposit comes first
        changed(40, 0, c, 0, 3 * WAD),
    ]


def listed(logs: Sequence[Mapping[str, Any]]) -> Callable[[dict[str, Any]], list]:
    """`eth_getLogs` over a fixed list of raw logs, listed in a shuffled order."""
    shuffled = list(logs)
    random.Random(7).shuffle(shuffled)

    def get_logs(f: dict[str, Any]) -> list[Mapping[str, Any]]:
        lo, hi, first = f["fromBlock"], f["toBlock"], f["topics"][0]
        wanted = {first} if isinstance(first, str) else set(first)
        return [
            x
            for x in shuffled
            if x["address"] == f["address"].lower()
            and lo <= as_int(x["blockNumber"]) <= hi
            and x["topics"][0] in wanted
        ]

    return get_logs


class Refusing:
    """`get_logs` behind a node that refuses (`refusal`) any range wider than `max_width`
    blocks; records every filter asked for and every range answered."""

    def __init__(
        self,
        get_logs: Callable[[dict[str, Any]], Any],
        max_width: int | None = None,
        refusal: Callable[[int, int], BaseException] | None = None,
    ) -> None:
        self.get_logs = get_logs
        self.max_width = max_width
        self.refusal = refusal or (lambda lo, hi: Web3RPCError(f"range {lo}..{hi} too wide"))
        self.filters: list[dict[str, Any]] = []
        self.answered: list[tuple[int, int]] = []

    @property
    def ranges(self) -> list[tuple[int, int]]:
        return [(f["fromBlock"], f["toBlock"]) for f in self.filters]

    def __call__(self, f: dict[str, Any]) -> Any:
        self.filters.append(f)
        lo, hi = f["fromBlock"], f["toBlock"]
        if self.max_width is not None and hi - lo + 1 > self.max_width:
            raise self.refusal(lo, hi)
        self.answered.append((lo, hi))
        return self.get_logs(f)


def fake_node(logs: Sequence[Mapping[str, Any]], **kwargs: Any) -> Refusing:
    return Refusing(listed(logs), **kwargs)


def tiles(ranges: Sequence[tuple[int, int]], start: int, stop: int, width: int) -> bool:
    """Whether `ranges` cover [start, stop] consecutively, none wider than `width`."""
    edges = [start] + [hi + 1 for _, hi in ranges]
    return (
        [lo for lo, _ in ranges] == edges[:-1]
        and edges[-1] == stop + 1
        and all(hi - lo + 1 <= width for lo, hi in ranges)
    )


def where(logs: Sequence[Mapping[str, Any]]) -> list[tuple[int, int]]:
    return [(as_int(x["blockNumber"]), as_int(x["logIndex"])) for x in logs]


OURS = [(3, 0), (5, 1), (9, 0), (17, 0), (17, 2), (40, 0)]  # chain order of CH's logs in book()


# ---- Chunking and the refused-range fallback ----


def test_scan_logs__one_wide_request__chain_order_only_our_address():
    node = fake_node(book())
    found = list(scan_logs(node, CH, [T_DEPOSITED, T_CHANGED], 0, 50))
    assert where(found) == OURS
    assert node.ranges == [(0, 50)]
    assert node.filters[0]["topics"] == [[T_DEPOSITED, T_CHANGED]]  # one OR-list of topic0s
    assert node.filters[0]["address"] == CH


@pytest.mark.parametrize("chunk", [1, 2, 7, 16, 41, 10_000])
def test_scan_logs__any_chunk__same_logs_consecutive_ranges(chunk):
    node = fake_node(book())
    assert where(scan_logs(node, CH, [T_DEPOSITED, T_CHANGED], 0, 40, chunk)) == OURS
    expected = [(lo, min(lo + chunk - 1, 40)) for lo in range(0, 41, chunk)]
    assert node.ranges == expected


def test_scan_logs__node_refuses_wide_ranges__halved_until_accepted_and_kept():
    node = fake_node(book(), max_width=5)
    found = list(scan_logs(node, CH, [T_DEPOSITED, T_CHANGED], 0, 40, chunk=16))
    assert where(found) == OURS
    # 16 and 8 blocks refused, 4 accepted: the rest of the scan goes 4 blocks at a time.
    assert node.ranges[:3] == [(0, 15), (0, 7), (0, 3)]
    assert node.ranges[3:] == [(lo, min(lo + 3, 40)) for lo in range(4, 41, 4)]


def test_scan_logs__refused_as_http_error_or_value_error__also_split():
    for error in (requests.HTTPError("413 Payload Too Large"), ValueError("too many results")):
        node = fake_node(book(), max_width=10, refusal=lambda lo, hi, e=error: e)
        assert where(scan_logs(node, CH, [T_DEPOSITED, T_CHANGED], 0, 40, chunk=40)) == OURS
        assert node.ranges[:3] == [(0, 39), (0, 19), (0, 9)]


def test_scan_logs__one_block_still_refused__raises_the_nodes_error():
    node = fake_node(book(), max_width=0)
    with pytest.raises(Web3RPCError, match="range 0..0 too wide"):
        list(scan_logs(node, CH, [T_DEPOSITED], 0, 40, chunk=4))
    assert node.ranges == [(0, 3), (0, 1), (0, 0)]


@pytest.mark.parametrize(
    "error", [requests.ConnectionError("connection refused"), RuntimeError("a bug")]
)
def test_scan_logs__connection_refused_or_not_a_refusal__raised_at_once(error):
    node = fake_node(book(), max_width=1, refusal=lambda lo, hi: error)
    with pytest.raises(type(error)):
        list(scan_logs(node, CH, [T_DEPOSITED], 0, 40, chunk=8))
    assert node.ranges == [(0, 7)]  # no smaller range asked for


def test_is_refusal__what_a_smaller_range_may_cure():
    assert is_refusal(Web3RPCError("limit exceeded"))
    assert is_refusal(ValueError("too many results"))
    assert is_refusal(requests.ReadTimeout("slow"))
    assert is_refusal(requests.HTTPError("413"))
    assert not is_refusal(requests.ConnectionError("refused"))
    assert not is_refusal(KeyError("topics"))


def test_scan_logs__split_topics__one_request_per_topic_no_or_list_merged_in_order():
    node = fake_node(book(), max_width=20)
    found = list(scan_logs(node, CH, [T_DEPOSITED, T_CHANGED], 0, 40, 32, split_topics=True))
    assert where(found) == OURS
    assert [f["topics"] for f in node.filters] == [
        [T_DEPOSITED],  # 0..31 refused on the first topic
        [T_DEPOSITED],  # 0..15
        [T_CHANGED],
        [T_DEPOSITED],  # 16..31
        [T_CHANGED],
        [T_DEPOSITED],  # 32..40
        [T_CHANGED],
    ]
    assert node.ranges == [(0, 31), (0, 15), (0, 15), (16, 31), (16, 31), (32, 40), (32, 40)]


def test_scan_logs__empty_range_or_bad_chunk__no_request_or_refused():
    node = fake_node(book())
    assert list(scan_logs(node, CH, [T_DEPOSITED], 10, 9)) == []
    assert node.filters == []
    with pytest.raises(ValueError, match="chunk must be >= 1"):
        list(scan_logs(node, CH, [T_DEPOSITED], 0, 9, chunk=0))


# ---- Values, topics, decoding ----


def test_values__web3_and_raw_json_rpc_forms__read_the_same():
    assert as_int(17) == as_int("0x11") == 17
    assert as_bytes(b"\x01\xab") == as_bytes("0x01ab") == as_bytes("01AB") == b"\x01\xab"
    assert as_hex(bytearray(b"\xab")) == as_hex("0xAB") == "0xab"
    web3_style = {"topics": [bytes.fromhex(T_DEPOSITED[2:]), as_bytes(topic(TRADERS[0]))]}
    assert topic_address(web3_style) == topic_address(deposited(1, 0, TRADERS[0], 1))
    assert topic_address(web3_style) == TRADERS[0]


def test_event_topic__abi_entry_and_signature__same_topic0():
    assert event_topic(DEPOSITED) == signature_topic("Deposited(address,uint256)")
    signature = "PositionChanged(address,uint256,int256,int256,uint256,int256,uint256)"
    assert event_topic(CHANGED) == signature_topic(signature)
    assert list(events_by_topic([DEPOSITED, CHANGED])) == [T_DEPOSITED, T_CHANGED]
    with pytest.raises(ValueError, match="anonymous"):
        event_topic({**DEPOSITED, "anonymous": True})


def test_decode_args__indexed_and_data__abi_order_checksummed():
    a = TRADERS[0]
    args = decode_args(
        CHANGED, changed(5, 1, a, 3, -WAD)["topics"], changed(5, 1, a, 3, -WAD)["data"]
    )
    assert args == {
        "account": a,
        "market_id": 3,
        "size_delta": -WAD,
        "new_size": -WAD,
        "price": 2_000 * WAD,
        "realized_pnl": -5,
        "fee": 7,
    }
    assert list(args) == [i["name"] for i in CHANGED["inputs"]]


def test_decode_args__dynamic_indexed_arrays_tuples__hash_kept_addresses_checksummed():
    abi = {
        "type": "event",
        "name": "Odd",
        "anonymous": False,
        "inputs": [
            {"name": "label", "type": "string", "indexed": True},
            {"name": "who", "type": "address[]", "indexed": False},
            {"name": "ok", "type": "bool", "indexed": False},
            {
                "name": "pair",
                "type": "tuple",
                "indexed": False,
                "components": [
                    {"name": "owner", "type": "address"},
                    {"name": "amount", "type": "uint256"},
                ],
            },
        ],
    }
    label_hash = "0x" + "ab" * 32
    data = eth_abi.encode(
        ["address[]", "bool", "(address,uint256)"],
        [[t.lower() for t in TRADERS], True, (TRADERS[1].lower(), 9)],
    )
    args = decode_args(abi, [event_topic(abi), label_hash], data)
    assert args == {
        "label": as_bytes(label_hash),
        "who": TRADERS,
        "ok": True,
        "pair": (TRADERS[1], 9),
    }


def test_scan_events__fake_node_refusing__decoded_in_chain_order():
    node = fake_node(book(), max_width=8)
    events = list(scan_events(node, CH, [DEPOSITED, CHANGED], 0, 40, chunk=100))
    assert [(e.block_number, e.log_index) for e in events] == OURS
    d, p = "Deposited", "PositionChanged"
    assert [e.event for e in events] == [d, p, d, d, p, p]
    assert events[0] == EventLog(
        event=d,
        address=CH,
        block_number=3,
        log_index=0,
        tx="0x" + f"{3:032x}{0:032x}",
        args={"account": TRADERS[0], "amount": 100},
    )
    assert events[-1].args["size_delta"] == 3 * WAD


def test_decode_logs__topic0_no_abi_names_or_no_topics__passed_over():
    unknown = raw_log(CH, 4, 0, ["0x" + "99" * 32])
    anonymous = raw_log(CH, 4, 1, [])
    logs = [unknown, anonymous, deposited(5, 0, TRADERS[1], 9)]
    [only] = decode_logs(events_by_topic([DEPOSITED]), logs)
    assert (only.event, only.block_number, only.args["account"]) == ("Deposited", 5, TRADERS[1])


# ---- On the connected chain ----


@pytest.fixture
def trades(chain, system, accounts, fund, seeded_pool, open_position):
    """Four traders deposit and trade, one transaction a block; the Ape receipts' own decoding
    of every Deposited and PositionChanged event, in chain order."""
    ch = system.clearinghouse
    start = chain.blocks.height + 1
    receipts = []
    for i, who in enumerate(accounts[i] for i in (2, 3, 6, 7)):
        receipts.append(ch.deposit(fund(who, 1_000 + i), sender=who))
        receipts.append(open_position(who, ETH, 0.1 * (i + 1) * (-1) ** i))
    expected = [
        (ev.event_name, int(ev.block_number), int(ev.log_index), dict(ev.event_arguments))
        for r in receipts
        for ev in r.decode_logs([ch.Deposited.abi, ch.PositionChanged.abi])
    ]
    assert [e[0] for e in expected] == ["Deposited", "PositionChanged"] * 4
    return SimpleNamespace(
        ch=ch, address=str(ch.address), start=start, stop=chain.blocks.height, expected=expected
    )


def seen(events: Sequence[EventLog]) -> list[tuple[str, int, int, dict[str, Any]]]:
    return [(e.event, e.block_number, e.log_index, e.args) for e in events]


def scan_trades(trades: SimpleNamespace, get_logs: Any, chunk: int) -> list[EventLog]:
    abis = [DEPOSITED, CHANGED]
    return list(scan_events(get_logs, trades.address, abis, trades.start, trades.stop, chunk))


@pytest.mark.integration
@pytest.mark.parametrize("chunk", [1, 3, 10_000])
def test_scan_events__real_chain_any_chunk__same_events_as_apes_decoding(chain, trades, chunk):
    node = Refusing(chain.provider.web3.eth.get_logs)
    events = scan_trades(trades, node, chunk)
    assert seen(events) == trades.expected
    assert all(e.address == trades.address for e in events)
    assert tiles(node.answered, trades.start, trades.stop, chunk)
    assert len(node.filters) == -(-(trades.stop - trades.start + 1) // chunk)  # ceil


@pytest.mark.integration
def test_scan_events__real_chain_refusing_node__halved_to_two_blocks_same_events(chain, trades):
    width = trades.stop - trades.start + 1
    node = Refusing(chain.provider.web3.eth.get_logs, max_width=2)
    assert seen(scan_trades(trades, node, width)) == trades.expected
    refused = [hi - lo + 1 for lo, hi in node.ranges if (lo, hi) not in node.answered]
    assert refused[0] == width > 2  # the whole range first, refused, then halved
    assert refused == [width // 2**k for k in range(len(refused))]
    assert tiles(node.answered, trades.start, trades.stop, 2)


@pytest.mark.integration
def test_keeper_log_source__real_chain_refusing_node__same_accounts(chain, trades):
    web3 = chain.provider.web3
    plain = Web3LogSource.for_contract(web3, trades.ch)
    node = Refusing(web3.eth.get_logs, max_width=1)
    narrow_web3 = SimpleNamespace(eth=SimpleNamespace(get_logs=node))
    narrow = Web3LogSource(narrow_web3, trades.address, plain.topics)
    want = [(block, args["account"]) for _, block, _, args in trades.expected]
    assert list(plain(trades.start, trades.stop)) == want
    assert list(narrow(trades.start, trades.stop)) == want
    answered = sorted(set(node.answered))  # each range once per topic
    assert tiles(answered, trades.start, trades.stop, 1)
    assert len(node.answered) == 2 * len(answered)


@pytest.fixture
def node_uri(chain) -> str:
    uri = getattr(chain.provider, "http_uri", None)
    if not isinstance(uri, str) or not uri.startswith("http"):
        pytest.skip("needs a node with an HTTP endpoint: --network ethereum:local:foundry")
    return uri


def raw_get_logs(rpc: JsonRpc, **override: Any) -> Callable[[dict[str, Any]], Any]:
    """`eth_getLogs` as a bare JSON-RPC call: hex block numbers in, hex strings out."""

    def call(f: dict[str, Any]) -> Any:
        blocks = {"fromBlock": hex(f["fromBlock"]), "toBlock": hex(f["toBlock"])}
        return rpc.call("eth_getLogs", [{**f, **blocks, **override}])

    return call


@pytest.mark.integration
def test_scan_events__http_web3_and_raw_json_rpc__same_events(node_uri, trades):
    over_web3 = scan_trades(trades, Web3(Web3.HTTPProvider(node_uri)).eth.get_logs, 10_000)
    node = Refusing(raw_get_logs(JsonRpc(node_uri, timeout=30)), max_width=3)
    over_raw = scan_trades(trades, node, 64)
    assert seen(over_web3) == seen(over_raw) == trades.expected
    assert [e.tx for e in over_web3] == [e.tx for e in over_raw]
    assert tiles(node.answered, trades.start, trades.stop, 3)


@pytest.mark.integration
def test_scan_logs__http_node_rejects_the_filter__its_error_after_one_block(node_uri, trades):
    """A filter the node rejects at every width (a malformed address) comes back as the
    node's JSON-RPC error: halved down to one block, then raised."""
    node = Refusing(raw_get_logs(JsonRpc(node_uri, timeout=30), address="0x1234"))
    with pytest.raises(RpcError, match="eth_getLogs"):
        list(scan_logs(node, trades.address, [T_DEPOSITED], trades.start, trades.stop, 4))
    assert [hi - lo + 1 for lo, hi in node.ranges] == [4, 2, 1]


# ---- events.fetch_events: the Ape-side reader over the scan ----


def apes_own_query(contract: Any, names: Sequence[str], start: int, stop: int | None) -> list:
    """What `fetch_events` gave before it scanned through `chain.logs`: Ape's provider query
    (its own paging and decoder) and `log_to_dict`."""
    from ape import chain
    from ape.types.events import LogFilter

    abis = [getattr(contract, n).abi for n in names]
    log_filter = LogFilter(
        addresses=[contract.address],
        events=abis,
        topic_filter=[[event_topic(a.model_dump(mode="json")) for a in abis]],
        start_block=start,
        stop_block=chain.blocks.height if stop is None else stop,
    )
    events = [log_to_dict(x) for x in chain.provider.get_contract_logs(log_filter)]
    return sorted(events, key=lambda e: (e["block_number"], e["log_index"]))


def plain(events: Sequence[Mapping[str, Any]]) -> str:
    """The events as JSON, key order kept: a bool and its 0/1 differ here, an int and Ape's
    int subclass (`CurrencyValueComparable`, what its decoder gives) do not."""
    return json.dumps(list(events))


@pytest.mark.integration
def test_fetch_events__every_client_event__same_dicts_as_apes_own_query(chain, project, accounts):
    w = deploy_world(project, accounts)
    start = chain.blocks.height
    crash(w)
    w.ch.liquidate(w.victim, sender=w.stranger)
    w.ch.withdraw(100 * USDC, sender=w.trader)
    w.ch.fund_insurance(10 * USDC, sender=w.stranger)
    withdraw_by_request(w.system, w.owner, w.lp, w.vault.balanceOf(w.lp) // 500)  # a request
    aggregator = w.system.aggregators[ETH]
    for lo, hi in ((0, None), (start, chain.blocks.height), (start + 1, start + 2), (0, 10**9)):
        for contract, names in ((w.ch, CLIENT_EVENTS), (aggregator, ("AnswerUpdated",))):
            got = fetch_events(contract, names, lo, hi)
            before = apes_own_query(contract, names, lo, hi)
            assert got == before and plain(got) == plain(before), (lo, hi)
            assert {type(v) for e in got for v in e.values()} <= {str, int}
    events = fetch_events(w.ch, start_block=start)
    assert {e["event"] for e in events} >= {"Liquidated", "Withdrawn", "InsuranceFunded"}
    [liquidated] = [e for e in events if e["event"] == "Liquidated"]
    assert liquidated["full"] in (0, 1) and type(liquidated["full"]) is int  # not a bool
