"""One keeper pass at a time per signer, in one process or across Silverback workers.

A keeper pass reads the book, then signs and sends `liquidate_many` batches with consecutive
nonces of one signer. Two passes of the same signer at once would plan the same accounts and
sign with the same nonces, so passes are serialised. Blocks that arrive while a pass runs are
not dropped and not queued one by one: they are folded into one more pass at the newest block.

- `LocalGate`: a thread lock; enough while every handler runs in one process (`silverback run`
  with the default in-memory broker, where Silverback may still run handlers concurrently).
- `RedisGate`: the same rule across processes (`silverback worker` processes behind a Redis
  broker, each building its own keeper). A lease key in Redis names the one worker whose pass
  is running; a worker handed a block while the lease is taken only raises the wanted block and
  returns, and the holder loops until no newer block is wanted. Each step of that protocol is
  one Lua script, so a block can never be left unhandled between "the holder saw nothing new"
  and "the holder let go". The lease expires after `ttl` seconds unless renewed (every pass and
  every batch sent renews it), so a worker that dies mid-pass blocks the others for at most that.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

R = TypeVar("R")


class Gate(Protocol):
    def run(self, block: int, step: Callable[[int], R]) -> list[R]:
        """Run `step(target)` for `block` and any block wanted meanwhile, unless a pass is
        already running elsewhere, in which case `block` is folded into it and [] returned."""
        ...

    def holding(self) -> bool:
        """True while the caller's pass may still send (renews a lease that can expire)."""
        ...


class LocalGate:
    """One pass at a time in this process; blocks arriving meanwhile fold into one more pass.
    A block not newer than the last one handled runs nothing."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._busy = False
        self._wanted = -1
        self._done = -1

    def run(self, block: int, step: Callable[[int], R]) -> list[R]:
        with self._mutex:
            self._wanted = max(self._wanted, block)
            if self._busy:
                return []
            self._busy = True
        results: list[R] = []
        try:
            while True:
                with self._mutex:
                    target = self._wanted
                    if target <= self._done:
                        self._busy = False
                        return results
                results.append(step(target))
                self._done = target
        except BaseException:
            with self._mutex:
                self._busy = False
            raise

    def holding(self) -> bool:
        return True


# KEYS: lease, wanted, done. ARGV: token, block, ttl (ms).
# Take a free lease (and start a fresh session: wanted = this block, nothing done yet), or
# leave this block for the holder by raising `wanted`. Returns 1 when the lease was taken.
_ENTER = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[3]) then
  redis.call('SET', KEYS[2], ARGV[2])
  redis.call('SET', KEYS[3], -1)
  return 1
end
local wanted = tonumber(redis.call('GET', KEYS[2]) or '-1')
if tonumber(ARGV[2]) > wanted then redis.call('SET', KEYS[2], ARGV[2]) end
return 0
"""

# KEYS: lease, wanted, done. ARGV: token, block just done (-1: none yet), ttl (ms).
# Record the pass, then either renew the lease and return the next block to handle, or let go
# (-1, nothing newer wanted). -2: the lease is no longer ours (it expired): stop at once.
_ADVANCE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -2 end
local done = tonumber(redis.call('GET', KEYS[3]) or '-1')
if tonumber(ARGV[2]) > done then
  done = tonumber(ARGV[2])
  redis.call('SET', KEYS[3], ARGV[2])
end
local wanted = tonumber(redis.call('GET', KEYS[2]) or '-1')
if wanted > done then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return wanted
end
redis.call('DEL', KEYS[1])
return -1
"""

# KEYS: lease. ARGV: token, ttl (ms). Renew the lease if it is still ours.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# KEYS: lease. ARGV: token. Let go of the lease if it is still ours (after an error).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisGate:
    """`LocalGate`'s rule across processes, with a lease in Redis under `key`."""

    def __init__(self, client: Any, key: str, ttl: float = 120.0) -> None:
        if ttl <= 0:
            raise ValueError(f"ttl must be > 0, got {ttl}")
        self.client = client
        self.key = key
        self.ttl_ms = int(ttl * 1000)
        self._keys = [f"{key}:lease", f"{key}:wanted", f"{key}:done"]
        self._enter = client.register_script(_ENTER)
        self._advance = client.register_script(_ADVANCE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._local = threading.local()  # the token of the pass running in this thread

    @classmethod
    def from_url(cls, url: str, key: str, ttl: float = 120.0) -> RedisGate:
        import redis

        # Short socket timeouts: every command here returns at once (nothing blocks).
        client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=10)
        return cls(client, key, ttl)

    def run(self, block: int, step: Callable[[int], R]) -> list[R]:
        token = uuid.uuid4().hex
        if not int(self._enter(keys=self._keys, args=[token, block, self.ttl_ms])):
            return []
        self._local.token = token
        results: list[R] = []
        try:
            target = int(self._advance(keys=self._keys, args=[token, -1, self.ttl_ms]))
            while target >= 0:
                results.append(step(target))
                target = int(self._advance(keys=self._keys, args=[token, target, self.ttl_ms]))
            return results
        except BaseException:
            self._release(keys=self._keys[:1], args=[token])
            raise
        finally:
            self._local.token = None

    def holding(self) -> bool:
        token = getattr(self._local, "token", None)
        if token is None:
            return False
        return bool(int(self._renew(keys=self._keys[:1], args=[token, self.ttl_ms])))

    def close(self) -> None:
        self.client.close()


def gate_key(chain_id: int, clearinghouse: str, signer: str | None) -> str:
    """Redis key prefix of one keeper: one nonce sequence (signer) on one chain, one book."""
    who = signer.lower() if signer else "dry-run"
    return f"mm:keeper:{chain_id}:{clearinghouse.lower()}:{who}"


IN_MEMORY_BROKERS = ("taskiq:InMemoryBroker", "taskiq.brokers.inmemory_broker:InMemoryBroker")
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def coordination_url(
    redis_url: str | None, broker_class: str, broker_kwargs: dict[str, Any]
) -> str | None:
    """Where the keeper's lease lives: `MM_REDIS_URL` if set; none with Silverback's in-memory
    broker (every handler runs in the one process); else the broker's own Redis URL. A broker
    with no Redis URL (RabbitMQ, say) needs `MM_REDIS_URL`: without a shared lease, two
    worker processes would sign with the same nonces."""
    if redis_url:
        return redis_url
    if not broker_class or broker_class in IN_MEMORY_BROKERS:
        return None
    url = broker_kwargs.get("url")
    if isinstance(url, str) and url.startswith(REDIS_SCHEMES):
        return url
    raise ValueError(
        f"SILVERBACK_BROKER_CLASS={broker_class} runs the keeper in several processes and its "
        "broker has no Redis 'url': set MM_REDIS_URL to a Redis the workers share"
    )
