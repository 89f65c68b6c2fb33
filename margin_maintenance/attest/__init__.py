"""The attestation service: signer keys, signed price reports and their HTTP service.

`codec.py` is the message and the `updates` blob `contracts/PriceVerifier.vy` verifies;
`signers.py` the local signer set (n keys, k of them sign); `service.py` serves the latest
signed reports over HTTP in the shape of Pyth's Hermes.
"""

from .codec import Report, SignedReport, decode_updates, digest, encode_updates, feed_id, sign
from .signers import SignerSet

__all__ = [
    "Report",
    "SignedReport",
    "SignerSet",
    "decode_updates",
    "digest",
    "encode_updates",
    "feed_id",
    "sign",
]
