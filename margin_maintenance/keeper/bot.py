"""The reference keeper as a Silverback bot.

Run it as its own process against a node Ape can reach, e.g. a local anvil on port 8545:

    APE_FOUNDRY_HOST=http://127.0.0.1:8545 MM_DEPLOYMENT=deployments/local.json \\
        silverback run margin_maintenance.keeper.bot:bot \\
        --network ethereum:local:foundry --account TEST::5

`--account TEST::<n>` signs with Ape's n-th test account (the same keys as anvil's default
accounts); without `--account`, or with `MM_DRY_RUN=1`, the bot only logs what it would do.
Settings are the `MM_*` environment variables of `settings.py`. Each block handler returns the
keeper's counters, which Silverback logs as metrics (and records with `--record`).

Scaling past one process is Silverback's own job: `SILVERBACK_BROKER_CLASS` and
`SILVERBACK_BROKER_KWARGS` name a taskiq-redis broker, `silverback run` dispatches the blocks and
`silverback worker -w N margin_maintenance.keeper.bot:bot` processes handle them (docs/keeper.md,
"Distributed"). Every worker process builds its own keeper; a lease in Redis (`gate.py`) lets
one pass of a signer run at a time, so nonces and the account index each have one writer.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from ape import chain
from ape.api import BlockAPI
from silverback import SilverbackBot, StateSnapshot
from silverback.main import SharedState
from silverback.settings import Settings as SilverbackSettings

from .core import IterationResult, Keeper, build_keeper
from .gate import Gate, LocalGate, RedisGate, coordination_url, gate_key
from .settings import KeeperSettings, network_slug, resolve_watch

log = logging.getLogger("margin_maintenance.keeper")


def _configure_logging() -> None:
    """Our INFO lines next to Silverback's (which uses Ape's own logger)."""
    logger = logging.getLogger("margin_maintenance")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s: [keeper] %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(os.environ.get("MM_LOG_LEVEL", "INFO").upper())
        logger.propagate = False


_configure_logging()
bot = SilverbackBot()

_keeper: Keeper | None = None
_gate: Gate | None = None
_lock = threading.Lock()  # the gate
_build_lock = threading.Lock()  # the keeper


def gate() -> Gate:
    """The process's gate: a thread lock with Silverback's in-memory broker, a Redis lease
    shared by every worker process of this signer with a distributed broker."""
    global _gate
    with _lock:
        if _gate is None:
            settings = KeeperSettings()
            sb = SilverbackSettings()
            url = coordination_url(settings.redis_url, sb.BROKER_CLASS, sb.BROKER_KWARGS)
            if url is None:
                _gate = LocalGate()
            else:
                network = chain.provider.network
                watch = resolve_watch(settings, network_slug(network.ecosystem.name, network.name))
                signer = str(bot.signer.address) if bot.signer is not None else None
                key = gate_key(int(chain.chain_id), watch.clearinghouse, signer)
                _gate = RedisGate.from_url(url, key, settings.lease_ttl)
                log.info("distributed keeper: lease %s (ttl %.0f s)", key, settings.lease_ttl)
        return _gate


def keeper() -> Keeper:
    """The process's keeper, built on first use (each Silverback worker process builds its
    own). Building opens and catches up the account index: call it inside a pass (under the
    gate), so that only the lease holder ever writes the index."""
    global _keeper
    with _build_lock:
        if _keeper is None:
            _keeper = build_keeper(KeeperSettings(), signer=bot.signer, gate=gate())
        return _keeper


def _pass(block_number: int) -> IterationResult:
    return keeper().step(block_number)


def _metrics() -> dict[str, int]:
    return _keeper.metrics.as_dict() if _keeper is not None else {}


def _close() -> dict[str, int]:
    """Close this process's keeper (a later task builds a new one)."""
    global _keeper
    with _build_lock:
        k, _keeper = _keeper, None
    if k is None:
        return {}
    metrics = k.metrics.as_dict()
    k.close()
    return metrics


@bot.on_worker_startup()
def ensure_state(state: Any) -> None:
    """Silverback 0.7.38 creates `bot.state` only in the worker process that runs its
    `system:load-snapshot` task, yet every block handler writes its checkpoint there: without
    this, a second `silverback worker` process fails every block it is handed."""
    if "state" not in bot.__dict__:
        bot.state = SharedState()


@bot.on_startup()
def load_index(startup_state: StateSnapshot) -> dict[str, int]:
    """Open the SQLite index, catch up from its checkpoint to the head, and handle the head
    block at once (accounts may have become liquidatable while the keeper was down)."""
    gate().run(chain.blocks.head.number or 0, _pass)
    metrics = _metrics()
    if _keeper is not None:
        metrics["checkpoint"] = _keeper.index.checkpoint
    return metrics


@bot.on_(chain.blocks)
def liquidate_on_block(block: BlockAPI) -> dict[str, int]:
    """Index, read margin status, rank, check profit and send batches for this block (or fold
    it into the pass another worker is running)."""
    gate().run(block.number or 0, _pass)
    return _metrics()


@bot.on_shutdown()
def close_index() -> dict[str, int]:
    return _close()


@bot.on_worker_shutdown()
def close_worker(state: Any) -> None:
    _close()
