"""Every balance of the engine rebuilt from its events alone: what an auditor can prove with no
access to the engine's storage. `audit.py` compares it with the chain; the invariant state
machine with the chain and the engine mirror after every step.

The ledger moves, event by event (all amounts in collateral-token units):

    Deposited         collateral[account] += amount
    Withdrawn         collateral[account] -= amount
    PositionChanged   collateral[account] += realized_pnl - fee
                      pool_assets         += fee - realized_pnl   (the pool is the counterparty)
    Liquidated        collateral[account] -= fee;  collateral[liquidator] += keeper_reward
                      insurance_fund      += insurance_delta
                                          (= fee - keeper_reward + from_pool)
    KeeperRewardPriced pool_assets -= from_pool  (a bankrupt account's reward, fund empty)
    BadDebtSettled    collateral[account] += insurance_covered + socialised
                      insurance_fund -= insurance_covered;  pool_assets -= socialised
    InsuranceFunded   insurance_fund += amount
    LiquidityAdded    pool_assets += assets;  LP shares += shares
    LiquidityRemoved  pool_assets -= assets;  LP shares -= shares
    ProfitHaircut     claims[account] += owed - paid  (realized_pnl carries what was paid)
    ClaimSettled      collateral[account] += paid;  pool_assets -= paid;  claims -= paid
    FundingSettled    funding[account] += funding (itemised only: the PositionChanged that
                      follows it carries the same funding in its realized_pnl); funding paid
                      (< 0) and received (> 0) summed apart, per market

Positions are rebuilt too (the last `new_size` of each account and market), and with them the
open interest per side. Conservation: the engine's token balance equals the sum of all
collateral (negative = debt) plus pool assets plus the insurance fund.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Ledger:
    """Balances rebuilt from events."""

    collateral: dict[str, int] = field(default_factory=dict)
    pool_assets: int = 0
    insurance_fund: int = 0
    lp_shares: int = 0
    positions: dict[tuple[str, int], int] = field(default_factory=dict)  # last new_size (WAD)
    entries: dict[tuple[str, int], int] = field(default_factory=dict)  # entry price of open ones
    counts: Counter[str] = field(default_factory=Counter)
    haircut_total: int = 0  # sum of (owed - paid) over ProfitHaircut
    claims: dict[str, int] = field(default_factory=dict)  # unpaid profit still owed
    bad_debt_total: int = 0
    socialised_total: int = 0
    pool_rewards_total: int = 0  # keeper rewards the pool paid (KeeperRewardPriced)
    keeper_rewards_total: int = 0
    funding: dict[str, int] = field(default_factory=dict)  # funding settled per account (+ in)
    funding_paid: dict[int, int] = field(default_factory=dict)  # per market, what payers settled
    funding_received: dict[int, int] = field(default_factory=dict)  # per market, what receivers got
    # the index each open position's funding was last settled at (FundingSettled)
    funding_basis: dict[tuple[str, int], int] = field(default_factory=dict)

    @property
    def total_collateral(self) -> int:
        return sum(self.collateral.values())

    @property
    def total_debt(self) -> int:
        return sum(-c for c in self.collateral.values() if c < 0)

    def position(self, account: str, market: int) -> tuple[int, int]:
        """(size, entry price) of one position, (0, 0) when flat."""
        key = (str(account), int(market))
        return self.positions.get(key, 0), self.entries.get(key, 0)

    def open_interest(self) -> dict[int, tuple[int, int]]:
        """(long, short) per market, WAD base units."""
        oi: dict[int, tuple[int, int]] = {}
        for (_, market), size in self.positions.items():
            long_, short = oi.get(market, (0, 0))
            oi[market] = (long_ + max(size, 0), short + max(-size, 0))
        return oi


def _credit(ledger: Ledger, account: Any, amount: int) -> None:
    key = str(account)
    ledger.collateral[key] = ledger.collateral.get(key, 0) + int(amount)


def apply_event(ledger: Ledger, e: Mapping[str, Any]) -> None:
    """Apply one decoded event (a dict with "event" and the event's fields)."""
    name = e["event"]
    ledger.counts[name] += 1
    if name == "Deposited":
        _credit(ledger, e["account"], e["amount"])
    elif name == "Withdrawn":
        _credit(ledger, e["account"], -e["amount"])
    elif name == "PositionChanged":
        _credit(ledger, e["account"], e["realized_pnl"] - e["fee"])
        ledger.pool_assets += e["fee"] - e["realized_pnl"]
        key = (str(e["account"]), int(e["market_id"]))
        ledger.positions[key] = int(e["new_size"])
        # The engine re-enters every changed position at the execution price.
        if e["new_size"] == 0:
            ledger.entries.pop(key, None)
        else:
            ledger.entries[key] = int(e["price"])
    elif name == "Liquidated":
        _credit(ledger, e["account"], -e["fee"])
        _credit(ledger, e["liquidator"], e["keeper_reward"])
        ledger.insurance_fund += e["insurance_delta"]
        ledger.keeper_rewards_total += e["keeper_reward"]
    elif name == "KeeperRewardPriced":
        ledger.pool_assets -= e["from_pool"]
        ledger.pool_rewards_total += e["from_pool"]
    elif name == "BadDebtSettled":
        _credit(ledger, e["account"], e["insurance_covered"] + e["socialised"])
        ledger.insurance_fund -= e["insurance_covered"]
        ledger.pool_assets -= e["socialised"]
        ledger.bad_debt_total += e["bad_debt"]
        ledger.socialised_total += e["socialised"]
    elif name == "InsuranceFunded":
        ledger.insurance_fund += e["amount"]
    elif name == "LiquidityAdded":
        ledger.pool_assets += e["assets"]
        ledger.lp_shares += e["shares"]
    elif name == "LiquidityRemoved":
        ledger.pool_assets -= e["assets"]
        ledger.lp_shares -= e["shares"]
    elif name == "FundingSettled":
        account, market, amount = str(e["account"]), int(e["market_id"]), int(e["funding"])
        ledger.funding[account] = ledger.funding.get(account, 0) + amount
        book = ledger.funding_received if amount > 0 else ledger.funding_paid
        book[market] = book.get(market, 0) + abs(amount)
        ledger.funding_basis[(account, market)] = int(e["funding_index"])
    elif name == "ProfitHaircut":
        ledger.haircut_total += e["owed"] - e["paid"]
        ledger.claims[e["account"]] = ledger.claims.get(e["account"], 0) + e["owed"] - e["paid"]
    elif name == "ClaimSettled":
        _credit(ledger, e["account"], e["paid"])
        ledger.pool_assets -= e["paid"]
        ledger.claims[e["account"]] -= e["paid"]
    # Any other event moves no balance.
