# pragma version 0.4.3
"""
@title Engine constants
@license MIT
@notice The engine's shared constants, defined once: fixed-point units, the bounds of
        every loop and list, and the largest size and price a position stores. The
        modules, the configurator and the Python model (`margin_maintenance.model`) all
        read them from here.
"""

WAD: constant(uint256) = 10**18  # fixed-point one for prices, sizes and fractions
BPS: constant(uint256) = 10_000  # basis points in one
MAX_MARKETS: constant(uint256) = 64  # market ids are 0 .. MAX_MARKETS - 1
MAX_POSITIONS: constant(uint256) = 8  # open positions per account
MAX_BATCH: constant(uint256) = 64  # accounts per liquidate_many
MAX_STATUS: constant(uint256) = 512  # accounts per margin_status
MAX_SIZE: constant(uint256) = 2**127 - 1  # largest |size| a position holds (WAD base units)
MAX_SIZE_INT: constant(int256) = 2**127 - 1  # MAX_SIZE as a signed bound for trade sizes
MAX_PRICE: constant(uint256) = 2**126 - 1  # largest price the engine accounts with (WAD): room for the funding index in a position's signed entry
# Largest `updates` blob the `*_with_prices` entry points forward to the price updater (a
# PriceVerifier blob of 8 reports of 3 signatures, or a Pyth update of a few feeds). Every
# copy of it costs memory expansion for its whole size, so it is no larger than that.
MAX_UPDATE: constant(uint256) = 4_096
# Gas units the keeper reward is priced for: a liquidation of n positions pays for
# LIQ_GAS_BASE + LIQ_GAS_PER_POSITION * n gas (from the gas table: one position, funding on,
# 93.9k; each further position adds about 25k), at the smoothed gas price.
LIQ_GAS_BASE: constant(uint256) = 70_000
LIQ_GAS_PER_POSITION: constant(uint256) = 25_000
