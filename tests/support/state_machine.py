"""The invariant state machine over the real clearinghouse (SPEC.md sections 2-5), apart
from the test that runs it (tests/test_invariants.py) and from the model it checks
(`margin_maintenance.model`, the engine mirror).

`MarginMachine` drives the deployed contracts on the in-process chain with three traders, two
LPs, two keepers and the owner: deposits, withdrawals (including too much), trades in both
directions on both markets, LP liquidity, price moves with 30-60% jumps, time passing beyond
the oracle heartbeat, liquidations by random callers and owner parameter changes. The engine
mirror of `margin_maintenance.model.engine` predicts every outcome exactly (which revert, which
events, which balances); after every step the mirror, an event-only ledger (what an auditor
can rebuild) and the chain must agree, and the spec's invariants must hold.

The system is deployed once (`deploy_machine_world`); each example restores the same snapshot
(`chain.provider.snapshot/restore`, not `chain.isolate()`, which swallows assertion errors).
The production lens (contracts/ClearinghouseLens.vy) reads the engine's state in one call per
step. Every draw comes from support.strategies; `STATS` counts the steps and outcomes of a
run, and `stats_report()` is the line the test prints at the end.
"""

from __future__ import annotations

import copy
import logging
from collections import Counter
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

from ape import chain
from ape.exceptions import ContractLogicError
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from margin_maintenance.chain.types import AccountStatus
from margin_maintenance.model import (
    RISK_DELAY,
    RISK_GRACE,
    PoolState,
    bps_up,
    funding_change_waits,
    notional_down,
    notional_up,
    partial_reachable,
    pnl,
    reward_change_waits,
    reward_params_error,
    risk_change_waits,
)
from margin_maintenance.model.engine import MarketInfo, MarketModel, Mirror
from margin_maintenance.model.ledger import Ledger, apply_event
from margin_maintenance.model.reward import KeeperGas
from margin_maintenance.system import SystemParams, deploy_system
from support.constants import (
    BPS,
    FEED_UNIT,
    HEARTBEAT,
    MAX_MARKETS,
    MAX_MIN_KEEPER_REWARD,
    MAX_RESERVE_BPS,
    MAX_TRADING_FEE_BPS,
    MAX_UINT,
    NOT_OWNER,
    STALE_WINDOW,
    TOKEN_SCALE,
    USDC,
    VIRTUAL_ASSETS,
    VIRTUAL_SHARES,
    WAD,
)
from support.strategies import (
    ANY_RATE_BPS,
    BPS_OR_ONE_MORE,
    CENTS,
    DEPOSIT_USD,
    DEPOSITS_USD,
    DRIFT_BPS,
    EDGE_DEPTH_BPS,
    EDGE_PICK,
    EXTRA_SHARE,
    EXTRA_VICTIMS,
    FRACTION_BPS,
    FUNDING_SETUP,
    GAS_SETUP,
    HOLDER,
    INSURANCE_FUNDING_USD,
    INSURANCE_USD,
    JITTER,
    JUMP_BPS,
    KEEPER,
    KEEPER_SHARE,
    LEVERAGE_BPS,
    LEVERAGES_BPS,
    LIQUIDITY_USD,
    LP,
    MAINTENANCE_BPS,
    MARKET,
    MAX_PARTIAL,
    MIN_ASSETS,
    MIN_NOTIONAL_USD,
    MIN_REWARD_USD,
    N_HOLDERS,
    N_KEEPERS,
    N_LPS,
    N_MARKETS,
    N_TRADERS,
    OI_UNITS,
    PAUSE_ACTION,
    PAUSER,
    POOL_USD,
    RAW_AMOUNT,
    RAW_SIZE,
    RESERVE_BPS,
    REWARD_USD,
    SHARE_BPS,
    STRANGER,
    SWEEP,
    TIME_STEP,
    TRADE_MODE,
    TRADER,
    UP,
    VALID,
    VICTIMS,
    WIDE_LEVERAGE_BPS,
    WITHDRAW_KIND,
    initial_margin_bps,
    liquidation_fee_bps,
    trading_fee_bps,
)

# ---- Constants of the machine (the engine's come from support.constants) ----

SCALE = TOKEN_SCALE  # token_scale for the 6-decimal mock token
PRICE_SCALE = WAD // FEED_UNIT  # aggregator answer -> WAD price
E_NO_RISK_CHANGE = "configurator: no risk change"
E_RISK_DELAY = "configurator: risk delay"
STALE_MARGIN = 30  # s: only assert "stale" well past the heartbeat (eth_call block time)
REFRESH_AGE = HEARTBEAT - 900  # s: feeds older than this are refreshed after a time step
MAX_MIN_REWARD = MAX_MIN_KEEPER_REWARD * USDC  # the configurator's bound, in token units
SHARE_PROBE = 10**12  # shares priced by convert_to_assets for the LP share price

STATS: Counter[str] = Counter()  # steps and outcomes over a whole run, printed at the end

E_ZERO_AMOUNT = "clearinghouse: zero amount"
E_VAULT_ZERO = "vault: zero amount"
E_STALE = "oracle: stale price"
E_NO_REWARD_CHANGE = "configurator: no reward change"
E_HEALTHY = "clearinghouse: account healthy"
E_UNREACHABLE = "configurator: partial bound unreachable"
E_EXPOSED = "vault: pool exposed"  # instant LP flows while a market has open interest
E_NOT_PRICED = "vault: prices not updated"
REQUEST_TIMEOUT = 86_400  # LPVault.REQUEST_TIMEOUT


@dataclass(frozen=True)
class Request:
    """An open LP request, as `LPVault.requests` keeps it."""

    owner: str
    is_deposit: bool
    amount: int  # assets (deposit) or shares (withdrawal) in escrow
    min_out: int
    created: int  # block time of the request


# ---- The deployed world (once per module) ----


@dataclass
class World:
    ch: Any
    cfg: Any  # the configurator: every admin rule goes through it
    token: Any
    vault: Any  # the LP vault (the share token)
    aggregators: list[Any]
    owner: Any
    guardian: Any
    traders: list[Any]
    lps: list[Any]
    keepers: list[Any]
    lens: Any
    snapshot: Any
    by_address: dict[str, Any] = field(default_factory=dict)

    @property
    def holders(self) -> list[Any]:
        """Everyone who may hold collateral (the owner may liquidate, so may get rewards)."""
        return [*self.traders, *self.lps, *self.keepers, self.owner]


class QuietTracebacks(logging.Filter):
    """Drops Ape's "Problem retrieving traceback" ERROR, logged for most expected reverts on
    the in-process chain (it has no trace API); thousands of them in a `make fuzz` run would
    bury the progress bar and the report. Every revert is still checked by `send`."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Problem retrieving traceback")


def deploy_machine_world(project: Any, accounts: Any) -> World:
    """Deploy the system once (owner accounts[0], guardian accounts[1], then the traders, the
    LPs and the keepers), every holder's approval, and the snapshot each example restores."""
    owner, guardian = accounts[0], accounts[1]
    first_lp, first_keeper = 2 + N_TRADERS, 2 + N_TRADERS + N_LPS
    traders = list(accounts[2:first_lp])
    lps = list(accounts[first_lp:first_keeper])
    keepers = list(accounts[first_keeper : first_keeper + N_KEEPERS])
    system = deploy_system(project, owner, guardian, SystemParams())
    assert len(system.aggregators) == N_MARKETS
    w = World(
        ch=system.clearinghouse,
        cfg=system.configurator,
        token=system.token,
        vault=system.vault,
        aggregators=system.aggregators,
        owner=owner,
        guardian=guardian,
        traders=traders,
        lps=lps,
        keepers=keepers,
        lens=project.ClearinghouseLens.deploy(sender=owner),
        snapshot=None,
    )
    assert len(w.holders) == N_HOLDERS  # the strategies' indices
    for a in w.holders:
        w.token.approve(w.ch, MAX_UINT, sender=a)
        w.by_address[str(a.address)] = a
    for a in w.lps:  # deposit requests escrow their tokens in the vault
        w.token.approve(w.vault, MAX_UINT, sender=a)
    w.by_address[str(guardian.address)] = guardian
    w.snapshot = chain.provider.snapshot()
    return w


def stats_report() -> str:
    """The examples and steps run, and how often each action and outcome occurred."""
    return f"state machine: {STATS['examples']} examples, {STATS['steps']} steps run; " + (
        ", ".join(f"{k}={v}" for k, v in sorted(STATS.items()) if k not in ("examples", "steps"))
    )


# ---- The state machine ----


def action(**strategies: Any):
    """Mark a machine method as an action with the strategies of its arguments. Actions
    are grouped under a few rules (below) so that Hypothesis' swarm testing, which
    switches whole rules off per example, still leaves trading, prices and liquidations
    together in most examples."""

    def mark(fn: Any) -> Any:
        fn.strategies = strategies
        return fn

    return mark


def addr(account: Any) -> str:
    return str(account.address)


