"""Signed prices: the PriceVerifier (k-of-n EIP-712 reports), the SignedPriceFeed adapter
the engine reads, and the engine's `update_prices` / `trade_with_prices` /
`liquidate_with_prices`.

Every refusal is a clear revert with a test; a report accepted is the market's latest price
for later transactions too; a liquidation goes through on a fresh signed price while the push
feed is stale, even past its stale window, and a trade takes a younger report than a
liquidation may use.
"""

from __future__ import annotations

from dataclasses import replace

import ape
import pytest
from eth_account import Account
from support.constants import (
    ETH,
    FEED_DECIMALS,
    HEARTBEAT,
    MAX_PRICE,
    MAX_UINT,
    STALE_WINDOW,
    USDC,
    WAD,
)
from support.deployers import fund_and_approve
from support.prices import report, sign, signed_update

from margin_maintenance.attest import Report, SignedReport, encode_updates
from margin_maintenance.attest import codec as attest
from margin_maintenance.system import SystemParams, deploy_system

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
MAX_AGE = 120  # the default markets' signed_liquidation_max_age_s
TRADE_AGE = 60  # signed_trade_max_age_s


@pytest.fixture
def signed(project, deployer, guardian):
    """A system whose markets read signed prices (SignedPriceFeed over each push feed)."""
    return deploy_system(project, deployer, guardian, SystemParams(signed_prices=True))


@pytest.fixture
def verifier(signed):
    return signed.verifier


def attested(tx, verifier) -> list:
    return tx.decode_logs(verifier.PriceAttested)


def later(chain, seconds: int) -> None:
    chain.pending_timestamp = chain.pending_timestamp + seconds
    chain.mine()


# ---- The message: what the signers sign is what the contract checks ----


def test_digest__python_codec__equals_the_contracts(signed, verifier, chain):
    r = report(signed, ETH, price=2_000 * WAD, conf=WAD, at=1_234)
    assert attest.digest(r, chain.chain_id, verifier.address) == verifier.report_digest(
        r.feed_id, r.price, r.confidence, r.publish_time
    )
    fields = verifier.eip712Domain()
    assert (fields[1], fields[2], fields[3], fields[4]) == (
        attest.DOMAIN_NAME,
        attest.DOMAIN_VERSION,
        chain.chain_id,
        verifier.address,
    )


def test_codec__encode_then_decode__round_trip(signed, chain, verifier):
    s = sign(signed, report(signed, ETH, at=99))
    [(r, sigs)] = attest.decode_updates(encode_updates([s]))
    assert r == s.report and len(sigs) == 3
    with pytest.raises(attest.UpdateError):
        attest.decode_updates(encode_updates([s]) + b"\x00")


# ---- Accepted: stored, logged, the latest for later reads ----


def test_update__three_of_five__stored_and_logged_with_the_signers(signed, verifier, stranger):
    r = report(signed, ETH, price=1_990 * WAD, conf=2 * WAD)
    tx = signed.clearinghouse.update_prices(encode_updates([sign(signed, r)]), sender=stranger)
    [log] = attested(tx, verifier)
    assert (log.feed_id, log.price, log.confidence, log.publish_time) == (
        r.feed_id,
        r.price,
        r.confidence,
        r.publish_time,
    )
    assert log.signers == 0b111  # the set's first three signers
    assert tuple(verifier.latest(r.feed_id)) == (r.price, r.publish_time)
    # A later transaction reads it through the market's feed (newer than the push answer).
    assert signed.feeds[ETH].mark(True) == r.price


def test_update__same_report_twice__second_skipped_without_a_revert(signed, verifier, stranger):
    blob = signed_update(signed, ETH)
    verifier.update_prices(blob, stranger, sender=stranger)
    tx = verifier.update_prices(blob, stranger, sender=stranger)  # another bot, same report
    assert attested(tx, verifier) == []


def test_update__every_signer__bitmap_names_each(signed, verifier, stranger):
    tx = verifier.update_prices(
        encode_updates([sign(signed, report(signed, ETH), count=5)]), stranger, sender=stranger
    )
    assert attested(tx, verifier)[0].signers == 0b11111


