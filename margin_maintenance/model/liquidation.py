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
from .reward import KeeperGas, clamp, fee_split, gas_reward

MAX_REWARD = 2**72 - 1  # the liquidation word's field: no cap below it


@dataclass(frozen=True)
class LiquidationParams:
    """`Clearinghouse.liquidation_params` and `keeper_reward_params`: keeper share, partial
    bound, minimum and maximum reward, flat gas margin, and the gas word."""

    keeper_share_bps: int
    max_partial_bps: int
    min_keeper_reward: int  # token units
    max_keeper_reward: int = MAX_REWARD  # token units
    gas_margin: int = 0  # token units
    gas: KeeperGas = KeeperGas()

    def reserve_for(self, token_scale: int) -> Callable[[int], tuple[int, int]]:
        """(gas reward, reserve) for n positions: `_load_known`'s tail, for `margin`."""

        def reserve(n: int) -> tuple[int, int]:
            g = gas_reward(self.gas, self.gas_margin, n, token_scale)
            return g, clamp(g, self.min_keeper_reward, self.max_keeper_reward)

        return reserve


def planned_fraction(m: Margin, realisable: int | None = None) -> int:
    """The fraction `_plan` starts from: planned on the equity the close can realise
    (min(equity, collateral + backed pool): the pool pays net profit only up to its assets
    less other accounts' debt), with two units of slack per leg for the per-leg rounding, and
    twice the reserve spent: the fee pays at most the reserve over the proportional fee and
    the remainder's requirement holds it again; the fraction is on the notional part."""
    equity = m.equity if realisable is None else min(m.equity, realisable)
    slack_equity = equity - 2 * (m.positions + m.reserve)
    return liquidation_fraction(slack_equity, m.initial - m.reserve, m.liq_fee)


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
    fraction = planned_fraction(m, realisable)
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
    fee: int  # fee due: on the closed notional, with what the reward takes over its share
    fee_paid: int  # what the account could pay of it
    reward: int
    from_pool: int  # the part of the reward the pool paid (account and fund fell short)
    collateral: int  # the account's, afterwards
    insurance: int
    pool: int
    bad_debt: int
    insurance_covered: int
    socialised: int
    uncovered: int
    remaining: tuple[Leg, ...]
    proportional_fee: int  # the fee on the closed notional alone, before the reward's part
    pnls: tuple[int, ...]  # each leg's PnL at the price: what it owes (< 0) or is owed
    realized: tuple[int, ...]  # what each leg settled: a loss in full, a profit up to the pool


def spendable(pool: int, other_debt: int, running: int) -> int:
    """`ledger._spendable`: what the pool holds in tokens for a third party while the account
    stands at `running`: its assets less every other account's debt and the claims owed, and
    less this account's debt now."""
    return max(pool - other_debt - max(-running, 0), 0)


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
    paid from it (so the pool pays profits from the same liquidation's losses); the fee holds
    the keeper reward (`reward.fee_split`); bad debt after a full close goes
    to insurance, then the pool, and the rest stays on the account. `premium(i, close)` is
    the skew premium closing `close` of leg i pays (`_premium_cost`; none by default): the
    plan spends a full close's, the settlement the actual close's."""
    m = margin(collateral, legs, token_scale, params.reserve_for(token_scale))
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

    pnls = [
        pnl(leg.size, leg.entry, leg.mark, token_scale) - cost(i, close)
        for i, (leg, close) in enumerate(zip(legs, closes, strict=True))
    ]
    realized, c, pool = settle_pnls(pnls, collateral, pool, other_debt)
    split = fee_split(
        proportional_fee,
        c,
        keeper_share_bps=params.keeper_share_bps,
        min_reward=params.min_keeper_reward,
        max_reward=params.max_keeper_reward,
        insurance=insurance,
        third_party=not self_liquidation,
        gas=m.gas_reward,
        spendable_pool=spendable(pool, other_debt, c),
    )
    fee = split.owed
    fee_paid, reward, insurance = split.fee_paid, split.reward, split.insurance
    pool -= split.from_pool
    c -= fee_paid

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
        from_pool=split.from_pool,
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
