"""A throwaway `redis-server` on a free loopback port, for the keeper's distributed tests.

Debian's `redis-server` (`make test` installs it); tests skip with that hint when it is missing.
Every wait is bounded and the server is stopped by its pid.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    what: str, done: Callable[[], bool], timeout: float, diag: Callable[[], str] = lambda: ""
) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{diag()}")
        time.sleep(0.25)


def stop(proc: subprocess.Popen, sig: int, timeout: float) -> None:
    """Signal one process we started, wait a bounded time, then kill it."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """`redis-server` on 127.0.0.1 and a free port, no persistence; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (`make test` installs Debian's redis-server)")
    import redis

    port = free_port()
    log_path = folder / "redis.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no", "--dir", str(folder)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)

        def up() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return proc.poll() is not None  # exited: stop waiting, fail below

        wait_for("redis-server", up, 15)
        assert proc.poll() is None, log_path.read_text()
        client.close()
        yield f"redis://127.0.0.1:{port}"
    finally:
        stop(proc, signal.SIGTERM, 10)
