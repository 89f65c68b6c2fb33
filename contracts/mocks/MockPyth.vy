# pragma version 0.4.3
"""
@title Local stand-in for the Pyth contract (the subset the Pyth adapter uses)
@license MIT
@notice `updatePriceFeeds(bytes[])` stores each update newer than its feed's last one (older
        ones are ignored, as Pyth does) for a fee of `single_update_fee` wei per update;
        `getPriceUnsafe` / `getPriceNoOlderThan` read them back. An update here is
        `abi_encode(id, price, conf, expo, publish_time)` (bytes32, int64, uint64, int32,
        uint64), what `create_update` builds; a real Pyth update is a signed accumulator
        message, which this mock does not verify: it stands in for Pyth on a local chain.
"""

struct Price:
    price: int64
    conf: uint64
    expo: int32
    publishTime: uint256


event PriceFeedUpdate:
    id: indexed(bytes32)
    publishTime: uint64
    price: int64
    conf: uint64


single_update_fee: public(immutable(uint256))
prices: HashMap[bytes32, Price]


@deploy
def __init__(single_update_fee_: uint256):
    single_update_fee = single_update_fee_


@pure
@external
def create_update(
    id: bytes32, price: int64, conf: uint64, expo: int32, publish_time: uint64
) -> Bytes[160]:
    return abi_encode(id, price, conf, expo, publish_time)


@view
@external
def getUpdateFee(updateData: DynArray[Bytes[2048], 8]) -> uint256:
    return single_update_fee * len(updateData)


@payable
@external
def updatePriceFeeds(updateData: DynArray[Bytes[2048], 8]):
    assert msg.value >= single_update_fee * len(updateData), "pyth: insufficient fee"
    for data: Bytes[2048] in updateData:
        id: bytes32 = empty(bytes32)
        price: int64 = 0
        conf: uint64 = 0
        expo: int32 = 0
        publish_time: uint64 = 0
        id, price, conf, expo, publish_time = abi_decode(
            data, (bytes32, int64, uint64, int32, uint64)
        )
        if convert(publish_time, uint256) > self.prices[id].publishTime:
            self.prices[id] = Price(
                price=price, conf=conf, expo=expo, publishTime=convert(publish_time, uint256)
            )
            log PriceFeedUpdate(id=id, publishTime=publish_time, price=price, conf=conf)


@view
@external
def getPriceUnsafe(id: bytes32) -> Price:
    p: Price = self.prices[id]
    assert p.publishTime != 0, "pyth: price feed not found"
    return p


@view
@external
def getPriceNoOlderThan(id: bytes32, age: uint256) -> Price:
    p: Price = self.prices[id]
    assert p.publishTime != 0, "pyth: price feed not found"
    assert block.timestamp <= p.publishTime + age, "pyth: stale price"
    return p
