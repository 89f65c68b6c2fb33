"""The liquidation plan and its settlement, bit for bit as `Clearinghouse._plan`,
`_fee_split` and `_liquidate` do them (SPEC section 3)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .constants import BPS, WAD
from .margin import (
    Leg,
    Margin,
    bps_up,
    ceil_div,
    liquidation_fraction,
    margin,
    notional_down,
    notional_up,
    pnl,
)


@dataclass(frozen=True)
class LiquidationParams:
    """`Clearinghouse.liquidation_params`: keeper share, partial bound, minimum reward."""

    keeper_share_bps: int
    max_partial_bps: int
    min_keeper_reward: int  # token units


def planned_fraction(m: Margin, min_reward: int, realisable: int | None = None) -> int:
    """The fraction `_plan` starts from: planned on the equity the close can realise
    (min(equity, collateral + backed pool): the pool pays net profit only up to its assets
    less other accounts' debt),
    with two units of slack per leg for the per-leg rounding, and at least enough that paying
    the minimum keeper reward as a flat fee still leaves the remainder's initial requirement
    covered."""
    equity = m.equity if realisable is None else min(m.equity, realisable)
    slack_equity = equity - 2 * m.positions
    return max(
        liquidation_fraction(slack_equity, m.initial, m.liq_fee),
        liquidation_fraction(slack_equity - min_reward, m.initial, 0),
    )


def partial_reachable(max_partial_bps: int, im_bps: int, mm_bps: int, fee_bps: int) -> bool:
    """`Clearinghouse._check_partial_reachable`: the bound exceeds (im - mm) / (im - fee), the
    least fraction an account that just crossed maintenance needs closed."""
    return max_partial_bps * (im_bps - fee_bps) > (im_bps - mm_bps) * BPS


def closes_at(legs: Sequence[Leg], fraction: int) -> list[int]:
    """Per-leg sizes closed at `fraction`, rounded up, before the dust rule."""
    return [min(abs(leg.size), ceil_div(abs(leg.size) * fraction, WAD)) for leg in legs]


def plan(
    legs: Sequence[Leg],
    m: Margin,
    params: LiquidationParams,
    token_scale: int,
    realisable: int | None = None,
) -> tuple[int, list[int], bool]:
    """`Clearinghouse._plan`: (fraction, size closed per leg, full)."""
    fraction = planned_fraction(m, params.min_keeper_reward, realisable)
    if fraction > params.max_partial_bps * WAD // BPS:
        return WAD, [abs(leg.size) for leg in legs], True
    closes = []
    for leg, close in zip(legs, closes_at(legs, fraction), strict=True):
        remainder = abs(leg.size) - close
        if notional_down(remainder, leg.price, token_scale) < leg.rates.min_position_notional:
            close = abs(leg.size)  # no dust: the whole leg goes
        closes.append(close)
    if all(c == abs(leg.size) for c, leg in zip(closes, legs, strict=True)):
        return WAD, closes, True
    return fraction, closes, False


def keeper_reward(fee_paid: int, params: LiquidationParams, insurance: int) -> tuple[int, int]:
    """`Clearinghouse._fee_split`, its reward part: (reward, insurance after it). `insurance`
    already holds `fee_paid`, so the fund only tops up what the account could not pay of the
    minimum."""
    reward = fee_paid * params.keeper_share_bps // BPS
    if reward < params.min_keeper_reward:
        reward = min(params.min_keeper_reward, insurance)
    return reward, insurance - reward


def remaining_legs(legs: Sequence[Leg], closes: Sequence[int]) -> list[Leg]:
    """The positions left after closing `closes`, re-entered at the closing price (less the
    funding index: their new funding basis)."""
    out = []
    for leg, c in zip(legs, closes, strict=True):
        left = abs(leg.size) - c
        if left:
            size = left if leg.size > 0 else -left
            out.append(Leg(leg.market_id, size, leg.mark, leg.price, leg.rates, leg.index))
    return out


@dataclass(frozen=True)
class Outcome:
    """Everything one `liquidate` changes, as its events log it."""

    fraction: int
    full: bool
    closes: tuple[int, ...]
    closed_notional: int
    fee: int  # fee due: on the closed notional, at least the minimum reward (third party)
    fee_paid: int  # what the account could pay of it
    reward: int
    collateral: int  # the account's, afterwards
    insurance: int
    pool: int
    bad_debt: int
    insurance_covered: int
    socialised: int
    uncovered: int
    remaining: tuple[Leg, ...]
    proportional_fee: int  # the fee on the closed notional alone, before the minimum
    pnls: tuple[int, ...]  # each leg's PnL at the price: what it owes (< 0) or is owed
    realized: tuple[int, ...]  # what each leg settled: a loss in full, a profit up to the pool


def backed(pool: int, other_debt: int, collateral: int = 0, running: int | None = None) -> int:
    """`ledger._backed`: what the pool can pay an account as profit, its assets less every
    other account's debt and the claims owed (the part of a loss beyond collateral was
    credited but never arrived), and never less than what the account owes the pool by now:
    its debt at stored `collateral` plus the losses and fee this action has credited (down to
    `running`), since netting those moves no token."""
    running = collateral if running is None else running
    return max(pool - other_debt, 0, max(collateral, 0) - running)


def settle_pnls(
    pnls: Sequence[int], collateral: int, pool: int, other_debt: int = 0
) -> tuple[list[int], int, int]:
    """`_liquidate`'s settlement of the legs' PnL: losses into the pool first, then profits,
    each capped by what the pool backs by then (so the pool pays profits from the same
    liquidation's losses, never from other accounts' debt). Returns (realised per leg,
    collateral after, pool after)."""
    realized = list(pnls)
    stored = collateral
    for p in pnls:  # losses first ...
        if p < 0:
            pool -= p
            collateral += p
    for i, p in enumerate(pnls):  # ... then profits, each capped by what the pool holds
        if p > 0:
            realized[i] = min(p, backed(pool, other_debt, stored, collateral))
            pool -= realized[i]
            collateral += realized[i]
    return realized, collateral, pool


def liquidate(
    collateral: int,
    legs: Sequence[Leg],
    insurance: int,
    pool: int,
    params: LiquidationParams,
    token_scale: int,
    *,
    self_liquidation: bool = False,
    other_debt: int = 0,
    premium: Callable[[int, int], int] | None = None,
) -> Outcome:
    """`Clearinghouse._liquidate`. Losing legs settle into the pool before profitable legs are
    paid from it (so the pool pays profits from the same liquidation's losses); a third party
    charges at least the minimum keeper reward as the fee; bad debt after a full close goes
    to insurance, then the pool, and the rest stays on the account. `premium(i, close)` is
    the skew premium closing `close` of leg i pays (`_premium_cost`; none by default): the
    plan spends a full close's, the settlement the actual close's."""
    m = margin(collateral, legs, token_scale)
    if not (legs and m.equity < m.maintenance):
        raise ValueError("model: account healthy")
    cost = premium or (lambda i, close: 0)
    realisable = min(m.equity, collateral + backed(pool, other_debt, collateral))
    realisable -= sum(cost(i, abs(leg.size)) for i, leg in enumerate(legs))
    fraction, closes, full = plan(legs, m, params, token_scale, realisable=realisable)
    pairs = list(zip(closes, legs, strict=True))
    notionals = [notional_up(c, leg.price, token_scale) for c, leg in pairs]
    proportional_fee = sum(
        bps_up(n, leg.rates.liquidation_fee_bps) for n, leg in zip(notionals, legs, strict=True)
    )
    fee = proportional_fee
    if not self_liquidation:
        fee = max(fee, params.min_keeper_reward)

    pnls = [
        pnl(leg.size, leg.entry, leg.mark, token_scale) - cost(i, close)
        for i, (leg, close) in enumerate(zip(legs, closes, strict=True))
    ]
    realized, c, pool = settle_pnls(pnls, collateral, pool, other_debt)
    fee_paid = min(fee, max(c, 0))
    c -= fee_paid
    insurance += fee_paid
    reward = 0
    if not self_liquidation:
        reward, insurance = keeper_reward(fee_paid, params, insurance)

    bad = covered = socialised = uncovered = 0
    if full and c < 0:
        bad = -c
        covered = min(bad, insurance)
        insurance -= covered
        socialised = min(bad - covered, pool)
        pool -= socialised
        uncovered = bad - covered - socialised
        c = -uncovered
    return Outcome(
        fraction=fraction,
        full=full,
        closes=tuple(closes),
        closed_notional=sum(notionals),
        fee=fee,
        fee_paid=fee_paid,
        reward=reward,
        collateral=c,
        insurance=insurance,
        pool=pool,
        bad_debt=bad,
        insurance_covered=covered,
        socialised=socialised,
        uncovered=uncovered,
        remaining=tuple(remaining_legs(legs, closes)),
        proportional_fee=proportional_fee,
        pnls=tuple(pnls),
        realized=tuple(realized),
    )
