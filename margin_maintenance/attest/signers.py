"""A local signer set: n deterministic keys, of which k sign each report.

The keys come from a seed (never use them beyond a local or test network): the same seed
gives the same set, so a deploy script, the service and the tests agree on the addresses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from eth_account import Account
from eth_utils import keccak

from .codec import Report, SignedReport, sign

DEFAULT_SEED = "margin-maintenance attest"


def parse_kn(text: str) -> tuple[int, int]:
    """ "3/5" -> (3, 5): k of n signers sign."""
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError as err:
        raise ValueError(f"signers as k/n, e.g. 3/5, not {text!r}") from err
    if not 1 <= k <= n <= 16:
        raise ValueError(f"need 1 <= k <= n <= 16, not {k}/{n}")
    return k, n


@dataclass(frozen=True)
class SignerSet:
    threshold: int
    keys: tuple[bytes, ...]
    addresses: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "addresses", tuple(Account.from_key(k).address for k in self.keys))

    @classmethod
    def local(cls, k: int, n: int, seed: str = DEFAULT_SEED) -> SignerSet:
        return cls(k, tuple(keccak(text=f"{seed}/{i}") for i in range(n)))

    def sign(
        self, report: Report, chain_id: int, verifier: str, count: int | None = None
    ) -> SignedReport:
        """The report signed by the first `count` signers (k by default)."""
        count = self.threshold if count is None else count
        return SignedReport(
            report, tuple(sign(report, key, chain_id, verifier) for key in self.keys[:count])
        )
