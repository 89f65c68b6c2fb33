"""Signed price reports: the EIP-712 message, signing, and the `updates` blob.

The layout is the one `contracts/PriceVerifier.vy` documents and parses:

    byte 0        version 0x01
    byte 1        number of reports (1 .. MAX_REPORTS)
    each report   32 bytes feed id, 32 price (WAD), 32 confidence (WAD), 8 publish time,
                  1 number of signatures, then 65 bytes (r, s, v) per signature in strictly
                  ascending order of the signers' addresses

Pure functions only: the service (`service.py`) and the keeper build on them, and the tests
check every field against the contract.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_utils import keccak, to_checksum_address

VERSION = 1
MAX_REPORTS = 8
MAX_SIGNERS = 16
SIG_LEN = 65
REPORT_HEAD = 105
DOMAIN_NAME = "Margin Maintenance prices"
DOMAIN_VERSION = "1"
REPORT_TYPES = {
    "PriceReport": [
        {"name": "feedId", "type": "bytes32"},
        {"name": "price", "type": "uint256"},
        {"name": "confidence", "type": "uint256"},
        {"name": "publishTime", "type": "uint64"},
    ]
}


class UpdateError(ValueError):
    """A blob that does not follow the layout."""


def feed_id(name: str) -> bytes:
    """A market's feed id: keccak256 of its name, e.g. feed_id("ETH / USD")."""
    return keccak(text=name)


@dataclass(frozen=True)
class Report:
    feed_id: bytes  # 32 bytes
    price: int  # WAD
    confidence: int  # WAD
    publish_time: int  # seconds

    def __post_init__(self) -> None:
        if len(self.feed_id) != 32:
            raise ValueError("a feed id is 32 bytes")
        if not (0 <= self.price < 2**256 and 0 <= self.confidence < 2**256):
            raise ValueError("price and confidence are uint256")
        if not 0 <= self.publish_time < 2**64:
            raise ValueError("publish time is uint64")


@dataclass(frozen=True)
class SignedReport:
    report: Report
    signatures: tuple[tuple[str, bytes], ...]  # (signer address, 65-byte signature), any order


def typed_data(report: Report, chain_id: int, verifier: str) -> dict:
    """The full EIP-712 message a signer signs (what wallets and signing tools show)."""
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            **REPORT_TYPES,
        },
        "primaryType": "PriceReport",
        "domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": to_checksum_address(verifier),
        },
        "message": {
            "feedId": report.feed_id,
            "price": report.price,
            "confidence": report.confidence,
            "publishTime": report.publish_time,
        },
    }


def digest(report: Report, chain_id: int, verifier: str) -> bytes:
    """The 32-byte digest the signers sign (PriceVerifier.report_digest)."""
    return bytes(
        _hash_eip191_message(encode_typed_data(full_message=typed_data(report, chain_id, verifier)))
    )


def sign(report: Report, key: bytes | str, chain_id: int, verifier: str) -> tuple[str, bytes]:
    """(signer address, r || s || v) for one signer's key."""
    signed = Account.sign_message(
        encode_typed_data(full_message=typed_data(report, chain_id, verifier)), key
    )
    address = Account.from_key(key).address
    return address, signed.r.to_bytes(32, "big") + signed.s.to_bytes(32, "big") + bytes([signed.v])


def encode_updates(reports: list[SignedReport]) -> bytes:
    """The `updates` blob: each report's signatures sorted by signer address."""
    if not 1 <= len(reports) <= MAX_REPORTS:
        raise UpdateError(f"1 to {MAX_REPORTS} reports per update, not {len(reports)}")
    out = bytearray([VERSION, len(reports)])
    for signed in reports:
        sigs = sorted(signed.signatures, key=lambda s: int(s[0], 16))
        if not 1 <= len(sigs) <= MAX_SIGNERS:
            raise UpdateError(f"1 to {MAX_SIGNERS} signatures per report, not {len(sigs)}")
        if any(len(sig) != SIG_LEN for _, sig in sigs):
            raise UpdateError("a signature is 65 bytes")
        out += _report_bytes(signed.report, [sig for _, sig in sigs])
    return bytes(out)


def decode_updates(blob: bytes) -> list[tuple[Report, list[bytes]]]:
    """The reports and their raw signatures, in blob order (the inverse of encode_updates)."""
    if len(blob) < 2 or blob[0] != VERSION:
        raise UpdateError("not a version-1 update")
    count, at, out = blob[1], 2, []
    for _ in range(count):
        if at + REPORT_HEAD > len(blob):
            raise UpdateError("truncated report")
        head = blob[at : at + REPORT_HEAD]
        report = Report(
            head[:32],
            int.from_bytes(head[32:64], "big"),
            int.from_bytes(head[64:96], "big"),
            int.from_bytes(head[96:104], "big"),
        )
        n = head[104]
        at += REPORT_HEAD
        if at + n * SIG_LEN > len(blob):
            raise UpdateError("truncated signatures")
        out.append((report, [blob[at + i * SIG_LEN : at + (i + 1) * SIG_LEN] for i in range(n)]))
        at += n * SIG_LEN
    if at != len(blob):
        raise UpdateError("bytes after the last report")
    return out


def merge_updates(blobs: list[bytes]) -> bytes:
    """One blob holding every report of `blobs` (each checked against the layout)."""
    reports = 0
    body = b""
    for blob in blobs:
        reports += len(decode_updates(blob))
        body += blob[2:]
    if not 1 <= reports <= MAX_REPORTS:
        raise UpdateError(f"1 to {MAX_REPORTS} reports per update, not {reports}")
    return bytes([VERSION, reports]) + body


def select_updates(blob: bytes, keep: list[bool]) -> bytes | None:
    """The blob with only the reports whose `keep` flag is set (in blob order), or None when
    none is kept: a caller drops the reports the verifier would refuse (too old) or skip."""
    reports = decode_updates(blob)
    if len(keep) != len(reports):
        raise UpdateError(f"{len(keep)} flags for {len(reports)} reports")
    body = b"".join(
        _report_bytes(report, sigs)
        for (report, sigs), kept in zip(reports, keep, strict=True)
        if kept
    )
    count = sum(keep)
    return bytes([VERSION, count]) + body if count else None


def _report_bytes(report: Report, sigs: list[bytes]) -> bytes:
    return (
        report.feed_id
        + report.price.to_bytes(32, "big")
        + report.confidence.to_bytes(32, "big")
        + report.publish_time.to_bytes(8, "big")
        + bytes([len(sigs)])
        + b"".join(sigs)
    )


# PriceVerifier's `_latest` HashMap (`vyper -f layout contracts/PriceVerifier.vy`; a test
# checks it): its word for a feed is publish_time << 192 | price.
LATEST_SLOT = 20
TIME_SHIFT = 192


def latest_override(stored: list[tuple[str, Report]]) -> dict[str, dict[str, dict[str, str]]]:
    """An eth_call state override that makes each (verifier, report) its feed's latest
    accepted price, as `update_prices` would store it: a node then answers views (margin
    status, previews) as they will be once the reports are brought in the same transaction."""
    diff: dict[str, dict[str, str]] = {}
    for verifier, report in stored:
        slot = keccak(LATEST_SLOT.to_bytes(32, "big") + report.feed_id)
        word = report.publish_time << TIME_SHIFT | report.price
        diff.setdefault(verifier, {})["0x" + slot.hex()] = f"0x{word:064x}"
    return {v: {"stateDiff": d} for v, d in diff.items()}
