"""The bench's constants: units, market positions, seeding batch sizes and gas, the event topic
it counts."""

from __future__ import annotations

from eth_utils import keccak

MAX_UINT = 2**256 - 1
GWEI = 10**9
ETH, BTC = 0, 1  # market positions in SystemParams().markets
RPC_CHUNK = 500  # JSON-RPC requests per HTTP batch while seeding
SEED_WAVE = 1_000  # accounts sent to the pool before mining it empty
SEED_GAS = {"mint": 120_000, "approve": 80_000, "deposit": 150_000, "trade": 300_000}
MEASURE_BASE_FEE = GWEI  # anvil's own initial base fee, restored after seeding
LIQUIDATED_SIG = "Liquidated(address,address,uint256,uint256,uint256,uint256,int256,bool)"
LIQUIDATED_TOPIC = "0x" + keccak(text=LIQUIDATED_SIG).hex()
