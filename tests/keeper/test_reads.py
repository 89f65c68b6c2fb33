"""Batched reads: the hand-written margin_status codec agrees with eth_abi; failures degrade
to per-account reads (a fake transport, the real ABI)."""

from types import SimpleNamespace

import pytest
from eth_abi import decode, encode
from eth_utils import to_checksum_address

from margin_maintenance.keeper.decisions import AccountStatus, Preview
from margin_maintenance.keeper.reads import ClearinghouseReader, ReadError
from margin_maintenance.system import engine_contract_type

A, B, C = (to_checksum_address(f"0x{i:040x}") for i in (0xA1CE, 0xB0B, 0xCAFE))
STATUS = "(address,int256,uint256,uint256,bool)[]"


class FakeReader(ClearinghouseReader):
    """Answers eth_calls from a function of the decoded accounts; no node."""

    def __init__(self, contract, answer):
        super().__init__(web3=None, contract=contract)
        self.answer = answer
        self.batches: list[int] = []

    def call_many(self, calldata):
        self.batches.append(len(calldata))
        out = []
        for data in calldata:
            raw = bytes.fromhex(data[10:])
            if data[2:10] == self.status_method.selector.hex():
                out.append(self.answer("status", decode(["address[]"], raw)[0]))
            else:
                out.append(self.answer("preview", decode(["address"], raw)[0]))
        return out


@pytest.fixture
def contract(project):
    abis = {m.name: m for m in engine_contract_type(project).abi if m.type == "function"}
    return SimpleNamespace(
        address="0x" + "11" * 20,
        margin_status=SimpleNamespace(abis=[abis["margin_status"]]),
        liquidation_preview=SimpleNamespace(abis=[abis["liquidation_preview"]]),
    )


def rows_for(accounts):
    return [(a, -5 * (i + 1), 10 + i, 20 + i, i % 2 == 0) for i, a in enumerate(accounts)]


def status_answer(kind, accounts, broken=frozenset()):
    if kind == "preview":
        return encode(["uint256", "uint256", "uint256"], [10**17, 7, 0])
    if any(a.lower() in broken for a in accounts):
        return ReadError("execution reverted: oracle: stale price")
    return encode([STATUS], [rows_for(accounts)])


def test_status_calldata__matches_eth_abi(contract):
    reader = FakeReader(contract, status_answer)
    data = reader._status_calldata([A, B, C])
    assert data == "0x" + (reader.status_method.selector + encode(["address[]"], [[A, B, C]])).hex()


def test_statuses__hand_decoder_matches_eth_abi(contract):
    reader = FakeReader(contract, status_answer)
    raw = encode([STATUS], [rows_for([A, B, C])])
    assert reader._statuses([A, B, C], raw) == [
        AccountStatus(A, -5, 10, 20, True),
        AccountStatus(B, -10, 11, 21, False),
        AccountStatus(C, -15, 12, 22, True),
    ]


def test_statuses__rows_for_other_accounts__rejected(contract):
    reader = FakeReader(contract, status_answer)
    with pytest.raises(ReadError, match="row 0"):
        reader._statuses([B], encode([STATUS], [rows_for([A])]))
    with pytest.raises(ReadError, match="1 rows for 2"):
        reader._statuses([A, B], encode([STATUS], [rows_for([A])]))


def test_margin_status__one_batch_for_all_chunks(contract):
    reader = FakeReader(contract, status_answer)
    rows, failed = reader.margin_status([[A, B], [C]])
    assert [r.account for r in rows] == [A, B, C] and failed == {}
    assert reader.batches == [2, 0]  # one round trip, no retries


def test_margin_status__chunk_reverts__others_read_one_by_one(contract):
    reader = FakeReader(contract, lambda k, a: status_answer(k, a, broken={B.lower()}))
    rows, failed = reader.margin_status([[A, B], [C]])
    assert [r.account for r in rows] == [A, C]
    assert set(failed) == {B} and "stale price" in failed[B]
    assert reader.batches == [2, 2]  # the failed chunk's two accounts again, one call each


def test_previews__failures_left_unpriced(contract):
    def answer(kind, account):
        if account.lower() == C.lower():
            return ReadError("boom")
        return status_answer(kind, account)

    ok, failed = FakeReader(contract, answer).previews([A, C])
    assert ok == {A: Preview(10**17, 7, 0)} and failed == {C: "boom"}


def test_call_many__no_http__web3_one_at_a_time_errors_captured(contract):
    class Web3:
        class eth:
            @staticmethod
            def call(tx, block):
                if tx["data"] == "0xbad":
                    raise ValueError("execution reverted")
                return b"\x01"

    reader = ClearinghouseReader(Web3, contract)
    out = reader.call_many(["0x01", "0xbad"])
    assert out[0] == b"\x01" and isinstance(out[1], ReadError)


def test_preview_fields__named_struct_and_plain_tuple_abis__same_values(contract):
    """`liquidation_preview` returns the struct `LiquidationPreview`; an ABI from before it was
    named (three plain outputs) decodes the same bytes to the same fields."""
    from ethpm_types.abi import MethodABI

    from margin_maintenance.keeper.reads import Method

    named = Method(contract.liquidation_preview.abis[0])
    assert named.outputs == ["(uint256,uint256,uint256)"]
    plain = Method(
        MethodABI(
            name="liquidation_preview",
            stateMutability="view",
            inputs=[{"name": "account", "type": "address"}],
            outputs=[{"name": "", "type": "uint256"}] * 3,
        )
    )
    raw = encode(["uint256", "uint256", "uint256"], [10**17, 7, 3])
    assert named.fields(raw) == plain.fields(raw) == (10**17, 7, 3)
