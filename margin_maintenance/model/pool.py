"""The LP pool's share maths, bit for bit as `Clearinghouse._to_shares` / `_to_assets` do it:
a virtual offset against the first-depositor inflation attack, both directions rounded down
(nobody gets more than they paid for or more than their shares are worth). `nav` is the
pool value the engine prices against: `_deposit_nav` for entries, `_redeem_nav` for exits.
"""

from __future__ import annotations

from .constants import VIRTUAL_ASSETS, VIRTUAL_SHARES


def to_shares(assets: int, supply: int, nav: int) -> int:
    """`Clearinghouse._to_shares`: shares minted for `assets`."""
    return assets * (supply + VIRTUAL_SHARES) // (nav + VIRTUAL_ASSETS)


def to_assets(shares: int, supply: int, nav: int) -> int:
    """`Clearinghouse._to_assets`: assets paid for `shares`."""
    return shares * (nav + VIRTUAL_ASSETS) // (supply + VIRTUAL_SHARES)
