"""The attestation service: signs prices from a source and serves the latest signed reports
over HTTP, in the shape bots know from Pyth's Hermes.

    GET  /v2/updates/price/latest?ids[]=<feed id hex>&ids[]=...   the latest reports: one
         `updates` blob (hex) for all the ids asked, and each report parsed
    GET  /live       200 while the process serves
    GET  /ready      200 once every feed has a report, else 503
    GET  /health     JSON: signers k/n, each feed's price, publish time and age, refusals
    POST /v1/prices  {"symbol": "ETH-USD", "price": 1850.5, "conf": 0.5}: a price from the
                     caller (the crash replay), signed at the service's clock

A price is refused, with its reason logged and counted in /health, when it is not a finite
positive number within the engine's largest price, its confidence is negative or not finite,
its symbol is unknown, or it is not newer than the feed's last report; the last good report
keeps being served. Sources: `ManualSource` (POST /v1/prices), `CsvSource` (a crash file
replayed at a compression factor), `PushSource` (the push feeds' answers, read over JSON-RPC,
signed with their own update time).

The server is the standard library's threading HTTP server bound to loopback by default; the
signing and the checks are the pure functions of this module and `codec.py`.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from margin_maintenance.model.constants import MAX_PRICE

from .codec import Report, SignedReport, encode_updates, feed_id
from .signers import SignerSet

log = logging.getLogger("margin_maintenance.attest")

WAD = 10**18
MAX_PRICE_WAD = MAX_PRICE  # the engine's bound: no report above it is accepted on chain
EXPO = -18  # every price and confidence is served in WAD, as Pyth's (price, expo)


@dataclass(frozen=True)
class PriceRow:
    """One price from a source: USD per unit, its confidence (USD), and when it was seen."""

    symbol: str
    price: Any  # a number, or whatever a bad source row held
    conf: Any = 0
    publish_time: int = 0


def to_wad(value: Any) -> int | None:
    """A finite non-negative decimal as WAD (rounded down), or None."""
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not d.is_finite() or d < 0:
        return None
    return int(d * WAD)


def check_row(row: PriceRow, known: Iterable[str], last_time: int | None) -> str | None:
    """Why `row` is refused, or None when it may be signed."""
    if row.symbol not in known:
        return f"unknown symbol {row.symbol!r}"
    price = to_wad(row.price)
    if price is None or price == 0:
        return f"price must be a finite positive number, got {row.price!r}"
    if price > MAX_PRICE_WAD:
        return f"price {row.price!r} above the engine's largest price"
    if to_wad(row.conf) is None:
        return f"confidence must be a finite number >= 0, got {row.conf!r}"
    if last_time is not None and row.publish_time <= last_time:
        return f"publish time {row.publish_time} not newer than the last report ({last_time})"
    return None


@dataclass
class FeedState:
    symbol: str
    feed_id: bytes
    latest: SignedReport | None = None


@dataclass
class Attestor:
    """The signer set, the feeds it signs for, and the latest signed report of each."""

    signers: SignerSet
    chain_id: int
    verifier: str
    symbols: Sequence[str]
    feeds: dict[bytes, FeedState] = field(init=False)
    refused: int = 0
    last_error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.feeds = {feed_id(s): FeedState(s, feed_id(s)) for s in self.symbols}

    def by_symbol(self, symbol: str) -> FeedState | None:
        return self.feeds.get(feed_id(symbol)) if symbol in self.symbols else None

    def offer(self, row: PriceRow) -> SignedReport | None:
        """Sign `row` and make it its feed's latest report, or refuse it (logged, counted)."""
        with self.lock:
            state = self.by_symbol(row.symbol)
            last = None
            if state is not None and state.latest is not None:
                last = state.latest.report.publish_time
            why = check_row(row, self.symbols, last)
            if why is not None:
                self.refused += 1
                self.last_error = why
                log.warning("refused %s: %s (serving the last good report)", row, why)
                return None
            assert state is not None
            report = Report(
                state.feed_id, to_wad(row.price) or 0, to_wad(row.conf) or 0, row.publish_time
            )
            state.latest = self.signers.sign(report, self.chain_id, self.verifier)
            return state.latest

    def latest(self, ids: Sequence[bytes]) -> list[SignedReport]:
        """The latest report of each id (KeyError naming the unknown or unsigned ones)."""
        with self.lock:
            missing = [i.hex() for i in ids if i not in self.feeds or self.feeds[i].latest is None]
            if missing:
                raise KeyError(", ".join(missing))
            return [self.feeds[i].latest for i in ids]  # type: ignore[misc]

    def health(self, now: int) -> dict[str, Any]:
        with self.lock:
            feeds = {}
            for state in self.feeds.values():
                r = state.latest.report if state.latest else None
                feeds[state.symbol] = {
                    "id": "0x" + state.feed_id.hex(),
                    "price": None if r is None else str(Decimal(r.price) / WAD),
                    "publish_time": None if r is None else r.publish_time,
                    "age_s": None if r is None else now - r.publish_time,
                }
            ready = all(s.latest is not None for s in self.feeds.values())
            return {
                "status": "ok" if ready else "waiting for prices",
                "signers": f"{self.signers.threshold}/{len(self.signers.keys)}",
                "chain_id": self.chain_id,
                "verifier": self.verifier,
                "feeds": feeds,
                "refused": self.refused,
                "last_error": self.last_error,
            }