class MarginMachine(RuleBasedStateMachine):
    w: World  # set by the test before running
    progress: Any = None  # a tqdm bar while `make fuzz` runs

    def __init__(self) -> None:
        super().__init__()
        w = self.w
        self.ch = w.ch
        self.vault = w.vault
        self.cfg = w.cfg
        self.traders = [addr(a) for a in w.traders]
        self.lps = [addr(a) for a in w.lps]
        self.keepers = [addr(a) for a in w.keepers]
        self.owner = addr(w.owner)
        self.guardian = addr(w.guardian)
        self.holders = [addr(a) for a in w.holders]
        self.step_logs: list[tuple[str, dict[str, Any]]] = []
        self.realised_price = self.nav_price = 0  # LP share prices after the last step
        self.redeem_nav = self.debt = 0  # the pool's redemption value and account debt, likewise
        self.collectable = 0  # open losses the traders' collateral can pay, likewise
        self.price_moved = False  # an oracle answer changed during this step
        self.stranger = False  # the current admin action comes from a non-owner
        self.requests: dict[int, Request] = {}  # open LP requests by id
        self.fee = int(w.vault.execution_fee())  # paid to a request's executor
        self.pending_risk: dict[int, tuple[tuple[int, int, int, int], int]] = {}  # rates, eta
        self.pending_reward: tuple[tuple[int, ...], int] | None = None  # keeper reward, eta
        self.pending_funding: dict[int, tuple[int, int, int]] = {}  # scale, velocity, eta
        self.first_live_request = 0  # withdrawal requests below this id escrow cancelled shares
        # The mirror's funding clock: the next transaction's block time, or the head block's
        # while the chain's views are compared (eth_call runs on the head; py-evm stamps the
        # next block head + 1 unless a step sets it).
        viewing = self.viewing = [False]

        def clock() -> int:
            return chain.blocks.head.timestamp if viewing[0] else chain.pending_timestamp

        self.clock = clock
        self.funding_markets: list[int] = []
        self.time_moved = False  # funding accrued on open interest since the last check

    # ---- Plumbing ----

    def step(self, name: str) -> None:
        STATS["steps"] += 1
        STATS[f"rule.{name}"] += 1

    def account(self, a: str) -> Any:
        return self.w.by_address[a]

    def views(self):
        """Within it, the mirror's funding clock is the head block's (the chain's views)."""
        machine = self

        class _Views:
            def __enter__(self) -> None:
                machine.viewing[0] = True

            def __exit__(self, *exc: Any) -> None:
                machine.viewing[0] = False

        return _Views()

    def accruing(self) -> bool:
        """Some market's funding moves with time: a funding market with open interest."""
        return any(
            self.m.markets[m].long_oi or self.m.markets[m].short_oi for m in self.funding_markets
        )

    def send(self, fn: Any, *args: Any, sender: str, expect: str | None) -> Any:
        """Send a transaction; `expect` is None (must succeed) or the exact revert reason."""
        try:
            tx = fn(*args, sender=self.account(sender))
        except ContractLogicError as err:
            STATS["reverts"] += 1
            assert expect is not None, f"unexpected revert {err.revert_message!r}"
            assert err.revert_message == expect, (
                f"reverted {err.revert_message!r}, expected {expect!r}"
            )
            return None
        assert expect is None, f"expected revert {expect!r}, but it succeeded"
        logs = [
            (log.event_name, dict(log.event_arguments))
            for log in tx.events
            if log.contract_address == self.ch.address
        ]
        for name, ev in logs:
            self.step_logs.append((name, ev))
            apply_event(self.ledger, {"event": name, **ev})
        return tx, logs

    def check_events(self, logs: list, expected: list) -> None:
        """The engine's events are exactly the expected ones (fields given are compared)."""
        relevant = [(n, e) for n, e in logs if n in {n2 for n2, _ in expected} | _CORE_EVENTS]
        assert [n for n, _ in relevant] == [n for n, _ in expected], (relevant, expected)
        for (name, got), (_, want) in zip(relevant, expected, strict=True):
            for key, value in want.items():
                assert got[key] == value, f"{name}.{key}: got {got[key]!r}, want {value!r}"

    def mint(self, a: str, amount: int) -> None:
        self.w.token.mint(a, amount, sender=self.w.owner)

    def set_answer(self, m: int, answer: int) -> None:
        tx = self.w.aggregators[m].set_price(answer, sender=self.w.owner)
        mk = self.m.markets[m]
        self.price_moved |= answer != mk.answer
        mk.answer = answer
        mk.updated_at = tx.timestamp

    def price_gas(self, premium_bps: int, floor_units: int, margin: int, max_usd: int) -> None:
        """Gas pricing on, from the flat book (so at once): ETH/USD from market 0."""
        max_reward = max(max_usd * USDC, self.m.min_reward)
        floor = floor_units * 10**6
        sent = self.send(
            self.cfg.set_keeper_reward,
            max_reward,
            margin * USDC,
            premium_bps,
            0,
            floor,
            sender=self.owner,
            expect=None,
        )
        mk = self.m.markets[0]
        self.m.max_reward, self.m.gas_margin = max_reward, margin * USDC
        self.m.gas = KeeperGas(floor, mk.price, sent[0].block_number, premium_bps, 0, floor)
        STATS["gas_pricing_on"] += 1

    def note_gas(self, sent: Any) -> None:
        """After a trade or liquidation: the engine's gas word steps (`Mirror.end_tx`) with
        that transaction's block."""
        if not self.m.gas.on:
            self.m.eth_seen = 0
            return
        block = chain.blocks[sent[0].block_number]
        self.m.end_tx(int(block.base_fee or 0), int(block.number))

    def unchanged(self, a: str):
        """Snapshot of what a reverted call must not move."""
        return (
            self.ch.collateral(a),
            self.w.token.balanceOf(a),
            self.w.token.balanceOf(self.ch),
            self.ch.pool_assets(),
        )

    # ---- Setup ----

    @initialize(
        pool=POOL_USD,
        insurance=INSURANCE_USD,
        deposits=DEPOSITS_USD,
        leverage=LEVERAGES_BPS,
        keeper_share=KEEPER_SHARE,
        max_partial=MAX_PARTIAL,
        min_reward_usd=MIN_REWARD_USD,
        funding=FUNDING_SETUP,
        gas=GAS_SETUP,
    )
    def setup(
        self,
        pool: int,
        insurance: int,
        deposits: list[int],
        leverage: list[int],
        keeper_share: int,
        max_partial: int,
        min_reward_usd: int,
        funding: list[tuple[int, int, int, int]],
        gas: tuple[int, int, int, int] | None,
    ) -> None:
        """A fresh system: liquidation parameters, a pool, an insurance fund, and each trader
        in both markets."""
        chain.provider.restore(self.w.snapshot)
        STATS["examples"] += 1
        params = SystemParams()
        markets = []
        for mp in params.markets:
            answer = round(mp.price_usd * FEED_UNIT)
            markets.append(
                MarketModel(
                    im=mp.initial_margin_bps,
                    mm=mp.maintenance_margin_bps,
                    liq=mp.liquidation_fee_bps,
                    trade=mp.trading_fee_bps,
                    max_oi=mp.max_open_interest_units * WAD,
                    min_notional=mp.min_position_notional_usd * USDC,
                    base_answer=answer,
                    answer=answer,
                    price_scale=PRICE_SCALE,
                    haircut_bps=mp.stale_haircut_bps,
                )
            )
        zero = dict.fromkeys(self.holders, 0)
        self.m = Mirror(
            markets=markets,
            collateral=dict(zero),
            positions={a: {} for a in self.holders},
            order={a: [] for a in self.holders},
            shares=dict.fromkeys(self.lps, 0),
            keeper_share=params.keeper_share_bps,
            max_partial=params.max_partial_bps,
            min_reward=round(params.min_keeper_reward * USDC),
            reserve_bps=params.pool_reserve_bps,
            token_scale=SCALE,
            execution_fee=self.fee,
            clock=self.clock,
        )
        self.ledger = Ledger(collateral=dict(zero))  # the auditor's: rebuilt from events alone
        # Fresh answers: the snapshot's may be older than the heartbeat by now.
        for m, mk in enumerate(self.m.markets):
            self.set_answer(m, mk.answer)
        min_reward = min_reward_usd * USDC
        self.send(
            self.cfg.set_liquidation_params,
            keeper_share,
            max_partial,
            min_reward,
            sender=self.owner,
            expect=None,
        )
        self.m.keeper_share, self.m.max_partial, self.m.min_reward = (
            keeper_share,
            max_partial,
            min_reward,
        )
        # A first set_liquidation_params sets the maximum reward to the bound (1,000 tokens).
        self.m.max_reward = MAX_MIN_KEEPER_REWARD * USDC
        if gas is not None:
            self.price_gas(*gas)
        self.funding_markets = [m for m, *_ in funding]
        for m, cap_units, multiple, velocity in funding:
            mk = self.m.markets[m]
            cap, skew_scale = min(cap_units * WAD, mk.max_oi), cap_units * multiple
            self.send(
                self.cfg.set_market_limits, m, cap, mk.min_notional, sender=self.owner, expect=None
            )
            mk.max_oi = cap
            self.send(
                self.cfg.set_market_funding, m, skew_scale, velocity, sender=self.owner, expect=None
            )
            self.m.now = chain.blocks.head.timestamp
            self.m.clock = None
            self.m.set_funding(m, skew_scale, velocity)
            self.m.clock = self.clock
            STATS[f"funding_on_market{m}"] += 1
        if pool:
            self.lp_add(0, pool * USDC)
        if insurance:
            amount = insurance * USDC
            self.mint(self.owner, amount)
            self.send(self.ch.fund_insurance, amount, sender=self.owner, expect=None)
            self.m.insurance += amount
        for t, usd in zip(self.traders, deposits, strict=True):
            if usd:
                self.do_deposit(t, usd * USDC)
        for i, lev_bps in enumerate(leverage):
            if lev_bps:
                t, m = self.traders[i // N_MARKETS], i % N_MARKETS
                self.do_trade(t, m, self.leveraged_size(t, m, lev_bps))
        self.nav_price = self.vault.convert_to_assets(SHARE_PROBE)
        self.redeem_nav = self.m.redeem_nav()
        self.debt = self.ch.total_debt()
        self.realised_price = self.m.realised_share_price(SHARE_PROBE)

    def teardown(self) -> None:
        chain.provider.restore(self.w.snapshot)
        if self.progress is not None:
            self.progress.set_postfix(steps=STATS["steps"], refresh=False)
            self.progress.update(1)

    def run(self, name: str, data: st.DataObject) -> None:
        fn = getattr(self, name)
        fn(**{k: data.draw(v, label=f"{name}.{k}") for k, v in fn.strategies.items()})

    # ---- Rules: each draws one action of its group ----

    @rule(
        name=st.sampled_from(["deposit", "withdraw", "withdraw", "withdraw_everything_when_flat"]),
        data=st.data(),
    )
    def collateral(self, name: str, data: st.DataObject) -> None:
        self.run(name, data)

    @rule(
        name=st.sampled_from(["open_position", "trade", "trade", "close_one_leg"]),
        data=st.data(),
    )
    def trading(self, name: str, data: st.DataObject) -> None:
        self.run(name, data)

    @rule(
        name=st.sampled_from(
            [
                "add_liquidity",
                "remove_liquidity",
                "settle_claim",
                "request_deposit",
                "request_withdrawal",
                "execute_request",
                "cancel_request",
                "straddle_update",
            ]
        ),
        data=st.data(),
    )
    def liquidity(self, name: str, data: st.DataObject) -> None:
        self.run(name, data)

    @rule(
        name=st.sampled_from(["price_drift", "price_jump", "price_to_the_edge", "pass_time"]),
        sweep=SWEEP,
        keeper=KEEPER,
        data=st.data(),
    )
    def market(self, name: str, sweep: bool, keeper: int, data: st.DataObject) -> None:
        """An oracle update or time passing; then, usually, a keeper's sweep (as a bot would
        after every update)."""
        self.run(name, data)
        if sweep:
            flagged = [a for a in self.holders if self.m.load(a).liquidatable]
            if flagged:
                self.batch_liquidate(self.keepers[keeper], flagged)

    @rule(
        name=st.sampled_from(["liquidate", "liquidate", "liquidate_many", "keeper_sweep"]),
        data=st.data(),
    )
    def liquidation(self, name: str, data: st.DataObject) -> None:
        self.run(name, data)

    # ---- Collateral ----

    def do_deposit(self, a: str, amount: int) -> None:
        if amount:
            self.mint(a, amount)
        expect = E_ZERO_AMOUNT if amount == 0 else None
        if self.send(self.ch.deposit, amount, sender=a, expect=expect):
            self.m.collateral[a] += amount

    @action(who=HOLDER, usd=DEPOSIT_USD, cents=CENTS)
    def deposit(self, who: int, usd: int, cents: int) -> None:
        self.step("deposit")
        self.do_deposit(self.holders[who], usd * USDC + cents * USDC // 100)

    @action(
        who=HOLDER,
        kind=WITHDRAW_KIND,
        bps=FRACTION_BPS,
        raw=RAW_AMOUNT,
    )
    def withdraw(self, who: int, kind: str, bps: int, raw: int) -> None:
        self.step("withdraw")
        a = self.holders[who]
        c = self.m.collateral[a]
        amount = {
            "fraction": max(c, 0) * bps // BPS,
            "all": max(c, 0),
            "too_much": max(c, 0) + raw,
            "zero": 0,
            "raw": raw,
        }[kind]
        expect = self.m.withdraw_error(a, amount)
        before = self.unchanged(a)
        if self.send(self.ch.withdraw, amount, sender=a, expect=expect):
            self.m.collateral[a] -= amount
            STATS["withdraw_ok"] += 1
        else:
            assert self.unchanged(a) == before, "a reverted withdrawal moved state"

    @action(who=HOLDER)
    def withdraw_everything_when_flat(self, who: int) -> None:
        """An account with no positions can always withdraw all its positive collateral."""
        self.step("withdraw_everything_when_flat")
        a = self.holders[who]
        c = self.m.collateral[a]
        if self.m.positions[a] or c <= 0:
            return
        balance = self.w.token.balanceOf(a)
        self.send(self.ch.withdraw, c, sender=a, expect=None)
        self.m.collateral[a] = 0
        assert self.w.token.balanceOf(a) == balance + c
        STATS["flat_withdraw_all"] += 1

    # ---- Trading ----

    def do_trade(self, a: str, m: int, delta: int, slip: bool = False) -> None:
        price = self.m.markets[m].price
        acceptable = MAX_UINT if delta > 0 else 0  # large acceptable prices: no slippage
        if slip:
            acceptable = price - 1 if delta > 0 else price + 1
        trial = copy.deepcopy(self.m)
        expect, events = trial.trade(a, m, delta, acceptable)
        sent = self.send(self.ch.trade, m, delta, acceptable, sender=a, expect=expect)
        STATS["trade_ok" if sent else f"trade_revert {expect.split(': ')[-1]}"] += 1
        if sent:
            self.check_events(sent[1], events)
            self.m = trial
            self.note_gas(sent)

    def leveraged_size(self, a: str, m: int, lev_bps: int) -> int:
        """A size worth `lev_bps` of the account's equity (at least 100 tokens of it)."""
        base = max(self.m.load(a).equity, 100 * USDC)
        return lev_bps * base * SCALE * WAD // (BPS * self.m.markets[m].price)

    @action(who=TRADER, m=MARKET, lev_bps=LEVERAGE_BPS)
    def open_position(self, who: int, m: int, lev_bps: int) -> None:
        """Open or add within 9.5x of equity (may still fail the initial margin)."""
        self.step("open_position")
        a = self.traders[who]
        self.do_trade(a, m, self.leveraged_size(a, m, lev_bps))

    @action(
        who=TRADER,
        m=MARKET,
        mode=TRADE_MODE,
        lev_bps=WIDE_LEVERAGE_BPS,
        frac_bps=FRACTION_BPS,
        raw=RAW_SIZE,
    )
    def trade(self, who: int, m: int, mode: str, lev_bps: int, frac_bps: int, raw: int) -> None:
        """Any trade: over-leveraged, reductions, closes, flips, raw sizes, tight slippage."""
        self.step("trade")
        a = self.traders[who]
        size, _ = self.m.positions[a].get(m, (0, 0))
        if size == 0 and mode in ("reduce", "close", "flip"):
            mode = "leverage"
        delta = {
            "leverage": self.leveraged_size(a, m, lev_bps),
            "reduce": -size * frac_bps // BPS,
            "close": -size,
            "flip": -size - size * frac_bps // BPS,
            "raw": raw,
            "slip": self.leveraged_size(a, m, lev_bps),
            "zero": 0,
        }[mode]
        self.do_trade(a, m, delta, slip=mode == "slip")

    @action(who=TRADER, worst=st.booleans())
    def close_one_leg(self, who: int, worst: bool) -> None:
        """The attacks' moves on a cross-margined account: close its worst leg (realise a
        loss that may exceed its collateral while the other legs carry it: debt the pool is
        credited with but no token backs) or its best leg (collect a profit the backed pool
        may not cover, a haircut the reduction check must count)."""
        self.step("close_one_leg")
        a = self.traders[who]
        legs = self.m.load(a).legs
        if len(legs) < 2:
            return
        by_pnl = sorted(legs, key=lambda leg: pnl(leg.size, leg.entry, leg.price, SCALE))
        leg = by_pnl[0] if worst else by_pnl[-1]
        self.do_trade(a, leg.market, -leg.size)

    # ---- Pool ----

    def lp_add(self, who: int, amount: int) -> None:
        a = self.lps[who]
        if amount:
            self.mint(a, amount)
        trial = copy.deepcopy(self.m)
        shares = trial.to_shares(amount)
        cancelled = trial.cancels_shares()
        expect = E_VAULT_ZERO if amount == 0 else None
        if expect is None and self.m.paused:
            expect = "vault: paused"  # a paused pool takes no new capital; exits stay open
        if expect is None and self.m.pool_state().exposed:
            expect = E_EXPOSED  # the value moves with prices: only requests then
        if expect is None and shares is None:
            expect = "vault: pool insolvent"  # it owes more than it has: no buying its losses
        if expect is None and shares == 0:
            expect = "vault: zero shares"
        sent = self.send(self.vault.add_liquidity, amount, 0, sender=a, expect=expect)
        if sent:
            want = self.book_cancel(trial, cancelled)
            trial.pool += amount
            trial.supply += shares
            trial.shares[a] += shares
            want.append(("LiquidityAdded", {"provider": a, "assets": amount, "shares": shares}))
            self.check_events(sent[1], want)
            self.m = trial

    def book_cancel(self, mirror: Mirror, cancelled: int) -> list:
        """A deposit into a worthless pool cancelled `cancelled` old shares (attack 8b): the
        mirror drops them, open withdrawal requests lose theirs, and the engine logs them as
        a 0-asset redemption by the vault. The events expected so far."""
        if not cancelled:
            return []
        STATS["shares_cancelled"] += 1
        mirror.cancel_shares()
        self.first_live_request = int(self.vault.request_count())
        return [
            ("LiquidityRemoved", {"provider": self.vault.address, "assets": 0, "shares": cancelled})
        ]

    @action(who=LP, usd=LIQUIDITY_USD)
    def add_liquidity(self, who: int, usd: int) -> None:
        self.step("add_liquidity")
        self.lp_add(who, usd * USDC)

    @action(
        who=LP,
        bps=SHARE_BPS,
        extra=EXTRA_SHARE,
        min_assets=MIN_ASSETS,
    )
    def remove_liquidity(self, who: int, bps: int, extra: int, min_assets: str) -> None:
        self.step("remove_liquidity")
        a = self.lps[who]
        shares = self.m.shares[a] * bps // BPS + extra
        assets = self.m.to_assets(shares)
        floor = {"none": 0, "exact": assets, "above": assets + 1}[min_assets]
        expect = None
        if shares == 0:
            expect = E_VAULT_ZERO
        elif self.m.pool_state().exposed:
            expect = E_EXPOSED
        elif assets == 0:
            expect = "vault: zero assets"
        elif assets < floor:
            expect = "vault: slippage"
        elif assets > self.m.free_liquidity():
            expect = "vault: insufficient free liquidity"
        elif shares > self.m.shares[a]:
            expect = "erc20: burn amount exceeds balance"
        sent = self.send(self.vault.remove_liquidity, shares, floor, sender=a, expect=expect)
        STATS[f"lp_remove_{'ok' if sent else 'revert'}"] += 1
        if sent:
            self.m.pool -= assets
            self.m.supply -= shares
            self.m.shares[a] -= shares
            self.check_events(
                sent[1],
                [("LiquidityRemoved", {"provider": a, "assets": assets, "shares": shares})],
            )

    # ---- LP requests (two-step flows, executed after fresh prices) ----

    def priced_at(self) -> int:
        """`PoolState.priced_at`: the oldest price time among markets with open interest."""
        times = [mk.updated_at for mk in self.m.markets if mk.long_oi or mk.short_oi]
        return min(times) if times else MAX_UINT

    def request(self, a: str, is_deposit: bool, amount: int, min_out: int) -> int | None:
        """Send a request; on success the mirror moves what it escrows. Its id, or None."""
        if is_deposit and amount:
            self.mint(a, amount)
        expect = None
        if amount == 0:
            expect = E_VAULT_ZERO
        elif is_deposit and amount <= self.fee:
            expect = "vault: below execution fee"
        elif not is_deposit and amount > self.m.shares[a]:
            expect = "erc20: transfer amount exceeds balance"
        request_id = int(self.vault.request_count())
        fn = self.vault.request_deposit if is_deposit else self.vault.request_withdrawal
        sent = self.send(fn, amount, min_out, sender=a, expect=expect)
        STATS[f"lp_request_{'ok' if sent else 'revert'}"] += 1
        if not sent:
            return None
        if not is_deposit:
            self.m.shares[a] -= amount
        self.requests[request_id] = Request(a, is_deposit, amount, min_out, sent[0].timestamp)
        return request_id

    def execute(self, request_id: int, executor: str) -> bool:
        """Execute a request, the mirror predicting the outcome exactly: the revert, or the
        shares minted / assets paid at the net value now, the fee to the executor."""
        r = self.requests.get(request_id)
        ps = self.m.pool_state()
        shares = assets = 0
        expect = None
        if r is None:
            expect = "vault: no request"
        elif ps.exposed and self.priced_at() <= r.created:
            expect = E_NOT_PRICED
        elif r.is_deposit:
            shares = self.m.to_shares(r.amount - self.fee)
            cancelled = self.m.cancels_shares()
            if self.m.paused:
                expect = "vault: paused"
            elif shares is None:
                expect = "vault: pool insolvent"
            elif self.m.worthless_exposed():
                expect = "vault: pool worthless"
            elif shares == 0:
                expect = "vault: zero shares"
            elif shares < r.min_out:
                expect = "vault: slippage"
        elif request_id < self.first_live_request:
            expect = "vault: shares cancelled"
        else:
            assets = self.m.to_assets(r.amount)
            if assets <= self.fee:
                expect = "vault: below execution fee"
            elif assets - self.fee < r.min_out:
                expect = "vault: slippage"
            elif assets > self.m.free_liquidity():
                expect = "vault: insufficient free liquidity"
        sent = self.send(self.vault.execute_request, request_id, sender=executor, expect=expect)
        STATS[f"lp_execute_{'ok' if sent else 'revert'}"] += 1
        if not sent:
            return False
        del self.requests[request_id]
        if r.is_deposit:
            received = r.amount - self.fee
            want = self.book_cancel(self.m, cancelled)
            self.m.pool += received
            self.m.supply += shares
            self.m.shares[r.owner] += shares
            want.append(
                ("LiquidityAdded", {"provider": r.owner, "assets": received, "shares": shares})
            )
        else:
            self.m.pool -= assets
            self.m.supply -= r.amount
            want = [
                ("LiquidityRemoved", {"provider": r.owner, "assets": assets - self.fee}),
                ("LiquidityRemoved", {"provider": executor, "assets": self.fee, "shares": 0}),
            ]
        self.check_events(sent[1], want)
        return True

    def refresh_all(self, dt: int) -> None:
        """`dt` seconds on, every feed answers again at its current price."""
        chain.pending_timestamp = chain.pending_timestamp + dt
        for m, mk in enumerate(self.m.markets):
            self.set_answer(m, mk.answer)

    @action(who=LP, usd=LIQUIDITY_USD, min_shares=MIN_ASSETS)
    def request_deposit(self, who: int, usd: int, min_shares: str) -> None:
        self.step("request_deposit")
        amount = usd * USDC
        quote = self.m.to_shares(max(amount - self.fee, 0)) or 0
        floor = {"none": 0, "exact": quote, "above": quote + 1}[min_shares]
        self.request(self.lps[who], True, amount, floor)

    @action(who=LP, bps=SHARE_BPS, extra=EXTRA_SHARE)
    def request_withdrawal(self, who: int, bps: int, extra: int) -> None:
        self.step("request_withdrawal")
        a = self.lps[who]
        self.request(a, False, self.m.shares[a] * bps // BPS + extra, 0)

    @action(pick=EDGE_PICK, keeper=KEEPER, refresh=UP)
    def execute_request(self, pick: int, keeper: int, refresh: bool) -> None:
        """A keeper executes an open request (or an unknown id), often after fresh prices."""
        self.step("execute_request")
        ids = sorted(self.requests) or [int(self.vault.request_count())]
        if refresh:
            self.refresh_all(1)
        self.execute(ids[pick % len(ids)], self.keepers[keeper])

    @action(pick=EDGE_PICK, wait=UP, stranger=UP)
    def cancel_request(self, pick: int, wait: bool, stranger: bool) -> None:
        """The owner (or a stranger) cancels an open request, before or after the timeout."""
        self.step("cancel_request")
        if not self.requests:
            return
        request_id = sorted(self.requests)[pick % len(self.requests)]
        r = self.requests[request_id]
        if wait:
            self.refresh_all(REQUEST_TIMEOUT)
        caller = self.keepers[0] if stranger else r.owner
        cancelled = not r.is_deposit and request_id < self.first_live_request
        expect = None
        if stranger:
            expect = "vault: not request owner"
        elif not cancelled and chain.pending_timestamp < r.created + REQUEST_TIMEOUT:
            expect = "vault: request not timed out"
        sent = self.send(self.vault.cancel_request, request_id, sender=caller, expect=expect)
        STATS[f"lp_cancel_{'ok' if sent else 'revert'}"] += 1
        if sent:
            del self.requests[request_id]
            if not r.is_deposit and not cancelled:
                self.m.shares[r.owner] += r.amount

    @action(who=LP, usd=LIQUIDITY_USD, deposit=UP, m=MARKET, up=UP, size_bps=JUMP_BPS)
    def straddle_update(
        self, who: int, usd: int, deposit: bool, m: int, up: bool, size_bps: int
    ) -> None:
        """Attack 2: an LP who sees a price update coming requests before it and executes
        right after; the request is priced at the value the update set, so the LP's position
        is worth no more than it paid (deposit) or is paid no more than its shares are worth
        after the update (withdrawal)."""
        self.step("straddle_update")
        a = self.lps[who]
        amount = usd * USDC if deposit else self.m.shares[a] // 2
        request_id = self.request(a, deposit, amount, 0)
        if request_id is None:
            return
        if self.m.pool_state().exposed:
            self.execute(request_id, self.keepers[0])  # before the update: refused
        self.move(m, size_bps if up else -size_bps)
        self.refresh_all(1)
        before = self.m.shares[a]
        if not self.execute(request_id, self.keepers[1]):
            return
        STATS["straddles_executed"] += 1
        if deposit:
            # What the shares bought are worth at once: never more than was paid for them.
            worth = self.m.to_assets(self.m.shares[a] - before)
            assert worth <= amount - self.fee, ("a deposit straddling an update gained", worth)
        # A withdrawal was paid the shares' value after the update, less the fee: `execute`
        # compared the LiquidityRemoved event with the mirror's value at that moment.

    # ---- Prices and time ----

    def move(self, m: int, change_bps: int) -> None:
        mk = self.m.markets[m]
        answer = mk.answer * (BPS + change_bps) // BPS
        answer = min(max(answer, mk.base_answer // 50, 1), mk.base_answer * 50)
        self.set_answer(m, answer)

    @action(m=MARKET, change_bps=DRIFT_BPS)
    def price_drift(self, m: int, change_bps: int) -> None:
        self.step("price_drift")
        self.move(m, change_bps)

    @action(m=MARKET, up=UP, size_bps=JUMP_BPS)
    def price_jump(self, m: int, up: bool, size_bps: int) -> None:
        """A 30-60% move in one oracle update (crash or squeeze)."""
        self.step("price_jump")
        STATS["price_jumps"] += 1
        self.move(m, size_bps if up else -size_bps)

    @action(pick=EDGE_PICK, depth_bps=EDGE_DEPTH_BPS)
    def price_to_the_edge(self, pick: int, depth_bps: int) -> None:
        """Move one market so a trader's equity lands `depth_bps` below its maintenance
        requirement: the region where liquidations are partial."""
        self.step("price_to_the_edge")
        open_legs = [(a, m) for a in self.traders for m in self.m.order[a]]
        if not open_legs:
            return
        a, m = open_legs[pick % len(open_legs)]
        size, entry = self.m.positions[a][m]
        view, mk = self.m.load(a), self.m.markets[m]
        per_price = Fraction(size, WAD * SCALE)  # equity per unit of WAD price
        maint_per_price = Fraction(abs(size) * mk.mm, WAD * SCALE * BPS)
        own_maint = bps_up(notional_up(abs(size), mk.price, SCALE), mk.mm)
        rest = view.equity - pnl(size, entry, mk.price, SCALE) - per_price * (mk.price - entry)
        rest_maint = view.maintenance - own_maint
        t = Fraction(BPS - depth_bps, BPS)
        # equity(P) = rest + per_price * (P - entry) = t * (rest_maint + maint_per_price * P)
        slope = per_price - t * maint_per_price
        if slope == 0:
            return
        price = (t * rest_maint - rest + per_price * entry) / slope
        answer = int(price / PRICE_SCALE)
        if not mk.base_answer // 50 <= answer <= mk.base_answer * 50:
            return
        STATS["edge_moves"] += 1
        self.set_answer(m, answer)

    @action(dt=TIME_STEP, jitter=JITTER)
    def pass_time(self, dt: int, jitter: int) -> None:
        """Time passes. A feed past its heartbeat but within its stale window marks its
        market conservatively: no trade on it, but accounts holding it are still judged
        (and liquidated, and may withdraw) and the pool still valued, at the last price
        moved against them (attack 6). Past the window an account holding it cannot be
        read: a liquidation reverts with the feed's reason, a batch skips it."""
        self.step("pass_time")
        chain.pending_timestamp = chain.pending_timestamp + dt + jitter
        now = chain.blocks.head.timestamp
        ages = [now - mk.updated_at for mk in self.m.markets]
        edge = HEARTBEAT + STALE_WINDOW
        # Block times move a little between the txs of this step: judge no market near an edge.
        near_edge = any(abs(age - t) <= STALE_MARGIN for age in ages for t in (HEARTBEAT, edge))
        stale = [m for m, age in enumerate(ages) if HEARTBEAT < age <= edge]
        dead = [m for m, age in enumerate(ages) if age > edge]
        if not near_edge and (stale or dead):
            STATS["stale_checks"] += 1
            for m in stale + dead:  # nothing trades at a price that is not fresh
                t = self.traders[0]
                self.send(self.ch.trade, m, 10**15, MAX_UINT, sender=t, expect=E_STALE)
            if dead:
                self.dead_market_checks(dead)
            else:
                self.stale_market_checks(stale)
        for m, mk in enumerate(self.m.markets):
            if now - mk.updated_at > REFRESH_AGE:
                self.set_answer(m, mk.answer)

    def stale_market_checks(self, stale: list[int]) -> None:
        """Within the window: the mirror marks the stale markets as the feeds do, and the
        keeper's sweep, a withdrawal and the pool's value must agree with it exactly."""
        STATS["stale_within_window"] += 1
        for m in stale:
            self.m.markets[m].stale = True
        try:
            pool = replace(PoolState(*self.ch.pool_state()), priced_at=0)
            with self.views():
                mirrored = self.m.pool_state()
            assert pool == mirrored, "stale marks: pool_state differs from the mirror"
            flagged = [a for a in self.holders if self.m.load(a).liquidatable]
            if flagged:
                STATS["stale_liquidation_sweeps"] += 1
                self.batch_liquidate(self.keepers[0], flagged)
            exposed = [a for a in self.holders if set(stale) & set(self.m.positions[a])]
            for a in exposed:
                amount = max(self.m.collateral[a], 0) // 10
                if amount == 0:
                    continue
                expect = self.m.withdraw_error(a, amount)
                if self.send(self.ch.withdraw, amount, sender=a, expect=expect):
                    self.m.collateral[a] -= amount
                    STATS["stale_withdraw_ok"] += 1
        finally:
            for m in stale:
                self.m.markets[m].stale = False

    def dead_market_checks(self, dead: list[int]) -> None:
        """Past the window: an account holding the market cannot be read; a batch skips it
        with an event and never reverts; the pool has no value until settlement."""
        STATS["dead_market_checks"] += 1
        exposed = [a for a in self.holders if set(dead) & set(self.m.positions[a])]
        for a in exposed:
            self.send(self.ch.liquidate, a, sender=self.keepers[0], expect=E_STALE)
            if self.m.collateral[a] > 0:
                self.send(self.ch.withdraw, 1, sender=a, expect=E_STALE)
        if exposed:
            sent = self.send(self.ch.liquidate_many, exposed, sender=self.keepers[1], expect=None)
            self.note_gas(sent)
            skipped = [e["account"] for n, e in sent[1] if n == "LiquidationSkipped"]
            assert skipped == exposed and all(n != "Liquidated" for n, _ in sent[1])
            STATS["dead_entries_skipped"] += len(skipped)
            try:
                self.ch.pool_state()
            except ContractLogicError as err:
                assert err.revert_message == "clearinghouse: market unpriced"
            else:
                raise AssertionError("pool_state priced a market past its stale window")

    # ---- Liquidation ----

    def check_liquidation_facts(self, a: str, facts: dict, logs: list) -> None:
        """The spec's liquidation properties, on the model's before/after (verified = chain)."""
        before, after = facts["before"], facts["after"]
        if facts["full"]:
            STATS["liquidations_full"] += 1
            assert not after.legs
        else:
            STATS["liquidations_partial"] += 1
            # A partial liquidation never lowers the margin ratio equity / maintenance and
            # restores the initial requirement of what remains (SPEC section 3), also when
            # a thin pool haircuts the profit it realises (defect D2, fixed: the fraction is
            # planned on realisable equity).
            assert after.maintenance > 0
            assert after.equity * before.maintenance >= before.equity * after.maintenance, (
                "partial lowered the ratio",
                before,
                after,
            )
            assert after.equity >= after.initial, ("partial left equity < initial", before, after)
            if facts["haircut"]:
                STATS["partial_with_haircut"] += 1
        # No open position below the market's minimum notional right after a liquidation.
        for leg in after.legs:
            floor = self.m.markets[leg.market].min_notional
            assert notional_down(abs(leg.size), leg.price, SCALE) >= floor, ("dust left", leg)
        # Bad debt: logged whenever the full close leaves negative collateral before coverage.
        mine = [e for n, e in logs if e.get("account") == a]
        realized = sum(e["realized_pnl"] for n, e in logs if n == "PositionChanged" and e in mine)
        liq = [e for n, e in logs if n == "Liquidated" and e["account"] == a]
        assert len(liq) == 1
        c_before_cover = before.collateral + realized - liq[0]["fee"]
        bad = [e for n, e in logs if n == "BadDebtSettled" and e["account"] == a]
        if liq[0]["full"] and c_before_cover < 0:
            STATS["bad_debt"] += 1
            assert len(bad) == 1 and bad[0]["bad_debt"] == -c_before_cover, (bad, c_before_cover)
        else:
            assert not bad
        if liq[0]["liquidator"] == a:
            assert liq[0]["keeper_reward"] == 0, "self-liquidation earned a reward"

    @action(victim=HOLDER, caller=HOLDER)
    def liquidate(self, victim: int, caller: int) -> None:
        self.step("liquidate")
        a, keeper = self.holders[victim], self.holders[caller]
        preview = self.ch.liquidation_preview(a)
        with self.views():
            assert tuple(preview) == self.m.preview(a), (preview, self.m.preview(a))
            view = self.m.load(a)
            assert self.ch.is_liquidatable(a) == view.liquidatable
        if view.liquidatable:
            # Every liquidatable account can pay its own liquidation: the keeper is paid at
            # least the reserve both requirements held whenever the account's payment or the
            # fund covers it (the gap is only ever topped up to the reserve, never beyond).
            assert preview.reward >= min(view.reserve, self.m.insurance), (preview, view.reserve)
            STATS["reward_covers_reserve"] += preview.reward >= view.reserve
        trial = copy.deepcopy(self.m)
        done, events, facts = trial.liquidate(a, keeper)
        # A liquidation of a healthy account reverts.
        sent = self.send(self.ch.liquidate, a, sender=keeper, expect=None if done else E_HEALTHY)
        if not done:
            STATS["liquidate_healthy_reverted"] += 1
            return
        self.check_events(sent[1], events)
        self.m = trial
        self.note_gas(sent)
        self.check_liquidation_facts(a, facts, sent[1])
        if keeper != a and not any(n == "ProfitHaircut" for n, _ in events) and not self.accruing():
            # The bot-facing preview was exact (a second of funding later, it may not be).
            assert tuple(preview) == (facts["fraction"], facts["reward"], facts["shortfall"])

    @action(
        victims=VICTIMS,
        caller=HOLDER,
    )
    def liquidate_many(self, victims: list[int], caller: int) -> None:
        self.step("liquidate_many")
        self.batch_liquidate(self.holders[caller], [self.holders[i] for i in victims])

    def batch_liquidate(self, keeper: str, accounts: list[str]) -> None:
        trial = copy.deepcopy(self.m)
        expected, results = [], []
        for a in accounts:
            done, events, facts = trial.liquidate(a, keeper)
            expected += events
            if done:
                results.append((a, facts))
        sent = self.send(self.ch.liquidate_many, accounts, sender=keeper, expect=None)
        self.check_events(sent[1], expected)
        self.m = trial
        self.note_gas(sent)
        for a, facts in results:
            # Each account's own slice of the logs, in order.
            self.check_liquidation_facts(a, facts, sent[1])
        STATS["liquidate_many_liquidated"] += len(results)

    @action(keeper=KEEPER, extra=EXTRA_VICTIMS)
    def keeper_sweep(self, keeper: int, extra: list[int]) -> None:
        """A bot's batch: every account the mirror flags, plus a few healthy ones."""
        self.step("keeper_sweep")
        flagged = [a for a in self.holders if self.m.load(a).liquidatable]
        self.batch_liquidate(self.keepers[keeper], flagged + [self.holders[i] for i in extra])

    # ---- Owner and guardian (one rule, so that they do not crowd out trading) ----

    @rule(
        action=st.sampled_from(
            [
                "risk",
                "risk",
                "apply_risk",
                "cancel_risk",
                "funding",
                "apply_funding",
                "limits",
                "liquidation",
                "keeper_reward",
                "keeper_reward",
                "apply_reward",
                "cancel_reward",
                "reserve",
                "pause",
                "insurance",
            ]
        ),
        stranger=STRANGER,
        data=st.data(),
    )
    def admin(self, action: str, stranger: bool, data: st.DataObject) -> None:
        """An owner (or guardian) action; sometimes a stranger tries it and is refused."""
        self.step(f"admin.{action}")
        self.stranger = stranger
        {
            "risk": self.set_market_risk,
            "apply_risk": self.apply_market_risk,
            "cancel_risk": self.cancel_market_risk,
            "funding": self.set_market_funding,
            "apply_funding": self.apply_market_funding,
            "limits": self.set_market_limits,
            "liquidation": self.set_liquidation_params,
            "keeper_reward": self.set_keeper_reward,
            "apply_reward": self.apply_keeper_reward,
            "cancel_reward": self.cancel_keeper_reward,
            "reserve": self.set_pool_reserve,
            "pause": self.pause,
            "insurance": self.fund_insurance,
        }[action](data)

    @property
    def admin_sender(self) -> str:
        return self.traders[0] if self.stranger else self.owner

    def set_market_risk(self, data: st.DataObject) -> None:
        m = data.draw(MARKET, label="market")
        if data.draw(VALID, label="valid"):
            mm = data.draw(MAINTENANCE_BPS, label="mm")
            im = data.draw(initial_margin_bps(mm), label="im")
            liq = data.draw(liquidation_fee_bps(mm), label="liq")
            trade = data.draw(trading_fee_bps(liq), label="trade")
        else:
            mm, im, liq, trade = (
                data.draw(ANY_RATE_BPS, label=n) for n in ("mm", "im", "liq", "trade")
            )
        expect = None
        if self.stranger:
            expect = NOT_OWNER
        elif not (0 < mm < im <= BPS):
            expect = "configurator: bad margin rates"
        elif liq >= mm:
            expect = "configurator: liquidation fee >= maintenance"
        elif trade > MAX_TRADING_FEE_BPS:
            expect = "configurator: trading fee too high"
        elif trade > liq:
            expect = "configurator: trading fee above liquidation fee"
        elif not partial_reachable(self.m.max_partial, im, mm, liq):
            expect = E_UNREACHABLE
        self.change_risk(m, (im, mm, liq, trade), self.admin_sender, expect)

    def change_risk(
        self, m: int, proposed: tuple[int, int, int, int], sender: str, expect: str | None
    ) -> None:
        """`set_market_risk`; the mirror predicts whether it applies or waits (time to react)."""
        sent = self.send(self.cfg.set_market_risk, m, *proposed, sender=sender, expect=expect)
        if not sent:
            return
        mk = self.m.markets[m]
        current = (mk.im, mk.mm, mk.liq, mk.trade)
        queued = sent[0].decode_logs(self.cfg.MarketRiskQueued)
        if risk_change_waits(current, proposed, mk.long_oi + mk.short_oi):
            # Time to react: a rise on a market with positions moves no rate now.
            assert queued, "a rate rise on a market with positions applied at once"
            self.pending_risk[m] = (proposed, sent[0].timestamp + RISK_DELAY)
            STATS["risk_queued"] += 1
        else:
            assert not queued, "a change that raises nothing (or on an empty market) waited"
            dropped = sent[0].decode_logs(self.cfg.MarketRiskCancelled)
            assert bool(dropped) == (self.pending_risk.pop(m, None) is not None)
            mk.im, mk.mm, mk.liq, mk.trade = proposed
            STATS["risk_changes"] += 1
        info = self.ch.market(m)
        on_chain = (
            info.initial_margin_bps,
            info.maintenance_margin_bps,
            info.liquidation_fee_bps,
            info.trading_fee_bps,
        )
        assert on_chain == (mk.im, mk.mm, mk.liq, mk.trade), "rates differ from the mirror"

    def apply_market_risk(self, data: st.DataObject) -> None:
        """Anyone applies a queued rise: refused before its eta; a day later (every feed
        answering again) it applies, unless the partial bound set meanwhile refuses it."""
        m = data.draw(MARKET, label="market")
        caller = self.admin_sender
        mk = self.m.markets[m]
        if m not in self.pending_risk and mk.im - mk.mm >= 2 and data.draw(UP, label="queue"):
            # The owner raises maintenance (always within the bounds): on a market with
            # positions it waits, and the rest of this action applies it.
            mm = data.draw(st.integers(mk.mm + 1, mk.im - 1), label="raised mm")
            self.change_risk(m, (mk.im, mm, mk.liq, mk.trade), self.owner, None)
        if m not in self.pending_risk:
            self.send(self.cfg.apply_market_risk, m, sender=caller, expect=E_NO_RISK_CHANGE)
            return
        proposed, eta = self.pending_risk[m]
        if chain.pending_timestamp < eta:
            self.send(self.cfg.apply_market_risk, m, sender=caller, expect=E_RISK_DELAY)
            self.refresh_all(eta - chain.pending_timestamp)
        im, mm, liq, _ = proposed
        expect = None if partial_reachable(self.m.max_partial, im, mm, liq) else E_UNREACHABLE
        if chain.pending_timestamp > eta + RISK_GRACE:
            expect = "configurator: risk change expired"
        if self.send(self.cfg.apply_market_risk, m, sender=caller, expect=expect):
            mk = self.m.markets[m]
            mk.im, mk.mm, mk.liq, mk.trade = proposed
            del self.pending_risk[m]
            STATS["risk_applied"] += 1

    def cancel_market_risk(self, data: st.DataObject) -> None:
        m = data.draw(MARKET, label="market")
        expect = None
        if self.stranger:
            expect = NOT_OWNER
        elif m not in self.pending_risk:
            expect = E_NO_RISK_CHANGE
        if self.send(self.cfg.cancel_market_risk, m, sender=self.admin_sender, expect=expect):
            del self.pending_risk[m]

    def funding_reach(self, m: int) -> int:
        """What the skew scale must cover twice: the cap, or the open interest if larger."""
        mk = self.m.markets[m]
        return max(mk.max_oi, mk.long_oi, mk.short_oi)

    def set_market_funding(self, data: st.DataObject) -> None:
        """The owner turns a market's funding on or retunes it (the attack: a new scale moves
        value between open positions and the pool at once). With open interest it waits
        RISK_DELAY; on a flat market it applies at once, recorded at the oracle first."""
        m = data.draw(MARKET, label="market")
        mk = self.m.markets[m]
        reach_units = -(-self.funding_reach(m) // WAD)
        if mk.funding is not None and data.draw(UP, label="step"):
            # a retune near the live scale: within the 25% step, or just beyond it
            num, den = data.draw(st.sampled_from([(4, 5), (5, 4), (1, 1), (3, 4), (13, 10)]))
            scale = -(-mk.funding.skew_scale * num // den)
        else:
            scale = reach_units * data.draw(st.sampled_from([0, 1, 2, 3, 50]), label="multiple")
        velocity = data.draw(st.sampled_from([0, 300, 10_000, 10_001]), label="velocity")
        expect = self.funding_error(m, scale, velocity)
        sent = self.send(
            self.cfg.set_market_funding, m, scale, velocity, sender=self.admin_sender, expect=expect
        )
        if not sent:
            return
        queued = sent[0].decode_logs(self.cfg.MarketFundingQueued)
        if funding_change_waits(mk.long_oi + mk.short_oi):
            assert queued, "a funding change on a market with positions applied at once"
            self.pending_funding[m] = (scale, velocity, sent[0].timestamp + RISK_DELAY)
            STATS["funding_queued"] += 1
        else:
            assert not queued, "a funding change on a flat market waited"
            dropped = sent[0].decode_logs(self.cfg.MarketFundingCancelled)
            assert bool(dropped) == (self.pending_funding.pop(m, None) is not None)
            self.apply_funding(m, scale, velocity, sent[0].timestamp)
            STATS["funding_changes"] += 1

    def funding_error(self, m: int, scale: int, velocity: int) -> str | None:
        """`set_market_funding`'s checks, in their order: the revert reason, or None."""
        mk = self.m.markets[m]
        live = mk.long_oi + mk.short_oi > 0
        old = mk.funding.skew_scale if mk.funding is not None else 0
        if self.stranger:
            return NOT_OWNER
        if scale == 0:
            return "configurator: zero skew scale"
        if velocity > 10_000:
            return "configurator: funding velocity too high"
        if live and old == 0:
            return "configurator: market has positions"
        if live and not (5 * scale >= 4 * old and 4 * scale <= 5 * old):
            return "configurator: skew scale step too large"
        if 2 * self.funding_reach(m) > scale * WAD:
            return "configurator: skew scale below twice the cap"
        return None

    def apply_funding(self, m: int, scale: int, velocity: int, at: int) -> None:
        """The mirror's `configure_funding` at block time `at` (the funding so far recorded)."""
        self.m.clock, self.m.now = None, at
        try:
            self.m.set_funding(m, scale, velocity)
        finally:
            self.m.clock = self.clock
        if m not in self.funding_markets:
            self.funding_markets.append(m)

    def apply_market_funding(self, data: st.DataObject) -> None:
        """Anyone applies a queued funding change: refused before its eta, then applied with
        the scale checked again against the cap and the open interest of the day."""
        m = data.draw(MARKET, label="market")
        caller = self.admin_sender
        mk = self.m.markets[m]
        if m not in self.pending_funding and data.draw(UP, label="queue"):
            # The owner proposes a valid change (a live scale a fifth larger; a flat market
            # three times what the scale must cover): on a market with positions it waits,
            # and the rest of this action applies or cancels it; on a flat one it applies
            # now. A market with positions and no funding cannot have it turned on.
            velocity = data.draw(st.sampled_from([0, 300, 10_000]), label="velocity")
            if mk.long_oi + mk.short_oi > 0:
                if mk.funding is None:
                    return
                scale = mk.funding.skew_scale * 6 // 5
            else:
                scale = 3 * -(-self.funding_reach(m) // WAD)
            if 2 * self.funding_reach(m) > scale * WAD:
                return
            sent = self.send(
                self.cfg.set_market_funding, m, scale, velocity, sender=self.owner, expect=None
            )
            if funding_change_waits(mk.long_oi + mk.short_oi):
                assert sent[0].decode_logs(self.cfg.MarketFundingQueued)
                self.pending_funding[m] = (scale, velocity, sent[0].timestamp + RISK_DELAY)
                STATS["funding_queued"] += 1
            else:
                self.pending_funding.pop(m, None)
                self.apply_funding(m, scale, velocity, sent[0].timestamp)
                STATS["funding_changes"] += 1
        if m not in self.pending_funding:
            expect = "configurator: no funding change"
            if data.draw(UP, label="cancel"):
                expect = NOT_OWNER if self.stranger else expect
                self.send(self.cfg.cancel_market_funding, m, sender=caller, expect=expect)
            else:
                self.send(self.cfg.apply_market_funding, m, sender=caller, expect=expect)
            return
        scale, velocity, eta = self.pending_funding[m]
        if data.draw(UP, label="cancel"):
            expect = NOT_OWNER if self.stranger else None
            if self.send(self.cfg.cancel_market_funding, m, sender=caller, expect=expect):
                del self.pending_funding[m]
            return
        if chain.pending_timestamp < eta:
            self.send(self.cfg.apply_market_funding, m, sender=caller, expect=E_RISK_DELAY)
            self.refresh_all(eta - chain.pending_timestamp)
        expect = None
        if chain.pending_timestamp > eta + RISK_GRACE:
            expect = "configurator: risk change expired"
        elif 2 * self.funding_reach(m) > scale * WAD:
            expect = "configurator: skew scale below twice the cap"
        sent = self.send(self.cfg.apply_market_funding, m, sender=caller, expect=expect)
        if sent:
            del self.pending_funding[m]
            self.apply_funding(m, scale, velocity, sent[0].timestamp)
            STATS["funding_applied"] += 1

    def set_market_limits(self, data: st.DataObject) -> None:
        m = data.draw(MARKET, label="market")
        max_oi_units = data.draw(OI_UNITS, label="oi")
        min_usd = data.draw(MIN_NOTIONAL_USD, label="min_notional")
        expect = None
        if self.stranger:
            expect = NOT_OWNER
        elif max_oi_units == 0:
            expect = "configurator: bad open interest cap"
        elif min_usd == 0:
            expect = "configurator: bad minimum notional"
        elif (f := self.m.markets[m].funding) is not None and 2 * max_oi_units > f.skew_scale:
            expect = "configurator: skew scale below twice the cap"
        max_oi, min_notional = max_oi_units * WAD, min_usd * USDC
        sent = self.send(
            self.cfg.set_market_limits,
            m,
            max_oi,
            min_notional,
            sender=self.admin_sender,
            expect=expect,
        )
        if sent:
            self.m.markets[m].max_oi, self.m.markets[m].min_notional = max_oi, min_notional

    def set_liquidation_params(self, data: st.DataObject) -> None:
        share = data.draw(BPS_OR_ONE_MORE, label="keeper_share")
        partial = data.draw(BPS_OR_ONE_MORE, label="max_partial")
        reward_usd = data.draw(REWARD_USD, label="reward")
        reward = reward_usd * USDC
        expect = None
        if self.stranger:
            expect = NOT_OWNER
        elif share > BPS:
            expect = "configurator: bad keeper share"
        elif not 0 < partial <= BPS:
            expect = "configurator: bad partial bound"
        elif not all(partial_reachable(partial, k.im, k.mm, k.liq) for k in self.m.markets):
            expect = E_UNREACHABLE
        elif reward > MAX_MIN_REWARD:
            expect = "configurator: minimum reward too high"
        elif reward > self.m.max_reward:
            expect = "configurator: reward cap below floor"
        sent = self.send(
            self.cfg.set_liquidation_params,
            share,
            partial,
            reward,
            sender=self.admin_sender,
            expect=expect,
        )
        if sent:
            self.m.keeper_share, self.m.max_partial, self.m.min_reward = share, partial, reward

    def reward_now(self) -> tuple[int, int, int, int, int]:
        """The engine's (cap, margin, premium, ETH market id + 1 or 0, floor), the mirror's."""
        g = self.m.gas
        market = g.eth_market + 1 if g.on else 0
        return self.m.max_reward, self.m.gas_margin, g.premium_bps, market, g.floor

    def store_reward(self, proposed: tuple[int, ...], block: int) -> None:
        """`Configurator._store_reward` on the mirror: the smoothed price carries on (at least
        the new floor), ETH/USD read now from the market's feed; off clears the word."""
        max_reward, margin, premium, market, floor = proposed
        self.m.max_reward, self.m.gas_margin = max_reward, margin
        if market == MAX_MARKETS:
            self.m.gas = KeeperGas()
            return
        gp = max(self.m.gas.gas_price, floor)
        price = self.m.markets[market].price
        self.m.gas = KeeperGas(gp, price, block, premium, market, floor)

    def set_keeper_reward(self, data: st.DataObject) -> None:
        """The owner retunes the keeper reward (the attack: a higher reserve makes accounts
        liquidatable at once). A change that can raise a reserve while any market has open
        interest waits RISK_DELAY (`model.reward_change_waits`); anything else applies now."""
        market = MAX_MARKETS if data.draw(st.booleans(), label="off") else data.draw(MARKET)
        proposed = (
            data.draw(st.sampled_from([0, 1, 2, 50, 1_000, 1_001]), label="max") * USDC,
            data.draw(st.sampled_from([0, 1, 5, 1_001]), label="margin") * USDC,
            data.draw(st.sampled_from([0, 2_000, 10_000, 10_001]), label="premium"),
            market,
            data.draw(st.sampled_from([0, 1, 2_000, 30_000, 2**32]), label="floor") * 10**6,
        )
        expect = NOT_OWNER if self.stranger else reward_params_error(
            proposed, min_reward=self.m.min_reward, cap=MAX_MIN_REWARD, market_count=N_MARKETS,
            max_markets=MAX_MARKETS,
        )  # fmt: skip
        self.refresh_all(0)  # the setter reads the ETH market's feed
        sent = self.send(self.cfg.set_keeper_reward, *proposed, sender=self.admin_sender,
                         expect=expect)  # fmt: skip
        if not sent:
            return
        tx = sent[0]
        queued = tx.decode_logs(self.cfg.KeeperRewardQueued)
        oi = sum(mk.long_oi + mk.short_oi for mk in self.m.markets)
        if reward_change_waits(self.reward_now(), proposed, oi, MAX_MARKETS):
            assert queued, "a reserve rise with open interest applied at once"
            self.pending_reward = (proposed, tx.timestamp + RISK_DELAY)
            STATS["reward_queued"] += 1
        else:
            assert not queued, "a change that raises no reserve waited"
            dropped = tx.decode_logs(self.cfg.KeeperRewardCancelled)
            assert bool(dropped) == (self.pending_reward is not None)
            self.pending_reward = None
            self.store_reward(proposed, tx.block_number)
            STATS["reward_changes"] += 1

    def apply_keeper_reward(self, data: st.DataObject) -> None:
        """Anyone applies a queued reward change: refused before its eta; a day later it
        applies, unless the minimum reward set meanwhile is above its cap."""
        caller = self.admin_sender
        if self.pending_reward is None:
            self.send(self.cfg.apply_keeper_reward, sender=caller, expect=E_NO_REWARD_CHANGE)
            return
        proposed, eta = self.pending_reward
        if chain.pending_timestamp < eta:
            self.send(self.cfg.apply_keeper_reward, sender=caller, expect=E_RISK_DELAY)
            self.refresh_all(eta - chain.pending_timestamp)
        else:
            self.refresh_all(0)
        expect = reward_params_error(
            proposed, min_reward=self.m.min_reward, cap=MAX_MIN_REWARD, market_count=N_MARKETS,
            max_markets=MAX_MARKETS,
        )  # fmt: skip
        if chain.pending_timestamp > eta + RISK_GRACE:
            expect = "configurator: reward change expired"
        sent = self.send(self.cfg.apply_keeper_reward, sender=caller, expect=expect)
        if sent:
            self.pending_reward = None
            self.store_reward(proposed, sent[0].block_number)
            STATS["reward_applied"] += 1

    def cancel_keeper_reward(self, data: st.DataObject) -> None:
        expect = None
        if self.stranger:
            expect = NOT_OWNER
        elif self.pending_reward is None:
            expect = E_NO_REWARD_CHANGE
        if self.send(self.cfg.cancel_keeper_reward, sender=self.admin_sender, expect=expect):
            self.pending_reward = None

    def set_pool_reserve(self, data: st.DataObject) -> None:
        reserve = data.draw(RESERVE_BPS, label="bps")
        expect = "configurator: bad pool reserve" if reserve > MAX_RESERVE_BPS else None
        if self.stranger:
            expect = NOT_OWNER
        if self.send(self.cfg.set_pool_reserve, reserve, sender=self.admin_sender, expect=expect):
            self.m.reserve_bps = reserve

    def pause(self, data: st.DataObject) -> None:
        action = data.draw(PAUSE_ACTION, label="action")
        by = "stranger" if self.stranger else data.draw(PAUSER)
        sender = {"guardian": self.guardian, "owner": self.owner, "stranger": self.traders[1]}[by]
        if action == "pause":
            expect = None if by in ("guardian", "owner") else "configurator: not guardian"
            fn = self.cfg.pause
        else:
            expect = None if by == "owner" else NOT_OWNER
            fn = self.cfg.unpause
        if self.send(fn, sender=sender, expect=expect):
            self.m.paused = action == "pause"

    @action(who=st.integers(0, N_TRADERS - 1))
    def settle_claim(self, who: int) -> None:
        """Anyone pays a trader's claim (profit the pool owed it) as far as the pool backs it."""
        self.step("settle_claim")
        a = self.traders[who]
        expect, paid = self.m.settle_claim(a)
        sent = self.send(self.ch.settle_claim, a, sender=self.admin_sender, expect=expect)
        STATS[f"settle_claim_{'ok' if sent else 'revert'}"] += 1
        if sent:
            self.check_events(sent[1], [("ClaimSettled", {"account": a, "paid": paid})])

    def fund_insurance(self, data: st.DataObject) -> None:
        """Anyone may fund the insurance fund."""
        amount = data.draw(INSURANCE_FUNDING_USD, label="usd") * USDC
        if amount:
            self.mint(self.admin_sender, amount)
        expect = E_ZERO_AMOUNT if amount == 0 else None
        if self.send(self.ch.fund_insurance, amount, sender=self.admin_sender, expect=expect):
            self.m.insurance += amount

    # ---- Invariants ----

    @invariant()
    def engine_matches_mirror_and_spec(self) -> None:
        with self.views():
            self.check_engine()

    def check_engine(self) -> None:
        m = self.m
        snap, accs = self.w.lens.snapshot(self.ch, self.holders, SHARE_PROBE)
        pool = PoolState(*snap.pool)  # nested structs decode as tuples
        table = self.w.lens.position_table(self.ch, self.holders, len(m.markets))
        accounts = {acc.account: acc for acc in accs}
        statuses = {acc.account: AccountStatus(*acc.status) for acc in accs}
        collateral = {a: accounts[a].collateral for a in self.holders}

        # Conservation: the engine holds exactly the collateral, the pool and the insurance,
        # and no token leaves the actors and the engine.
        ledgers = sum(collateral.values()) + pool.pool_assets + snap.insurance_fund
        assert snap.token_balance == ledgers, "conservation broken"
        outside = sum(acc.token_balance for acc in accs)
        # The vault holds only what open requests escrowed: deposit tokens and LP shares.
        escrow = self.w.token.balanceOf(self.vault)
        assert escrow == sum(r.amount for r in self.requests.values() if r.is_deposit)
        escrowed_shares = sum(r.amount for r in self.requests.values() if not r.is_deposit)
        assert self.vault.balanceOf(self.vault) == self.vault.escrowed_shares() == escrowed_shares
        assert self.w.token.totalSupply() == outside + snap.token_balance + escrow
        assert pool.total_debt == sum(-c for c in collateral.values() if c < 0)
        # `priced_at` is a block time, which the mirror does not keep.
        assert replace(pool, priced_at=0) == m.pool_state(), "pool_state differs from the mirror"
        # A winner's unpaid profit is never forfeited: it is a claim, the mirror's and the
        # chain's alike, and the LPs' value is net of it.
        assert pool.claims == m.total_claims(), "claims differ from the mirror"
        assert pool.claims == sum(self.ledger.claims.values()), "events do not rebuild claims"
        # Claims against assets (the law the conservation line above cannot see, since it
        # counts a negative balance as an asset): the tokens cover every positive claim, the
        # positive collateral, the insurance fund and the backed pool (pool assets less debt),
        # i.e. the pool never holds less than the debt it was credited with.
        positive = sum(c for c in collateral.values() if c > 0)
        assert pool.pool_assets >= pool.total_debt, "pool pays out debt no token backs"
        assert snap.token_balance >= positive + snap.insurance_fund + (
            pool.pool_assets - pool.total_debt
        ), "tokens short of the positive claims"

        # The mirror and the event-only ledger (what an auditor rebuilds) agree with the chain.
        assert collateral == m.collateral, "collateral differs from the mirror"
        assert collateral == self.ledger.collateral, "events do not rebuild the collateral"
        assert (pool.pool_assets, snap.insurance_fund) == (m.pool, m.insurance)
        assert (self.ledger.pool_assets, self.ledger.insurance_fund) == (m.pool, m.insurance)
        assert snap.lp_supply == m.supply == self.ledger.lp_shares
        assert snap.free_liquidity == m.free_liquidity()
        assert pool.paused == m.paused
        assert len(snap.markets) == len(m.markets) == self.ch.market_count()
        assert (snap.keeper_share_bps, snap.max_partial_bps, snap.min_keeper_reward) == (
            m.keeper_share,
            m.max_partial,
            m.min_reward,
        )
        assert snap.pool_reserve_bps == m.reserve_bps
        gp, eth, premium, market, floor, max_reward, gas_margin = self.ch.keeper_reward_params()
        assert (max_reward, gas_margin) == (m.max_reward, m.gas_margin)
        if m.gas.on:
            assert (gp, eth, premium, market - 1, floor) == (
                m.gas.gas_price,
                m.gas.eth_price,
                m.gas.premium_bps,
                m.gas.eth_market,
                m.gas.floor,
            ), "the gas word differs from the mirror"
        else:
            assert market == 0
        for mid, (ms, mk) in enumerate(zip(snap.markets, m.markets, strict=True)):
            info = MarketInfo(*ms.info)  # nested structs decode as tuples
            assert (info.open_interest_long, info.open_interest_short) == (mk.long_oi, mk.short_oi)
            assert mk.long_oi == sum(max(p[mid][0], 0) for p in m.positions.values() if mid in p)
            assert mk.short_oi == sum(max(-p[mid][0], 0) for p in m.positions.values() if mid in p)
            rates = (info.initial_margin_bps, info.maintenance_margin_bps)
            assert rates + (info.liquidation_fee_bps, info.trading_fee_bps) == (
                mk.im,
                mk.mm,
                mk.liq,
                mk.trade,
            )
            assert (info.max_open_interest, info.min_position_notional) == (
                mk.max_oi,
                mk.min_notional,
            )
            trader_pnl = m.market_trader_pnl(mid)
            assert ms.trader_pnl == trader_pnl
            # The pool's aggregate view is the sum of the accounts' PnL, to rounding.
            mark = mk.price - mk.index_at(mk.price, m.time())
            per_account = sum(
                pnl(p[mid][0], p[mid][1], mark, SCALE) for p in m.positions.values() if mid in p
            )
            assert abs(ms.trader_pnl - per_account) <= len(self.holders) + 1

        for a in self.holders:
            acc, view = accounts[a], m.load(a)
            assert [p.market_id for p in acc.positions] == m.order[a], a
            listed = {p.market_id: (p.size, p.entry_price) for p in acc.positions}
            row = self.holders.index(a) * len(m.markets)
            for mid in range(len(m.markets)):
                pos = tuple(table[row + mid])
                assert pos == listed.get(mid, (0, 0)), (a, mid, pos)
                assert pos == m.position_view(a, mid), (a, mid, pos)
                assert pos == self.ledger.position(a, mid), (a, mid, pos)
            assert acc.lp_shares == m.shares.get(a, 0), a
            # Margin: equity and requirements as the spec defines them; both liquidatable
            # views agree with "has a position and equity < maintenance".
            status = statuses[a]
            assert (status.equity, status.maintenance, status.initial) == (
                view.equity,
                view.maintenance,
                view.initial,
            ), a
            flag = bool(view.legs) and status.equity < status.maintenance
            assert status.liquidatable == acc.liquidatable == flag, a

        # An account with no positions can always withdraw all its positive collateral
        # (simulated with eth_call for one such account per step, in rotation; the
        # `withdraw_everything_when_flat` action does it for real).
        flat = [a for a in self.holders if not m.positions[a] and m.collateral[a] > 0]
        if flat:
            a = flat[STATS["steps"] % len(flat)]
            self.ch.withdraw.call(m.collateral[a], sender=self.account(a))
            STATS["flat_withdraw_simulated"] += 1

        # LP share price falls only with socialised bad debt or realised trader profit.
        # Checked on the realised price (pool assets per share): since commit 44a26b3 the
        # redemption price `convert_to_assets` also marks open positions to the oracle, so
        # an oracle update (or new uncovered account debt) moves it too.
        realised = (
            SHARE_PROBE * (pool.pool_assets + VIRTUAL_ASSETS) // (snap.lp_supply + VIRTUAL_SHARES)
        )
        socialised = any(n == "BadDebtSettled" and e["socialised"] > 0 for n, e in self.step_logs)
        profit = any(n == "PositionChanged" and e["realized_pnl"] > 0 for n, e in self.step_logs)
        # An LP flow at the one net value moves it too when that value differs from the pool
        # assets (a deposit into a pool owing paper profit pays less than assets per share);
        # the redemption-price law below holds LP flows to the net value.
        lp_flow = any(n in ("LiquidityAdded", "LiquidityRemoved") for n, _ in self.step_logs)
        if realised < self.realised_price:
            assert socialised or profit or lp_flow, (
                "LP share price fell",
                realised,
                self.step_logs,
            )
            STATS["share_price_drops"] += 1
        self.realised_price = realised
        nav_price = snap.share_price
        assert nav_price == m.to_assets(SHARE_PROBE)
        # The redemption value subtracts account debt in full (a redeemer leaves it behind),
        # so a trade that realises a loss beyond the account's collateral while another
        # position carries the account lowers it by at most the new debt (found by
        # `make fuzz`: the debt is backed only by paper profit the conservative value ignores).
        redeem_nav = m.redeem_nav()
        collectable = min(pool.trader_loss, pool.trader_collateral)
        if nav_price < self.nav_price:
            uncovered = any(n == "BadDebtSettled" and e["uncovered"] > 0 for n, e in self.step_logs)
            if not (socialised or profit or uncovered or self.price_moved or self.time_moved):
                # The collectable open losses are capped by all traders' positive collateral
                # (an upper bound): a healthy account's withdrawal lowers the cap when the
                # losses exceed it, and the value with it (found by `make fuzz`).
                cap_fall = max(0, self.collectable - collectable)
                debt_rise = pool.total_debt - self.debt + cap_fall
                assert 0 < self.redeem_nav - redeem_nav <= debt_rise, (
                    "LP redemption price fell",
                    self.nav_price,
                    nav_price,
                    self.step_logs,
                )
                STATS["nav_price_drops_on_new_debt"] += 1
            STATS["nav_price_drops"] += 1
        self.nav_price = nav_price
        self.redeem_nav = redeem_nav
        self.debt = pool.total_debt
        self.collectable = collectable
        self.price_moved = False
        self.time_moved = self.accruing()  # the next step's block time is later
        self.step_logs = []
        self.check_funding()

    def check_funding(self) -> None:
        """Funding is paid, never made: in every funding market, what the traders settled
        (FundingSettled, from the events alone) and still owe or are owed (the chain's
        `accrued_funding`) is what the pool took the other side of (its skew times every
        index change), to a unit of rounding per settlement and per open position; and each
        account's accrued funding is the mirror's."""
        m = self.m
        for mid in self.funding_markets:
            mk = m.markets[mid]
            assert mk.funding is not None
            info = self.ch.market_funding(mid)
            now = mk.funding_at(mk.price, m.time())
            assert (info.funding_rate, info.funding_index) == (now.rate_wad, now.index), mid
            assert info.updated_at == mk.funding.updated_at, mid
            assert (info.skew_scale, info.max_funding_velocity) == (
                mk.funding.skew_scale,
                mk.funding.max_velocity,
            )
            settled = self.ledger.funding_received.get(mid, 0) - self.ledger.funding_paid.get(
                mid, 0
            )
            holders = [a for a in self.holders if mid in m.positions[a]]
            open_ = sum(m.funding_due(a, mid, m.positions[a][mid][0], now.index) for a in holders)
            pool_side = mk.skew_index + mk.skew * (now.index - mk.funding.index)
            traders = Fraction(settled + open_)
            slack = self.ledger.counts["FundingSettled"] + len(holders) + 1
            assert abs(traders + Fraction(pool_side, WAD * SCALE)) <= slack, (
                "funding made or lost",
                mid,
                settled,
                open_,
                pool_side,
            )
        for a in self.holders:
            if any(mid in m.positions[a] for mid in self.funding_markets):
                assert self.ch.accrued_funding(a) == m.accrued_funding(a), a


_CORE_EVENTS = {
    "PositionChanged",
    "FundingSettled",
    "Liquidated",
    "BadDebtSettled",
    "ProfitHaircut",
    "Deposited",
    "Withdrawn",
    "LiquidityAdded",
    "LiquidityRemoved",
}