def test_update__value_sent__refunded_to_the_payer(signed, stranger):
    before = stranger.balance
    tx = signed.clearinghouse.update_prices(
        signed_update(signed, ETH), sender=stranger, value=10**15
    )
    assert stranger.balance == before - tx.total_fees_paid  # the value came back in full


def test_update__two_markets_in_one_blob__both_stored(signed, verifier, stranger):
    blob = encode_updates([sign(signed, report(signed, m)) for m in (0, 1)])
    tx = verifier.update_prices(blob, stranger, sender=stranger)
    assert [log.feed_id for log in attested(tx, verifier)] == signed.feed_ids


# ---- Refused: each with its reason, nothing stored ----


def _with_sigs(r: Report, sigs: list[bytes]) -> bytes:
    """A blob with exactly these signatures in this order (encode_updates would sort them)."""
    out = bytearray([1, 1])
    out += r.feed_id + r.price.to_bytes(32, "big") + r.confidence.to_bytes(32, "big")
    out += r.publish_time.to_bytes(8, "big") + bytes([len(sigs)])
    for s in sigs:
        out += s
    return bytes(out)


def _sigs(signed, r: Report, count: int = 3) -> list[tuple[str, bytes]]:
    return sorted(sign(signed, r, count).signatures, key=lambda s: int(s[0], 16))


@pytest.mark.parametrize(
    ("blob", "reason"),
    [
        (b"", "verifier: malformed update"),
        (b"\x01", "verifier: malformed update"),
        (b"\x02\x01", "verifier: unknown update version"),
        (b"\x01\x00", "verifier: bad report count"),
        (b"\x01\x09", "verifier: bad report count"),
        (b"\x01\x01" + b"\x00" * 50, "verifier: malformed update"),
    ],
    ids=["empty", "one-byte", "version-2", "no-report", "nine-reports", "truncated-head"],
)
def test_malformed__bytes__refused(verifier, stranger, blob, reason):
    with ape.reverts(reason):
        verifier.update_prices(blob, stranger, sender=stranger)


def test_malformed__signatures_missing_or_trailing_bytes__refused(signed, verifier, stranger):
    r = report(signed, ETH)
    good = [s for _, s in _sigs(signed, r)]
    with ape.reverts("verifier: bad signature count"):
        verifier.update_prices(_with_sigs(r, []), stranger, sender=stranger)
    with ape.reverts("verifier: malformed update"):
        verifier.update_prices(_with_sigs(r, good)[:-1], stranger, sender=stranger)
    with ape.reverts("verifier: malformed update"):
        verifier.update_prices(_with_sigs(r, good) + b"\x00", stranger, sender=stranger)


def test_signers__too_few_duplicate_out_of_order_or_strangers__refused(signed, verifier, stranger):
    r = report(signed, ETH)
    ordered = [s for _, s in _sigs(signed, r)]
    with ape.reverts("verifier: too few signers"):
        verifier.update_prices(_with_sigs(r, ordered[:2]), stranger, sender=stranger)
    with ape.reverts("verifier: duplicate signer"):
        verifier.update_prices(_with_sigs(r, [ordered[0]] * 3), stranger, sender=stranger)
    with ape.reverts("verifier: signers out of order"):
        verifier.update_prices(_with_sigs(r, ordered[::-1]), stranger, sender=stranger)
    outsider = Account.create()
    extra = attest.sign(r, outsider.key, ape.chain.chain_id, verifier.address)
    mixed = sorted([*_sigs(signed, r, 2), extra], key=lambda s: int(s[0], 16))
    with ape.reverts("verifier: unknown signer"):
        verifier.update_prices(_with_sigs(r, [s for _, s in mixed]), stranger, sender=stranger)


@pytest.mark.parametrize("where", ["chain", "verifier"])
def test_signed_for_another_domain__unknown_signer(signed, verifier, stranger, where):
    """A report signed for another chain or another verifier recovers to strangers."""
    r = report(signed, ETH)
    chain_id, target = ape.chain.chain_id, verifier.address
    if where == "chain":
        chain_id += 1
    else:
        target = "0x" + "12" * 20
    sigs = [attest.sign(r, k, chain_id, target) for k in signed.signer_set.keys[:3]]
    with ape.reverts("verifier: unknown signer"):
        verifier.update_prices(
            encode_updates([SignedReport(r, tuple(sigs))]), stranger, sender=stranger
        )