def hermes_latest(reports: Sequence[SignedReport]) -> dict[str, Any]:
    """The response body of /v2/updates/price/latest for these reports."""
    return {
        "binary": {"encoding": "hex", "data": [encode_updates(list(reports)).hex()]},
        "parsed": [
            {
                "id": s.report.feed_id.hex(),
                "price": {
                    "price": str(s.report.price),
                    "conf": str(s.report.confidence),
                    "expo": EXPO,
                    "publish_time": s.report.publish_time,
                },
                "metadata": {"signers": len(s.signatures)},
            }
            for s in reports
        ],
    }


def parse_ids(query: str) -> list[bytes]:
    """Feed ids from `ids[]=..` (or `ids=..`) parameters, hex with or without 0x."""
    params = parse_qs(query)
    raw = params.get("ids[]", []) + params.get("ids", [])
    out = []
    for value in raw:
        text = value[2:] if value.lower().startswith("0x") else value
        b = bytes.fromhex(text)
        if len(b) != 32:
            raise ValueError(f"a feed id is 32 bytes, not {len(b)}: {value}")
        out.append(b)
    return out


# ---- Sources ----


class ManualSource:
    """Prices posted to /v1/prices (the crash replay posts each price it sets)."""

    manual = True

    def poll(self, now: int) -> list[PriceRow]:
        return []


class CsvSource:
    """A crash file (`timestamp,price`) replayed `factor` times faster from `start` (the
    service's clock), rescaled so its first price is `start_price` when given. Rows are read
    one by one: a bad row is offered as it is and refused by the attestor, the rest go on."""

    manual = False

    def __init__(
        self,
        path: str | Path,
        symbol: str,
        factor: float = 60.0,
        start: int | None = None,
        start_price: float | None = None,
    ) -> None:
        self.symbol, self.factor, self.start = symbol, factor, start
        self.rows: list[tuple[str, str]] = []
        with Path(path).open(newline="") as fh:
            for row in csv.DictReader(fh):
                self.rows.append((row.get("timestamp", ""), row.get("price", "")))
        self.scale = 1.0
        if start_price is not None:
            first = next((float(p) for _, p in self.rows if _finite(p)), None)
            self.scale = start_price / first if first else 1.0
        self.t0: int | None = None
        self.next = 0

    def poll(self, now: int) -> list[PriceRow]:
        if self.start is None:
            self.start = now
        out = []
        while self.next < len(self.rows):
            ts_text, price_text = self.rows[self.next]
            try:
                ts = int(Decimal(ts_text))
            except (InvalidOperation, ValueError):
                ts = None
            if ts is not None and self.t0 is None:
                self.t0 = ts
            due = (
                self.start
                if ts is None or self.t0 is None
                else self.start + int((ts - self.t0) / self.factor)
            )
            if due > now:
                break
            price: Any = price_text
            if _finite(price_text):
                price = float(price_text) * self.scale
            out.append(PriceRow(self.symbol, price, 0, now))
            self.next += 1
        return out


def _finite(text: str) -> bool:
    try:
        return math.isfinite(float(text)) and float(text) > 0
    except ValueError:
        return False


class PushSource:
    """The push feeds' latest answers (`latestRoundData` on each aggregator, over JSON-RPC),
    signed with their own update time: the service attests what the chain already shows."""

    manual = False

    def __init__(self, rpc: Any, aggregators: dict[str, str], decimals: int = 8) -> None:
        self.rpc, self.aggregators, self.decimals = rpc, aggregators, decimals
        self.seen: dict[str, int] = {}

    def poll(self, now: int) -> list[PriceRow]:
        selector = "0xfeaf968c"  # latestRoundData()
        calls = [
            ("eth_call", [{"to": agg, "data": selector}, "latest"])
            for agg in self.aggregators.values()
        ]
        out = []
        for symbol, result in zip(self.aggregators, self.rpc.batch_results(calls), strict=True):
            if not isinstance(result, str) or len(result) < 2 + 64 * 5:
                continue
            words = [int(result[2 + 64 * i : 2 + 64 * (i + 1)], 16) for i in range(5)]
            answer, updated = words[1], words[3]
            if answer >= 2**255:
                answer -= 2**256
            if updated <= self.seen.get(symbol, 0):
                continue
            self.seen[symbol] = updated
            out.append(PriceRow(symbol, Decimal(answer) / 10**self.decimals, 0, updated))
        return out


