"""A stateful mirror of the whole engine: accounts, markets, open interest, the pool and the
insurance fund, with every operation returning the revert reason the contract gives or the
events it logs (`Clearinghouse.trade`, `_liquidate`, `liquidation_preview`, the pool's share
maths). The invariant state machine (tests/test_invariants.py) runs it beside the deployed
contracts and requires the same outcome at every step. The arithmetic is `model.margin`'s and
the liquidation (plan, settlement, reward, bad debt) is `model.liquidate`; only the bookkeeping
and the events live here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from . import funding as fm
from .constants import WAD
from .liquidation import MAX_REWARD, LiquidationParams, backed, liquidate, plan, spendable
from .margin import Leg as ModelLeg
from .margin import Margin, MarketRates, bps_up, notional_down, notional_up, pnl
from .oracle import account_mark, pool_marks
from .pool import (
    PoolState,
    deposit_nav,
    entry_supply,
    free_liquidity,
    redeem_nav,
    to_assets,
    to_shares,
)
from .reward import KeeperGas, fee_split, gas_units, step

vdiv = fm.vdiv


def entry_value(size: int, entry: int) -> int:
    """`markets._entry_value`: |size| * entry / WAD, rounded down (a side's entry sum; the
    entry is funding-adjusted and may be negative)."""
    return abs(size) * entry // WAD


# ---- The mirror ----


class MarketInfo(NamedTuple):
    """IClearinghouse.MarketInfo, field by field."""

    feed: str
    initial_margin_bps: int
    maintenance_margin_bps: int
    liquidation_fee_bps: int
    trading_fee_bps: int
    max_open_interest: int
    min_position_notional: int
    open_interest_long: int
    open_interest_short: int


@dataclass
class MarketModel:
    im: int
    mm: int
    liq: int
    trade: int
    max_oi: int
    min_notional: int
    base_answer: int  # listing price, aggregator units
    answer: int  # current price, aggregator units
    updated_at: int = 0  # block time of the last answer
    price_scale: int = 10**10  # aggregator answer -> WAD price (8-decimal feeds)
    long_oi: int = 0
    short_oi: int = 0
    long_entry: int = 0  # sum of |size| * entry / WAD over the longs
    short_entry: int = 0  # the same over the shorts
    stale: bool = False  # past its heartbeat, within its stale window: conservative marks
    haircut_bps: int = 0  # the feed's stale_haircut_bps
    funding: fm.Funding | None = None  # the market's funding record; None: funding off
    # sum over the records of skew * (index change): what the pool received (WAD * WAD units)
    skew_index: int = 0

    @property
    def price(self) -> int:
        return self.answer * self.price_scale

    @property
    def skew(self) -> int:
        return self.long_oi - self.short_oi

    def funding_at(self, price: int, now: int) -> fm.Funding | None:
        """The funding record brought to `now` at `price` (None: funding off)."""
        if self.funding is None:
            return None
        return fm.accrue(self.funding, self.skew, price, now)

    def record(self, price: int, now: int) -> None:
        """The funding brought to `now` at `price` and stored, with the pool's side of it."""
        if self.funding is not None:
            later = fm.accrue(self.funding, self.skew, price, now)
            self.skew_index += self.skew * (later.index - self.funding.index)
            self.funding = later

    def index_at(self, price: int, now: int) -> int:
        """`markets._funding_index`: the funding index now, at `price` (0: funding off)."""
        f = self.funding_at(price, now)
        return 0 if f is None else f.index

    def mark(self, long: bool) -> int:
        """`PriceFeed.mark`: what a long or a short position is judged at."""
        return account_mark(self.price, self.haircut_bps, long, self.stale)

    def pool_marks(self) -> tuple[int, int]:
        """`PriceFeed.pool_marks` prices: the longs', the shorts'."""
        return pool_marks(self.price, self.haircut_bps, self.stale)


