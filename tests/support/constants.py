"""Constants the tests share, defined once.

The engine's own constants (WAD, BPS, VIRTUAL_SHARES, VIRTUAL_ASSETS, MAX_POSITIONS, MAX_SIZE,
MAX_MARKETS, ...) come from `margin_maintenance.model`, which parses them from the Vyper
sources: re-exported here, never retyped. The configurator's bounds are parsed from
contracts/Configurator.vy by the same parser. Everything else describes the test system: the
mock token and feeds, the market ids, and the `SystemParams` defaults
(margin_maintenance/system.py) the tests rely on, pinned here on purpose: a changed default
should fail the tests that assume it rather than move them silently.
"""

from __future__ import annotations

# The engine's constants, re-exported (`X as X`) from the model's parse of the Vyper sources.
from margin_maintenance.model.constants import BPS as BPS
from margin_maintenance.model.constants import CONTRACTS, constant, parse_constants
from margin_maintenance.model.constants import MAX_BATCH as MAX_BATCH
from margin_maintenance.model.constants import MAX_POSITIONS as MAX_POSITIONS
from margin_maintenance.model.constants import MAX_PRICE as MAX_PRICE
from margin_maintenance.model.constants import MAX_SIZE as MAX_SIZE
from margin_maintenance.model.constants import VIRTUAL_ASSETS as VIRTUAL_ASSETS
from margin_maintenance.model.constants import VIRTUAL_SHARES as VIRTUAL_SHARES
from margin_maintenance.model.constants import WAD as WAD

# ---- The engine (contracts/modules/constants.vy, codec.vy, margin_math.vy, LPVault.vy) ----

MAX_MARKETS = constant("MAX_MARKETS")  # market ids are 0 .. MAX_MARKETS - 1

# ---- The configurator's bounds (contracts/Configurator.vy) ----

_CONFIGURATOR = parse_constants((CONTRACTS / "Configurator.vy").read_text())
MAX_TRADING_FEE_BPS = _CONFIGURATOR["MAX_TRADING_FEE_BPS"]  # bound on any market's trading fee
MAX_MIN_KEEPER_REWARD = _CONFIGURATOR["MAX_MIN_KEEPER_REWARD"]  # whole tokens
MAX_RESERVE_BPS = _CONFIGURATOR["MAX_RESERVE_BPS"]  # pool reserve against open notional

# ---- The EVM ----

MAX_UINT = 2**256 - 1
ZERO_ADDRESS = "0x" + "00" * 20

# ---- The mock token and the mock feeds ----

USDC_DECIMALS = 6
USDC = 10**USDC_DECIMALS  # one token, in token units
TOKEN_SCALE = WAD // USDC  # the engine's token_scale: WAD amounts -> token units
FEED_DECIMALS = 8
FEED_UNIT = 10**FEED_DECIMALS  # one USD in aggregator units
HEARTBEAT = 3_600  # seconds an oracle answer stays fresh (every market's heartbeat_s)
STALE_WINDOW = 7_200  # seconds past it with conservative marks (every market's stale_window_s)
STALE_HAIRCUT_BPS = 500  # how far those marks move against the judged
ETH_PRICE = 2_000  # USD, whole: the ETH market's start price
BTC_PRICE = 60_000  # USD, whole: the BTC market's start price
ETH_WAD = ETH_PRICE * WAD  # the start prices as the engine reads them
BTC_WAD = BTC_PRICE * WAD

# ---- The deployed system (SystemParams defaults) ----

ETH, BTC = 0, 1  # market ids as listed by deploy_system
IM_BPS = 1_000  # initial margin, every default market
MM_BPS = 500  # maintenance margin
LIQ_FEE_BPS = 100  # liquidation fee on the closed notional
TRADE_FEE_BPS = 5  # trading fee on the traded notional
MIN_NOTIONAL_USD = 10  # smallest position notional, whole tokens
KEEPER_SHARE_BPS = 5_000  # keeper's share of the liquidation fee
MAX_PARTIAL_BPS = 8_000  # largest partial fraction: a larger one closes everything
MIN_KEEPER_REWARD_USD = 1  # whole tokens, topped up from the insurance fund
POOL_RESERVE_BPS = 1_000  # pool assets reserved against open notional

# ---- Revert reasons several files check ----

NOT_OWNER = "ownable: caller is not the owner"
NOT_CONFIGURATOR = "clearinghouse: not configurator"
