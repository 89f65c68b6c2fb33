from support.constants import ETH
from support.deployers import engine_ledger_total


def test_open_and_liquidate__price_drop__keeper_paid(
    ch, token, deposit, seeded_pool, open_position, set_price, trader, liquidator, accounts
):
    deposit(trader, 1_000)
    tx = open_position(trader, ETH, 4)  # 8,000 USD notional, 8x
    print("trade open gas", tx.gas_used)
    assert ch.equity(trader) > 0
    set_price(ETH, 1_800)  # -800 USD: equity ~196 < mm 360
    assert ch.is_liquidatable(trader)
    print("preview", ch.liquidation_preview(trader))
    tx = ch.liquidate(trader, sender=liquidator)
    print("liquidate gas", tx.gas_used, tx.return_value)
    for log in tx.events:
        print(log.event_name, dict(log.event_arguments))
    print(
        "position",
        ch.position(trader, ETH),
        "equity",
        ch.equity(trader),
        "imr",
        ch.initial_requirement(trader),
        "mmr",
        ch.maintenance_requirement(trader),
    )
    assert token.balanceOf(ch) == engine_ledger_total(ch, accounts)
