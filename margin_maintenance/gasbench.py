"""Deterministic gas figures for every external function, in representative states.

"Representative" means warm protocol state, as on a live deployment: the market already has
open interest, the pool and the insurance fund hold assets, and the liquidator already has a
collateral balance (so its reward credit is a non-zero to non-zero write). Each figure is the
gas a transaction uses to land (21,000 intrinsic gas included). Keeper rewards are credited to
the liquidator's collateral inside the engine; no ERC20 transfer is included in liquidations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from margin_maintenance.system import WAD, SystemParams, deploy_system

ETH, BTC = 0, 1
MAX_UINT = 2**256 - 1


@dataclass(frozen=True)
class GasRow:
    function: str
    case: str
    gas: int
    per_account: int | None = None
    target: str = ""


def _funded_actor(
    accounts: Any, sysm: Any, deployer: Any, usd: float, deposit: bool = False
) -> Any:
    """A fresh account with gas, `usd` whole tokens approved to the engine (and deposited)."""
    a = accounts.generate_test_account()
    deployer.transfer(a, 10**18)
    amount = round(usd * sysm.unit)
    sysm.token.mint(a, amount, sender=deployer)
    sysm.token.approve(sysm.clearinghouse, MAX_UINT, sender=a)
    if deposit:
        sysm.clearinghouse.deposit(amount, sender=a)
    return a


def _fmt(n: int | None) -> str:
    return "" if n is None else f"{n:,}"


def rows_to_markdown(rows: list[GasRow]) -> str:
    lines = [
        "| function | case | gas | gas per account | SPEC §9 target |",
        "|---|---|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| `{r.function}` | {r.case} | {_fmt(r.gas)} | {_fmt(r.per_account)} | {r.target} |"
        )
    return "\n".join(lines)


def measure(
    project: Any, accounts: Any, chain: Any, progress: Callable[[str], None]
) -> list[GasRow]:
    """Deploy a fresh system on the connected chain and measure each function."""
    deployer = accounts[0]
    sysm = deploy_system(project, deployer, deployer, SystemParams())
    ch, token = sysm.clearinghouse, sysm.token
    unit = sysm.unit
    rows: list[GasRow] = []

    def funded(usd: float) -> Any:
        return _funded_actor(accounts, sysm, deployer, usd)

    def set_price(market: int, usd: float) -> None:
        sysm.aggregators[market].set_price(round(usd * 10**8), sender=deployer)

    def trade(who: Any, market: int, units: float) -> Any:
        size = round(units * WAD)
        return ch.trade(market, size, MAX_UINT if size > 0 else 0, sender=who)

    progress("pool, insurance and warm markets")
    lp = funded(10_000_000)
    tx = sysm.vault.add_liquidity(5_000_000 * unit, 0, sender=lp)
    rows.append(GasRow("add_liquidity", "first LP (mints shares)", tx.gas_used))
    tx = sysm.vault.add_liquidity(1_000_000 * unit, 0, sender=lp)
    rows.append(GasRow("add_liquidity", "later deposit", tx.gas_used))
    tx = sysm.vault.remove_liquidity(sysm.vault.balanceOf(lp) // 60, 0, sender=lp)
    rows.append(GasRow("remove_liquidity", "no open interest (instant)", tx.gas_used))
    token.mint(deployer, 100_000 * unit, sender=deployer)
    token.approve(ch, MAX_UINT, sender=deployer)
    tx = ch.fund_insurance(100_000 * unit, sender=deployer)
    rows.append(GasRow("fund_insurance", "", tx.gas_used))
    warm = funded(100_000)
    ch.deposit(100_000 * unit, sender=warm)
    trade(warm, ETH, -5)
    trade(warm, BTC, -0.5)

    progress("deposit, trade, withdraw")
    t = funded(10_000)
    tx = ch.deposit(5_000 * unit, sender=t)
    rows.append(GasRow("deposit", "first deposit", tx.gas_used))
    tx = ch.deposit(1_000 * unit, sender=t)
    rows.append(GasRow("deposit", "top-up", tx.gas_used))
    tx = trade(t, ETH, 10)
    rows.append(GasRow("trade", "open (market has OI)", tx.gas_used, target="<= 120,000"))
    tx = trade(t, ETH, 2)
    rows.append(GasRow("trade", "increase", tx.gas_used))
    tx = trade(t, ETH, -4)
    rows.append(GasRow("trade", "reduce", tx.gas_used))
    tx = trade(t, ETH, -16)
    rows.append(GasRow("trade", "flip long to short", tx.gas_used))
    tx = trade(t, BTC, 0.2)
    rows.append(GasRow("trade", "open 2nd market", tx.gas_used))
    tx = trade(t, ETH, 8)
    rows.append(GasRow("trade", "close (2 positions held)", tx.gas_used))
    tx = ch.withdraw(100 * unit, sender=t)
    rows.append(GasRow("withdraw", "with 1 open position", tx.gas_used))
    trade(t, BTC, -0.2)
    tx = ch.withdraw(100 * unit, sender=t)
    rows.append(GasRow("withdraw", "no positions", tx.gas_used))

    progress("LP requests (open interest on 2 markets)")
    vault = sysm.vault
    token.approve(vault, MAX_UINT, sender=lp)
    first = vault.request_count()
    tx = vault.request_deposit(100_000 * unit, 0, sender=lp)
    rows.append(GasRow("request_deposit", "escrow", tx.gas_used))
    tx = vault.request_withdrawal(vault.balanceOf(lp) // 10, 0, sender=lp)
    rows.append(GasRow("request_withdrawal", "escrow", tx.gas_used))
    chain.pending_timestamp = chain.pending_timestamp + 1
    for agg in sysm.aggregators:  # a price newer than the requests on every market
        agg.set_price(agg.latestRoundData()[1], sender=deployer)
    tx = vault.execute_request(first, sender=deployer)
    rows.append(GasRow("execute_request", "deposit, 2 markets with OI", tx.gas_used))
    tx = vault.execute_request(first + 1, sender=deployer)
    rows.append(GasRow("execute_request", "withdrawal, 2 markets with OI", tx.gas_used))

    keeper = funded(10)
    ch.deposit(10 * unit, sender=keeper)

    def victim(markets: list[int], margin_usd: float) -> Any:
        v = funded(margin_usd)
        ch.deposit(round(margin_usd * unit), sender=v)
        per = margin_usd * 9 / len(markets)
        for m in markets:
            trade(v, m, per / (2_000 if m == ETH else 60_000))
        return v

    def reset_prices() -> None:
        set_price(ETH, 2_000)
        set_price(BTC, 60_000)

    progress("single liquidations")
    for label, markets, drop in (
        ("partial, 1 position", [ETH], 0.93),
        ("full, 1 position", [ETH], 0.91),
        ("partial, 2 positions", [ETH, BTC], 0.93),
        ("full, 2 positions", [ETH, BTC], 0.91),
    ):
        reset_prices()
        v = victim(markets, 1_000)
        set_price(ETH, 2_000 * drop)
        set_price(BTC, 60_000 * drop)
        frac, _, _ = ch.liquidation_preview(v)
        tx = ch.liquidate(v, sender=keeper)
        kind = "full" if frac == WAD else "partial"
        target = "<= 100,000 (goal 90,000)" if markets == [ETH] and kind == "full" else ""
        rows.append(GasRow("liquidate", f"{label} ({kind})", tx.gas_used, target=target))

    for n in (1, 10, 50):
        progress(f"liquidate_many x{n}")
        reset_prices()
        victims = [victim([ETH], 1_000) for _ in range(n)]
        set_price(ETH, 2_000 * 0.91)
        tx = ch.liquidate_many([v.address for v in victims], sender=keeper)
        per = tx.gas_used // n
        target = "<= 45,000/account (goal 40,000)" if n == 50 else ""
        rows.append(
            GasRow(
                "liquidate_many", f"{n} accounts, 1 position each, full", tx.gas_used, per, target
            )
        )
    reset_prices()
    rows += _gas_priced_rows(project, accounts, chain, progress)
    rows += _funding_rows(project, accounts, chain, progress)
    rows += _signed_rows(project, accounts, chain, progress)
    return rows


def _gas_priced_rows(
    project: Any, accounts: Any, chain: Any, progress: Callable[[str], None], on: bool = True
) -> list[GasRow]:
    """The trading and liquidation paths with the keeper reward's gas pricing on (ETH/USD from
    the ETH market, a 1 gwei floor): each case in a new block, so the gas word steps (read
    with the account load's liquidation parameters, written once at the end)."""
    progress("keeper reward gas pricing on")
    deployer = accounts[0]
    sysm = deploy_system(project, deployer, deployer, SystemParams())
    ch, unit = sysm.clearinghouse, sysm.unit
    if on:
        sysm.configurator.set_keeper_reward(
            50 * unit, unit // 2, 2_000, ETH, 10**9, sender=deployer
        )
    rows: list[GasRow] = []

    def funded(usd: float) -> Any:
        return _funded_actor(accounts, sysm, deployer, usd, deposit=True)

    def set_price(usd: float) -> None:
        sysm.aggregators[ETH].set_price(round(usd * 10**8), sender=deployer)

    def trade(who: Any, market: int, units: float) -> Any:
        size = round(units * WAD)
        return ch.trade(market, size, MAX_UINT if size > 0 else 0, sender=who)

    sysm.token.mint(deployer, 5_100_000 * unit, sender=deployer)
    sysm.token.approve(ch, MAX_UINT, sender=deployer)
    sysm.vault.add_liquidity(5_000_000 * unit, 0, sender=deployer)
    ch.fund_insurance(100_000 * unit, sender=deployer)
    trade(funded(100_000), ETH, -5)  # the market has open interest
    keeper = funded(10)
    t = funded(10_000)
    rows.append(GasRow("trade", "open (market has OI), gas pricing on", trade(t, ETH, 10).gas_used))
    rows.append(GasRow("trade", "open, BTC (ETH price not read), gas pricing on",
                       trade(t, BTC, 0.1).gas_used))  # fmt: skip

    def victim() -> Any:
        v = funded(1_000)
        trade(v, ETH, 4.5)
        return v

    rows += _liquidation_rows(ch, keeper, victim, set_price, "gas pricing on", progress)
    return rows


def _liquidation_rows(
    ch: Any,
    keeper: Any,
    victim: Callable[[], Any],
    move: Callable[[float], None],
    suffix: str,
    progress: Callable[[str], None],
) -> list[GasRow]:
    """One ETH position's partial and full liquidation, then batches of 10 and 50: each
    victim opened at 2,000 USD (`move` sets the ETH price, with whatever else the case's
    clock needs) and liquidated after a 7% or 9% drop."""
    rows: list[GasRow] = []
    for label, drop in (("partial, 1 position", 0.93), ("full, 1 position", 0.91)):
        move(2_000)
        v = victim()
        move(2_000 * drop)
        frac, _, _ = ch.liquidation_preview(v)
        tx = ch.liquidate(v, sender=keeper)
        kind = "full" if frac == WAD else "partial"
        rows.append(GasRow("liquidate", f"{label} ({kind}), {suffix}", tx.gas_used))
    for n in (10, 50):
        progress(f"liquidate_many x{n}, {suffix}")
        move(2_000)
        victims = [victim() for _ in range(n)]
        move(2_000 * 0.91)
        tx = ch.liquidate_many([v.address for v in victims], sender=keeper)
        case = f"{n} accounts, 1 position each, full, {suffix}"
        rows.append(GasRow("liquidate_many", case, tx.gas_used, tx.gas_used // n))
    return rows


# The bench's funding parameters: a scale twice the ETH cap (1,000,000 ETH: a 0.000025% premium
# per ETH of skew) and a 3% per day per day velocity; the figures do not depend on their values.
FUNDING_SKEW_SCALE = 2_000_000  # whole ETH
FUNDING_VELOCITY_BPS = 300


def _funding_rows(
    project: Any, accounts: Any, chain: Any, progress: Callable[[str], None]
) -> list[GasRow]:
    """The trading and liquidation paths on a market with funding on, each an hour after the
    market's last touch (so every case records the accrual: one word read and written)."""
    progress("funding on")
    deployer = accounts[0]
    sysm = deploy_system(project, deployer, deployer, SystemParams())
    ch, token, unit = sysm.clearinghouse, sysm.token, sysm.unit
    sysm.configurator.set_market_funding(
        ETH, FUNDING_SKEW_SCALE, FUNDING_VELOCITY_BPS, sender=deployer
    )
    rows: list[GasRow] = []

    def funded(usd: float) -> Any:
        return _funded_actor(accounts, sysm, deployer, usd, deposit=True)

    def later(usd: float = 2_000) -> None:
        """An hour on, with a fresh answer: the next touch accrues an hour of funding."""
        chain.pending_timestamp = chain.pending_timestamp + 3_600
        for m, agg in enumerate(sysm.aggregators):
            price = usd if m == ETH else 60_000
            agg.set_price(round(price * 10**8), sender=deployer)

    def trade(who: Any, units: float) -> Any:
        size = round(units * WAD)
        return ch.trade(ETH, size, MAX_UINT if size > 0 else 0, sender=who)

    token.mint(deployer, 5_100_000 * unit, sender=deployer)
    token.approve(ch, MAX_UINT, sender=deployer)
    sysm.vault.add_liquidity(5_000_000 * unit, 0, sender=deployer)
    ch.fund_insurance(100_000 * unit, sender=deployer)
    warm = funded(100_000)
    trade(warm, -5)
    keeper = funded(10)
    t = funded(10_000)
    for label, units in (("open, funding on", 10), ("increase", 2), ("reduce", -4)):
        later()
        rows.append(GasRow("trade", label, trade(t, units).gas_used))
    later()
    rows.append(GasRow("trade", "close, funding on", trade(t, -8).gas_used))
    later()
    rows.append(GasRow("trade", "reopen (its basis slot written before)", trade(t, 10).gas_used))

    def victim() -> Any:
        v = funded(1_000)
        trade(v, 4.5)
        return v

    rows += _liquidation_rows(ch, keeper, victim, later, "funding on", progress)
    return rows


def _signed_rows(
    project: Any, accounts: Any, chain: Any, progress: Callable[[str], None]
) -> list[GasRow]:
    """The signed-price entry points on a system whose markets read them (warm: each feed has
    an earlier report, so storing the next is a non-zero to non-zero write)."""
    from margin_maintenance.attest import Report, encode_updates

    progress("signed prices")
    deployer = accounts[0]
    sysm = deploy_system(project, deployer, deployer, SystemParams(signed_prices=True))
    ch, unit = sysm.clearinghouse, sysm.unit
    chain_id, verifier = int(chain.chain_id), str(sysm.verifier.address)
    rows: list[GasRow] = []

    def funded(usd: float) -> Any:
        return _funded_actor(accounts, sysm, deployer, usd)

    def update(prices: dict[int, float], signers: int | None = None) -> bytes:
        chain.pending_timestamp = chain.pending_timestamp + 2  # a newer report each time
        at = chain.pending_timestamp - 1
        return encode_updates(
            [
                sysm.signer_set.sign(
                    Report(sysm.feed_ids[m], round(usd * WAD), 0, at), chain_id, verifier, signers
                )
                for m, usd in prices.items()
            ]
        )

    def push(market: int, usd: float) -> None:
        sysm.aggregators[market].set_price(round(usd * 10**8), sender=deployer)

    lp = funded(10_000_000)
    sysm.vault.add_liquidity(5_000_000 * unit, 0, sender=lp)
    ch.fund_insurance(100_000 * unit, sender=lp)
    for m, usd in ((ETH, 2_000), (BTC, 60_000)):
        warm = funded(100_000)
        ch.deposit(50_000 * unit, sender=warm)
        ch.trade(m, round(10_000 / usd * WAD), MAX_UINT, sender=warm)
    ch.update_prices(update({ETH: 2_000, BTC: 60_000}), sender=lp)
    keeper = funded(10)
    ch.deposit(10 * unit, sender=keeper)
    trader = funded(10_000)
    ch.deposit(5_000 * unit, sender=trader)
    v = funded(1_000)
    ch.deposit(1_000 * unit, sender=v)
    ch.trade(ETH, round(9_000 / 2_000 * WAD), MAX_UINT, sender=v)
    victims = []
    for _ in range(10):
        x = funded(1_000)
        ch.deposit(1_000 * unit, sender=x)
        ch.trade(ETH, round(9_000 / 2_000 * WAD), MAX_UINT, sender=x)
        victims.append(x.address)

    def on_copy(send: Callable[[], Any]) -> int:
        """Gas of `send()` from the state above, which is restored after it: every case
        starts from the same storage."""
        snap = chain.snapshot()
        try:
            return int(send().gas_used)
        finally:
            chain.restore(snap)

    one = on_copy(lambda: ch.update_prices(update({ETH: 2_000}), sender=keeper))
    rows.append(GasRow("update_prices", "1 report, 3 of 5 signers", one))
    two = on_copy(lambda: ch.update_prices(update({ETH: 2_000, BTC: 60_000}), sender=keeper))
    rows.append(GasRow("update_prices", "2 reports (per extra market)", two, two - one))
    five = on_copy(lambda: ch.update_prices(update({ETH: 2_000}, 5), sender=keeper))
    rows.append(
        GasRow("update_prices", "1 report, 5 of 5 (per extra signer)", five, (five - one) // 2)
    )
    gas = on_copy(
        lambda: ch.trade_with_prices(update({ETH: 2_000}), ETH, WAD, MAX_UINT, sender=trader)
    )
    rows.append(GasRow("trade_with_prices", "open (market has OI), 3 of 5", gas))
    plain = on_copy(lambda: ch.trade(ETH, WAD, MAX_UINT, sender=trader))
    rows.append(GasRow("trade", "open, same state, no update (signed feed read)", plain))
    gas = on_copy(
        lambda: ch.liquidate_with_prices(update({ETH: 1_820}), [v.address], sender=keeper)
    )
    rows.append(
        GasRow("liquidate_with_prices", "full, 1 position, 3 of 5", gas, target="<= 110,000")
    )
    gas5 = on_copy(
        lambda: ch.liquidate_with_prices(update({ETH: 1_820}, 5), [v.address], sender=keeper)
    )
    rows.append(GasRow("liquidate_with_prices", "full, 1 position, 5 of 5", gas5))
    gas = on_copy(lambda: ch.liquidate_with_prices(update({ETH: 1_820}), victims, sender=keeper))
    rows.append(GasRow("liquidate_with_prices", "10 accounts, 3 of 5", gas, gas // 10))
    ch.update_prices(update({ETH: 1_820}), sender=keeper)  # stored: a later liquidation reads it
    gas = on_copy(lambda: ch.liquidate(v, sender=keeper))
    rows.append(GasRow("liquidate", "full, 1 position, signed price stored earlier", gas))
    return rows
