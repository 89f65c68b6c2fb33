"""The keeper's block handler against a deployed system (py-evm by default, anvil in CI).

Each test builds a small book of six traders, moves a price through the mock aggregator, and
calls `Keeper.on_block`, the same handler the Silverback bot runs for every block.
"""

import logging
from types import SimpleNamespace

import pytest
from ape import chain
from support.constants import BTC, ETH, HEARTBEAT, STALE_WINDOW
from support.deployers import engine_ledger_total
from support.lp import refresh_prices

from margin_maintenance.keeper.core import IterationResult, Keeper, index_scope
from margin_maintenance.keeper.index import AccountIndex
from margin_maintenance.keeper.settings import KeeperSettings

pytestmark = pytest.mark.integration

CRASH_PRICE = 1_800  # ETH -10%: the 8x and 7x longs fall below maintenance


@pytest.fixture
def traders(accounts):
    """Six traders (test accounts not used by any other role here)."""
    return [accounts[i] for i in (2, 3, 6, 7, 8, 9)]


@pytest.fixture
def rival(accounts):
    """A second, competing keeper."""
    return accounts[1]


@pytest.fixture
def book(traders, deposit, seeded_pool, open_position):
    """Six accounts: two ETH longs that a 10% drop makes liquidatable, and four that stay
    healthy (a 2x long, a short, a BTC long, a deposit with no position)."""
    sizes = [(ETH, 4), (ETH, 1), (ETH, 3.5), (ETH, -4), (BTC, 0.12), None]
    for who, pos in zip(traders, sizes, strict=True):
        deposit(who, 1_000)
        if pos is not None:
            open_position(who, *pos)
    return {"doomed": [traders[0], traders[2]], "healthy": [traders[i] for i in (1, 3, 4, 5)]}


@pytest.fixture
def make_keeper(ch, system, tmp_path):
    """make_keeper(signer, db_name='keeper.sqlite', **settings): a caught-up keeper."""
    made: list[Keeper] = []

    def _make(signer, db_name: str = "keeper.sqlite", **overrides) -> Keeper:
        settings = KeeperSettings(**{"dry_run": False, "min_profit": 0.0, **overrides})
        scope = index_scope(chain.chain_id, str(ch.address), system.start_block)
        index = AccountIndex(tmp_path / db_name, system.start_block, scope=scope)
        keeper = Keeper(ch, index, settings, signer)
        keeper.catch_up()
        made.append(keeper)
        return keeper

    yield _make
    for k in made:
        k.close()


def addresses(accts) -> set[str]:
    return {str(a.address) for a in accts}


def liquidated_in(ch, tx_hashes) -> list:
    logs = []
    for h in tx_hashes:
        logs += list(chain.provider.get_receipt(h).decode_logs(ch.Liquidated))
    return logs


def test_on_block__price_drop__liquidates_exactly_the_liquidatable(
    ch, token, book, set_price, make_keeper, liquidator, traders, accounts
):
    keeper = make_keeper(liquidator)
    assert addresses(traders) == set(keeper.index.accounts())
    set_price(ETH, CRASH_PRICE)
    expected = {str(t.address) for t in traders if ch.is_liquidatable(t)}
    assert expected == addresses(book["doomed"])
    positions_before = {str(t.address): ch.position(t, ETH) for t in book["healthy"]}

    (result,) = keeper.on_block(chain.blocks.head.number)

    assert set(result.liquidatable) == expected
    assert {a for batch in result.planned for a in batch} == expected
    assert set(result.liquidated) == expected and result.lost == [] and result.reverts == 0
    events = liquidated_in(ch, result.tx_hashes)
    assert {str(e.account) for e in events} == expected
    assert {str(e.liquidator) for e in events} == {str(liquidator.address)}
    assert not any(ch.is_liquidatable(t) for t in traders)
    for t in book["healthy"]:
        assert ch.position(t, ETH) == positions_before[str(t.address)]
    assert result.reward == sum(e.keeper_reward for e in events) > 0
    assert ch.collateral(liquidator) == result.reward
    m = keeper.metrics
    assert (m.accounts_tracked, m.liquidations_sent, m.liquidations_landed) == (6, 2, 2)
    assert (m.rewards_total, m.reverts, m.batches_sent) == (result.reward, 0, 1)
    assert token.balanceOf(ch) == engine_ledger_total(ch, accounts)


