"""A small liquidation client in plain web3.py: no Ape, only the ABI and the deployment record.

Bot writers who do not use Ape need two things (SPEC.md section 6):

- the ABIs: the tracked folder `abi/` (one plain JSON list per deployable, `abi/Clearinghouse.json`,
  `abi/PriceFeed.json`, ...; test mocks in `abi/mocks/`), or what `ape compile` writes to
  `.build/` (a per-contract artifact `.build/Clearinghouse.json` holding `abi`, or the project
  manifest `.build/__local__.json`, `contractTypes.Clearinghouse.abi`), or any JSON file holding
  the ABI list or an object with `abi`;
- the deployment record `deployments/<network>.json` (read here as plain JSON): `chain_id`,
  `start_block`, `clearinghouse`, `collateral {address, decimals}`,
  `markets [{id, symbol, aggregator, feed}]`.

Which accounts are worth liquidating is decided by the reference keeper's own pure rules
(`margin_maintenance/keeper/decisions.py`: `select_targets`, `plan_batches`, `CostModel`), with
the node's gas price and the keeper's gas-per-account figures, so this client and the keeper
pick the same targets.

Library use::

    w3 = Web3(Web3.HTTPProvider("http://127.0.0.1:8545"))
    client = MarginClient.from_files(w3, "deployments/local.json")
    accounts = client.accounts_from_events()
    plan = client.plan(accounts, ProfitCheck(min_profit_usd=Decimal(5)))
    report = client.liquidate_report(accounts, None, private_key=key, profit=ProfitCheck())

Command line (`bin/mm-client` in a checkout, also installed as `mm-client`)::

    bin/mm-client --rpc http://127.0.0.1:8545 --deployment deployments/local.json status
    bin/mm-client liquidate --dry-run --min-profit 5
    MM_PRIVATE_KEY=0x.. bin/mm-client liquidate --min-profit 5
    bin/mm-client liquidate --unlocked-sender 0x..

`--json` documents carry `token` (the collateral's address) and `decimals` at the top level;
every token amount in them is an integer in token units (divide by 10**decimals), USD figures
are estimates (JSON numbers), fractions are WAD integers.

This module imports nothing from Ape (a test checks it), only web3.py, its own dependencies
(eth-utils, eth-abi, eth-account, requests), the keeper's `decisions.py` and the deployment
record's `chain/record.py` (both pure, standard library only), and the log scan
`chain/logs.py` (with `chain/rpc.py`, web3.py and its dependencies only), so these files can
be copied into a bot on their own.
"""

from __future__ import annotations

from margin_maintenance.chain.types import AccountStatus
from margin_maintenance.model.constants import MAX_BATCH, MAX_STATUS

from .cli import (
    COMMANDS,
    connect,
    json_header,
    main,
    plan_json,
    profit_check_from,
    safe_url,
    unreachable_message,
    unreachable_reason,
)
from .core import (
    MarginClient,
)
from .files import (
    Artifact,
    CollateralInfo,
    DeploymentRecord,
    MarketInfo,
    default_abi_dir,
    default_path,
    load_abi,
    load_artifact,
)
from .plan import (
    POSITION_FIELDS,
    PREVIEW_FIELDS,
    LiquidationPlan,
    LiquidationReport,
    PlannedTarget,
    Preview,
    ProfitCheck,
    batched,
    gas_limit_for,
    output_fields,
    plan_liquidations,
    unique_addresses,
)
from .settings import (
    ABI_DIR_NAME,
    ACCOUNT_EVENTS,
    BPS,
    DEFAULT_BUILD_DIR,
    DEFAULT_DEPLOYMENT,
    DEFAULT_KEY_ENV,
    DEFAULT_LOG_CHUNK,
    DEFAULT_RPC,
    DEFAULT_RPC_TIMEOUT_S,
    EXIT_ERROR,
    EXIT_UNREACHABLE,
    GAS_HEADROOM_BPS,
    JSON_UNITS,
    KEEPER_BATCH_BASE_GAS,
    KEEPER_BLOCK_GAS_FILL_BPS,
    KEEPER_ETH_MARKET_ID,
    KEEPER_GAS_PER_ACCOUNT,
    MANIFEST_NAME,
    MANIFEST_READ_TRIES,
    MANIFEST_RETRY_S,
    RECEIPT_TIMEOUT_S,
    REPO_ROOT,
    WAD,
    ClientError,
)

__all__ = [
    "ABI_DIR_NAME",
    "ACCOUNT_EVENTS",
    "AccountStatus",
    "Artifact",
    "BPS",
    "COMMANDS",
    "ClientError",
    "CollateralInfo",
    "DEFAULT_BUILD_DIR",
    "DEFAULT_DEPLOYMENT",
    "DEFAULT_KEY_ENV",
    "DEFAULT_LOG_CHUNK",
    "DEFAULT_RPC",
    "DEFAULT_RPC_TIMEOUT_S",
    "DeploymentRecord",
    "EXIT_ERROR",
    "EXIT_UNREACHABLE",
    "GAS_HEADROOM_BPS",
    "JSON_UNITS",
    "KEEPER_BATCH_BASE_GAS",
    "KEEPER_BLOCK_GAS_FILL_BPS",
    "KEEPER_ETH_MARKET_ID",
    "KEEPER_GAS_PER_ACCOUNT",
    "LiquidationPlan",
    "LiquidationReport",
    "MANIFEST_NAME",
    "MANIFEST_READ_TRIES",
    "MANIFEST_RETRY_S",
    "MAX_BATCH",
    "MAX_STATUS",
    "MarginClient",
    "MarketInfo",
    "POSITION_FIELDS",
    "PREVIEW_FIELDS",
    "PlannedTarget",
    "Preview",
    "ProfitCheck",
    "RECEIPT_TIMEOUT_S",
    "REPO_ROOT",
    "WAD",
    "batched",
    "connect",
    "default_abi_dir",
    "default_path",
    "gas_limit_for",
    "json_header",
    "load_abi",
    "load_artifact",
    "main",
    "output_fields",
    "plan_json",
    "plan_liquidations",
    "profit_check_from",
    "safe_url",
    "unique_addresses",
    "unreachable_message",
    "unreachable_reason",
]
