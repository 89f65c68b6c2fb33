"""JSON-RPC over HTTP with batches: one implementation for the keeper's reads, the scale
bench's seeding and whatever else needs many requests per round trip.

A batch is one HTTP POST of up to `chunk` requests; results come back in request order. A
request the node answers with an error is either raised (`batch`) or returned in its place
(`batch_results`), so that one reverting `eth_call` does not hide the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import requests

DEFAULT_CHUNK = 256  # requests per HTTP batch


class RpcError(RuntimeError):
    """The node answered a request with an error, or refused a batch as a whole."""


class RpcCallError:
    """One request's error inside a batch, kept in the request's place."""

    def __init__(self, method: str, error: Any) -> None:
        self.method = method
        self.error = error
        self.message = str(error.get("message", error)) if isinstance(error, dict) else str(error)

    def __repr__(self) -> str:
        return f"RpcCallError({self.method!r}, {self.message!r})"


class JsonRpc:
    """One HTTP endpoint, one keep-alive session."""

    def __init__(self, uri: str, timeout: float = 120.0) -> None:
        self.uri = uri
        self.timeout = timeout
        self.session = requests.Session()

    def call(self, method: str, params: list[Any] | None = None) -> Any:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}
        r = self.session.post(self.uri, json=body, timeout=self.timeout)
        r.raise_for_status()
        data = r.json()
        if "error" in data:
            raise RpcError(f"{method}: {data['error']}")
        return data["result"]

    def batch_results(
        self, calls: Sequence[tuple[str, list[Any]]], chunk: int = DEFAULT_CHUNK
    ) -> list[Any]:
        """Results in order, an `RpcCallError` in the place of each request that failed."""
        out: list[Any] = []
        for start in range(0, len(calls), chunk):
            part = calls[start : start + chunk]
            body = [
                {"jsonrpc": "2.0", "id": i, "method": m, "params": p}
                for i, (m, p) in enumerate(part)
            ]
            r = self.session.post(self.uri, json=body, timeout=self.timeout)
            r.raise_for_status()
            answer = r.json()
            if not isinstance(answer, list):  # the node refused the batch as a whole
                raise RpcError(str(answer.get("error", answer)))
            by_id = {int(x["id"]): x for x in answer}
            for i, (m, _) in enumerate(part):
                x = by_id.get(i)
                if x is None:
                    out.append(RpcCallError(m, "no response"))
                elif "error" in x:
                    out.append(RpcCallError(m, x["error"]))
                else:
                    out.append(x["result"])
        return out

    def batch(
        self, calls: Sequence[tuple[str, list[Any]]], chunk: int = DEFAULT_CHUNK
    ) -> list[Any]:
        """Results in order; raises on the first request that failed."""
        out = self.batch_results(calls, chunk)
        for i, x in enumerate(out):
            if isinstance(x, RpcCallError):
                raise RpcError(f"{x.method} #{i}: {x.error}")
        return out

    def block_number(self) -> int:
        return int(self.call("eth_blockNumber"), 16)