def test_on_block__healthy_book__sends_nothing(book, make_keeper, liquidator):
    keeper = make_keeper(liquidator)
    nonce = liquidator.nonce
    (result,) = keeper.on_block(chain.blocks.head.number)
    assert result.liquidatable == [] and result.planned == [] and result.tx_hashes == []
    assert liquidator.nonce == nonce


def test_on_block__dry_run__plans_but_sends_nothing(ch, book, set_price, make_keeper, liquidator):
    keeper = make_keeper(liquidator, dry_run=True)
    set_price(ETH, CRASH_PRICE)
    nonce = liquidator.nonce
    (result,) = keeper.on_block(chain.blocks.head.number)
    assert result.dry_run
    assert {a for b in result.planned for a in b} == addresses(book["doomed"])
    assert result.tx_hashes == [] and liquidator.nonce == nonce
    assert all(ch.is_liquidatable(t) for t in book["doomed"])


def test_on_block__no_signer__dry_run(book, set_price, make_keeper):
    keeper = make_keeper(None)
    set_price(ETH, CRASH_PRICE)
    (result,) = keeper.on_block(chain.blocks.head.number)
    assert result.dry_run and result.planned and result.tx_hashes == []


def test_on_block__below_min_profit__skipped_not_sent(ch, book, set_price, make_keeper, liquidator):
    keeper = make_keeper(liquidator, min_profit=1_000_000.0)
    set_price(ETH, CRASH_PRICE)
    (result,) = keeper.on_block(chain.blocks.head.number)
    assert result.planned == [] and result.tx_hashes == []
    assert keeper.metrics.unprofitable_skipped == 2
    assert all(ch.is_liquidatable(t) for t in book["doomed"])


def test_two_keepers__second_batch_finds_them_liquidated__no_revert_no_loss(
    ch, token, book, set_price, make_keeper, liquidator, rival, traders, accounts
):
    first = make_keeper(liquidator, "first.sqlite")
    second = make_keeper(rival, "second.sqlite", dry_run=True)
    set_price(ETH, CRASH_PRICE)
    (seen,) = second.on_block(chain.blocks.head.number)  # plans at the same state...
    stale_plan = seen.planned
    assert {a for b in stale_plan for a in b} == addresses(book["doomed"])

    (won,) = first.on_block(chain.blocks.head.number)  # ...but the first keeper lands first
    assert set(won.liquidated) == addresses(book["doomed"])
    collateral_before = {str(t.address): ch.collateral(t) for t in traders}

    late = IterationResult(block=chain.blocks.head.number)
    for batch in stale_plan:
        second.send_batch(batch, late)  # liquidate_many skips them: no revert, no reward

    assert late.reverts == 0 and late.liquidated == [] and late.reward == 0
    assert set(late.lost) == addresses(book["doomed"])
    assert second.metrics.lost_races == 2 and second.metrics.reverts == 0
    assert liquidated_in(ch, late.tx_hashes) == []
    assert ch.collateral(rival) == 0
    assert {str(t.address): ch.collateral(t) for t in traders} == collateral_before
    assert token.balanceOf(ch) == engine_ledger_total(ch, accounts)

    # The rival's next block finds nothing left to do.
    (after,) = second.on_block(chain.blocks.head.number)
    assert after.liquidatable == [] and after.tx_hashes == []


