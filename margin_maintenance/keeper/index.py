"""Account discovery with a durable checkpoint (SQLite, stdlib only).

The keeper must know every account that could become liquidatable. Any such account has
emitted `Deposited` or `PositionChanged` since the deployment block, so the index scans those
events from the start block, in block ranges, and stores the accounts together with the last
block it has fully scanned (the checkpoint) in one SQLite transaction. A restart resumes from
the checkpoint: nothing scanned is lost and nothing is counted twice.

The index is bound to a scope (chain id, clearinghouse address, start block): opening it with a
different scope, or finding that the checkpointed block no longer has the hash it had (a
restarted local chain that redeployed at the same address, or a reorg), starts it over.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

from eth_utils import to_checksum_address

from margin_maintenance.chain.logs import as_int, scan_logs, signature_topic, topic_address

log = logging.getLogger(__name__)

SCHEMA_VERSION = "1"
DISCOVERY_EVENTS = ("Deposited", "PositionChanged")  # both index the account as topic 1


class LogSource(Protocol):
    """Yields (block number, account) for every discovery event in [from_block, to_block]."""

    def __call__(self, from_block: int, to_block: int) -> Iterable[tuple[int, str]]: ...


class AccountIndex:
    """Known accounts and the last fully indexed block, in a SQLite file.

    Thread-safe for use from Silverback's worker threads (one connection, one lock).
    """

    def __init__(self, path: str | Path, start_block: int = 0, scope: str = "") -> None:
        if start_block < 0:
            raise ValueError(f"start_block must be >= 0, got {start_block}")
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.start_block = start_block
        self.scope = scope
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        with self._tx():
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS accounts ("
                " address TEXT PRIMARY KEY,"  # checksummed
                " first_block INTEGER NOT NULL)"  # block of the first event seen
            )
            want = {"schema": SCHEMA_VERSION, "scope": scope, "start_block": str(start_block)}
            have = {k: self._meta(k) for k in want}
            if have["scope"] is None:
                self._set_meta(want)
            elif have != want:
                log.warning("index %s was for %s; starting over for %s", self.path, have, want)
                self._reset(want)

    # ---- Reading ----

    @property
    def checkpoint(self) -> int:
        """Last block whose events are all indexed (start_block - 1 before the first scan)."""
        value = self._meta("checkpoint")
        return int(value) if value is not None else self.start_block - 1

    @property
    def checkpoint_hash(self) -> str | None:
        """Hash of the checkpoint block when it was recorded, if the caller gave one."""
        return self._meta("checkpoint_hash")

    def accounts(self) -> list[str]:
        """Every known account, in discovery order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT address FROM accounts ORDER BY first_block, rowid"
            ).fetchall()
        return [r[0] for r in rows]

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM accounts").fetchone()[0])

    def __contains__(self, account: object) -> bool:
        if not isinstance(account, str):
            return False
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM accounts WHERE address = ?", (to_checksum_address(account),)
            ).fetchone()
        return row is not None

    # ---- Writing ----

    def record(
        self, found: Iterable[tuple[int, str]], through_block: int, block_hash: str | None = None
    ) -> int:
        """Add the accounts in `found` and move the checkpoint to `through_block`, atomically.

        The checkpoint never moves back. Returns how many accounts were new.
        """
        rows = [(to_checksum_address(a), int(b)) for b, a in found]
        with self._tx():
            before = self._db.total_changes
            self._db.executemany(
                "INSERT INTO accounts (address, first_block) VALUES (?, ?)"
                " ON CONFLICT(address) DO NOTHING",
                rows,
            )
            added = self._db.total_changes - before
            if through_block > self.checkpoint:
                meta = {"checkpoint": str(through_block)}
                if block_hash is not None:
                    meta["checkpoint_hash"] = block_hash
                self._set_meta(meta)
        return added

    def sync(
        self,
        source: LogSource,
        head: int,
        chunk: int = 10_000,
        block_hash: Callable[[int], str | None] | None = None,
    ) -> int:
        """Scan (checkpoint, head] in ranges of `chunk` blocks; each range is committed with
        its checkpoint, so an interrupted sync resumes where it stopped. Returns new accounts."""
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        added = 0
        with self._lock:
            start = self.checkpoint + 1
            while start <= head:
                stop = min(head, start + chunk - 1)
                found = list(source(start, stop))
                added += self.record(found, stop, block_hash(stop) if block_hash else None)
                start = stop + 1
        if added:
            log.info(
                "indexed %d new account(s) through block %d (%d known)", added, head, len(self)
            )
        return added

    def reset(self) -> None:
        """Forget every account and the checkpoint (keeps the scope)."""
        with self._tx():
            self._reset(
                {
                    "schema": SCHEMA_VERSION,
                    "scope": self.scope,
                    "start_block": str(self.start_block),
                }
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> AccountIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- Internal ----

    def _tx(self) -> _Transaction:
        return _Transaction(self._db, self._lock)

    def _meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, values: dict[str, str]) -> None:
        self._db.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            list(values.items()),
        )

    def _reset(self, meta: dict[str, str]) -> None:
        self._db.execute("DELETE FROM accounts")
        self._db.execute("DELETE FROM meta")
        self._set_meta(meta)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error) under the index's lock."""

    def __init__(self, db: sqlite3.Connection, lock: threading.RLock) -> None:
        self._db = db
        self._lock = lock

    def __enter__(self) -> sqlite3.Connection:
        self._lock.acquire()
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._lock.release()
            raise
        return self._db

    def __exit__(self, exc_type: object, *exc: object) -> None:
        try:
            self._db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self._lock.release()


# ---- Event source over JSON-RPC ----


def event_topic(signature: str) -> str:
    """topic0 of an event, from its canonical signature, e.g. 'Deposited(address,uint256)'."""
    return signature_topic(signature)


class Web3LogSource:
    """Discovery events of one contract via `eth_getLogs` (`chain.logs.scan_logs`), one
    request per event and range (a range the node refuses is halved and asked again).

    Raw topics are read directly (the account is topic 1 of both events), which keeps a scan
    of many thousands of events cheap; one request per event avoids relying on topic OR-lists,
    which not every node or test backend supports.
    """

    def __init__(self, web3: Any, address: str, topics: Iterable[str]) -> None:
        self.web3 = web3
        self.address = to_checksum_address(address)
        self.topics = list(topics)

    @classmethod
    def for_contract(
        cls, web3: Any, contract: Any, events: Iterable[str] = DISCOVERY_EVENTS
    ) -> Web3LogSource:
        """Topics from the contract's own ABI (so an added event field cannot desync them)."""
        topics = [event_topic(getattr(contract, name).abi.selector) for name in events]
        return cls(web3, str(contract.address), topics)

    def __call__(self, from_block: int, to_block: int) -> Iterator[tuple[int, str]]:
        whole = max(1, to_block - from_block + 1)  # the range in one request unless refused
        logs = scan_logs(
            self.web3.eth.get_logs,
            self.address,
            self.topics,
            from_block,
            to_block,
            whole,
            split_topics=True,
        )
        for entry in logs:
            yield as_int(entry["blockNumber"]), topic_address(entry)
