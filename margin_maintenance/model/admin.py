"""The configurator's timing rules (contracts/Configurator.vy), for tests and tools."""

from __future__ import annotations

from collections.abc import Sequence

from .constants import constant

RISK_DELAY = constant("RISK_DELAY")  # seconds a rate rise on a market with positions waits
RISK_GRACE = constant("RISK_GRACE")  # seconds after its eta a queued rise may still be applied


def risk_change_waits(current: Sequence[int], proposed: Sequence[int], open_interest: int) -> bool:
    """`Configurator.set_market_risk`: a change of (im, mm, liquidation fee, trading fee) is
    queued for RISK_DELAY when it raises any of the four while the market has open interest
    (either side); otherwise it applies at once."""
    raises = any(new > old for old, new in zip(current, proposed, strict=True))
    return raises and open_interest > 0


def funding_change_waits(open_interest: int) -> bool:
    """`Configurator.set_market_funding`: a change of the skew scale or velocity (or turning
    funding on) is queued for RISK_DELAY while the market has open interest (either side),
    since a new scale moves value between the open positions and the pool at once; on a
    market without positions it applies at once."""
    return open_interest > 0


def reward_change_waits(
    current: Sequence[int], proposed: Sequence[int], open_interest: int, max_markets: int
) -> bool:
    """`Configurator.set_keeper_reward`: a change of (maximum reward, gas margin, premium bps,
    ETH market id, gas price floor) is queued for RISK_DELAY when it can raise an account's
    reserve while any market has open interest: gas pricing turned on or moved to another
    ETH market, or, with it on, a higher cap, margin, premium or floor. `current` holds the
    ETH market as the engine reports it (id + 1, 0 when off); turning pricing off
    (`max_markets` as the id) never waits."""
    max_reward, margin, premium, market, floor = proposed
    if market == max_markets:
        return False
    cur_max, cur_margin, cur_premium, cur_market, cur_floor = current
    raises = (
        cur_market != market + 1
        or premium > cur_premium
        or floor > cur_floor
        or max_reward > cur_max
        or margin > cur_margin
    )
    return raises and open_interest > 0


GAS_FLOOR_UNIT = 10**6  # wei: the gas price floor is stored in these units (32 bits of them)


def reward_params_error(
    proposed: Sequence[int], *, min_reward: int, cap: int, market_count: int, max_markets: int
) -> str | None:
    """`Configurator._check_reward`: the revert reason of (maximum reward, gas margin, premium
    bps, ETH market id, gas price floor), or None. `cap` is the bound on every reward amount
    (1,000 whole tokens); `max_markets` as the id turns gas pricing off."""
    max_reward, margin, premium, market, floor = proposed
    if max_reward > cap:
        return "configurator: maximum reward too high"
    if max_reward < min_reward:
        return "configurator: reward cap below floor"
    if margin > cap:
        return "configurator: gas margin too high"
    if premium > 10_000:
        return "configurator: bad gas premium"
    if floor == 0:
        return "configurator: zero gas price"
    if floor % GAS_FLOOR_UNIT or floor // GAS_FLOOR_UNIT >= 2**32:
        return "configurator: bad gas price floor"
    if market != max_markets and market >= market_count:
        return "configurator: unknown market"
    return None