class SingleLiquidate:
    """A clearinghouse whose batch call is a single `liquidate` (which reverts when healthy)."""

    def __init__(self, ch):
        self._ch = ch

    def __getattr__(self, name):
        return getattr(self._ch, name)

    @property
    def liquidate_many(self):
        single = self._ch.liquidate
        return SimpleNamespace(encode_input=lambda accts: single.encode_input(accts[0]))


def test_competitor__account_healthy_revert__logged_and_counted(
    ch, token, book, set_price, make_keeper, liquidator, rival, accounts, caplog
):
    keeper = make_keeper(rival)
    set_price(ETH, CRASH_PRICE)
    doomed = str(book["doomed"][0].address)
    ch.liquidate(doomed, sender=liquidator)  # the competitor got there first

    keeper.ch = SingleLiquidate(ch)
    result = IterationResult(block=chain.blocks.head.number)
    nonce = rival.nonce
    with caplog.at_level(logging.INFO, logger="margin_maintenance.keeper"):
        keeper.send_batch([doomed], result)
    assert rival.nonce == nonce  # refused at the gas estimate: nothing sent, no gas spent
    assert result.reverts == 1 and keeper.metrics.reverts == 1 and result.liquidated == []
    assert "lost to a competitor" in caplog.text and "account healthy" in caplog.text
    assert ch.collateral(rival) == 0
    assert token.balanceOf(ch) == engine_ledger_total(ch, accounts)


def test_restart__new_index_from_same_file__misses_no_account(
    book, set_price, make_keeper, liquidator, traders, deposit, open_position, accounts
):
    first = make_keeper(liquidator, "shared.sqlite")
    first.on_block(chain.blocks.head.number)  # healthy: nothing to do, checkpoint moves
    checkpoint = first.index.checkpoint
    known = first.index.accounts()
    first.close()

    # While the keeper is down: two newcomers, one of them at 9x, then the crash.
    levered, saver = accounts[1], accounts[0]
    deposit(levered, 1_000)
    open_position(levered, ETH, 4.5)
    deposit(saver, 500)
    set_price(ETH, CRASH_PRICE)

    second = make_keeper(liquidator, "shared.sqlite")
    assert second.index.checkpoint > checkpoint
    now = second.index.accounts()
    assert now[: len(known)] == known  # nothing forgotten, order kept
    assert set(now) == addresses([*traders, levered, saver])
    assert len(now) == len(set(now))  # no duplicates
    (result,) = second.on_block(chain.blocks.head.number)
    expected = addresses([*book["doomed"], levered])
    assert set(result.liquidated) == expected


def test_restart__checkpoint_from_another_chain__reindexed(
    ch, system, book, make_keeper, liquidator, traders
):
    scope = index_scope(chain.chain_id, str(ch.address), system.start_block)
    keeper = make_keeper(liquidator, "stale.sqlite")
    keeper.close()
    index = AccountIndex(keeper.index.path, system.start_block, scope=scope)
    index.reset()
    index.record([], chain.blocks.head.number, block_hash="0x" + "00" * 32)  # not this chain's
    index.close()

    again = make_keeper(liquidator, "stale.sqlite")
    assert set(again.index.accounts()) == addresses(traders)


def test_stale_market__other_accounts_still_read_and_liquidated(
    book, set_price, make_keeper, liquidator, btc_agg, deployer
):
    keeper = make_keeper(liquidator)
    set_price(ETH, CRASH_PRICE)
    now = chain.blocks.head.timestamp
    # BTC past its heartbeat and its stale window: its accounts cannot be read at all.
    btc_agg.set_answer_at(60_000 * 10**8, now - HEARTBEAT - STALE_WINDOW - 1, sender=deployer)
    (result,) = keeper.on_block(chain.blocks.head.number)
    assert result.read_error and "1 account(s) unreadable" in result.read_error
    assert set(result.liquidated) == addresses(book["doomed"])
    assert keeper.metrics.read_errors == 1 and keeper.metrics.reverts == 0


