"""Hypothesis strategies the tests share: the engine's inputs (tests/test_model_parity.py) and
every draw of the invariant state machine (tests/support/state_machine.py).

Module-level strategies are immutable and may be reused anywhere; the few whose bounds depend
on an earlier draw are functions of it. Bounds that are engine or configurator constants come
from support.constants (parsed from the Vyper sources).
"""

from __future__ import annotations

from hypothesis import strategies as st

from support.constants import (
    BPS,
    MAX_MIN_KEEPER_REWARD,
    MAX_PRICE,
    MAX_RESERVE_BPS,
    MAX_SIZE,
    MAX_TRADING_FEE_BPS,
    USDC,
)

# ---- The engine's inputs ----

TOKEN_SCALES = st.sampled_from([10**k for k in range(19)])  # 18- down to 0-decimal tokens
ABS_SIZES = st.integers(0, MAX_SIZE)
SIZES = st.integers(-MAX_SIZE, MAX_SIZE)
PRICES = st.integers(0, MAX_PRICE)
SMALL_PRICES = st.integers(0, 10**30)  # any realistic WAD price (and far beyond)
BPS_RATES = st.integers(0, BPS)

# ---- The state machine: its actors, by index ----

N_TRADERS, N_LPS, N_KEEPERS = 3, 2, 2
N_HOLDERS = N_TRADERS + N_LPS + N_KEEPERS + 1  # and the owner: everyone who may hold collateral
N_MARKETS = 2  # ETH and BTC, as deploy_system lists them

HOLDER = st.integers(0, N_HOLDERS - 1)
TRADER = st.integers(0, N_TRADERS - 1)
LP = st.integers(0, N_LPS - 1)
KEEPER = st.integers(0, N_KEEPERS - 1)
MARKET = st.integers(0, N_MARKETS - 1)

# ---- The state machine: setup (whole tokens unless named otherwise) ----

POOL_USD = st.integers(0, 2_000_000)
INSURANCE_USD = st.integers(0, 20_000)
DEPOSITS_USD = st.lists(st.integers(0, 30_000), min_size=N_TRADERS, max_size=N_TRADERS)
LEVERAGE_BPS = st.integers(-95_000, 95_000)  # within 9.5x of equity, either side
# One leverage per trader and market, in the order (trader 0, market 0), (trader 0, market 1)...
LEVERAGES_BPS = st.lists(
    LEVERAGE_BPS, min_size=N_TRADERS * N_MARKETS, max_size=N_TRADERS * N_MARKETS
)
KEEPER_SHARE = st.integers(0, BPS)
MAX_PARTIAL = st.sampled_from([6_000, 8_000, 8_000, 9_500, BPS])
MIN_REWARD_USD = st.sampled_from([0, 1, 1, 5, 50])
# Gas pricing of the keeper reward, off or on from a flat book: (premium bps, floor in units
# of 1e6 wei (0.001 gwei), flat margin in whole tokens, maximum reward in whole tokens).
# The floor is the starting price; the in-process chain's base fee pulls it down block by
# block toward the floor (and a high floor holds it there).
GAS_SETUP = st.one_of(
    st.none(),
    st.tuples(
        st.sampled_from([0, 2_000, 10_000]),
        st.sampled_from([1, 2_000, 30_000, 2_000_000]),
        st.sampled_from([0, 1, 5]),
        st.sampled_from([2, 50, 1_000]),
    ),
)
# Funding on none, one or both markets: (market, the open-interest cap set first in whole
# units, the skew scale as a multiple of it (the configurator wants at least 2), velocity in
# bps per day per day). A small cap and multiple make the premium large; velocity 0 keeps
# the rate where it is.
FUNDING_SETUP = st.lists(
    st.tuples(
        st.sampled_from([0, 1]),
        st.sampled_from([200, 5_000, 1_000_000]),
        st.sampled_from([2, 3, 50]),
        st.sampled_from([0, 300, 3_000, 10_000]),
    ),
    max_size=2,
    unique_by=lambda t: t[0],
)

