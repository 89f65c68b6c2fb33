# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title Signed-price verifier: k-of-n EIP-712 price reports, the latest accepted per feed
@license MIT
@notice Anyone may bring reports signed off chain by the signer set (`update_prices`); each
        one accepted becomes its feed's latest price, which the market's `SignedPriceFeed`
        adapter serves to the engine in later transactions too. A report is accepted when
        it is signed by at least `threshold` distinct signers of the set, published no later
        than the block and no earlier than `max_age` before it, newer than the feed's last
        accepted report (the same publish time again is skipped: two bots racing with one
        report both land), its confidence within `max_conf_bps` of its price, and within
        `max_dev_bps` of the push feed whenever the push answer is younger than
        `ref_max_age` (a lagging push feed is no reference). The signer set and the feeds
        are changed by the admin, the configurator, whose owner calls it (with events there
        and here).

        Typed data (EIP-712): domain {name "Margin Maintenance prices", version "1",
        chainId, verifyingContract = this contract}, message
        PriceReport(bytes32 feedId,uint256 price,uint256 confidence,uint64 publishTime),
        price and confidence in WAD (18 decimals), publishTime in seconds.

        Layout of `updates` (margin_maintenance/attest/codec.py builds it), big-endian:
            byte 0        version: 0x01
            byte 1        number of reports, 1 .. MAX_REPORTS (8), the whole blob at most
                          MAX_UPDATE (4,096) bytes: e.g. 8 reports of 3 signatures, or 4 of 13
            each report   32 bytes feed id, 32 price, 32 confidence, 8 publish time,
                          1 number of signatures (1 .. MAX_SIGNERS), then 65 bytes per
                          signature (r, s, v), in strictly ascending order of the signers'
                          addresses (which is how a signer is counted once)
        and nothing after the last report.
