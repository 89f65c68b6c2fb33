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


# @dev A Chainlink round as `latestRoundData` returns it.
struct Round:
    answer: int256  # price in `decimals` fixed point
    started_at: uint256  # unix seconds
    updated_at: uint256  # unix seconds; 0 = round not complete
    answered_in_round: uint80  # round in which `answer` was computed


decimals: public(uint8)  # fixed-point decimals of `answer`
description: public(String[64])  # e.g. "ETH / USD"
version: public(uint256)  # aggregator interface version (Chainlink uses 4)
latest_round: public(uint80)  # id of the newest round; 0 = no round yet
rounds: HashMap[uint80, Round]  # every round ever opened, by id


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
def latestRoundData() -> (uint80, int256, uint256, uint256, uint80):
    round_id: uint80 = self.latest_round
    r: Round = self.rounds[round_id]
    return round_id, r.answer, r.started_at, r.updated_at, r.answered_in_round


@view
@external
def getRoundData(round_id: uint80) -> (uint80, int256, uint256, uint256, uint80):
    r: Round = self.rounds[round_id]
    assert r.answered_in_round != 0, "aggregator: no data present"
    return round_id, r.answer, r.started_at, r.updated_at, r.answered_in_round


@view
@external
def latestAnswer() -> int256:
    return self.rounds[self.latest_round].answer


@view
@external
def latestTimestamp() -> uint256:
    return self.rounds[self.latest_round].updated_at


@internal
def _open_round(answer: int256, started_at: uint256, updated_at: uint256, answered_in: uint80):
    round_id: uint80 = self.latest_round + 1
    answered: uint80 = answered_in
    if answered == 0:
        answered = round_id
    self.latest_round = round_id
    self.rounds[round_id] = Round(
        answer=answer, started_at=started_at, updated_at=updated_at, answered_in_round=answered
    )
    log NewRound(round_id=convert(round_id, uint256), started_by=msg.sender, started_at=started_at)
    log AnswerUpdated(
        current=answer, round_id=convert(round_id, uint256), updated_at=updated_at
    )