# ---- The state machine: collateral ----

DEPOSIT_USD = st.integers(0, 50_000)
CENTS = st.integers(0, 99)
WITHDRAW_KIND = st.sampled_from(["fraction", "all", "too_much", "zero", "raw"])
FRACTION_BPS = st.integers(1, BPS)  # a fraction of a balance or a position, never zero
RAW_AMOUNT = st.integers(1, 100_000 * USDC)  # token units

# ---- The state machine: trading ----

TRADE_MODE = st.sampled_from(["leverage", "reduce", "close", "flip", "raw", "slip", "zero"])
WIDE_LEVERAGE_BPS = st.integers(-150_000, 150_000)  # up to 15x: often beyond the initial margin
RAW_SIZE = st.integers(-(10**20), 10**20)  # WAD base units

# ---- The state machine: the pool ----

LIQUIDITY_USD = st.integers(0, 500_000)
SHARE_BPS = st.integers(0, BPS)  # of an LP's shares, zero included
EXTRA_SHARE = st.sampled_from([0, 0, 0, 1])  # one share more than the fraction, now and then
MIN_ASSETS = st.sampled_from(["none", "exact", "above"])  # the remove_liquidity floor

# ---- The state machine: prices and time ----

DRIFT_BPS = st.integers(-1_500, 1_500)
UP = st.booleans()
JUMP_BPS = st.integers(3_000, 6_000)  # a 30-60% move in one oracle update
EDGE_PICK = st.integers(0, 5)  # which open leg, modulo their number
EDGE_DEPTH_BPS = st.integers(1, 5_000)  # how far below maintenance the equity lands
TIME_STEP = st.sampled_from([1, 60, 600, 1_800, 3_000, 3_700, 7_200, 12_000])  # seconds
JITTER = st.integers(0, 59)  # seconds
SWEEP = st.sampled_from([False, True, True])  # a keeper sweeps after a market move, usually

# ---- The state machine: liquidation ----

VICTIMS = st.lists(HOLDER, min_size=0, max_size=6)
EXTRA_VICTIMS = st.lists(HOLDER, max_size=3)  # healthy accounts a keeper's batch adds

# ---- The state machine: owner and guardian ----

STRANGER = st.sampled_from([False, False, False, True])  # one admin call in four is refused
VALID = st.booleans()
MAINTENANCE_BPS = st.integers(50, 2_500)
ANY_RATE_BPS = st.integers(0, 12_000)  # margin rates and fees, mostly out of bounds
OI_UNITS = st.sampled_from([0, 20, 200, 5_000, 1_000_000])  # whole base units; 0 is refused
MIN_NOTIONAL_USD = st.sampled_from([0, 1, 10, 50, 200])  # 0 is refused
BPS_OR_ONE_MORE = st.integers(0, BPS + 1)
REWARD_USD = st.sampled_from([0, 1, 5, 50, MAX_MIN_KEEPER_REWARD, MAX_MIN_KEEPER_REWARD + 1])
RESERVE_BPS = st.sampled_from([0, 500, 1_000, 5_000, MAX_RESERVE_BPS, MAX_RESERVE_BPS + 1])
PAUSE_ACTION = st.sampled_from(["pause", "unpause", "unpause"])
PAUSER = st.sampled_from(["guardian", "owner"])
INSURANCE_FUNDING_USD = st.integers(0, 5_000)


def initial_margin_bps(mm: int) -> st.SearchStrategy[int]:
    """A valid initial margin above `mm`: at most 4x it and at most 100%."""
    return st.integers(mm + 1, min(BPS, 4 * mm))


def liquidation_fee_bps(mm: int) -> st.SearchStrategy[int]:
    """A valid liquidation fee: below the maintenance margin."""
    return st.integers(0, mm - 1)


def trading_fee_bps(liq: int) -> st.SearchStrategy[int]:
    """A valid trading fee: at most the liquidation fee and the configurator's bound."""
    return st.integers(0, min(liq, MAX_TRADING_FEE_BPS))
