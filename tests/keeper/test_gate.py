"""The keeper's gate: one pass per signer at a time, folding blocks that arrive meanwhile.

`LocalGate` is also covered through `Keeper.on_block` (test_keeper_integration.py). Two
`RedisGate`s on one key stand for two `silverback worker` processes; they need a local
`redis-server` (skipped with a hint when it is not installed) but no chain.
"""

import threading
import time

import pytest
from local_redis import redis_server

from margin_maintenance.keeper.gate import (
    LocalGate,
    RedisGate,
    coordination_url,
    gate_key,
)

KEY = "mm:keeper:test"


# ---- Where the lease lives ----


def test_coordination_url__in_memory_broker__none():
    assert coordination_url(None, "taskiq:InMemoryBroker", {}) is None
    assert coordination_url(None, "", {}) is None


def test_coordination_url__redis_broker__its_url():
    kwargs = {"url": "redis://127.0.0.1:6400", "socket_timeout": None}
    assert coordination_url(None, "taskiq_redis:ListQueueBroker", kwargs) == kwargs["url"]


def test_coordination_url__setting_wins():
    url = coordination_url("redis://lease:1", "taskiq_redis:ListQueueBroker", {"url": "redis://b"})
    assert url == "redis://lease:1"
    assert coordination_url("redis://lease:1", "taskiq:InMemoryBroker", {}) == "redis://lease:1"


def test_coordination_url__other_broker_without_redis__refused():
    with pytest.raises(ValueError, match="MM_REDIS_URL"):
        coordination_url(None, "taskiq_aio_pika:AioPikaBroker", {"url": "amqp://x"})


def test_gate_key__per_chain_book_and_signer():
    key = gate_key(31337, "0xABCDEF", "0xAbC")
    assert key == "mm:keeper:31337:0xabcdef:0xabc"
    assert gate_key(31337, "0xABCDEF", None).endswith(":dry-run")


# ---- LocalGate ----


def test_local_gate__block_during_pass__folded_and_old_block_skipped():
    gate = LocalGate()
    seen = []

    def step(n):
        seen.append(n)
        if n == 5:
            assert gate.run(6, step) == []  # arrives mid-pass: folded
        return n

    assert gate.run(5, step) == [5, 6]
    assert gate.run(4, step) == [] and seen == [5, 6]
    assert gate.holding()


# ---- RedisGate ----


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def gates(redis_url):
    """Two gates on one key, as two worker processes would hold (separate connections)."""
    made = [RedisGate.from_url(redis_url, KEY, ttl=5) for _ in range(2)]
    made[0].client.delete(f"{KEY}:lease", f"{KEY}:wanted", f"{KEY}:done")
    yield made
    for g in made:
        g.close()


def test_redis_gate__free__runs_the_block(gates):
    a, _ = gates
    assert a.run(7, lambda n: n) == [7]
    assert a.client.get(f"{KEY}:lease") is None  # let go


def test_redis_gate__block_to_other_worker_during_pass__folded_into_holder(gates):
    a, b = gates
    seen = []

    def step(n):
        seen.append(n)
        if n == 10:
            assert b.run(11, lambda m: pytest.fail("b must not run a pass")) == []
            assert b.run(12, lambda m: pytest.fail("b must not run a pass")) == []
        return n

    assert a.run(10, step) == [10, 12]  # 11 and 12 folded into one more pass, at 12
    assert seen == [10, 12]


def test_redis_gate__concurrent_workers__never_two_passes_at_once(gates):
    running, overlaps, passes = [0], [0], []
    lock = threading.Lock()

    def step(n):
        with lock:
            running[0] += 1
            overlaps[0] = max(overlaps[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
            passes.append(n)
        return n

    def worker(gate, blocks):
        for n in blocks:
            gate.run(n, step)

    threads = [
        threading.Thread(target=worker, args=(g, range(i, 40, 2))) for i, g in enumerate(gates)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert overlaps[0] == 1  # one pass at a time across both "processes"
    assert 39 in passes  # the newest block is never lost in a fold
    assert len(passes) < 40  # blocks handed over during a pass were folded, not queued


def test_redis_gate__error_in_pass__lease_released(gates):
    a, b = gates

    def boom(n):
        raise RuntimeError("node down")

    with pytest.raises(RuntimeError):
        a.run(20, boom)
    assert b.run(21, lambda n: n) == [21]


def test_redis_gate__holder_died__others_wait_for_the_ttl_then_take_over(redis_url, gates):
    a, _ = gates
    a.client.set(f"{KEY}:lease", "dead-worker", px=300)  # a worker that died mid-pass
    assert a.run(30, lambda n: n) == []
    time.sleep(0.4)
    assert a.run(31, lambda n: n) == [31]  # a fresh session: the new block, once


def test_redis_gate__holding__only_inside_own_pass_and_while_the_lease_is_ours(gates):
    a, b = gates
    assert not a.holding()
    checks = []

    def step(n):
        checks.append(a.holding())
        a.client.set(f"{KEY}:lease", "someone-else", px=5000)  # our lease expired and was taken
        checks.append(a.holding())
        return n

    assert a.run(40, step) == [40]  # stops at once: the lease is not ours to advance
    assert checks == [True, False]
    assert b.client.get(f"{KEY}:lease") == b"someone-else"  # not deleted by the old holder
