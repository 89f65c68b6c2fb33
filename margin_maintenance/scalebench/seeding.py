"""Seeding N accounts by impersonated transactions in JSON-RPC batches, mined block by block."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .book import AccountPlan, account_address, position_size
from .node import Rpc
from .settings import GWEI, MAX_UINT, MEASURE_BASE_FEE, SEED_GAS, SEED_WAVE

# ---- Seeding ----


def _send_all(rpc: Rpc, txs: Sequence[dict[str, Any]]) -> None:
    rpc.batch([("eth_sendTransaction", [t]) for t in txs])


def _mine_until_empty(rpc: Rpc, max_blocks: int = 10_000) -> list[int]:
    """Mine blocks until the pool is empty; the numbers of the blocks mined."""
    mined = []
    for _ in range(max_blocks):
        status = rpc.call("txpool_status")
        if int(status["pending"], 16) == 0 and int(status["queued"], 16) == 0:
            return mined
        rpc.call("evm_mine")
        mined.append(rpc.block_number())
    raise RuntimeError("transaction pool did not drain")


def seed_book(
    rpc: Rpc,
    sysm: Any,
    deployer: str,
    plans: Sequence[AccountPlan],
    prices: Sequence[float],
    progress: Callable[[str], None] = lambda _: None,
    wave: int = SEED_WAVE,
) -> tuple[list[str], int]:
    """Mint, approve, deposit and trade for every planned account with real transactions,
    `wave` accounts at a time (fired in JSON-RPC batches, then mined until the pool is empty:
    anvil's pool slows down when it holds tens of thousands of transactions); returns
    (addresses, transactions sent). Receipts are not fetched (40,000 of them take longer than
    the seeding): the status read that follows checks every account holds a position."""
    from margin_maintenance.keeper.reads import Method

    ch, token = sysm.clearinghouse, sysm.token
    unit = sysm.unit
    ch_addr, token_addr = str(ch.address), str(token.address)
    mint = Method(token.mint.abis[0])
    approve = Method(token.approve.abis[0])
    deposit = Method(ch.deposit.abis[0])
    trade = Method(ch.trade.abis[0])
    market_ids = sysm.market_ids
    addrs = [account_address(p.index) for p in plans]
    amounts = [round(p.collateral_usd * unit) for p in plans]
    fees = {"maxFeePerGas": hex(GWEI), "maxPriorityFeePerGas": "0x0"}

    def tx(sender: str, to: str, data: str, kind: str, nonce: int) -> dict[str, Any]:
        gas = hex(SEED_GAS[kind])
        return {"from": sender, "to": to, "data": data, "gas": gas, "nonce": hex(nonce), **fees}

    rpc.call("evm_setAutomine", [False])
    rpc.call("anvil_autoImpersonateAccount", [True])
    rpc.call("anvil_setNextBlockBaseFeePerGas", ["0x0"])
    sent = 0
    blocks: list[int] = []
    try:
        rpc.batch([("anvil_setBalance", [a, hex(10**18)]) for a in addrs])
        nonce = int(rpc.call("eth_getTransactionCount", [deployer, "pending"]), 16)
        for start in range(0, len(plans), wave):
            stop = min(start + wave, len(plans))
            mints = [
                tx(deployer, token_addr, mint.calldata(addrs[i], amounts[i]), "mint", nonce + i)
                for i in range(start, stop)
            ]
            _send_all(rpc, mints)
            blocks += _mine_until_empty(rpc)
            txs = []
            for i in range(start, stop):
                p, a = plans[i], addrs[i]
                size = position_size(p, prices[p.market])
                limit = MAX_UINT if size > 0 else 0
                txs += [
                    tx(a, token_addr, approve.calldata(ch_addr, MAX_UINT), "approve", 0),
                    tx(a, ch_addr, deposit.calldata(amounts[i]), "deposit", 1),
                    tx(a, ch_addr, trade.calldata(market_ids[p.market], size, limit), "trade", 2),
                ]
            _send_all(rpc, txs)
            blocks += _mine_until_empty(rpc)
            sent += len(mints) + len(txs)
            progress(f"seeded {stop:,}/{len(plans):,} accounts ({len(blocks)} blocks)")
    finally:
        rpc.call("anvil_autoImpersonateAccount", [False])
        rpc.call("anvil_setNextBlockBaseFeePerGas", [hex(MEASURE_BASE_FEE)])
        rpc.call("evm_mine")
        rpc.call("evm_setAutomine", [True])
    return addrs, sent