@dataclass
class Leg:
    market: int
    size: int
    entry: int  # less the funding index at the last settlement
    price: int
    notional: int
    index: int = 0  # the market's funding index now, at `price`


@dataclass
class AccountView:
    collateral: int
    equity: int
    initial: int
    maintenance: int
    liq_fee: int
    legs: list[Leg]
    premium: int = 0  # the skew premium closing every position in full would pay (a cost)
    reserve: int = 0  # the keeper reward both requirements hold (`AccountState.reserve`)
    gas_reward: int = 0  # its gas-priced part, unclamped

    @property
    def liquidatable(self) -> bool:
        return bool(self.legs) and self.equity < self.maintenance

    @property
    def exit_equity(self) -> int:
        """Equity less the closing premium: what the initial requirement is checked on."""
        return self.equity - self.premium


@dataclass
class Mirror:
    markets: list[MarketModel]
    collateral: dict[str, int]
    positions: dict[str, dict[int, tuple[int, int]]]  # account -> market -> (size, entry)
    order: dict[str, list[int]]  # the contract's packed market list, in order
    shares: dict[str, int]
    pool: int = 0
    insurance: int = 0
    supply: int = 0
    keeper_share: int = 5_000
    max_partial: int = 8_000
    min_reward: int = 10**6  # token units (one 6-decimal token)
    max_reward: int = MAX_REWARD  # token units
    gas_margin: int = 0  # token units
    gas: KeeperGas = field(default_factory=KeeperGas)  # the keeper reward's gas word
    reserve_bps: int = 1_000
    paused: bool = False
    claims: dict[str, int] = field(default_factory=dict)  # profit owed, not paid yet
    token_scale: int = 10**12  # WAD -> token units (6-decimal token)
    execution_fee: int = 10**5  # LPVault.execution_fee: 0.1 token
    now: int = 0  # block time of the next operation (funding accrues to it) ...
    clock: Callable[[], int] | None = None  # ... or a function that tells it (a test's chain)
    # account -> market -> funding index at the position's last settlement (funding on)
    basis: dict[str, dict[int, int]] = field(default_factory=dict)
    eth_seen: int = 0  # `accounts.eth_seen`: the ETH/USD price this transaction read (0: none)

    def end_tx(self, basefee: int, block: int) -> None:
        """`accounts._note_gas` at the end of a trade, liquidate or liquidate_many: one step of
        the gas price toward `basefee` per block, the ETH/USD price any leg read; then the
        transaction's transient storage is gone."""
        self.gas = step(self.gas, basefee, block, self.eth_seen)
        self.eth_seen = 0

    def total_debt(self) -> int:
        return sum(-c for c in self.collateral.values() if c < 0)

    def time(self) -> int:
        """The block time funding accrues to: `clock()` when set, else `now`."""
        return self.clock() if self.clock is not None else self.now

    def load(self, a: str) -> AccountView:
        c = self.collateral[a]
        eq, initial, maint, fee = c, 0, 0, 0
        legs = []
        for m in self.order[a]:
            size, entry = self.positions[a][m]
            mk = self.markets[m]
            price = mk.mark(size > 0)
            index = mk.index_at(price, self.time())
            n = notional_up(abs(size), price, self.token_scale)
            eq += pnl(size, entry, price - index, self.token_scale)
            initial += bps_up(n, mk.im)
            maint += bps_up(n, mk.mm)
            fee += bps_up(n, mk.liq)
            legs.append(Leg(m, size, entry, price, n, index))
        gas = held = 0
        if legs:
            gas, held = self.params().reserve_for(self.token_scale)(len(legs))
        view = AccountView(c, eq, initial + held, maint + held, fee, legs, 0, held, gas)
        cost = self.premium_cost(view)
        view.premium = sum(cost(i, abs(leg.size)) for i, leg in enumerate(legs))
        return view

    def withdraw_error(self, a: str, amount: int) -> str | None:
        """`withdraw`'s checks: the revert reason for `amount`, or None."""
        if amount == 0:
            return "clearinghouse: zero amount"
        if max(self.collateral[a], 0) < amount:
            return "clearinghouse: insufficient collateral"
        view = self.load(a)
        if view.legs and view.exit_equity - amount < view.initial:
            return "clearinghouse: insufficient margin"
        return None

    def total_claims(self) -> int:
        return sum(self.claims.values())

    def add_claim(self, a: str, amount: int) -> None:
        self.claims[a] = self.claims.get(a, 0) + amount

    def other_debt(self, a: str) -> int:
        """What is ahead of `a`'s profit in the pool (`ledger._backed`): every account's debt
        but `a`'s (its own profit repays its own debt first), and every claim owed."""
        return self.total_debt() - max(-self.collateral[a], 0) + self.total_claims()

    def settle(self, a: str, m: int, amount: int, events: list, fee: int = 0) -> int:
        """A trade's settlement: a loss to the pool in full, a profit from the backed pool
        (`ledger._backed`, at least the account's own debt and the trade's `fee`), haircut
        when short."""
        if amount <= 0:
            self.pool -= amount
            return amount
        c = self.collateral[a]
        paid = min(amount, backed(self.pool, self.other_debt(a), c, c - fee))
        self.pool -= paid
        if paid < amount:
            self.add_claim(a, amount - paid)
            events.append(("ProfitHaircut", {"account": a, "market_id": m, "owed": amount}))
        return paid

    def settle_claim(self, a: str) -> tuple[str | None, int]:
        """`pool.settle_claim`: pay `a`'s claim as far as the pool backs it after every other
        account's debt and claim. Returns (revert reason or None, paid)."""
        owed = self.claims.get(a, 0)
        if owed == 0:
            return "clearinghouse: no claim", 0
        # As a profit realised now, with this claim not yet owed: its own debt always netted.
        paid = min(owed, backed(self.pool + owed, self.other_debt(a), self.collateral[a]))
        if paid == 0:
            return "clearinghouse: claim not backed", 0
        self.claims[a] = owed - paid
        self.pool -= paid
        self.collateral[a] += paid
        return None, paid

    def move_entry(self, m: int, old: int, old_entry: int, new: int, new_entry: int) -> None:
        """`markets._move_position`'s entry sums, side by side."""
        mk = self.markets[m]
        if old > 0:
            mk.long_entry -= entry_value(old, old_entry)
        elif old < 0:
            mk.short_entry -= entry_value(old, old_entry)
        if new > 0:
            mk.long_entry += entry_value(new, new_entry)
        elif new < 0:
            mk.short_entry += entry_value(new, new_entry)

    def move_oi(self, m: int, old: int, new: int) -> None:
        mk = self.markets[m]
        if old > 0:
            mk.long_oi -= old
        elif old < 0:
            mk.short_oi += old
        if new > 0:
            mk.long_oi += new
        elif new < 0:
            mk.short_oi -= new

    def set_position(self, a: str, m: int, size: int, entry: int) -> None:
        if size == 0:
            self.positions[a].pop(m, None)
            ids = self.order[a]
            i = ids.index(m)
            ids[i] = ids[-1]
            ids.pop()
        else:
            if m not in self.positions[a]:
                self.order[a].append(m)
            self.positions[a][m] = (size, entry)

    def side_pnls(self, m: int, prices: tuple[int, int] | None = None) -> tuple[int, int]:
        """`markets._side_pnls`: the longs' and the shorts' unrealised PnL, token units, at
        (the longs' price, the shorts' price), by default the market's price."""
        mk = self.markets[m]
        long_price, short_price = prices or (mk.price, mk.price)
        long_mark = long_price - mk.index_at(long_price, self.time())
        short_mark = short_price - mk.index_at(short_price, self.time())
        long_pnl = vdiv(vdiv(mk.long_oi * long_mark, WAD) - mk.long_entry, self.token_scale)
        short_pnl = vdiv(mk.short_entry - vdiv(mk.short_oi * short_mark, WAD), self.token_scale)
        return long_pnl, short_pnl

    def market_trader_pnl(self, m: int) -> int:
        return sum(self.side_pnls(m))

    def pool_exposure(self) -> tuple[int, int, int]:
        """(reserve on open notional, unrealised trader profit, unrealised trader loss),
        market side by market side, never netted across markets nor sides."""
        reserve = owed = owing = 0
        for m, mk in enumerate(self.markets):
            if mk.long_oi == 0 and mk.short_oi == 0:
                continue
            gross = mk.long_oi + mk.short_oi
            marks = mk.pool_marks()  # the longs' price is the higher: the reserve is at it
            reserve += bps_up(notional_up(gross, marks[0], self.token_scale), self.reserve_bps)
            for side_pnl in self.side_pnls(m, marks):
                if side_pnl > 0:
                    owed += side_pnl + 1  # the aggregate truncates towards zero
                else:
                    owing += -side_pnl
        return reserve, owed, owing

    def pool_state(self) -> PoolState:
        """`Clearinghouse.pool_state`: what the LP vault prices shares against (`priced_at`
        is the contract's, from block times the mirror does not keep)."""
        reserve, owed, owing = self.pool_exposure()
        exposed = any(mk.long_oi or mk.short_oi for mk in self.markets)
        held = sum(c for c in self.collateral.values() if c > 0)
        return PoolState(
            self.pool,
            self.total_debt(),
            reserve,
            owed,
            owing,
            self.paused,
            claims=self.total_claims(),
            trader_collateral=held,
            exposed=exposed,
        )

    def free_liquidity(self) -> int:
        return free_liquidity(self.pool_state())

    def deposit_nav(self) -> int | None:
        return deposit_nav(self.pool_state())

    def redeem_nav(self) -> int:
        return redeem_nav(self.pool_state())

    def to_shares(self, assets: int) -> int | None:
        """Shares `add_liquidity(assets)` mints, None where the vault refuses the deposit
        (after cancelling a worthless pool's old shares, `cancels_shares`)."""
        nav = self.deposit_nav()
        if nav is None:
            return None
        return to_shares(assets, entry_supply(self.supply, nav, self.execution_fee), nav)

    def cancels_shares(self) -> int:
        """The old supply a deposit now would cancel (`LPVault._entry_supply`), 0 if none."""
        nav = self.deposit_nav()
        if nav is None or entry_supply(self.supply, nav, self.execution_fee):
            return 0
        return self.supply

    def worthless_exposed(self) -> bool:
        """A deposit now is refused "vault: pool worthless": the shares are dust at a value
        that open positions still move."""
        return bool(self.cancels_shares()) and self.pool_state().exposed

    def cancel_shares(self) -> None:
        """Book a cancellation: the supply and every holder's shares are gone."""
        self.supply = 0
        for holder in self.shares:
            self.shares[holder] = 0

    def to_assets(self, shares: int) -> int:
        return to_assets(shares, self.supply, self.redeem_nav())

    def realised_share_price(self, probe: int) -> int:
        """LP value of `probe` shares on realised pool assets only (moves with no oracle
        update)."""
        return to_assets(probe, self.supply, self.pool)

    # ---- Engine operations: return the revert reason, or None and the expected events ----

    def trade(self, a: str, m: int, delta: int, acceptable: int) -> tuple[str | None, list]:
        """`trading._trade` at block time `now`. On a revert the mirror may be left part-way:
        callers try it on a copy."""
        mk = self.markets[m]
        price = mk.price
        if delta == 0:
            return "clearinghouse: zero size", []
        fill, index = price, 0
        if mk.funding is not None:
            skew = mk.skew
            mk.record(price, self.time())
            index = mk.funding.index
            try:
                fill = fm.fill_price(price, skew, skew + delta, mk.funding.skew_scale)
            except fm.FillOutOfRange as e:
                return e.reason, []
        if (delta > 0 and fill > acceptable) or (delta < 0 and fill < acceptable):
            return "clearinghouse: slippage", []
        old, entry = self.positions[a].get(m, (0, 0))
        new = old + delta
        flipped = (old > 0 > new) or (old < 0 < new)
        adds_risk = abs(new) > abs(old) or flipped
        if adds_risk and self.paused:
            return "clearinghouse: paused", []
        if new != 0 and notional_down(abs(new), price, self.token_scale) < mk.min_notional:
            return "clearinghouse: position too small", []
        self.move_oi(m, old, new)
        if (new > 0 and mk.long_oi > mk.max_oi and new > old) or (
            new < 0 and mk.short_oi > mk.max_oi and new < old
        ):
            return "clearinghouse: open interest cap", []
        mark = fill - index  # the new entry: the fill less the index (the funding basis)
        self.move_entry(m, old, entry, new, mark)
        events: list = []
        owed = pnl(old, entry, mark, self.token_scale) if old != 0 else 0
        fee = bps_up(notional_up(abs(delta), fill, self.token_scale), mk.trade)
        self.pool += fee  # before the settlement, which may pay it back
        realized = self.settle(a, m, owed, events, fee) if old != 0 else 0
        haircut = max(owed, 0) - max(realized, 0)  # profit the pool could not pay
        self.collateral[a] += realized - fee
        if mk.funding is not None and old != 0:
            events.append(self.funding_settled(a, m, old, index))
        self.set_position(a, m, new, mark)
        if mk.funding is not None and new != 0:
            self.basis.setdefault(a, {})[m] = index
        events.append(
            (
                "PositionChanged",
                {
                    "account": a,
                    "market_id": m,
                    "size_delta": delta,
                    "new_size": new,
                    "price": fill,
                    "realized_pnl": realized,
                    "fee": fee,
                },
            )
        )
        view = self.load(a)
        if adds_risk:
            if view.exit_equity < view.initial:
                return "clearinghouse: insufficient margin", []
        elif view.legs:
            # A reduction may leave the account liquidatable only if the maintenance it
            # frees covers what it costs the account's equity: the fee, any haircut of
            # its profit and the skew premium (delta * (price - fill), a gain when the trade
            # shrinks the skew). Collateral may go negative while other positions carry the
            # account (found by `make fuzz`: the mirror used to demand collateral >= 0 here).
            if view.equity < view.maintenance:
                freed = bps_up(notional_up(abs(old), price, self.token_scale), mk.mm) - bps_up(
                    notional_up(abs(new), price, self.token_scale), mk.mm
                )
                premium = pnl(delta, fill, price, self.token_scale) if mk.funding else 0
                if freed + premium < fee + haircut:
                    return "clearinghouse: would be liquidatable", []
        elif view.collateral < 0:
            return "clearinghouse: close leaves bad debt", []
        if m == self.gas.eth_market:
            self.eth_seen = price
        return None, events

    def funding_due(self, a: str, m: int, size: int, index: int) -> int:
        """`accounts._funding_due`: the funding of `size` since its last settlement up to
        `index`, token units, rounded down (positive: received)."""
        return pnl(size, index, self.basis.get(a, {}).get(m, 0), self.token_scale)

    def funding_settled(self, a: str, m: int, size: int, index: int) -> tuple[str, dict]:
        funding = self.funding_due(a, m, size, index)
        return ("FundingSettled", {"account": a, "market_id": m, "funding": funding,
                                   "funding_index": index})  # fmt: skip

    def position_view(self, a: str, m: int) -> tuple[int, int]:
        """`position`: (size, the last fill), the stored entry plus its funding basis."""
        size, entry = self.positions[a].get(m, (0, 0))
        return (size, entry + self.basis.get(a, {}).get(m, 0)) if size else (0, 0)

    def accrued_funding(self, a: str) -> int:
        """`accrued_funding`: every funding-on position's funding since its settlement, at
        the index its equity is marked with (brought to now at the position's mark)."""
        total = 0
        for m in self.order[a]:
            mk = self.markets[m]
            if mk.funding is not None:
                size, _ = self.positions[a][m]
                index = mk.index_at(mk.mark(size > 0), self.time())
                total += self.funding_due(a, m, size, index)
        return total

    def fill_price(self, m: int, delta: int) -> int:
        """`fill_price`: the oracle price with the skew premium (raises FillOutOfRange)."""
        mk = self.markets[m]
        if mk.funding is None:
            return mk.price
        return fm.fill_price(mk.price, mk.skew, mk.skew + delta, mk.funding.skew_scale)

    def set_funding(self, m: int, skew_scale: int, max_velocity_bps: int) -> None:
        """`configure_funding`: record the funding so far at the oracle price with the old
        parameters, then take the new ones."""
        mk = self.markets[m]
        mk.record(mk.price, self.time())
        f = mk.funding or fm.Funding()
        if skew_scale == 0:  # a settlement's freeze: the scale kept, no rate, no drift
            mk.funding = fm.Funding(self.time(), 0, f.index, f.skew_scale, 0)
            return
        mk.funding = fm.Funding(self.time(), f.rate, f.index, skew_scale, max_velocity_bps)

    def params(self) -> LiquidationParams:
        return LiquidationParams(
            self.keeper_share,
            self.max_partial,
            self.min_reward,
            self.max_reward,
            self.gas_margin,
            self.gas,
        )

    def rates(self, m: int) -> MarketRates:
        mk = self.markets[m]
        return MarketRates(mk.im, mk.mm, mk.liq, mk.trade, mk.min_notional)

    def model_legs(self, view: AccountView) -> list[ModelLeg]:
        """The account's legs as `model.Leg`s, with their markets' rates."""
        return [
            ModelLeg(leg.market, leg.size, leg.entry, leg.price, self.rates(leg.market), leg.index)
            for leg in view.legs
        ]

    def plan(self, a: str, view: AccountView) -> tuple[int, list[int], bool]:
        """`_plan`: (fraction, size to close per leg, full), by `model.plan` on realisable
        equity (collateral + the backed pool) less every leg's full-close skew premium."""
        legs = self.model_legs(view)
        m = Margin(
            view.collateral,
            view.equity,
            view.initial,
            view.maintenance,
            view.liq_fee,
            len(legs),
            view.reserve,
            view.gas_reward,
        )
        realisable = view.collateral + backed(self.pool, self.other_debt(a), view.collateral)
        realisable = min(view.equity, realisable) - view.premium
        return plan(legs, m, self.params(), self.token_scale, realisable)

    def premium_cost(self, view: AccountView) -> Callable[[int, int], int]:
        """`_premium_cost` of each leg of `view`, at its market's skew now: what closing
        `close` of leg i pays in skew premium (token units, rounded up; never a rebate)."""

        def cost(i: int, close: int) -> int:
            leg = view.legs[i]
            mk = self.markets[leg.market]
            if mk.funding is None or close == 0:
                return 0
            per = fm.close_cost(leg.price, mk.skew, leg.size, close, mk.funding.skew_scale)
            return notional_up(close, per, self.token_scale)

        return cost

    def liquidate(self, a: str, keeper: str) -> tuple[bool, list, dict]:
        """`_liquidate`: (liquidated, events, facts for the spec checks). The settlement is
        `model.liquidate`'s; the mirror books its outcome and logs the events."""
        view = self.load(a)
        if not view.liquidatable:
            return False, [], {}
        o = liquidate(
            view.collateral,
            self.model_legs(view),
            self.insurance,
            self.pool,
            self.params(),
            self.token_scale,
            self_liquidation=keeper == a,
            other_debt=self.other_debt(a),
            premium=self.premium_cost(view),
        )
        events: list = []
        for leg, close, owed, realized in zip(view.legs, o.closes, o.pnls, o.realized, strict=True):
            new = leg.size - close if leg.size > 0 else leg.size + close
            if leg.market == self.gas.eth_market:
                self.eth_seen = leg.price
            mk = self.markets[leg.market]
            mk.record(leg.price, self.time())  # funding on: recorded now, at this mark
            mark = leg.price - leg.index  # closed at the mark, no premium
            self.move_oi(leg.market, leg.size, new)
            self.move_entry(leg.market, leg.size, leg.entry, new, mark)
            self.set_position(a, leg.market, new, mark)
            if realized < owed:  # a thin pool paid this winning leg only part of its profit
                self.add_claim(a, owed - realized)
                events.append(
                    ("ProfitHaircut", {"account": a, "market_id": leg.market, "owed": owed})
                )
            if mk.funding is not None:
                events.append(self.funding_settled(a, leg.market, leg.size, leg.index))
                if new != 0:
                    self.basis.setdefault(a, {})[leg.market] = leg.index
            events.append(
                (
                    "PositionChanged",
                    {
                        "account": a,
                        "market_id": leg.market,
                        "size_delta": new - leg.size,
                        "new_size": new,
                        "price": leg.price,
                        "realized_pnl": realized,
                        "fee": 0,
                    },
                )
            )
        if o.bad_debt:
            events.append(
                (
                    "BadDebtSettled",
                    {
                        "account": a,
                        "bad_debt": o.bad_debt,
                        "insurance_covered": o.insurance_covered,
                        "socialised": o.socialised,
                        "uncovered": o.uncovered,
                    },
                )
            )
        self.pool = o.pool
        self.insurance = o.insurance
        self.collateral[a] = o.collateral
        self.collateral[keeper] += o.reward
        if self.gas.on or o.from_pool:
            events.append(
                (
                    "KeeperRewardPriced",
                    {
                        "account": a,
                        "gas_price": self.gas.gas_price,
                        "gas_units": gas_units(len(view.legs)),
                        "eth_price": self.gas.eth_price,
                        "from_pool": o.from_pool,
                    },
                )
            )
        events.append(
            (
                "Liquidated",
                {
                    "account": a,
                    "liquidator": keeper,
                    "fraction": o.fraction,
                    "closed_notional": o.closed_notional,
                    "fee": o.fee_paid,
                    "keeper_reward": o.reward,
                    "insurance_delta": o.fee_paid + o.from_pool - o.reward,
                    "full": o.full,
                },
            )
        )
        facts = {"before": view, "after": self.load(a), "full": o.full, "fraction": o.fraction}
        facts.update(reward=o.reward, shortfall=o.bad_debt, fee_paid=o.fee_paid)
        facts.update(from_pool=o.from_pool, fee_owed=o.fee)
        facts.update(proportional_fee=o.proportional_fee)
        facts["haircut"] = any(n == "ProfitHaircut" for n, _ in events)
        return True, events, facts

    def preview(self, a: str) -> tuple[int, int, int]:
        """`liquidation_preview`: (fraction, reward of a third-party caller, bad debt)."""
        view = self.load(a)
        if not view.liquidatable:
            return 0, 0, 0
        fraction, closes, full = self.plan(a, view)
        fee = sum(
            bps_up(notional_up(close, leg.price, self.token_scale), self.markets[leg.market].liq)
            for leg, close in zip(view.legs, closes, strict=True)
        )
        cost = self.premium_cost(view)
        left = view.equity - sum(cost(i, close) for i, close in enumerate(closes))
        pool = self.pool + max(view.collateral - left, 0)  # as `liquidation_preview` has it
        split = fee_split(
            fee,
            left,
            keeper_share_bps=self.keeper_share,
            min_reward=self.min_reward,
            max_reward=self.max_reward,
            insurance=self.insurance,
            third_party=True,
            gas=view.gas_reward,
            spendable_pool=spendable(pool, self.other_debt(a), left),
        )
        bad = -left if full and left < 0 else 0
        return fraction, split.reward, bad
