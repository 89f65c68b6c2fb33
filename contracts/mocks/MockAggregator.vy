# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title Mock Chainlink aggregator
@license MIT
@notice AggregatorV3-compatible price source for local networks. Tests and
        scripts move it with `set_price` (a new round stamped with the block
        time) or `set_round` (every field explicit, for stale and incomplete
        rounds). Only the owner may move it.
@custom:security Test double only; never deploy where a real feed exists.
"""

from snekmate.auth import ownable

initializes: ownable

exports: (ownable.owner, ownable.transfer_ownership)


# Storage is packed the way Chainlink's OCR aggregator packs it, so that reading the
# latest round costs what it costs on a real network: two slots.
ANSWER_BITS: constant(uint256) = 192  # answers are int192, as in Chainlink's aggregators
MIN_ANSWER: constant(int256) = -(2**191)  # smallest representable answer
MAX_ANSWER: constant(int256) = 2**191 - 1  # largest representable answer
ANSWER_MODULUS: constant(int256) = 2**192  # two's-complement modulus of an int192
MASK64: constant(uint256) = 2**64 - 1
MASK80: constant(uint256) = 2**80 - 1

decimals: public(uint8)  # fixed-point decimals of `answer`
description: public(String[64])  # e.g. "ETH / USD"
version: public(uint256)  # aggregator interface version (Chainlink uses 4)
# @dev Latest round id (bits 0-79) | its started_at (80-143) | its answered_in_round (144-223).
hot: uint256
# @dev Per round: answer as int192 two's complement (bits 0-191) | updated_at (192-255).
transmissions: HashMap[uint80, uint256]
# @dev Per round, for getRoundData: started_at (bits 0-63) | answered_in_round (64-143).
round_meta: HashMap[uint80, uint256]


event AnswerUpdated:
    current: indexed(int256)
    round_id: indexed(uint256)
    updated_at: uint256


event NewRound:
    round_id: indexed(uint256)
    started_by: indexed(address)
    started_at: uint256


@deploy
def __init__(decimals_: uint8, description_: String[64], initial_answer: int256):
    ownable.__init__()
    self.decimals = decimals_
    self.description = description_
    self.version = 4
    self._open_round(initial_answer, block.timestamp, block.timestamp, 0)


@external
def set_price(answer: int256):
    """
    @notice Open a new complete round with `answer`, stamped with the block time.
    """
    ownable._check_owner()
    self._open_round(answer, block.timestamp, block.timestamp, 0)


@external
def set_answer_at(answer: int256, updated_at: uint256):
    """
    @notice Open a new complete round with an explicit timestamp (stale-price tests).
    """
    ownable._check_owner()
    self._open_round(answer, updated_at, updated_at, 0)


@external
def set_round(answer: int256, started_at: uint256, updated_at: uint256, answered_in_round: uint80):
    """
    @notice Open a new round with every field explicit; `answered_in_round` 0 means
            "this round" (complete), anything lower marks a carried-over answer.
    """
    ownable._check_owner()
    self._open_round(answer, started_at, updated_at, answered_in_round)


@view
@external
def latest_round() -> uint80:
    return convert(self.hot & MASK80, uint80)


@view
@external
def latestRoundData() -> (uint80, int256, uint256, uint256, uint80):
    hot: uint256 = self.hot
    round_id: uint80 = convert(hot & MASK80, uint80)
    answer: int256 = 0
    updated_at: uint256 = 0
    answer, updated_at = self._unpack(self.transmissions[round_id])
    return (
        round_id,
        answer,
        (hot >> 80) & MASK64,
        updated_at,
        convert((hot >> 144) & MASK80, uint80),
    )


@view
@external
def getRoundData(round_id: uint80) -> (uint80, int256, uint256, uint256, uint80):
    meta: uint256 = self.round_meta[round_id]
    assert meta != 0, "aggregator: no data present"
    answer: int256 = 0
    updated_at: uint256 = 0
    answer, updated_at = self._unpack(self.transmissions[round_id])
    return round_id, answer, meta & MASK64, updated_at, convert((meta >> 64) & MASK80, uint80)


@view
@external
def latestAnswer() -> int256:
    answer: int256 = 0
    updated_at: uint256 = 0
    answer, updated_at = self._unpack(self.transmissions[convert(self.hot & MASK80, uint80)])
    return answer


@view
@external
def latestTimestamp() -> uint256:
    answer: int256 = 0
    updated_at: uint256 = 0
    answer, updated_at = self._unpack(self.transmissions[convert(self.hot & MASK80, uint80)])
    return updated_at


@pure
@internal
def _unpack(word: uint256) -> (int256, uint256):
    raw: uint256 = word & (2**ANSWER_BITS - 1)
    answer: int256 = convert(raw, int256)
    if raw >= 2**(ANSWER_BITS - 1):
        answer = answer - ANSWER_MODULUS
    return answer, word >> ANSWER_BITS


@internal
def _open_round(answer: int256, started_at: uint256, updated_at: uint256, answered_in: uint80):
    assert answer >= MIN_ANSWER and answer <= MAX_ANSWER, "aggregator: answer out of range"
    assert started_at <= MASK64 and updated_at <= MASK64, "aggregator: timestamp out of range"
    round_id: uint80 = convert(self.hot & MASK80, uint80) + 1
    answered: uint80 = answered_in
    if answered == 0:
        answered = round_id
    raw: uint256 = 0
    if answer >= 0:
        raw = convert(answer, uint256)
    else:
        raw = convert(answer + ANSWER_MODULUS, uint256)
    self.hot = (
        convert(round_id, uint256)
        | (started_at << 80)
        | (convert(answered, uint256) << 144)
    )
    self.transmissions[round_id] = raw | (updated_at << ANSWER_BITS)
    self.round_meta[round_id] = started_at | (convert(answered, uint256) << 64) | (1 << 255)
    log NewRound(round_id=convert(round_id, uint256), started_by=msg.sender, started_at=started_at)
    log AnswerUpdated(current=answer, round_id=convert(round_id, uint256), updated_at=updated_at)