def test_all_prices_stale__iteration_skipped_not_raised(
    book, set_price, make_keeper, liquidator, warp
):
    keeper = make_keeper(liquidator)
    set_price(ETH, CRASH_PRICE)
    warp(chain.blocks.head.timestamp + HEARTBEAT + STALE_WINDOW + 10)
    (result,) = keeper.on_block(chain.blocks.head.number)
    assert result.read_error and "stale" in result.read_error
    assert result.tx_hashes == [] and keeper.metrics.read_errors == 1


def test_on_block__block_arriving_mid_iteration__folded_into_another_pass(
    book, make_keeper, liquidator
):
    keeper = make_keeper(liquidator)
    head = chain.blocks.head.number
    real_step = keeper.step
    calls: list[int] = []

    def step(n):
        calls.append(n)
        if len(calls) == 1:
            chain.mine()  # a block arrives; its handler runs while this one is busy
            assert keeper.on_block(n + 1) == []  # ...and returns at once
        return real_step(n)

    keeper.step = step
    results = keeper.on_block(head)
    assert calls == [head, head + 1] and [r.block for r in results] == calls
    assert keeper.on_block(head) == []  # an old block again: nothing new to do


def test_send_batches__two_batches__signed_first_with_consecutive_nonces(
    ch, book, set_price, make_keeper, liquidator
):
    keeper = make_keeper(liquidator, batch_cap=1)
    set_price(ETH, CRASH_PRICE)
    nonce = liquidator.nonce

    (result,) = keeper.on_block(chain.blocks.head.number)

    assert len(result.planned) == 2 and len(result.tx_hashes) == 2
    assert set(result.liquidated) == addresses(book["doomed"]) and result.reverts == 0
    sent = [chain.provider.web3.eth.get_transaction(h) for h in result.tx_hashes]
    assert [int(t["nonce"]) for t in sent] == [nonce, nonce + 1]
    assert liquidator.nonce == nonce + 2


def test_send_batches__broadcast_fails__later_batches_not_sent_then_retried(
    ch, book, set_price, make_keeper, liquidator, monkeypatch, caplog
):
    """A failed broadcast must not leave a signed later nonce in the pool behind a gap: the
    pass stops, and the next one re-plans from the signer's pending nonce."""
    from web3.exceptions import Web3Exception

    keeper = make_keeper(liquidator, batch_cap=1)
    set_price(ETH, CRASH_PRICE)
    nonce = liquidator.nonce
    eth = chain.provider.web3.eth
    real_send = eth.send_raw_transaction
    calls: list[bytes] = []

    def refuse(raw):
        calls.append(raw)
        raise Web3Exception("node refused the transaction")

    monkeypatch.setattr(eth, "send_raw_transaction", refuse)
    with caplog.at_level(logging.WARNING, logger="margin_maintenance.keeper"):
        (failed,) = keeper.on_block(chain.blocks.head.number)

    assert len(failed.planned) == 2 and len(calls) == 1  # the second batch was never broadcast
    assert failed.tx_hashes == [] and failed.reverts == 1 and failed.liquidated == []
    assert "1 later batch(es) left unsent" in caplog.text
    assert liquidator.nonce == nonce

    monkeypatch.setattr(eth, "send_raw_transaction", real_send)
    chain.mine()
    (retried,) = keeper.on_block(chain.blocks.head.number)

    assert set(retried.liquidated) == addresses(book["doomed"])
    assert liquidator.nonce == nonce + 2


# ---- LP requests: the keeper executes them once prices have updated ----


