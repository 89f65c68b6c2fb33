"""The simulator's units, file names and error type."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

WAD = 10**18
BPS = 10_000
TOKEN_DECIMALS = 6  # the mock USDC the simulator deploys
AXES: tuple[str, ...] = ("mm_bps", "fee_bps", "insurance_usd", "latency")
AXIS_TITLES = {
    "mm_bps": "maintenance margin (bps)",
    "fee_bps": "liquidation fee (bps)",
    "insurance_usd": "insurance fund (USD)",
    "latency": "keeper latency (blocks)",
}
# Markets the simulator lists: start price (USD) and open-interest cap (whole units per side).
MARKETS: dict[str, tuple[float, int]] = {
    "ETH-USD": (2_000.0, 1_000_000),
    "BTC-USD": (60_000.0, 50_000),
}
REPORT_FILE = "report.md"
RESULTS_FILE = "results.json"


class SimulationError(RuntimeError):
    """The simulation cannot run as configured, or the chain disagrees with its own records."""
