"""Defaults, limits and exit codes of the web3 client.

Part of `margin_maintenance.client` (see its docstring).
"""

from __future__ import annotations

import logging
from pathlib import Path

from margin_maintenance.chain import logs as chain_logs
from margin_maintenance.keeper import decisions

log = logging.getLogger("margin_maintenance.client")

DEFAULT_LOG_CHUNK = chain_logs.DEFAULT_LOG_CHUNK  # blocks per eth_getLogs (halved if refused)
GAS_HEADROOM_BPS = 12_000  # gas limit sent = estimate * 1.2, capped by the block gas limit
BPS = 10_000
WAD = 10**18
RECEIPT_TIMEOUT_S = 120  # seconds to wait for a liquidation receipt
ACCOUNT_EVENTS = ("Deposited", "PositionChanged")  # events that name every trader
# The reference keeper's defaults (keeper/decisions.py; KeeperSettings reads the same).
KEEPER_GAS_PER_ACCOUNT = decisions.GAS_PER_ACCOUNT
KEEPER_BATCH_BASE_GAS = decisions.BATCH_BASE_GAS
KEEPER_BLOCK_GAS_FILL_BPS = decisions.BLOCK_GAS_FILL_BPS
KEEPER_ETH_MARKET_ID = decisions.ETH_MARKET_ID

REPO_ROOT = Path(__file__).resolve().parents[2]  # the checkout, when run from one
ABI_DIR_NAME = "abi"  # tracked plain ABIs: abi/<Name>.json, test mocks in abi/mocks/
DEFAULT_RPC = "http://127.0.0.1:8545"
DEFAULT_RPC_TIMEOUT_S = 30.0  # seconds per JSON-RPC request
DEFAULT_DEPLOYMENT = "deployments/local.json"
DEFAULT_BUILD_DIR = ".build"
DEFAULT_KEY_ENV = "MM_PRIVATE_KEY"  # name of the variable holding the liquidator's key
MANIFEST_NAME = "__local__.json"  # Ape 0.8's project manifest in .build/
MANIFEST_READ_TRIES = 12  # reads of a manifest caught mid-rewrite by `ape compile` ...
MANIFEST_RETRY_S = 0.25  # ... this many seconds apart
EXIT_ERROR = 1  # a refused transaction, a bad file, a revert
EXIT_UNREACHABLE = 2  # no node at --rpc (bin/mm-client also exits 2 without a venv)
JSON_UNITS = "token amounts are integers in token units: divide by 10**decimals"


class ClientError(RuntimeError):
    """A missing or malformed file, a record for another chain, or a refused transaction."""