@pytest.fixture
def lp_requests(book, token, vault, fund, lp):
    """The LP asks to add 1,000 and to take out a tenth of its shares (the book has open
    interest, so only requests move LP capital): request ids 0 and 1."""
    amount = fund(lp, 1_000)
    token.approve(vault, amount, sender=lp)
    vault.request_deposit(amount, 0, sender=lp)
    vault.request_withdrawal(vault.balanceOf(lp) // 10, 0, sender=lp)
    return amount


def fresh_prices(system, deployer) -> None:
    """A second later every feed answers again at its price: what execution waits for."""
    refresh_prices(system, deployer)


def test_serve_requests__after_fresh_prices__both_executed_for_the_fee(
    ch, token, vault, system, deployer, lp_requests, make_keeper, liquidator, lp
):
    keeper = make_keeper(liquidator, requests="always")
    nonce = liquidator.nonce
    (result,) = keeper.on_block(chain.blocks.head.number)
    assert result.requests_executed == [] and liquidator.nonce == nonce  # prices not updated
    assert not vault.executable(0) and not vault.executable(1)

    fresh_prices(system, deployer)
    shares_before = vault.balanceOf(lp)
    (result,) = keeper.on_block(chain.blocks.head.number)

    assert result.requests_executed == [0, 1]
    fee = vault.execution_fee()
    m = keeper.metrics
    assert (m.requests_executed, m.request_fees_total, m.request_reverts) == (2, 2 * fee, 0)
    assert token.balanceOf(liquidator) == 2 * fee  # the executor's fees, in tokens
    assert vault.balanceOf(lp) > shares_before and vault.escrowed_shares() == 0
    assert token.balanceOf(vault) == 0  # nothing left in escrow
    (result,) = keeper.on_block(chain.blocks.head.number)  # nothing pending any more
    assert result.requests_executed == [] and keeper.metrics.requests_executed == 2


def test_serve_requests__executed_by_someone_else__dropped_without_a_transaction(
    vault, system, deployer, lp_requests, make_keeper, liquidator, rival
):
    keeper = make_keeper(liquidator, requests="always")
    keeper.on_block(chain.blocks.head.number)  # both pending, neither executable
    fresh_prices(system, deployer)
    vault.execute_request(0, sender=rival)
    vault.execute_request(1, sender=rival)
    nonce = liquidator.nonce
    (result,) = keeper.on_block(chain.blocks.head.number)
    assert result.requests_executed == [] and liquidator.nonce == nonce
    assert keeper.metrics.request_reverts == 0 and keeper._pending == set()


def test_serve_requests__slippage_bound__counted_and_kept_for_later(
    token, vault, system, deployer, book, fund, make_keeper, liquidator, lp
):
    amount = fund(lp, 1_000)
    token.approve(vault, amount, sender=lp)
    vault.request_deposit(amount, 2**200, sender=lp)  # asks for more shares than exist
    fresh_prices(system, deployer)
    keeper = make_keeper(liquidator, requests="always")
    (result,) = keeper.on_block(chain.blocks.head.number)
    assert result.requests_executed == [] and keeper.metrics.request_reverts == 1
    assert keeper._pending == {0} and vault.requests(0).amount == amount


@pytest.mark.parametrize(("min_profit", "executed"), [(1.0, []), (0.0, [0, 1])])
def test_serve_requests__profitable_policy__fee_against_gas_and_margin(
    system, deployer, lp_requests, make_keeper, liquidator, min_profit, executed
):
    """The 0.1-token fee less one gas unit's cost must clear `min_profit` (a gas price, on
    anvil near zero, cannot be relied on to make it fail)."""
    keeper = make_keeper(
        liquidator, requests="profitable", request_gas=1, eth_usd=2_000, min_profit=min_profit
    )
    fresh_prices(system, deployer)
    (result,) = keeper.on_block(chain.blocks.head.number)
    assert result.requests_executed == executed


def test_serve_requests__off__left_alone(
    vault, system, deployer, lp_requests, make_keeper, liquidator
):
    keeper = make_keeper(liquidator, requests="off")
    fresh_prices(system, deployer)
    nonce = liquidator.nonce
    (result,) = keeper.on_block(chain.blocks.head.number)
    assert result.requests_executed == [] and liquidator.nonce == nonce
    assert vault.executable(0) and vault.executable(1)
