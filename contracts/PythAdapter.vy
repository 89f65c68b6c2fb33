# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title Pyth adapter: Pyth price updates through the engine's price-updater read
@license MIT
@notice For test networks where Pyth runs: the engine's `price_updater` (its
        `update_prices` forwards the `updates` blob here) and the source a market's
        `SignedPriceFeed` reads (`latest(feed_id)`, feed id = the Pyth price id).

        Layout of `updates`: Solidity's `abi.encode(bytes[] updateData)` of the update data
        Hermes serves (at most 2 items of 1,952 bytes: the whole blob within the engine's
        4,096; one accumulator update carries several feeds), so our reports and Pyth's
        travel in the same parameter. The fee is Pyth's `getUpdateFee`: it comes
        out of the value sent, and what is left is refunded to the payer; too little value
        reverts "pyth: fee too small".

        `latest(id)` normalises Pyth's (price, expo) to WAD and returns (0, publish time) for
        a price that is not positive, has too wide a confidence (`max_conf_bps`), or does
        not fit the engine's largest price: the signed feed then falls back to its push feed.
"""

from modules import constants as k

PYTH_ITEMS: constant(uint256) = 2
PYTH_BYTES: constant(uint256) = 1_952  # 2 items ABI-encoded fill MAX_UPDATE exactly


struct PythPrice:
    price: int64
    conf: uint64
    expo: int32
    publishTime: uint256


interface IPyth:
    def getUpdateFee(updateData: DynArray[Bytes[PYTH_BYTES], PYTH_ITEMS]) -> uint256: view
    def updatePriceFeeds(updateData: DynArray[Bytes[PYTH_BYTES], PYTH_ITEMS]): payable


pyth: public(immutable(address))
max_conf_bps: public(immutable(uint256))


@deploy
def __init__(pyth_: address, max_conf_bps_: uint256):
    assert pyth_ != empty(address), "pyth: zero address"
    assert max_conf_bps_ <= k.BPS, "pyth: bad bound"
    pyth = pyth_
    max_conf_bps = max_conf_bps_


@view
@external
def update_fee(updates: Bytes[k.MAX_UPDATE]) -> uint256:
    """
    @notice Pyth's fee for this blob (wei).
    """
    return staticcall IPyth(pyth).getUpdateFee(self._decode(updates))


@payable
@external
def update_prices(updates: Bytes[k.MAX_UPDATE], payer: address) -> uint256:
    """
    @notice Pay Pyth's fee out of the value sent and update its feeds; refund the rest to
            `payer`. Returns the number of updates forwarded.
    """
    data: DynArray[Bytes[PYTH_BYTES], PYTH_ITEMS] = self._decode(updates)
    fee: uint256 = staticcall IPyth(pyth).getUpdateFee(data)
    assert msg.value >= fee, "pyth: fee too small"
    extcall IPyth(pyth).updatePriceFeeds(data, value=fee)
    if msg.value > fee:
        send(payer, msg.value - fee)
    return len(data)


@view
@external
def latest(feed_id: bytes32) -> (uint256, uint256):
    """
    @notice Pyth's latest price for `feed_id` in WAD and its publish time; (0, time) when it
            is unusable (see the notice).
    """
    # Pyth reverts for a feed it has never priced: that is no price here, not a revert (the
    # signed feed then reads its push feed).
    ok: bool = False
    resp: Bytes[128] = b""
    ok, resp = raw_call(
        pyth,
        abi_encode(feed_id, method_id=method_id("getPriceUnsafe(bytes32)")),
        max_outsize=128,
        is_static_call=True,
        revert_on_failure=False,
    )
    if not ok or len(resp) < 128:
        return 0, 0
    p: PythPrice = abi_decode(resp, PythPrice)
    if p.price <= 0:
        return 0, p.publishTime
    raw: uint256 = convert(p.price, uint256)
    conf: uint256 = convert(p.conf, uint256)
    if conf * k.BPS > max_conf_bps * raw:
        return 0, p.publishTime
    exp: int256 = 18 + convert(p.expo, int256)
    price: uint256 = 0
    if exp >= 0:
        if exp > 38:
            return 0, p.publishTime
        price = raw * 10 ** convert(exp, uint256)
    else:
        if exp < -38:
            return 0, p.publishTime
        price = raw // 10 ** convert(-exp, uint256)
    if price == 0 or price > k.MAX_PRICE:
        return 0, p.publishTime
    return price, p.publishTime


@pure
@internal
def _decode(updates: Bytes[k.MAX_UPDATE]) -> DynArray[Bytes[PYTH_BYTES], PYTH_ITEMS]:
    # The layout is checked before decoding, so a bad blob reverts with a reason rather than
    # in the decoder: the head (offset 32, then the count), then every item's offset and
    # length inside the blob, and nothing after the last item's padded bytes.
    n: uint256 = len(updates)
    assert n >= 64 and extract32(updates, 0, output_type=uint256) == 32, "pyth: malformed update"
    count: uint256 = extract32(updates, 32, output_type=uint256)
    assert count > 0, "pyth: no update"
    assert count <= PYTH_ITEMS, "pyth: too many updates"
    end: uint256 = 64 + 32 * count
    assert end <= n, "pyth: malformed update"
    for i: uint256 in range(count, bound=PYTH_ITEMS):
        at: uint256 = 64 + extract32(updates, 64 + 32 * i, output_type=uint256)
        assert at == end and at + 32 <= n, "pyth: malformed update"
        size: uint256 = extract32(updates, at, output_type=uint256)
        assert size <= PYTH_BYTES, "pyth: update too long"
        end = at + 32 + (size + 31) // 32 * 32
        assert end <= n, "pyth: malformed update"
    assert end == n, "pyth: malformed update"
    return abi_decode(updates, DynArray[Bytes[PYTH_BYTES], PYTH_ITEMS])
