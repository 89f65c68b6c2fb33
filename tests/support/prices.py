"""Signed price updates for the tests: reports signed by a deployed system's signer set."""

from __future__ import annotations

from typing import Any

import ape

from margin_maintenance.attest import Report, encode_updates


def report(
    system: Any, market: int, price: int | None = None, at: int | None = None, conf: int = 0
):
    """A report for `market` at `price` (WAD; default: its push feed's price now), published at
    `at` (default: one second before the next block)."""
    if price is None:
        price = int(system.push_feeds[market].price_data()[0])
    if at is None:
        at = int(ape.chain.pending_timestamp) - 1
    return Report(system.feed_ids[market], price, conf, at)


def sign(system: Any, r: Report, count: int | None = None, verifier: Any = None):
    """`r` signed by the first `count` signers (k by default) for the system's verifier."""
    target = verifier if verifier is not None else system.verifier
    return system.signer_set.sign(r, int(ape.chain.chain_id), str(target.address), count)


def signed_update(system: Any, market: int, **kw: Any) -> bytes:
    """One report for `market`, signed by k signers, as the `updates` blob."""
    return encode_updates([sign(system, report(system, market, **kw))])
