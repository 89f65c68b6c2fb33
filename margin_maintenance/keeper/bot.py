"""The reference keeper as a Silverback bot.

Run it as its own process against a node Ape can reach, e.g. a local anvil on port 8545:

    APE_FOUNDRY_HOST=http://127.0.0.1:8545 MM_DEPLOYMENT=deployments/local.json \\
        silverback run margin_maintenance.keeper.bot:bot \\
        --network ethereum:local:foundry --account TEST::5

`--account TEST::<n>` signs with Ape's n-th test account (the same keys as anvil's default
accounts); without `--account`, or with `MM_DRY_RUN=1`, the bot only logs what it would do.
Settings are the `MM_*` environment variables of `settings.py`. Each block handler returns the
keeper's counters, which Silverback logs as metrics (and records with `--record`).

Scaling past one process is Silverback's own job: set `SILVERBACK_BROKER_CLASS` (e.g. a
taskiq-redis broker) and run `silverback worker -w N margin_maintenance.keeper.bot:bot`.
"""

from __future__ import annotations

import logging
import os
import threading

from ape import chain
from ape.api import BlockAPI
from silverback import SilverbackBot, StateSnapshot

from .core import Keeper, build_keeper
from .settings import KeeperSettings


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
_keeper_lock = threading.Lock()


def keeper() -> Keeper:
    """The process's keeper, built on first use (each Silverback worker builds its own)."""
    global _keeper
    with _keeper_lock:
        if _keeper is None:
            _keeper = build_keeper(KeeperSettings(), signer=bot.signer)
        return _keeper


@bot.on_startup()
def load_index(startup_state: StateSnapshot) -> dict[str, int]:
    """Open the SQLite index, catch up from its checkpoint to the head, and handle the head
    block at once (accounts may have become liquidatable while the keeper was down)."""
    k = keeper()
    k.on_block()
    return {**k.metrics.as_dict(), "checkpoint": k.index.checkpoint}


@bot.on_(chain.blocks)
def liquidate_on_block(block: BlockAPI) -> dict[str, int]:
    """Index, read margin status, rank, check profit and send batches for this block."""
    k = keeper()
    k.on_block(block.number)
    return k.metrics.as_dict()


@bot.on_shutdown()
def close_index() -> dict[str, int]:
    k = keeper()
    metrics = k.metrics.as_dict()
    k.close()
    return metrics
