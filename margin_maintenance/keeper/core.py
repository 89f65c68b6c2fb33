"""The keeper's I/O shell: one iteration per block, around the pure rules in `decisions.py`.

`Keeper.on_block(n)` is the handler the Silverback bot calls for every new block (and the one
the tests call in-process): index new events, read `margin_status` in chunks, preview the
liquidatable accounts, rank them, check profit against gas, send `liquidate_many` batches that
fit the block. Losing a race to another keeper is normal: `liquidate_many` skips accounts that
are healthy by the time it lands, and a revert (for example `"clearinghouse: account healthy"`
from a single `liquidate`, or a stale price) is logged and counted, never raised.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests
from ape.exceptions import ApeException
from web3.exceptions import Web3Exception

from margin_maintenance.system import engine_at

from . import decisions
from .decisions import AccountStatus, CostModel, Preview
from .gate import Gate, LocalGate
from .index import AccountIndex, Web3LogSource
from .reads import ClearinghouseReader, ReadError
from .settings import KeeperSettings, Watch, network_slug, resolve_watch

log = logging.getLogger("margin_maintenance.keeper")

BPS = 10_000
GAS_LIMIT_MARGIN = 1.25  # gas limit over the node's estimate (state may move before landing)
HEALTHY_REVERT = "account healthy"  # the tail of "clearinghouse: account healthy"
# What a node or the network can throw at a read; an iteration that hits one is skipped.
READ_FAILURES = (ReadError, ApeException, Web3Exception, requests.RequestException)
# What preparing, sending or awaiting a transaction can throw (ValueError: web3's RPC errors
# on older paths; TimeoutError: a receipt that never came).
SEND_FAILURES = (ApeException, Web3Exception, requests.RequestException, ValueError, TimeoutError)


@dataclass
class Metrics:
    """Running counters since the keeper started (exposed as Silverback metrics and logs)."""

    accounts_tracked: int = 0  # accounts in the index
    liquidatable_seen: int = 0  # liquidatable accounts at the last read
    liquidations_sent: int = 0  # accounts submitted in liquidate_many batches
    liquidations_landed: int = 0  # of those, liquidated by this keeper (Liquidated events)
    lost_races: int = 0  # submitted but already healthy when the batch landed
    batches_sent: int = 0  # liquidate_many transactions that landed
    price_updates: int = 0  # signed price updates sent (with a batch or on their own)
    rewards_total: int = 0  # keeper rewards earned, token units
    reverts: int = 0  # batches that reverted (estimate or on-chain), not raised
    read_errors: int = 0  # iterations with a failed read (whole or some accounts: stale price)
    unprofitable_skipped: int = 0  # per block, targets left alone because gas would cost more
    requests_executed: int = 0  # LP vault requests this keeper executed
    request_fees_total: int = 0  # execution fees earned, token units
    request_reverts: int = 0  # executions refused at estimate (slippage, free liquidity, ...)
    iterations: int = 0  # blocks processed

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class IterationResult:
    """What one iteration saw and did."""

    block: int
    tracked: int = 0
    liquidatable: list[str] = field(default_factory=list)
    planned: list[list[str]] = field(default_factory=list)  # batches chosen, in send order
    liquidated: list[str] = field(default_factory=list)  # liquidated by us this iteration
    lost: list[str] = field(default_factory=list)  # sent, but someone else got there first
    reward: int = 0  # token units earned this iteration
    reverts: int = 0
    tx_hashes: list[str] = field(default_factory=list)
    dry_run: bool = False
    read_error: str | None = None
    requests_executed: list[int] = field(default_factory=list)  # LP request ids we executed


class Keeper:
    """One keeper: a clearinghouse, an account index, a signer (None = dry run)."""

    def __init__(
        self,
        clearinghouse: Any,
        index: AccountIndex,
        settings: KeeperSettings | None = None,
        signer: Any | None = None,
        *,
        eth_usd: Callable[[], float] | None = None,
        gate: Gate | None = None,
    ) -> None:
        from ape import chain

        self.chain = chain
        self.ch = clearinghouse
        self.index = index
        self.settings = settings or KeeperSettings()
        self.signer = signer
        self.metrics = Metrics(accounts_tracked=len(index))
        self.token_decimals = 18 - (len(str(int(clearinghouse.token_scale()))) - 1)
        self._eth_usd_reader = eth_usd or self._read_eth_usd
        self._eth_usd_last: float | None = None
        self._eth_feed: Any = None
        self._logs = Web3LogSource.for_contract(chain.provider.web3, clearinghouse)
        self.reader = ClearinghouseReader.for_contract(clearinghouse, chain.provider)
        self._deferred: set[str] = set()  # unprofitable last time: previewed after the others
        self._vault: Any = None  # the LP vault (read from the engine on first use)
        self._execution_fee: int | None = None  # the vault's, fixed at its `bind`
        self._pending: set[int] = set()  # LP request ids not yet seen executed or cancelled
        self._request_cursor = 0  # request ids below this have been added to `_pending`
        # One iteration at a time; blocks that arrive meanwhile fold into the next pass. A
        # RedisGate extends the rule to every worker process sharing this signer (gate.py).
        self.gate: Gate = gate if gate is not None else LocalGate()
        self._signed: list[tuple[bytes, str]] | None = None  # (feed id, verifier) per market
        self._update: bytes | None = None  # this pass's signed prices, sent with each batch
        self._verifiers: dict[str, Any] = {}  # contract handles, made once
        self._max_ages: dict[bytes, int] = {}  # each signed feed's oldest report accepted

    @property
    def dry_run(self) -> bool:
        return self.settings.dry_run or self.signer is None

    # ---- Entry points ----

    def catch_up(self) -> int:
        """Validate the checkpoint against the chain and index everything up to head."""
        self._check_checkpoint()
        added = self._sync(self.chain.blocks.head.number or 0)
        log.info(
            "keeper ready: %d account(s) tracked, checkpoint %d, %s",
            len(self.index),
            self.index.checkpoint,
            "DRY RUN" if self.dry_run else f"signer {self.signer.address}",
        )
        return added

    def on_block(self, block_number: int | None = None) -> list[IterationResult]:
        """Handle a new block. Blocks that arrive while an iteration runs (Silverback runs
        handlers concurrently, in one process or several) are not dropped: the running call
        loops once more for them, and the call handed such a block returns []."""
        if block_number is None:
            block_number = self.chain.blocks.head.number or 0
        return self.gate.run(block_number, lambda target: self.step(target))

    def step(self, block_number: int) -> IterationResult:
        """One full pass at `block_number`: index, read, rank, check profit, send; then
        execute the LP vault's requests whose prices have updated (`serve_requests`)."""
        self.metrics.iterations += 1
        result = IterationResult(block=block_number, dry_run=self.dry_run)
        self.liquidations(block_number, result)
        self.serve_requests(result)
        return result

    # ---- Signed prices ----

    def _signed_feeds(self) -> list[tuple[bytes, str]]:
        """(feed id, verifier) of every market whose feed is a SignedPriceFeed (read once)."""
        if self._signed is None:
            from ape import project

            found = []
            for m in range(int(self.ch.market_count())):
                feed = project.SignedPriceFeed.at(str(self.ch.market(m).feed))
                try:
                    found.append((bytes(feed.feed_id()), str(feed.verifier())))
                except (ApeException, Web3Exception, ValueError):
                    continue  # a push-only market
            self._signed = found
        return self._signed

    def fresh_prices(self) -> tuple[bytes, dict[str, Any]] | None:
        """The service's reports the verifier would store now, as (the `updates` blob, the
        eth_call state override that stores them in the verifier: `_latest[feed id]`); None
        when there is none, or no service, or no signed market. A report the chain already
        has, or one older than its feed's `max_age` by the next block, is left out of the
        blob: the first would be skipped on chain, the second would revert the whole batch."""
        feeds = self._signed_feeds()
        if not self.settings.attest_url or not feeds:
            return None
        from ape import chain, project

        from margin_maintenance.attest import decode_updates
        from margin_maintenance.attest.codec import latest_override, merge_updates, select_updates
        from margin_maintenance.attest.service import fetch_update

        url = self.settings.attest_url
        try:
            blob = fetch_update(url, [f for f, _ in feeds])
        except RuntimeError:
            # The service lacks a report for some market (Hermes answers 404 for the whole
            # request): ask market by market and bring the ones it has.
            parts = []
            for f, _ in feeds:
                try:
                    parts.append(fetch_update(url, [f]))
                except RuntimeError:
                    continue
            if not parts:
                return None
            blob = merge_updates(parts)
        verifiers = dict(feeds)
        # The next block is at least a second after the head: a report must survive that.
        next_time = int(chain.blocks.head.timestamp) + 1
        keep: list[bool] = []
        stored = []
        for report, _ in decode_updates(blob):
            verifier = verifiers[report.feed_id]
            if verifier not in self._verifiers:
                self._verifiers[verifier] = project.PriceVerifier.at(verifier)
            contract = self._verifiers[verifier]
            max_age = self._max_ages.get(report.feed_id)
            if max_age is None:
                max_age = self._max_ages[report.feed_id] = int(contract.feeds(report.feed_id)[2])
            on_chain = int(contract.latest(report.feed_id)[1])
            fresh = report.publish_time > on_chain and next_time - report.publish_time <= max_age
            keep.append(fresh)
            if fresh:
                stored.append((verifier, report))
        if not stored:
            return None
        chosen = select_updates(blob, keep)
        assert chosen is not None
        return chosen, latest_override(stored)

    def _bring_prices(self, result: IterationResult) -> None:
        """Before reading: the service's newer reports, read through a state override and
        sent with every batch; on a node that takes no override (Ape's in-process chain) they
        are stored first by an `update_prices` of their own."""
        self._update = None
        self.reader.overrides = None
        try:
            fresh = self.fresh_prices()
        except (requests.RequestException, RuntimeError, ValueError) as err:
            self.metrics.read_errors += 1
            log.warning("attestation service unreachable: %s (push prices only)", err)
            return
        if fresh is None:
            return
        blob, overrides = fresh
        if self.reader.can_override:
            self._update, self.reader.overrides = blob, overrides
            return
        if self.dry_run:
            return
        self.ch.update_prices(blob, sender=self.signer)
        self.metrics.price_updates += 1

    def liquidations(self, block_number: int, result: IterationResult) -> None:
        """The liquidation part of a pass: what `step` did before LP requests existed."""
        s = self.settings
        self._bring_prices(result)
        try:
            self._sync(block_number)
            accounts = self.index.accounts()
            result.tracked = self.metrics.accounts_tracked = len(accounts)
            statuses, unread = self.reader.margin_status(
                decisions.status_chunks(accounts, s.status_chunk)
            )
            if unread and len(unread) == len(accounts):
                raise ReadError(next(iter(unread.values())))
        except READ_FAILURES as err:
            self.metrics.read_errors += 1
            result.read_error = _reason(err)
            log.warning("block %d: read failed, skipping: %s", block_number, result.read_error)
            return
        if unread:
            self.metrics.read_errors += 1
            result.read_error = (
                f"{len(unread)} account(s) unreadable: {next(iter(unread.values()))}"
            )
            log.warning("block %d: %s", block_number, result.read_error)
        candidates = decisions.liquidatable_candidates(statuses)
        result.liquidatable = [c.account for c in candidates]
        self.metrics.liquidatable_seen = len(candidates)
        self._deferred &= set(result.liquidatable)
        if not candidates:
            return

        head = self.chain.blocks.head
        usable_gas = int(head.gas_limit) * s.block_gas_fill_bps // BPS
        size = decisions.batch_size_for(
            usable_gas, s.gas_per_account, s.batch_base_gas, cap=s.batch_cap
        )
        if size == 0:
            log.error("block gas limit %d fits no liquidation", head.gas_limit)
            return
        n_batches = max(1, min(s.max_batches_per_block, usable_gas // self._gas(size)))
        capacity = size * n_batches

        # Preview a bit more than we can send, deferring last time's unprofitable ones.
        candidates.sort(key=lambda c: c.account in self._deferred)
        try:
            previews = self.read_previews([c.account for c in candidates[: 2 * capacity]])
            cost = self.cost_model()
        except READ_FAILURES as err:
            self.metrics.read_errors += 1
            result.read_error = _reason(err)
            log.warning("block %d: read failed, skipping: %s", block_number, result.read_error)
            return
        targets = decisions.select_targets(candidates, previews, capacity)
        batches, skipped = decisions.plan_batches(targets, size, n_batches, cost)
        self._deferred |= {t.account for t in skipped}
        self.metrics.unprofitable_skipped += len(skipped)
        result.planned = [[t.account for t in b] for b in batches]
        log.info(
            "block %d: %d tracked, %d liquidatable, %d batch(es) of <= %d planned%s%s",
            block_number,
            len(accounts),
            len(candidates),
            len(batches),
            size,
            f", {len(skipped)} unprofitable" if skipped else "",
            " (dry run)" if self.dry_run else "",
        )
        if self.dry_run:
            for b in batches:
                log.info(
                    "dry run: would liquidate %s for %d token units",
                    [t.account for t in b],
                    sum(t.reward for t in b),
                )
            return
        self.send_batches([[t.account for t in b] for b in batches], result)

    # ---- LP requests ----

    def vault(self) -> Any:
        if self._vault is None:
            from ape import project

            self._vault = project.LPVault.at(str(self.ch.lp_token()))
        return self._vault

    def serve_requests(self, result: IterationResult) -> None:
        """Execute the LP vault's open requests whose prices have updated, for the fee. New
        ids come from `request_count`; an id leaves the pending set once its slot is empty
        (executed or cancelled, by anyone). A request that cannot execute yet (`executable`
        false: prices not updated, or a deposit while paused) waits; one whose execution
        would revert (slippage, free liquidity) is counted and tried again next pass. With
        `MM_REQUESTS=profitable` (the default) the fee must pay for `request_gas` at the
        current gas price; `always` serves LPs at a loss; `off` leaves requests alone."""
        s = self.settings
        if s.requests == "off":
            return
        try:
            vault = self.vault()
            count = int(vault.request_count())
            self._pending.update(range(self._request_cursor, count))
            self._request_cursor = count
            ready: list[int] = []
            for request_id in sorted(self._pending)[: s.request_cap]:
                if int(vault.requests(request_id).amount) == 0:  # executed or cancelled
                    self._pending.discard(request_id)
                elif vault.executable(request_id):
                    ready.append(request_id)
            if not ready:
                return
            if self._execution_fee is None:
                self._execution_fee = int(vault.execution_fee())
            fee = self._execution_fee
            if s.requests == "profitable" and not decisions.request_pays(
                fee, s.request_gas, self.cost_model()
            ):
                log.info("%d LP request(s) ready; the fee does not pay the gas", len(ready))
                return
        except READ_FAILURES as err:
            self.metrics.read_errors += 1
            log.warning("LP requests unreadable: %s", _reason(err))
            return
        if self.dry_run:
            log.info("dry run: would execute LP request(s) %s", ready)
            return
        for request_id in ready:
            receipt = self._send_call(
                str(vault.address), bytes(vault.execute_request.encode_input(request_id))
            )
            if isinstance(receipt, str):
                self.metrics.request_reverts += 1
                log.info("LP request %d not executed: %s", request_id, receipt)
                continue
            [executed] = receipt.decode_logs(vault.RequestExecuted)
            self._pending.discard(request_id)
            self.metrics.requests_executed += 1
            self.metrics.request_fees_total += int(executed.fee)
            result.requests_executed.append(request_id)
            log.info(
                "executed LP request %d: %d assets, %d shares, fee %d",
                request_id,
                int(executed.assets),
                int(executed.shares),
                int(executed.fee),
            )

    def _send_call(self, to: str, data: bytes) -> Any:
        """One transaction to `to`: estimated, signed and sent as the batches are; the
        receipt, or the reason it was not sent or reverted."""
        provider = self.chain.provider
        try:
            fields = self._tx_fields(to)
            txn = provider.network.ecosystem.create_transaction(data=data, **fields)
            txn.gas_limit = int(provider.estimate_gas_cost(txn) * GAS_LIMIT_MARGIN)
            ready = self.signer.sign_transaction(txn)
            if ready is None:
                return f"signer {self.signer.address} declined to sign"
            txn_hash = provider.web3.eth.send_raw_transaction(ready.serialize_transaction())
            receipt = provider.get_receipt(_hexstr(txn_hash))
        except SEND_FAILURES as err:
            return _reason(err)
        return f"{_hexstr(receipt.txn_hash)} reverted on chain" if receipt.failed else receipt

    # ---- Chain reads ----

    def read_statuses(self, accounts: Sequence[str]) -> list[AccountStatus]:
        """`margin_status` over every account, in chunks the contract accepts (one batched
        round trip); accounts that cannot be read (stale price on one of their markets) are
        left out."""
        rows, _ = self.reader.margin_status(
            decisions.status_chunks(accounts, self.settings.status_chunk)
        )
        return rows

    def read_previews(self, accounts: Sequence[str]) -> dict[str, Preview]:
        """`liquidation_preview` per account; one that fails to read is left out (not priced)."""
        previews, failed = self.reader.previews(accounts)
        for account, reason in failed.items():
            log.warning("preview of %s failed: %s", account, reason)
        return previews

    def cost_model(self) -> CostModel:
        s = self.settings
        return CostModel(
            gas_price_wei=int(self.chain.provider.gas_price),
            eth_usd=self.eth_usd(),
            token_usd=s.token_usd,
            token_decimals=self.token_decimals,
            per_account_gas=s.gas_per_account,
            base_gas=s.batch_base_gas,
            min_profit_usd=s.min_profit,
        )

    def eth_usd(self) -> float:
        """USD per ETH for gas costs: the setting, else the ETH market's feed (last good)."""
        if self.settings.eth_usd is not None:
            return self.settings.eth_usd
        try:
            self._eth_usd_last = self._eth_usd_reader()
        except READ_FAILURES as err:
            log.warning("ETH price unavailable (%s); using %s", _reason(err), self._eth_usd_last)
        return self._eth_usd_last or 0.0

    def _read_eth_usd(self) -> float:
        from ape import project

        address = str(self.ch.market(self.settings.eth_market_id).feed)
        if self._eth_feed is None or str(self._eth_feed.address) != address:
            self._eth_feed = project.PriceFeed.at(address)
        return int(self._eth_feed.latest_price()) / decisions.WAD

    # ---- Sending ----

    def send_batches(self, batches: Sequence[Sequence[str]], result: IterationResult) -> None:
        """Send every batch, then wait for them. All batches are estimated and signed first,
        with consecutive nonces, and only then broadcast back to back, so that under interval
        mining an iteration's batches land in the same block even when preparing them takes
        longer than a block. The nonce, chain id and fees are read once per pass
        (`_tx_fields`); each batch then costs one `eth_estimateGas` and one
        `eth_sendRawTransaction`. A batch whose gas estimate reverts is logged, counted and
        skipped (its nonce goes to the next batch); a broadcast that fails stops the pass
        before any later nonce is sent, so no transaction waits behind a gap. Nothing here
        raises. Accounts another keeper liquidated first are skipped by the contract and
        counted as lost races. Before each batch the gate is asked whether this pass still
        holds the signer (a distributed lease renews here); if not, the rest is left to the
        next pass."""
        provider = self.chain.provider
        signed: list[tuple[list[str], Any]] = []
        fields: dict[str, Any] | None = None
        for i, batch in enumerate(batches):
            accounts = list(batch)
            if not self.gate.holding():  # another worker's pass may be sending: stop here
                log.warning("lease lost: %d batch(es) left to the next pass", len(batches) - i)
                break
            try:
                if fields is None:
                    fields = self._tx_fields()
                if self._update is None:
                    data = bytes(self.ch.liquidate_many.encode_input(accounts))
                else:  # the signed prices the reads saw, brought in the same transaction
                    data = bytes(self.ch.liquidate_with_prices.encode_input(self._update, accounts))
                    self.metrics.price_updates += 1
                txn = provider.network.ecosystem.create_transaction(data=data, **fields)
                # Estimate first: a batch that would revert is never sent (Ape's provider turns
                # the node's revert, whichever node, into a ContractLogicError with its reason).
                txn.gas_limit = int(provider.estimate_gas_cost(txn) * GAS_LIMIT_MARGIN)
                ready = self.signer.sign_transaction(txn)
                if ready is None:
                    raise ValueError(f"signer {self.signer.address} declined to sign")
            except SEND_FAILURES as err:
                self._reverted(accounts, _reason(err), result)
                continue
            fields["nonce"] += 1
            signed.append((accounts, ready))
        sent: list[tuple[list[str], str]] = []
        for k, (accounts, ready) in enumerate(signed):
            try:
                txn_hash = provider.web3.eth.send_raw_transaction(ready.serialize_transaction())
            except SEND_FAILURES as err:
                self._reverted(accounts, _reason(err), result)
                log.warning("broadcast failed: %d later batch(es) left unsent", len(signed) - k - 1)
                break
            sent.append((accounts, _hexstr(txn_hash)))
        for accounts, txn_hash in sent:
            try:
                receipt = provider.get_receipt(txn_hash)
            except SEND_FAILURES as err:
                self._reverted(accounts, f"{txn_hash}: {_reason(err)}", result)
                continue
            if receipt.failed:
                self._reverted(accounts, f"{txn_hash} reverted on chain", result)
                continue
            self._landed(accounts, receipt, result)

    def _tx_fields(self, receiver: str | None = None) -> dict[str, Any]:
        """Everything but data and gas for this pass's transactions, read once: the signer's
        "pending" nonce (a transaction of ours still in the pool keeps its nonce), the chain id,
        and EIP-1559 fees as Ape would set them (max fee = base fee x the network's multiplier
        + tip), or a legacy gas price where the chain has no base fee."""
        provider = self.chain.provider
        sender = str(self.signer.address)
        fields: dict[str, Any] = {
            "sender": sender,
            "receiver": receiver or str(self.ch.address),
            "chain_id": int(self.chain.chain_id),
            "nonce": int(provider.web3.eth.get_transaction_count(sender, "pending")),
            "value": 0,
        }
        base_fee = getattr(self.chain.blocks.head, "base_fee", None)
        if base_fee is None:
            fields.update(type=0, gas_price=int(provider.gas_price))
        else:
            tip = int(provider.priority_fee)
            multiplier = provider.network.base_fee_multiplier
            fields.update(type=2, max_priority_fee=tip, max_fee=int(base_fee * multiplier + tip))
        return fields

    def send_batch(self, accounts: Sequence[str], result: IterationResult) -> None:
        """One liquidate_many (see `send_batches`)."""
        self.send_batches([accounts], result)

    def _reverted(self, accounts: Sequence[str], reason: str, result: IterationResult) -> None:
        self.metrics.reverts += 1
        result.reverts += 1
        if HEALTHY_REVERT in reason:
            log.info("batch of %d lost to a competitor: %s", len(accounts), reason)
        else:
            log.warning("batch of %d not sent or reverted: %s", len(accounts), reason)

    def _landed(self, accounts: Sequence[str], receipt: Any, result: IterationResult) -> None:
        me = str(self.signer.address).lower()
        landed = [
            ev for ev in receipt.decode_logs(self.ch.Liquidated) if str(ev.liquidator).lower() == me
        ]
        done = {str(ev.account).lower() for ev in landed}
        reward = sum(int(ev.keeper_reward) for ev in landed)
        lost = [a for a in accounts if a.lower() not in done]
        self.metrics.batches_sent += 1
        self.metrics.liquidations_sent += len(accounts)
        self.metrics.liquidations_landed += len(landed)
        self.metrics.lost_races += len(lost)
        self.metrics.rewards_total += reward
        result.liquidated += [str(ev.account) for ev in landed]
        result.lost += lost
        result.reward += reward
        result.tx_hashes.append(_hexstr(receipt.txn_hash))
        log.info(
            "liquidate_many %s: %d/%d liquidated, reward %d, gas %d%s",
            _hexstr(receipt.txn_hash),
            len(landed),
            len(accounts),
            reward,
            receipt.gas_used,
            f", {len(lost)} already healthy (competitor)" if lost else "",
        )

    # ---- Index ----

    def _sync(self, head: int) -> int:
        upto = head - self.settings.confirmations
        if upto <= self.index.checkpoint:
            return 0
        added = self.index.sync(self._logs, upto, self.settings.log_chunk, self._block_hash)
        self.metrics.accounts_tracked = len(self.index)
        return added

    def _block_hash(self, number: int) -> str | None:
        try:
            return _hexstr(self.chain.blocks[number].hash)
        except (ApeException, IndexError):
            return None

    def _check_checkpoint(self) -> None:
        """Start over if the checkpointed block is gone or different (new local chain, reorg)."""
        cp, stored = self.index.checkpoint, self.index.checkpoint_hash
        if cp < self.index.start_block or stored is None:
            return
        head = self.chain.blocks.head.number or 0
        now = self._block_hash(cp) if cp <= head else None
        if now != stored:
            log.warning("checkpoint block %d changed (chain reset or reorg): re-indexing", cp)
            self.index.reset()

    def _gas(self, n: int) -> int:
        return decisions.batch_gas(n, self.settings.gas_per_account, self.settings.batch_base_gas)

    def close(self) -> None:
        self.index.close()


def _hexstr(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    return str(value)


def _reason(err: BaseException) -> str:
    return str(getattr(err, "revert_message", None) or err).strip() or type(err).__name__


# ---- Building a keeper from settings ----


def index_scope(chain_id: int, clearinghouse: str, start_block: int) -> str:
    return f"{chain_id}:{clearinghouse.lower()}:{start_block}"


def build_keeper(
    settings: KeeperSettings | None = None,
    signer: Any | None = None,
    db_path: str | Path | None = None,
    gate: Gate | None = None,
) -> Keeper:
    """A keeper for the connected network, from `MM_*` settings (see `settings.py`)."""
    from ape import chain, project

    settings = settings or KeeperSettings()
    network = chain.provider.network
    watch: Watch = resolve_watch(settings, network_slug(network.ecosystem.name, network.name))
    chain_id = int(chain.chain_id)
    if watch.chain_id is not None and watch.chain_id != chain_id:
        raise ValueError(
            f"deployment record is for chain {watch.chain_id}, connected to chain {chain_id}"
        )
    ch = engine_at(project, watch.clearinghouse)
    index = AccountIndex(
        db_path or settings.db_path,
        watch.start_block,
        scope=index_scope(chain_id, str(ch.address), watch.start_block),
    )
    keeper = Keeper(ch, index, settings, signer, gate=gate)
    keeper.catch_up()
    return keeper