def test_signature__malleable_or_garbage__refused(signed, verifier, stranger):
    r = report(signed, ETH)
    ordered = [s for _, s in _sigs(signed, r)]
    sig = ordered[0]
    s_high = SECP256K1_N - int.from_bytes(sig[32:64], "big")
    flipped = sig[:32] + s_high.to_bytes(32, "big") + bytes([55 - sig[64]])  # 27 <-> 28
    with ape.reverts("ecdsa: invalid signature `s` value"):
        verifier.update_prices(_with_sigs(r, [flipped, *ordered[1:]]), stranger, sender=stranger)
    garbage = sig[:64] + bytes([29])  # v out of range: ecrecover returns nothing
    with ape.reverts("ecdsa: invalid signature"):
        verifier.update_prices(_with_sigs(r, [garbage, *ordered[1:]]), stranger, sender=stranger)


def test_report__unknown_feed_bad_price__refused(signed, verifier, stranger):
    base = report(signed, ETH)
    cases = [
        (replace(base, feed_id=b"\x07" * 32), "verifier: unknown feed"),
        (replace(base, price=0), "verifier: bad price"),
        (replace(base, price=MAX_PRICE + 1), "verifier: bad price"),
    ]
    for r, reason in cases:
        with ape.reverts(reason):
            verifier.update_prices(encode_updates([sign(signed, r)]), stranger, sender=stranger)


def test_report__future_stale_or_older_than_last__refused(signed, verifier, stranger, chain):
    now = chain.pending_timestamp
    with ape.reverts("verifier: report from the future"):
        verifier.update_prices(signed_update(signed, ETH, at=now + 60), stranger, sender=stranger)
    with ape.reverts("verifier: stale report"):
        verifier.update_prices(
            signed_update(signed, ETH, at=now - MAX_AGE - 5), stranger, sender=stranger
        )
    verifier.update_prices(signed_update(signed, ETH, at=now - 10), stranger, sender=stranger)
    with ape.reverts("verifier: older than the last report"):
        verifier.update_prices(signed_update(signed, ETH, at=now - 20), stranger, sender=stranger)
    assert verifier.latest(signed.feed_ids[ETH])[1] == now - 10


def test_report__confidence_too_wide__refused(signed, verifier, stranger):
    price = 2_000 * WAD  # bound 2%: 40 USD
    with ape.reverts("verifier: confidence too wide"):
        verifier.update_prices(
            signed_update(signed, ETH, price=price, conf=40 * WAD + 1), stranger, sender=stranger
        )
    verifier.update_prices(
        signed_update(signed, ETH, price=price, conf=40 * WAD), stranger, sender=stranger
    )


def test_report__far_from_a_fresh_push_price__refused_but_not_from_a_lagging_one(
    signed, verifier, stranger, chain
):
    far = 1_700 * WAD  # 15% under the push answer of 2,000; the bound is 10%
    with ape.reverts("verifier: too far from the push price"):
        verifier.update_prices(signed_update(signed, ETH, price=far), stranger, sender=stranger)
    verifier.update_prices(signed_update(signed, ETH, price=1_801 * WAD), stranger, sender=stranger)
    # Past its heartbeat the push answer is no reference: the crash price is accepted.
    later(chain, HEARTBEAT + 1)
    verifier.update_prices(signed_update(signed, ETH, price=far), stranger, sender=stranger)
    assert verifier.latest(signed.feed_ids[ETH])[0] == far


# ---- The market feed: the newer price, a shorter age for trades ----


def test_feed__signed_newer_than_push__served_everywhere(signed, stranger):
    feed = signed.feeds[ETH]
    price = 2_010 * WAD
    signed.verifier.update_prices(
        signed_update(signed, ETH, price=price), stranger, sender=stranger
    )
    assert feed.latest_price() == feed.mark(True) == feed.mark(False) == price
    long_mark, short_mark, _, ok = feed.pool_marks()
    assert (long_mark, short_mark, ok) == (price, price, True)


def test_feed__push_answer_newer__push_wins(signed, stranger, chain, deployer):
    feed = signed.feeds[ETH]
    signed.verifier.update_prices(
        signed_update(signed, ETH, price=2_010 * WAD), stranger, sender=stranger
    )
    later(chain, 5)
    signed.aggregators[ETH].set_price(1_995 * 10**FEED_DECIMALS, sender=deployer)
    assert feed.latest_price() == feed.mark(True) == 1_995 * WAD
    assert tuple(feed.pool_marks())[:2] == (1_995 * WAD, 1_995 * WAD)