# ---- HTTP ----


class _Handler(BaseHTTPRequestHandler):
    server: AttestServer

    def log_message(self, fmt: str, *args: Any) -> None:  # quiet: the service logs itself
        log.debug("%s " + fmt, self.address_string(), *args)

    def _send(self, status: int, body: Any) -> None:
        data = (json.dumps(body) if not isinstance(body, str) else body).encode()
        self.send_response(status)
        self.send_header(
            "Content-Type", "application/json" if not isinstance(body, str) else "text/plain"
        )
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (the http.server interface)
        url = urlparse(self.path)
        att = self.server.attestor
        if url.path == "/live":
            return self._send(HTTPStatus.OK, "OK")
        if url.path == "/ready":
            ready = att.health(self.server.clock())["status"] == "ok"
            return self._send(
                HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE,
                "OK" if ready else "waiting",
            )
        if url.path == "/health":
            return self._send(HTTPStatus.OK, att.health(self.server.clock()))
        if url.path == "/v2/updates/price/latest":
            try:
                ids = parse_ids(url.query)
            except ValueError as err:
                return self._send(HTTPStatus.BAD_REQUEST, {"error": str(err)})
            if not ids:
                return self._send(HTTPStatus.BAD_REQUEST, {"error": "no ids[] given"})
            try:
                reports = att.latest(ids)
            except KeyError as err:
                return self._send(
                    HTTPStatus.NOT_FOUND, {"error": f"price ids not found: {err.args[0]}"}
                )
            return self._send(HTTPStatus.OK, hermes_latest(reports))
        return self._send(HTTPStatus.NOT_FOUND, {"error": f"no route {url.path}"})

    def do_POST(self) -> None:  # noqa: N802
        url = urlparse(self.path)
        if url.path != "/v1/prices" or not getattr(self.server.source, "manual", False):
            return self._send(HTTPStatus.NOT_FOUND, {"error": f"no route {url.path}"})
        try:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            rows = body if isinstance(body, list) else [body]
            offered = [
                PriceRow(
                    str(r.get("symbol")),
                    r.get("price"),
                    r.get("conf", 0),
                    int(r.get("publish_time") or self.server.clock()),
                )
                for r in rows
            ]
        except (ValueError, AttributeError, TypeError) as err:
            return self._send(HTTPStatus.BAD_REQUEST, {"error": f"bad body: {err}"})
        results = [self.server.attestor.offer(row) for row in offered]
        refused = [i for i, r in enumerate(results) if r is None]
        if refused:
            return self._send(
                HTTPStatus.UNPROCESSABLE_ENTITY,
                {"error": self.server.attestor.last_error, "refused": refused},
            )
        return self._send(HTTPStatus.OK, {"signed": len(results)})


class AttestServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        attestor: Attestor,
        source: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], int] | None = None,
        poll_s: float = 0.25,
    ) -> None:
        super().__init__((host, port), _Handler)
        self.attestor, self.source = attestor, source
        self.clock = clock or (lambda: int(time.time()))
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll_loop, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            try:
                for row in self.source.poll(self.clock()):
                    self.attestor.offer(row)
            except Exception as err:  # a source failing must not stop the service
                self.attestor.last_error = f"source failed: {err}"
                log.warning("source failed: %s", err)
            self._stop.wait(self.poll_s)

    def start(self) -> AttestServer:
        """Serve and poll on background threads (returns at once)."""
        threading.Thread(target=self.serve_forever, daemon=True).start()
        self._poller.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.shutdown()
        self.server_close()


def fetch_update(url: str, ids: Sequence[bytes], timeout: float = 5.0) -> bytes:
    """The `updates` blob for `ids` from a service at `url` (what a keeper sends on chain)."""
    import requests

    query = "&".join(f"ids[]=0x{i.hex()}" for i in ids)
    r = requests.get(f"{url}/v2/updates/price/latest?{query}", timeout=timeout)
    if r.status_code != 200:
        raise RuntimeError(f"attestation service: {r.status_code} {r.text[:200]}")
    return bytes.fromhex(r.json()["binary"]["data"][0])


def post_price(
    url: str, symbol: str, price: float | str, publish_time: int, timeout: float = 5.0
) -> None:
    """Offer one price to a service at `url` (POST /v1/prices), signed as of `publish_time`;
    a refusal raises RuntimeError with the service's reason."""
    import requests

    body = {"symbol": symbol, "price": price, "publish_time": publish_time}
    r = requests.post(f"{url}/v1/prices", json=body, timeout=timeout)
    if r.status_code != 200:
        raise RuntimeError(f"attestation service refused {body}: {r.status_code} {r.text[:200]}")
