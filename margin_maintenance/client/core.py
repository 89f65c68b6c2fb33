"""`MarginClient`: status, previews and liquidations over plain web3.py.

Part of `margin_maintenance.client` (see its docstring).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils import to_checksum_address
from web3 import Web3
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from margin_maintenance.chain.logs import event_topic, scan_logs, topic_address
from margin_maintenance.chain.types import AccountStatus
from margin_maintenance.keeper import decisions
from margin_maintenance.model.constants import MAX_BATCH, MAX_STATUS

from .files import DeploymentRecord, load_abi
from .plan import (
    POSITION_FIELDS,
    PREVIEW_FIELDS,
    LiquidationPlan,
    LiquidationReport,
    Preview,
    ProfitCheck,
    _has_function,
    _is_healthy_revert,
    batched,
    gas_limit_for,
    output_fields,
    plan_liquidations,
    unique_addresses,
)
from .settings import (
    ACCOUNT_EVENTS,
    BPS,
    DEFAULT_LOG_CHUNK,
    KEEPER_BLOCK_GAS_FILL_BPS,
    RECEIPT_TIMEOUT_S,
    WAD,
    ClientError,
    log,
)

# ---- The client ----


class MarginClient:
    """Reads account health and liquidates through one Clearinghouse, with plain web3.py."""

    def __init__(
        self,
        w3: Web3,
        record: DeploymentRecord | dict[str, Any],
        abi: list[dict[str, Any]],
        *,
        feed_abi: list[dict[str, Any]] | None = None,
        log_chunk: int = DEFAULT_LOG_CHUNK,
        status_chunk: int = MAX_STATUS,
        batch_size: int = MAX_BATCH,
        check_chain: bool = True,
    ) -> None:
        if not 1 <= status_chunk <= MAX_STATUS:
            raise ValueError(f"status_chunk must be in 1..{MAX_STATUS}")
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be in 1..{MAX_BATCH}")
        if log_chunk < 1:
            raise ValueError("log_chunk must be positive")
        self.w3 = w3
        self.record = (
            record if isinstance(record, DeploymentRecord) else DeploymentRecord.from_dict(record)
        )
        self.abi = abi
        self.feed_abi = feed_abi  # PriceFeed ABI: prices a market when the ABI has no mark_price
        self.contract = w3.eth.contract(address=self.record.clearinghouse, abi=abi)
        self.log_chunk = log_chunk
        self.status_chunk = status_chunk
        self.batch_size = batch_size
        events = {e["name"]: e for e in abi if e.get("type") == "event"}
        missing = [n for n in ACCOUNT_EVENTS if n not in events]
        if missing:
            raise ClientError(f"the ABI has no {', '.join(missing)} event (not a Clearinghouse?)")
        self._account_topics = [event_topic(events[n]) for n in ACCOUNT_EVENTS]
        if check_chain:
            self.check_chain()

    @classmethod
    def from_files(
        cls,
        w3: Web3,
        deployment: str | Path,
        abi_path: str | Path | None = None,
        build_dir: str | Path | None = None,
        *,
        abi_dir: str | Path | None = None,
        **kwargs: Any,
    ) -> MarginClient:
        """A client from the record and the ABIs (see `load_artifact` for where they are looked
        for); the PriceFeed ABI is read from the same folder when it is there."""
        record = DeploymentRecord.load(deployment)
        abi = load_abi(abi_path, build_dir, abi_dir=abi_dir)
        try:
            feed_abi: list[dict[str, Any]] | None = load_abi(None, build_dir, "PriceFeed", abi_dir)
        except ClientError:
            feed_abi = None
        return cls(w3, record, abi, feed_abi=feed_abi, **kwargs)

    def check_chain(self) -> None:
        """Refuse a record made for another chain, or whose contract is gone (a restarted
        anvil keeps chain id 31337 but forgets every contract)."""
        chain_id = int(self.w3.eth.chain_id)
        if chain_id != self.record.chain_id:
            raise ClientError(
                f"the record is for chain {self.record.chain_id}, the node is chain {chain_id}"
            )
        if not self.w3.eth.get_code(self.record.clearinghouse):
            raise ClientError(
                f"no contract at {self.record.clearinghouse} (stale record? deploy again)"
            )

    # ---- Reads ----

    def accounts_from_events(
        self, from_block: int | None = None, to_block: int | None = None
    ) -> list[str]:
        """Every account named by a `Deposited` or `PositionChanged` event in
        [from_block (default: the record's start block), to_block (default: head)], in order of
        first appearance. One `eth_getLogs` per `log_chunk` blocks; a chunk the node refuses
        (too many results or too wide a range) is split in two and retried."""
        start = self.record.start_block if from_block is None else int(from_block)
        stop = int(self.w3.eth.block_number) if to_block is None else int(to_block)
        logs = scan_logs(
            self.w3.eth.get_logs,
            self.record.clearinghouse,
            self._account_topics,
            start,
            stop,
            self.log_chunk,
        )
        # Topic 1 is the indexed account of both events.
        return unique_addresses(topic_address(x) for x in logs if len(x["topics"]) > 1)

    def status(
        self, accounts: Sequence[str], block_identifier: int | str = "latest"
    ) -> list[AccountStatus]:
        """`margin_status` over `accounts`, `status_chunk` (at most 512) per call."""
        rows: list[AccountStatus] = []
        addresses = [to_checksum_address(a) for a in accounts]
        for chunk in batched(addresses, self.status_chunk):
            out = self.contract.functions.margin_status(chunk).call(
                block_identifier=block_identifier
            )
            rows.extend(
                AccountStatus(to_checksum_address(a), int(e), int(m), int(i), bool(liq))
                for a, e, m, i, liq in out
            )
        return rows

    def liquidatable(self, accounts: Sequence[str]) -> list[str]:
        """The liquidatable accounts among `accounts` (input order, no repeats)."""
        return [s.account for s in self.status(unique_addresses(accounts)) if s.liquidatable]

    def preview(self, account: str) -> Preview:
        """What `liquidate(account)` would do now, if sent by a third party."""
        addr = to_checksum_address(account)
        out = self.contract.functions.liquidation_preview(addr).call()
        fraction, reward, bad_debt = output_fields(out, PREVIEW_FIELDS)
        return Preview(addr, int(fraction), int(reward), int(bad_debt))

    def position(self, account: str, market_id: int) -> tuple[int, int]:
        """(size, entry price): signed WAD base units and a WAD price."""
        out = self.contract.functions.position(to_checksum_address(account), market_id).call()
        size, entry_price = output_fields(out, POSITION_FIELDS)
        return int(size), int(entry_price)

    def mark_price(self, market_id: int) -> int:
        """Market `market_id`'s oracle price, WAD: the clearinghouse's `mark_price` view when
        the ABI has it, else the record's feed adapter (`PriceFeed.latest_price`)."""
        if _has_function(self.abi, "mark_price"):
            return int(self.contract.functions.mark_price(market_id).call())
        market = self.record.market(market_id)
        if market is None or self.feed_abi is None:
            raise ClientError(
                f"cannot price market {market_id}: the ABI has no mark_price and "
                + ("the record lists no such market" if market is None else "no PriceFeed ABI")
                + " (pass --eth-usd)"
            )
        feed = self.w3.eth.contract(address=market.feed, abi=self.feed_abi)
        return int(feed.functions.latest_price().call())

    def cost_model(self, check: ProfitCheck) -> decisions.CostModel:
        """The keeper's cost model at the node's gas price (`eth_gasPrice`, as the keeper reads
        it) and the ETH price (`check.eth_usd`, else market `check.eth_market_id`'s price)."""
        if check.eth_usd is not None:
            eth_usd = check.eth_usd
        else:
            try:
                eth_usd = Decimal(self.mark_price(check.eth_market_id)) / WAD
            except ContractLogicError as err:
                raise ClientError(f"ETH price unavailable ({err}); pass --eth-usd") from err
        return decisions.CostModel(
            gas_price_wei=int(self.w3.eth.gas_price),
            eth_usd=eth_usd,
            token_usd=check.token_usd,
            token_decimals=self.record.collateral.decimals,
            per_account_gas=check.gas_per_account,
            base_gas=check.base_gas,
            min_profit_usd=check.min_profit_usd,
        )

    def plan(self, accounts: Sequence[str], profit: ProfitCheck | None = None) -> LiquidationPlan:
        """Read status, preview the liquidatable accounts, and plan with the keeper's rules
        (`plan_liquidations`); batches sized to the block as the keeper sizes them."""
        rows = self.status(unique_addresses(accounts))
        previews = {r.account: self.preview(r.account) for r in rows if r.liquidatable}
        sizing = profit or ProfitCheck()
        block_gas_limit = int(self.w3.eth.get_block("latest")["gasLimit"])
        size = decisions.batch_size_for(
            block_gas_limit * KEEPER_BLOCK_GAS_FILL_BPS // BPS,
            sizing.gas_per_account,
            sizing.base_gas,
            cap=self.batch_size,
        )
        if size == 0:
            raise ClientError(f"block gas limit {block_gas_limit} fits no liquidation")
        # Gas and the ETH price are read only when there is something to price.
        cost = self.cost_model(profit) if profit is not None and previews else None
        return plan_liquidations(rows, previews, size, cost)

    # ---- Liquidation ----

    def liquidate(
        self, account_list: Sequence[str], sender: str | None, private_key: str | None = None
    ) -> int:
        """Liquidate the liquidatable accounts in `account_list` with `liquidate_many`;
        the total reward credited to `sender` (token units), 0 when nothing was sent."""
        return self.liquidate_report(account_list, sender, private_key).reward

    def liquidate_report(
        self,
        account_list: Sequence[str],
        sender: str | None,
        private_key: str | None = None,
        *,
        dry_run: bool = False,
        profit: ProfitCheck | None = None,
    ) -> LiquidationReport:
        """Liquidate with `liquidate_many`, in the batches `plan` makes.

        `sender` is an account unlocked on the node (`eth_sendTransaction`) unless `private_key`
        is given, in which case transactions are signed here (`sender` may then be None; if
        given it must match the key); a dry run needs neither. With `profit` the keeper's
        profit rule decides which accounts go out; without it every liquidatable one does.
        Each batch's gas is estimated before sending; an estimate that reverts because the
        batch is healthy by then (a competitor was first) skips the batch; any other revert (a
        stale price, say) raises ClientError."""
        if not dry_run:
            sender = self._sender(sender, private_key)
        plan = self.plan(account_list, profit)
        skipped = list(plan.not_liquidatable)
        unprofitable = tuple(plan.unprofitable)
        if dry_run or not plan.batches:
            if not plan.batches:
                log.info("nothing worth sending among %d accounts", len(plan.not_liquidatable))
            return LiquidationReport(skipped=tuple(skipped), unprofitable=unprofitable, plan=plan)
        assert sender is not None

        block_gas_limit = int(self.w3.eth.get_block("latest")["gasLimit"])
        nonce = int(self.w3.eth.get_transaction_count(sender, "pending"))
        reward, gas_used = 0, 0
        liquidated: list[str] = []
        hashes: list[str] = []
        for batch in (list(b) for b in plan.batches):
            fn = self.contract.functions.liquidate_many(batch)
            try:
                estimate = int(fn.estimate_gas({"from": sender}))
            except ContractLogicError as err:
                if _is_healthy_revert(err) or not self.liquidatable(batch):
                    log.info("batch of %d healthy by now (%s): skipped", len(batch), err)
                    skipped.extend(batch)
                    continue
                raise ClientError(f"liquidate_many would revert: {err}") from err
            tx = fn.build_transaction(
                {"from": sender, "nonce": nonce, "gas": gas_limit_for(estimate, block_gas_limit)}
            )
            if private_key is not None:
                signed = self.w3.eth.account.sign_transaction(tx, private_key)
                tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
            else:
                tx_hash = self.w3.eth.send_transaction(tx)
            nonce += 1
            receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT_S)
            hashes.append(Web3.to_hex(tx_hash))
            gas_used += int(receipt["gasUsed"])
            if receipt["status"] != 1:
                raise ClientError(f"liquidate_many reverted on chain: {hashes[-1]}")
            events = self.contract.events.Liquidated().process_receipt(receipt, errors=DISCARD)
            done = [to_checksum_address(ev["args"]["account"]) for ev in events]
            reward += sum(
                int(ev["args"]["keeper_reward"])
                for ev in events
                if to_checksum_address(ev["args"]["liquidator"]) == sender
            )
            liquidated.extend(done)
            skipped.extend(a for a in batch if a not in done)
            log.info(
                "liquidate_many(%d) %s: %d liquidated, gas %d (estimate %d)",
                len(batch),
                hashes[-1],
                len(done),
                receipt["gasUsed"],
                estimate,
            )
        return LiquidationReport(
            reward,
            tuple(liquidated),
            tuple(hashes),
            gas_used,
            tuple(skipped),
            unprofitable,
            plan,
        )

    @staticmethod
    def _sender(sender: str | None, private_key: str | None) -> str:
        if private_key is None:
            if sender is None:
                raise ClientError("a sender is needed: an unlocked account or a private key")
            return to_checksum_address(sender)
        signer = to_checksum_address(Account.from_key(private_key).address)
        if sender is not None and to_checksum_address(sender) != signer:
            raise ClientError(f"the private key signs for {signer}, not for {sender}")
        return signer
