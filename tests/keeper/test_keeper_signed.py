"""The keeper on signed prices (anvil: its reads take an eth_call state override): the push
feed is dead, the attestation service has the crash price, and the keeper reads the accounts
at it and liquidates them with `liquidate_with_prices` in one transaction each batch."""

from __future__ import annotations

import pytest
import requests
from ape import chain
from eth_utils import keccak
from support.constants import ETH, HEARTBEAT, MAX_UINT, STALE_WINDOW, USDC, WAD
from support.deployers import fund_and_approve

from margin_maintenance.attest.codec import LATEST_SLOT
from margin_maintenance.attest.service import Attestor, AttestServer, ManualSource
from margin_maintenance.keeper.core import Keeper, index_scope
from margin_maintenance.keeper.index import AccountIndex
from margin_maintenance.keeper.settings import KeeperSettings
from margin_maintenance.system import SystemParams, deploy_system

# In-process (py-evm takes no eth_call override) the keeper stores the prices with an
# update_prices of its own first, then liquidates; on anvil (the integration pass) it reads
# through a state override and sends liquidate_with_prices: each pass checks its path.
pytestmark = pytest.mark.integration


@pytest.fixture
def signed(project, deployer, guardian):
    return deploy_system(project, deployer, guardian, SystemParams(signed_prices=True))


@pytest.fixture
def service(signed):
    att = Attestor(signed.signer_set, chain.chain_id, signed.verifier.address, signed.symbols)
    server = AttestServer(att, ManualSource(), clock=lambda: chain.blocks.head.timestamp).start()
    yield server
    server.stop()


def test_latest_slot__matches_the_verifiers_storage(signed, service, accounts):
    requests.post(f"{service.url}/v1/prices", json={"symbol": "ETH-USD", "price": 1990}, timeout=5)
    from margin_maintenance.attest.service import fetch_update

    signed.verifier.update_prices(
        fetch_update(service.url, [signed.feed_ids[ETH]]), accounts[3], sender=accounts[3]
    )
    slot = keccak(LATEST_SLOT.to_bytes(32, "big") + signed.feed_ids[ETH])
    word = int.from_bytes(chain.provider.web3.eth.get_storage_at(signed.verifier.address, slot))
    price, at = signed.verifier.latest(signed.feed_ids[ETH])
    assert word == at << 192 | price and price == 1990 * WAD


def test_keeper__push_feed_dead__liquidates_on_the_services_price(
    signed, service, deployer, accounts, tmp_path
):
    ch = signed.clearinghouse
    lp, doomed, safe, me = accounts[4], accounts[5], accounts[6], accounts[7]
    fund_and_approve(signed.token, ch, lp, 1_000_000 * USDC, deployer)
    signed.vault.add_liquidity(1_000_000 * USDC, 0, sender=lp)
    for who, units in ((doomed, 9), (safe, 2)):
        fund_and_approve(signed.token, ch, who, 2_000 * USDC, deployer)
        ch.deposit(2_000 * USDC, sender=who)
        ch.trade(ETH, units * WAD, MAX_UINT, sender=who)
    fund_and_approve(signed.token, ch, me, 10 * USDC, deployer)
    ch.deposit(10 * USDC, sender=me)
    chain.mine(1, timestamp=chain.blocks.head.timestamp + HEARTBEAT + STALE_WINDOW + 10)
    # The market fell 7.5%: the push feed, dead, says nothing; the service has the price.
    r = requests.post(
        f"{service.url}/v1/prices", json={"symbol": "ETH-USD", "price": 1850}, timeout=5
    )
    assert r.ok, r.text

    settings = KeeperSettings(dry_run=False, min_profit=0.0, attest_url=service.url, eth_usd=1850)
    scope = index_scope(chain.chain_id, str(ch.address), signed.start_block)
    keeper = Keeper(
        ch, AccountIndex(tmp_path / "k.sqlite", signed.start_block, scope=scope), settings, me
    )
    try:
        keeper.catch_up()
        [result] = keeper.on_block()
    finally:
        keeper.close()
    assert result.liquidatable == [str(doomed.address)]
    assert result.liquidated == [str(doomed.address)]
    assert keeper.metrics.price_updates == 1 and keeper.metrics.batches_sent == 1
    if keeper.reader.can_override:  # anvil: the reads saw the price, one transaction sent
        [tx] = result.tx_hashes
        data = chain.provider.web3.eth.get_transaction(tx)["input"]
        assert bytes(data)[:4] == keccak(text=ch.liquidate_with_prices.abis[0].selector)[:4]
    assert ch.position(doomed, ETH)[0] < 9 * WAD  # liquidated, at the signed price
    assert ch.position(safe, ETH)[0] == 2 * WAD
    assert signed.verifier.latest(signed.feed_ids[ETH])[0] == 1850 * WAD  # brought on chain


def test_fresh_prices__stale_or_stored_reports_left_out(signed, service, accounts, tmp_path):
    """A report past its feed's max_age would revert the keeper's whole batch, one the chain
    already has would be skipped: the keeper brings neither."""
    from margin_maintenance.attest import decode_updates

    ch = signed.clearinghouse
    settings = KeeperSettings(dry_run=True, attest_url=service.url)
    scope = index_scope(chain.chain_id, str(ch.address), signed.start_block)
    keeper = Keeper(
        ch, AccountIndex(tmp_path / "k.sqlite", signed.start_block, scope=scope), settings
    )

    def post(symbol, price):
        r = requests.post(
            f"{service.url}/v1/prices", json={"symbol": symbol, "price": price}, timeout=5
        )
        assert r.ok, r.text

    def brought():
        fresh = keeper.fresh_prices()
        return None if fresh is None else [r.feed_id for r, _ in decode_updates(fresh[0])]

    try:
        post("ETH-USD", 1990)
        assert brought() == [signed.feed_ids[ETH]]
        max_age = int(signed.verifier.feeds(signed.feed_ids[ETH]).max_age)
        chain.mine(1, timestamp=chain.blocks.head.timestamp + max_age)
        assert brought() is None  # one second older by the next block than the verifier takes
        post("BTC-USD", 59_000)
        assert brought() == [signed.feed_ids[1]]  # ETH left out, BTC brought
        blob, _ = keeper.fresh_prices()
        signed.verifier.update_prices(blob, accounts[3], sender=accounts[3])
        assert brought() is None  # the chain has it
    finally:
        keeper.close()
