"""Keeper scale on anvil (`ape run scale`, part of `make bench`; SPEC.md section 9).

For each book size N: a fresh anvil on a free loopback port, the system deployed with
`deploy_system`, and N accounts that each mint collateral, approve, deposit and open one
position with real transactions (no storage writes). A tenth of them are 9x ETH longs, the
rest 2-3x longs and shorts in ETH and BTC, so one ETH move of -10% makes exactly that tenth
liquidatable (a 9x long crosses maintenance at -6.4%, a 3x long only at -29.8%).

Measured, then:

- **status read**: the keeper's `ClearinghouseReader.margin_status` over every account (512 per
  `eth_call`, all calls in one JSON-RPC batch), the median, min and max of several runs after
  one warm-up, and the HTTP requests and `eth_call`s it used;
- **clearing**, once per block time from the same anvil snapshot: interval mining on (one block
  every `block_time` seconds, anvil's default 30M block gas limit), one ETH price update, then
  the keeper's own block handler (`core.Keeper.on_block`, what the Silverback bot runs) called
  for every new block until an iteration finds nothing liquidatable: the blocks from the price
  update's block to the last liquidation's block, the seconds from seeing the price update's
  block to the last receipt, the gas of every `liquidate_many` over the accounts it
  liquidated, the keeper's RPC calls, and each iteration's seconds by phase.

Seeding runs with automine off and the impersonated accounts' transactions fired in JSON-RPC
batches without waiting for receipts, then mined block by block (base fee 0 while seeding, so
the full seeding blocks do not push it up; it is set back to 1 gwei before the measurements).
Nothing here asserts a time: the figures are reported.
"""

from __future__ import annotations

from margin_maintenance.system import WAD  # re-exported: the bench's tests price in it

from .book import (
    AccountPlan,
    BookParams,
    account_address,
    crossing_move,
    liquidatable_after,
    plan_book,
    position_size,
    predicted_liquidatable,
)
from .figures import (
    ClearResult,
    ScaleResult,
    Stats,
    Timing,
    growth,
    last_summary,
    machine_line,
    render_markdown,
    spec_verdicts,
    time_command,
    to_json,
)
from .node import (
    Rpc,
    count_rpc,
    free_port,
    run_anvil,
)
from .run import (
    ape_on,
    drive_keeper,
    measure_clear,
    measure_status,
    run_size,
    split_send,
    time_phases,
    timed_receipts,
)
from .seeding import (
    seed_book,
)
from .settings import (
    BTC,
    ETH,
    GWEI,
    LIQUIDATED_SIG,
    LIQUIDATED_TOPIC,
    MAX_UINT,
    MEASURE_BASE_FEE,
    RPC_CHUNK,
    SEED_GAS,
    SEED_WAVE,
)

__all__ = [
    "WAD",
    "MAX_UINT",
    "GWEI",
    "ETH",
    "BTC",
    "RPC_CHUNK",
    "SEED_WAVE",
    "SEED_GAS",
    "MEASURE_BASE_FEE",
    "LIQUIDATED_SIG",
    "LIQUIDATED_TOPIC",
    "AccountPlan",
    "BookParams",
    "ClearResult",
    "Rpc",
    "ScaleResult",
    "Stats",
    "Timing",
    "account_address",
    "ape_on",
    "count_rpc",
    "crossing_move",
    "drive_keeper",
    "free_port",
    "growth",
    "last_summary",
    "liquidatable_after",
    "machine_line",
    "measure_clear",
    "measure_status",
    "plan_book",
    "position_size",
    "predicted_liquidatable",
    "render_markdown",
    "run_anvil",
    "run_size",
    "seed_book",
    "spec_verdicts",
    "split_send",
    "time_command",
    "time_phases",
    "timed_receipts",
    "to_json",
]
