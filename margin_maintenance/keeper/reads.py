"""Fast read-only calls for the keeper: many `eth_call`s per round trip.

Ape's contract calls cost about 0.2 s per `margin_status` over 512 accounts (most of it
Python-side encoding and decoding); encoding with `eth_abi` and sending every call of an
iteration as one JSON-RPC batch reads 10,000 accounts in well under a second on a local anvil
(SPEC.md section 9). Nodes reached without an HTTP endpoint (Ape's in-process test chain) get
the same calls one at a time through web3.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eth_abi import decode, encode
from eth_utils import keccak, to_checksum_address

from margin_maintenance.chain.rpc import JsonRpc, RpcCallError, RpcError

from .decisions import AccountStatus, Preview

MAX_RPC_BATCH = 256  # eth_calls per HTTP request
STATUS_TYPE = "(address,int256,uint256,uint256,bool)[]"  # margin_status output (IClearinghouse)


class ReadError(Exception):
    """An eth_call failed (typically a revert such as a stale oracle price)."""


class Method:
    """One contract function's selector and ABI types, taken from Ape's ABI for it."""

    def __init__(self, abi: Any) -> None:
        self.selector = keccak(text=abi.selector)[:4]
        self.inputs = [i.canonical_type for i in abi.inputs]
        self.outputs = [o.canonical_type for o in abi.outputs]

    def calldata(self, *args: Any) -> str:
        return "0x" + (self.selector + encode(self.inputs, list(args))).hex()

    def result(self, raw: bytes) -> tuple[Any, ...]:
        return tuple(decode(self.outputs, raw))

    def fields(self, raw: bytes) -> tuple[Any, ...]:
        """The output values, a single returned struct unpacked into its fields (a named
        struct and a plain tuple of the same static types encode to the same bytes)."""
        values = self.result(raw)
        if len(values) == 1 and isinstance(values[0], tuple):
            return tuple(values[0])
        return values


class ChainReader:
    """Batched view calls against one contract."""

    def __init__(self, web3: Any, address: str, http_uri: str | None = None) -> None:
        self.web3 = web3
        self.address = to_checksum_address(address)
        self.http_uri = http_uri
        self._rpc = JsonRpc(http_uri, timeout=60.0) if http_uri else None
        # eth_call state override applied to every call while set (the keeper sets it to the
        # signed prices it is about to bring on chain, so the reads see them already)
        self.overrides: dict[str, Any] | None = None

    @property
    def can_override(self) -> bool:
        """Whether calls go to a node over JSON-RPC (anvil and geth take a state override)."""
        return self._rpc is not None

    @classmethod
    def for_contract(cls, contract: Any, provider: Any) -> ChainReader:
        return cls(provider.web3, str(contract.address), getattr(provider, "http_uri", None))

    def call_many(self, calldata: Sequence[str]) -> list[bytes | ReadError]:
        """Results in order; a failed call yields a ReadError in its place."""
        if self._rpc is None:
            return [self._one(d) for d in calldata]
        extra = [self.overrides] if self.overrides else []
        calls = [
            ("eth_call", [{"to": self.address, "data": d}, "latest", *extra]) for d in calldata
        ]
        try:
            results = self._rpc.batch_results(calls, MAX_RPC_BATCH)
        except RpcError as err:  # the node refused the batch as a whole
            raise ReadError(str(err)) from err
        return [
            ReadError(r.message) if isinstance(r, RpcCallError) else bytes.fromhex(str(r)[2:])
            for r in results
        ]

    def _one(self, data: str) -> bytes | ReadError:
        try:
            return bytes(self.web3.eth.call({"to": self.address, "data": data}, "latest"))
        except Exception as err:  # web3 raises several unrelated types for a revert
            return ReadError(_message(err))


class ClearinghouseReader(ChainReader):
    """`margin_status` and `liquidation_preview`, batched."""

    def __init__(self, web3: Any, contract: Any, http_uri: str | None = None) -> None:
        super().__init__(web3, str(contract.address), http_uri)
        self.status_method = Method(contract.margin_status.abis[0])
        self.preview_method = Method(contract.liquidation_preview.abis[0])

    @classmethod
    def for_contract(cls, contract: Any, provider: Any) -> ClearinghouseReader:
        return cls(provider.web3, contract, getattr(provider, "http_uri", None))

    def margin_status(
        self, chunks: Sequence[Sequence[str]]
    ) -> tuple[list[AccountStatus], dict[str, str]]:
        """(rows, errors by account). A chunk that reverts (one account's market has a stale
        price, say) is read again one account at a time, so the others are still seen.
        Rows carry the account strings as given (the index stores them checksummed)."""
        results = self.call_many([self._status_calldata(c) for c in chunks])
        retry = [
            a for c, r in zip(chunks, results, strict=True) if isinstance(r, ReadError) for a in c
        ]
        singles = self.call_many([self._status_calldata([a]) for a in retry])
        by_account = dict(zip(retry, singles, strict=True))
        rows: list[AccountStatus] = []
        failed: dict[str, str] = {}
        for chunk, r in zip(chunks, results, strict=True):
            parts = (
                [(list(chunk), r)]
                if not isinstance(r, ReadError)
                else [([a], by_account[a]) for a in chunk]
            )
            for accounts, raw in parts:
                if isinstance(raw, ReadError):
                    failed[accounts[0]] = str(raw)
                else:
                    rows += self._statuses(accounts, raw)
        return rows, failed

    def _status_calldata(self, accounts: Sequence[str]) -> str:
        """`margin_status(address[])` calldata, encoded by hand (eth_abi re-validates every
        address, ~1 ms per 20 accounts); the index only holds checksummed addresses."""
        if self.status_method.inputs != ["address[]"]:
            return self.status_method.calldata(list(accounts))
        words = [f"{32:064x}", f"{len(accounts):064x}"]
        words += [a[2:].lower().rjust(64, "0") for a in accounts]
        return "0x" + self.status_method.selector.hex() + "".join(words)

    def _statuses(self, accounts: Sequence[str], raw: bytes) -> list[AccountStatus]:
        """Decode `margin_status` output; a hand decoder for the known layout (eth_abi and
        checksumming cost ~40 ms per 512 rows, more than the call itself)."""
        if self.status_method.outputs != [STATUS_TYPE]:
            decoded = self.status_method.result(raw)[0]
            return [
                AccountStatus(to_checksum_address(r[0]), *map(int, r[1:4]), bool(r[4]))
                for r in decoded
            ]
        # (offset, length, then 5 static words per row: address, int256, uint256, uint256, bool)
        n = int.from_bytes(raw[32:64], "big")
        if n != len(accounts) or len(raw) < 64 + n * 160:
            raise ReadError(f"margin_status returned {n} rows for {len(accounts)} accounts")
        rows = []
        for i, account in enumerate(accounts):
            base = 64 + i * 160
            if raw[base + 12 : base + 32].hex() != account[2:].lower():
                raise ReadError(f"margin_status row {i} is not {account}")
            rows.append(
                AccountStatus(
                    account,
                    int.from_bytes(raw[base + 32 : base + 64], "big", signed=True),
                    int.from_bytes(raw[base + 64 : base + 96], "big"),
                    int.from_bytes(raw[base + 96 : base + 128], "big"),
                    raw[base + 159] != 0,
                )
            )
        return rows

    def previews(self, accounts: Sequence[str]) -> tuple[dict[str, Preview], dict[str, str]]:
        """(previews by account, errors by account): an account that fails is not priced."""
        results = self.call_many([self.preview_method.calldata(a) for a in accounts])
        ok: dict[str, Preview] = {}
        failed: dict[str, str] = {}
        for a, r in zip(accounts, results, strict=True):
            if isinstance(r, ReadError):
                failed[a] = str(r)
                continue
            fraction, reward, bad_debt = self.preview_method.fields(r)
            ok[a] = Preview(int(fraction), int(reward), int(bad_debt))
        return ok, failed


def _message(err: BaseException) -> str:
    return str(getattr(err, "message", None) or err) or type(err).__name__