def _pool(signed, deployer, lp):
    fund_and_approve(signed.token, signed.clearinghouse, lp, 1_000_000 * USDC, deployer)
    signed.vault.add_liquidity(1_000_000 * USDC, 0, sender=lp)


def test_feed__report_too_old_for_a_trade__still_good_for_marks(signed, stranger, chain, deployer):
    """A 90-second-old report: marks use it (liquidation age 2 min), a trade does not (1 min);
    with the push feed past its window too, the trade is refused with the push reason. At
    2 min 1 s the marks drop it too."""
    feed = signed.feeds[ETH]
    later(chain, HEARTBEAT + STALE_WINDOW + 10)  # the push feed is dead
    at = chain.pending_timestamp - 1
    signed.verifier.update_prices(
        signed_update(signed, ETH, price=1_900 * WAD, at=at), stranger, sender=stranger
    )
    later(chain, 90)
    assert feed.mark(True) == 1_900 * WAD
    with ape.reverts("oracle: stale price"):
        feed.latest_price()
    snap = chain.snapshot()
    later(chain, MAX_AGE - 90 + 1)
    assert feed.mark(True) == 0  # past the window: the push feed's (dead: no mark)
    chain.restore(snap)
    _pool(signed, deployer, deployer)
    fund_and_approve(signed.token, signed.clearinghouse, stranger, 1_000 * USDC, deployer)
    signed.clearinghouse.deposit(1_000 * USDC, sender=stranger)
    with ape.reverts("oracle: stale price"):
        signed.clearinghouse.trade(ETH, WAD // 10, MAX_UINT, sender=stranger)
    # A fresh report in the same transaction: the trade goes through at it.
    signed.clearinghouse.trade_with_prices(
        signed_update(signed, ETH, price=1_905 * WAD), ETH, WAD // 10, MAX_UINT, sender=stranger
    )
    assert signed.clearinghouse.position(stranger, ETH)[1] == 1_905 * WAD


# ---- Liquidations survive a stale push feed ----


def _victim(signed, deployer, victim, lp):
    ch = signed.clearinghouse
    _pool(signed, deployer, lp)
    fund_and_approve(signed.token, ch, victim, 2_000 * USDC, deployer)
    ch.deposit(2_000 * USDC, sender=victim)
    ch.trade(ETH, 9 * WAD, MAX_UINT, sender=victim)  # 9x on 2,000 at ETH 2,000


def test_liquidate_with_prices__push_feed_dead__liquidated_at_the_signed_price(
    signed, chain, deployer, accounts
):
    victim, lp, keeper = accounts[3], accounts[4], accounts[5]
    _victim(signed, deployer, victim, lp)
    ch = signed.clearinghouse
    later(chain, HEARTBEAT + STALE_WINDOW + 10)  # the push feed is past its window
    with ape.reverts("oracle: stale price"):
        ch.liquidate(victim, sender=keeper)  # no price: the market cannot be judged
    update = signed_update(signed, ETH, price=1_850 * WAD)  # the market fell 7.5%
    tx = ch.liquidate_with_prices(update, [victim], sender=keeper)
    [log] = tx.decode_logs(ch.Liquidated)
    assert log.account == victim.address and log.liquidator == keeper.address
    assert log.keeper_reward > 0
    assert not ch.is_liquidatable(victim)


def test_update_then_liquidate__later_transaction__reads_the_stored_price(
    signed, chain, deployer, accounts
):
    victim, lp, keeper = accounts[3], accounts[4], accounts[5]
    _victim(signed, deployer, victim, lp)
    ch = signed.clearinghouse
    later(chain, HEARTBEAT + 10)  # stale, within the window: judged at a haircut mark
    ch.update_prices(signed_update(signed, ETH, price=1_850 * WAD), sender=keeper)
    assert ch.is_liquidatable(victim)
    ch.liquidate(victim, sender=keeper)
    assert not ch.is_liquidatable(victim)


def test_sequencer_down__trade_waits__marks_and_liquidations_do_not(
    project, signed, deployer, chain, stranger
):
    """The sequencer rule on a push adapter with an uptime feed: a trade on a signed price
    waits for the sequencer and its grace period; a mark on that price does not."""
    uptime = project.MockAggregator.deploy(0, "sequencer", 1, sender=deployer)  # 1: down
    push = project.PriceFeed.deploy(
        signed.aggregators[ETH], HEARTBEAT, 0, 2**255 - 1, uptime, 3_600, STALE_WINDOW, 500,
        sender=deployer,
    )  # fmt: skip
    feed = project.SignedPriceFeed.deploy(
        signed.verifier, signed.feed_ids[ETH], push, TRADE_AGE, MAX_AGE, sender=deployer
    )
    signed.verifier.update_prices(
        signed_update(signed, ETH, price=1_990 * WAD), stranger, sender=stranger
    )
    assert feed.mark(True) == 1_990 * WAD
    with ape.reverts("oracle: sequencer down or in its grace period"):
        feed.latest_price()
    assert not push.sequencer_up()


# ---- Administration ----


def test_signer_set__bad_sets__refused_by_the_verifier(signed, deployer):
    cfg, addrs = signed.configurator, list(signed.signer_set.addresses)
    with ape.reverts("verifier: bad threshold"):
        cfg.set_price_signers(addrs, 0, sender=deployer)
    with ape.reverts("verifier: bad threshold"):
        cfg.set_price_signers(addrs[:2], 3, sender=deployer)
    with ape.reverts("verifier: zero signer"):
        cfg.set_price_signers([addrs[0], "0x" + "00" * 20], 1, sender=deployer)
    with ape.reverts("verifier: duplicate signer"):
        cfg.set_price_signers([addrs[0], addrs[0]], 1, sender=deployer)


def test_signer_set__replaced__old_signers_no_longer_count(signed, deployer, stranger):
    cfg, verifier = signed.configurator, signed.verifier
    keep = list(signed.signer_set.addresses[2:])  # signers 2, 3, 4; 0 and 1 leave
    tx = cfg.set_price_signers(keep, 2, sender=deployer)
    [log] = tx.decode_logs(cfg.PriceSignersUpdated)
    assert (log.verifier, list(log.signers), log.threshold) == (verifier.address, keep, 2)
    [inner] = tx.decode_logs(verifier.SignersUpdated)
    assert list(inner.signers) == keep and inner.threshold == 2
    r = report(signed, ETH)
    with ape.reverts("verifier: unknown signer"):  # signers 0 and 1 sign first
        verifier.update_prices(encode_updates([sign(signed, r, 2)]), stranger, sender=stranger)
    late = SignedReport(
        r,
        tuple(
            attest.sign(r, k, ape.chain.chain_id, verifier.address)
            for k in signed.signer_set.keys[2:4]
        ),
    )
    tx = verifier.update_prices(encode_updates([late]), stranger, sender=stranger)
    assert attested(tx, verifier)[0].signers == 0b011  # indexes in the new set


def test_feed_config__bad_bounds__refused(signed, deployer):
    cfg, fid, push = signed.configurator, signed.feed_ids[ETH], signed.push_feeds[ETH]
    with ape.reverts("verifier: bad max age"):
        cfg.set_price_feed(fid, push, HEARTBEAT, 0, 100, 100, sender=deployer)
    with ape.reverts("verifier: bad max age"):
        cfg.set_price_feed(fid, push, HEARTBEAT, 86_401, 100, 100, sender=deployer)
    with ape.reverts("verifier: bad bound"):
        cfg.set_price_feed(fid, push, HEARTBEAT, 60, 10_001, 100, sender=deployer)
    with ape.reverts("verifier: zero feed id"):
        cfg.set_price_feed(b"\x00" * 32, push, HEARTBEAT, 60, 100, 100, sender=deployer)


def test_engine__no_price_updater__entry_points_refuse(project, deployer, stranger, token):
    from margin_maintenance.system import deploy_engine

    vault = project.LPVault.deploy("LP", "LP", 12, sender=deployer)
    cfg = project.Configurator.deploy(sender=deployer)
    ch = deploy_engine(project, deployer, token, vault, cfg)
    with ape.reverts("clearinghouse: no price updater"):
        ch.update_prices(b"\x01", sender=stranger)
