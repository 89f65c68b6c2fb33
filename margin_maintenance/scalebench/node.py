"""anvil on a free loopback port, the bench's JSON-RPC endpoint, and an HTTP request counter."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import requests

from margin_maintenance.chain.rpc import JsonRpc

from .settings import RPC_CHUNK

# ---- JSON-RPC: plain HTTP, batched ----


class Rpc(JsonRpc):
    """The bench's endpoint: long timeouts, large batches (seeding needs tens of thousands of
    calls)."""

    def __init__(self, uri: str) -> None:
        super().__init__(uri, timeout=300.0)

    def batch(self, calls: Sequence[tuple[str, list[Any]]], chunk: int = RPC_CHUNK) -> list[Any]:
        return super().batch(calls, chunk)


@contextlib.contextmanager
def count_rpc(exclude: Sequence[requests.Session] = ()) -> Iterator[Counter[str]]:
    """Count every HTTP request this process sends (key "_http") and every JSON-RPC call by
    method, however it is sent (web3, Ape, the keeper's reader), while the block runs;
    requests of the `exclude` sessions (the bench's own) are not counted."""
    counts: Counter[str] = Counter()
    lock = threading.Lock()
    original = requests.Session.send
    skip = {id(s) for s in exclude}

    def send(self: requests.Session, request: Any, **kwargs: Any) -> Any:
        if id(self) in skip:
            return original(self, request, **kwargs)
        methods: list[str] = []
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            body = json.loads(request.body)
            for item in body if isinstance(body, list) else [body]:
                methods.append(str(item.get("method")))
        with lock:
            counts["_http"] += 1
            counts.update(methods)
        return original(self, request, **kwargs)

    requests.Session.send = send  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        requests.Session.send = original  # type: ignore[method-assign]


# ---- anvil ----


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def run_anvil(log_path: Path, anvil: str = "anvil") -> Iterator[str]:
    """A fresh anvil on a free loopback port (default gas limit, automine); stopped by pid."""
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [anvil, "--host", "127.0.0.1", "--port", str(port), "--silent"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        rpc = Rpc(uri)
        for _ in range(100):
            try:
                rpc.call("eth_chainId")
                break
            except requests.RequestException:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"anvil exited ({proc.returncode}); see {log_path}"
                    ) from None
                time.sleep(0.1)
        else:
            raise RuntimeError(f"anvil did not answer on {uri}")
        yield uri
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
