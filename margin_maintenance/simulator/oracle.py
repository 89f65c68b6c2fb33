"""The oracle a replay marks accounts at (pure): a Chainlink-style push feed, or signed prices.

Push: the aggregator transmits a new answer when the market has moved `deviation_bps` from the
last transmitted one or when that one is `heartbeat_s` old (in the crash file's time), and each
transmission lands `delay_rows` rows later (0: in the row it was made; a congested chain, as on
2020-03-12, lands it later). Liquidations are judged at the answer on chain.

Pull: the attestation service signs every row's price; the keeper brings it with its batches,
so liquidations are judged at the row's market price whatever the push feed shows. The push
feed still runs beside it (the signed-price verifier checks each report against a fresh push
answer) and still moves the pool's marks between signed reports.

Chainlink's published parameters for ETH / USD and BTC / USD on Ethereum mainnet are 0.5%
deviation and a one-hour heartbeat, the defaults here.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace

from .settings import BPS

MODES: tuple[str, ...] = ("push", "pull")


@dataclass(frozen=True)
class OracleModel:
    mode: str = "push"
    deviation_bps: int = 50
    heartbeat_s: int = 3_600
    delay_rows: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"oracle mode {self.mode!r}: one of {', '.join(MODES)}")
        if self.deviation_bps < 0 or self.heartbeat_s <= 0 or self.delay_rows < 0:
            raise ValueError("oracle needs deviation_bps >= 0, heartbeat_s > 0, delay_rows >= 0")

    @property
    def pull(self) -> bool:
        return self.mode == "pull"

    def with_mode(self, mode: str) -> OracleModel:
        return replace(self, mode=mode)

    @property
    def label(self) -> str:
        push = f"push {self.deviation_bps / 100:g}% / {self.heartbeat_s:,} s"
        if self.delay_rows:
            push += f" / {self.delay_rows} rows late"
        return f"pull (signed every row; {push} beside it)" if self.pull else push


class PushFeed:
    """The push feed's answer row by row: `step(row, time, market answer)` returns the answer on
    chain at that row. Deviation is measured from the last transmitted answer (landed or not:
    the transmitters know what they sent)."""

    def __init__(self, model: OracleModel, answer: int, time_s: int) -> None:
        self.model = model
        self.visible = answer  # on chain
        self.sent = answer  # last transmitted
        self.sent_at = time_s
        self.transmissions = 0
        self._queue: deque[tuple[int, int]] = deque()  # (row it lands at, answer)

    def step(self, row: int, time_s: int, answer: int) -> int:
        m = self.model
        moved = abs(answer - self.sent) * BPS >= m.deviation_bps * self.sent
        if answer != self.sent and (moved or time_s - self.sent_at >= m.heartbeat_s):
            self._queue.append((row + m.delay_rows, answer))
            self.sent, self.sent_at = answer, time_s
            self.transmissions += 1
        elif time_s - self.sent_at >= m.heartbeat_s:
            self.sent_at = time_s  # the heartbeat round repeats the same answer
        while self._queue and self._queue[0][0] <= row:
            self.visible = self._queue.popleft()[1]
        return self.visible
