"""What the engine's bot-facing views return (`IClearinghouse`), one definition each."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class AccountStatus:
    """One row of `margin_status` (`IClearinghouse.AccountStatus`), token units."""

    account: str
    equity: int  # collateral + unrealised PnL
    maintenance: int  # maintenance requirement (rounded up)
    initial: int  # initial requirement (rounded up)
    liquidatable: bool  # has a position and equity < maintenance

    @property
    def has_position(self) -> bool:
        """Every open position carries a maintenance requirement (rates are > 0)."""
        return self.maintenance > 0

    @property
    def shortfall(self) -> int:
        """How far equity is below the maintenance requirement (negative when healthy)."""
        return self.maintenance - self.equity

    @property
    def margin_ratio(self) -> float:
        """equity / maintenance: below 1 is liquidatable (inf without a position)."""
        return self.equity / self.maintenance if self.maintenance else math.inf


@dataclass(frozen=True)
class Preview:
    """`liquidation_preview(account)` (`IClearinghouse.LiquidationPreview`): what a
    liquidation by a third party would do now."""

    fraction: int  # WAD share of every position closed; 0 = healthy
    reward: int  # keeper reward, token units
    bad_debt: int  # token units a full close would leave uncovered by the account