"""

from snekmate.utils import ecdsa
from snekmate.utils import eip712_domain_separator as eip712

from modules import constants as k

initializes: ecdsa
initializes: eip712

exports: eip712.eip712Domain


interface IReference:
    def price_data() -> (uint256, uint256, bool): view


struct FeedConfig:
    reference: address  # the market's push PriceFeed (price_data), or empty for none
    ref_max_age: uint256  # a push answer older than this is no reference
    max_age: uint256  # a report older than this is refused (0: feed unknown)
    max_conf_bps: uint256  # confidence at most this share of the price
    max_dev_bps: uint256  # at most this far from a fresh push price


# A feed's configuration in one slot (one cold read per report): reference (160 bits), then
# ref_max_age and max_age (32 bits each), max_conf_bps and max_dev_bps (16 bits each).
CFG_REF_AGE: constant(uint256) = 160
CFG_MAX_AGE: constant(uint256) = 192
CFG_CONF: constant(uint256) = 224
CFG_DEV: constant(uint256) = 240
MASK32: constant(uint256) = 2**32 - 1
MASK16: constant(uint256) = 2**16 - 1
MASK64: constant(uint256) = 2**64 - 1
MASK160: constant(uint256) = 2**160 - 1


event PriceAttested:
    feed_id: indexed(bytes32)
    price: uint256
    confidence: uint256
    publish_time: uint256
    signers: uint256  # bit i set: signer i of the set (in `signers` order) signed


event SignersUpdated:
    signers: DynArray[address, MAX_SIGNERS]
    threshold: uint256


event FeedConfigured:
    feed_id: indexed(bytes32)
    reference: address
    ref_max_age: uint256
    max_age: uint256
    max_conf_bps: uint256
    max_dev_bps: uint256


MAX_SIGNERS: constant(uint256) = 16
MAX_REPORTS: constant(uint256) = 8
MAX_UPDATE: constant(uint256) = k.MAX_UPDATE  # the engine forwards at most this many bytes
REPORT_HEAD: constant(uint256) = 105  # feed id, price, confidence, publish time, count
SIG_LEN: constant(uint256) = 65
TIME_SHIFT: constant(uint256) = 192  # latest word: publish time above, price below
PRICE_MASK: constant(uint256) = 2**192 - 1
REPORT_TYPEHASH: constant(bytes32) = keccak256(
    "PriceReport(bytes32 feedId,uint256 price,uint256 confidence,uint64 publishTime)"
)

admin: public(immutable(address))  # the configurator
signers: public(DynArray[address, MAX_SIGNERS])
threshold: public(uint256)
# 1 + index in `signers` (low byte) | threshold << 8, so that the one cold read per signer a
# report needs anyway also gives the threshold; 0 for strangers
signer_slot: HashMap[address, uint256]
SLOT_INDEX: constant(uint256) = 255
SLOT_THRESHOLD: constant(uint256) = 8
_feeds: HashMap[bytes32, uint256]  # packed FeedConfig, see CFG_*
_latest: HashMap[bytes32, uint256]  # publish_time << 192 | price


@deploy
def __init__(admin_: address):
    assert admin_ != empty(address), "verifier: zero admin"
    ecdsa.__init__()
    eip712.__init__("Margin Maintenance prices", "1")
    admin = admin_


@view
@external
def latest(feed_id: bytes32) -> (uint256, uint256):
    """
    @notice The feed's latest accepted report: (price in WAD, publish time); (0, 0) before
            the first.
    """
    word: uint256 = self._latest[feed_id]
    return word & PRICE_MASK, word >> TIME_SHIFT


@view
@external
def feeds(feed_id: bytes32) -> FeedConfig:
    """
    @notice A feed's configuration (max_age 0: not listed).
    """
    return self._feed(feed_id)


@view
@internal
def _feed(feed_id: bytes32) -> FeedConfig:
    w: uint256 = self._feeds[feed_id]
    return FeedConfig(
        reference=convert(w & convert(max_value(uint160), uint256), address),
        ref_max_age=(w >> CFG_REF_AGE) & MASK32,
        max_age=(w >> CFG_MAX_AGE) & MASK32,
        max_conf_bps=(w >> CFG_CONF) & MASK16,
        max_dev_bps=w >> CFG_DEV,
    )


@view
@external
def domain_separator() -> bytes32:
    return eip712._domain_separator_v4()


@view
@external
def report_digest(
    feed_id: bytes32, price: uint256, confidence: uint256, publish_time: uint256
) -> bytes32:
    """
    @notice The EIP-712 digest a signer signs for this report (a check for signing tools).
    """
    return self._digest(feed_id, price, confidence, publish_time)


@view
@external
def update_fee(updates: Bytes[MAX_UPDATE]) -> uint256:
    """
    @notice What `update_prices` charges: nothing (a Pyth adapter charges Pyth's fee).
    """
    return 0


@payable
@external
def update_prices(updates: Bytes[MAX_UPDATE], payer: address) -> uint256:
    """
    @notice Verify and store every report in `updates` (the layout above); any value sent is
            refunded to `payer` (this verifier charges no fee). Returns the number of reports
            stored (a report at its feed's last publish time is skipped).
    """
    # Read in place: every field comes from one 32-byte word of the blob (no slices, and the
    # blob is never passed to an internal function, which would copy it).
    n: uint256 = len(updates)
    assert n >= 2, "verifier: malformed update"
    head: uint256 = convert(slice(updates, 0, 2), uint256)
    assert head >> 8 == 1, "verifier: unknown update version"
    count: uint256 = head & 255
    assert count > 0 and count <= MAX_REPORTS, "verifier: bad report count"
    at: uint256 = 2
    stored: uint256 = 0
    for _: uint256 in range(count, bound=MAX_REPORTS):
        assert at + REPORT_HEAD <= n, "verifier: malformed update"
        feed_id: bytes32 = extract32(updates, at)
        price: uint256 = extract32(updates, at + 32, output_type=uint256)
        confidence: uint256 = extract32(updates, at + 64, output_type=uint256)
        # The word ending at the report's head: publish time (8 bytes), then the count (1).
        tail: uint256 = extract32(updates, at + REPORT_HEAD - 32, output_type=uint256)
        publish_time: uint256 = (tail >> 8) & MASK64
        sigs: uint256 = tail & 255
        at += REPORT_HEAD
        assert sigs > 0 and sigs <= MAX_SIGNERS, "verifier: bad signature count"
        assert at + sigs * SIG_LEN <= n, "verifier: malformed update"
        if self._check(feed_id, price, confidence, publish_time):
            digest: bytes32 = self._digest(feed_id, price, confidence, publish_time)
            seen: uint256 = 0
            previous: uint256 = 0
            threshold_: uint256 = 0  # every signer's slot carries it: no read of its own
            for i: uint256 in range(sigs, bound=MAX_SIGNERS):
                o: uint256 = at + i * SIG_LEN
                r: uint256 = extract32(updates, o, output_type=uint256)
                s: uint256 = extract32(updates, o + 32, output_type=uint256)
                v: uint256 = extract32(updates, o + 33, output_type=uint256) & 255
                key: uint256 = convert(ecdsa._recover_vrs(digest, v, r, s), uint256)
                assert key != previous, "verifier: duplicate signer"
                assert key > previous, "verifier: signers out of order"
                previous = key
                slot: uint256 = self.signer_slot[convert(key, address)]
                assert slot != 0, "verifier: unknown signer"
                seen |= 1 << ((slot & SLOT_INDEX) - 1)
                threshold_ = slot >> SLOT_THRESHOLD
            assert sigs >= threshold_, "verifier: too few signers"
            self._latest[feed_id] = publish_time << TIME_SHIFT | price
            log PriceAttested(
                feed_id=feed_id,
                price=price,
                confidence=confidence,
                publish_time=publish_time,
                signers=seen,
            )
            stored += 1
        at += sigs * SIG_LEN
    assert at == n, "verifier: malformed update"
    if msg.value > 0:
        send(payer, msg.value)
    return stored


@view
@internal
def _check(feed_id: bytes32, price: uint256, confidence: uint256, publish_time: uint256) -> bool:
    # Every rule on a report but its signatures: False when it is already the latest (another
    # caller brought the same report: skipped, not verified again).
    # The configuration word decoded inline, field by field as used (`_feed` builds the whole
    # struct: about 145 gas more per report).
    w: uint256 = self._feeds[feed_id]
    max_age: uint256 = (w >> CFG_MAX_AGE) & MASK32
    assert max_age != 0, "verifier: unknown feed"
    assert price > 0 and price <= k.MAX_PRICE, "verifier: bad price"
    assert publish_time <= block.timestamp, "verifier: report from the future"
    assert block.timestamp - publish_time <= max_age, "verifier: stale report"
    last: uint256 = self._latest[feed_id] >> TIME_SHIFT
    if publish_time == last:
        return False
    assert publish_time > last, "verifier: older than the last report"
    assert confidence * k.BPS <= ((w >> CFG_CONF) & MASK16) * price, "verifier: confidence too wide"
    reference: address = convert(w & MASK160, address)
    if reference != empty(address):
        ref: uint256 = 0
        updated_at: uint256 = 0
        ok: bool = False
        ref, updated_at, ok = staticcall IReference(reference).price_data()
        if (
            ref != 0
            and updated_at <= block.timestamp
            and block.timestamp - updated_at <= (w >> CFG_REF_AGE) & MASK32
        ):
            gap: uint256 = price - ref if price > ref else ref - price
            assert gap * k.BPS <= (w >> CFG_DEV) * ref, "verifier: too far from the push price"
    return True


@view
@internal
def _digest(
    feed_id: bytes32, price: uint256, confidence: uint256, publish_time: uint256
) -> bytes32:
    return eip712._hash_typed_data_v4(
        keccak256(abi_encode(REPORT_TYPEHASH, feed_id, price, confidence, publish_time))
    )


# ---- Administration (the configurator) ----


@external
def set_signers(signers_: DynArray[address, MAX_SIGNERS], threshold_: uint256):
    """
    @notice Replace the signer set and the threshold k (admin): k of the n must sign.
    """
    assert msg.sender == admin, "verifier: not the admin"
    assert threshold_ > 0 and threshold_ <= len(signers_), "verifier: bad threshold"
    for old: address in self.signers:
        self.signer_slot[old] = 0
    for i: uint256 in range(len(signers_), bound=MAX_SIGNERS):
        s: address = signers_[i]
        assert s != empty(address), "verifier: zero signer"
        assert self.signer_slot[s] == 0, "verifier: duplicate signer"
        self.signer_slot[s] = (i + 1) | threshold_ << SLOT_THRESHOLD
    self.signers = signers_
    self.threshold = threshold_
    log SignersUpdated(signers=signers_, threshold=threshold_)


@external
def set_feed(
    feed_id: bytes32,
    reference: address,
    ref_max_age: uint256,
    max_age: uint256,
    max_conf_bps: uint256,
    max_dev_bps: uint256,
):
    """
    @notice List or change a feed (admin): its push reference, the reference's age limit,
            the oldest report accepted, the confidence and deviation bounds.
    """
    assert msg.sender == admin, "verifier: not the admin"
    assert feed_id != empty(bytes32), "verifier: zero feed id"
    assert max_age > 0 and max_age <= 86_400, "verifier: bad max age"
    assert max_conf_bps <= k.BPS and max_dev_bps <= k.BPS, "verifier: bad bound"
    assert ref_max_age <= MASK32, "verifier: bad max age"
    self._feeds[feed_id] = (
        convert(reference, uint256)
        | ref_max_age << CFG_REF_AGE
        | max_age << CFG_MAX_AGE
        | max_conf_bps << CFG_CONF
        | max_dev_bps << CFG_DEV
    )
    log FeedConfigured(
        feed_id=feed_id,
        reference=reference,
        ref_max_age=ref_max_age,
        max_age=max_age,
        max_conf_bps=max_conf_bps,
        max_dev_bps=max_dev_bps,
    )
