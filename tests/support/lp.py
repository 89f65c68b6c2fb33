"""LP capital moved the way it must move while a market has open interest: a request, fresh
prices, then its execution (instant `add_liquidity` / `remove_liquidity` are refused then:
"vault: pool exposed")."""

from __future__ import annotations

from typing import Any

from ape import chain

REQUEST_TIMEOUT = 86_400  # LPVault.REQUEST_TIMEOUT: seconds before an owner may cancel


def refresh_prices(system: Any, owner: Any, dt: int = 1) -> None:
    """`dt` seconds later every feed answers again at its current price: what an execution
    waits for (a price newer than the request), with no price moved."""
    chain.pending_timestamp = chain.pending_timestamp + dt
    for agg in system.aggregators:
        agg.set_price(agg.latestRoundData()[1], sender=owner)


def executed(system: Any, tx: Any) -> Any:
    [log] = tx.decode_logs(system.vault.RequestExecuted)
    return log


def deposit_by_request(
    system: Any, owner: Any, who: Any, amount: int, min_shares: int = 0, executor: Any = None
) -> Any:
    """`who` (holding `amount` tokens) requests a deposit; prices refresh; `executor` (the
    owner by default) executes it for the fee. The `RequestExecuted` log."""
    vault = system.vault
    system.token.approve(vault, amount, sender=who)
    request_id = vault.request_count()
    vault.request_deposit(amount, min_shares, sender=who)
    refresh_prices(system, owner)
    return executed(system, vault.execute_request(request_id, sender=executor or owner))


def withdraw_by_request(
    system: Any, owner: Any, who: Any, shares: int, min_assets: int = 0, executor: Any = None
) -> Any:
    """`who` requests the redemption of `shares`; prices refresh; `executor` (the owner by
    default) executes it. The `RequestExecuted` log (`assets` is what `who` received)."""
    vault = system.vault
    request_id = vault.request_count()
    vault.request_withdrawal(shares, min_assets, sender=who)
    refresh_prices(system, owner)
    return executed(system, vault.execute_request(request_id, sender=executor or owner))
