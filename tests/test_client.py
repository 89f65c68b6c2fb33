"""The plain-web3.py client (`margin_maintenance/client.py`): no Ape, only the ABI and the
deployment record.

The first group deploys the system with plain web3.py on web3's own `EthereumTesterProvider`
(eth-tester's py-evm backend, a chain separate from Ape's), from the bytecode `ape compile`
wrote to `.build/`. The integration group sets the book up with the Ape fixtures on the
connected node and liquidates through a `Web3(HTTPProvider)` pointed at it; it runs on anvil
(`--network ethereum:local:foundry`) and skips on the in-process chain, which has no URI.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import BTC, ETH, FEED_DECIMALS, USDC, WAD
from web3 import EthereumTesterProvider, Web3
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from margin_maintenance.client import (
    MAX_BATCH,
    Artifact,
    ClientError,
    DeploymentRecord,
    MarginClient,
    batched,
    gas_limit_for,
    load_abi,
    load_artifact,
    main,
    unique_addresses,
)
from margin_maintenance.deployment import deployment_from_system, save_deployment
from margin_maintenance.system import SystemParams

REPO = Path(__file__).resolve().parent.parent
CLIENT_SRC = REPO / "margin_maintenance" / "client.py"
CRASH_PRICE = 1_800  # ETH -10%: the 4 ETH and 3.5 ETH longs on 1,000 USDC fall below maintenance
# Six accounts on 1,000 USDC each: two ETH longs a 10% drop makes liquidatable, four that stay
# healthy (a 1 ETH long, a short, a BTC long, a deposit with no position).
BOOK = [(ETH, 4), (ETH, 1), (ETH, 3.5), (ETH, -4), (BTC, 0.12), None]
DOOMED = (0, 2)  # indices into BOOK
DEPOSIT_USD = 1_000
ZERO_ADDRESS = "0x" + "00" * 20


# ---- Plain web3.py helpers (what a bot writer without Ape would write) ----


def wait(w3: Web3, tx_hash):
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
    assert receipt["status"] == 1
    return receipt


def send(w3: Web3, fn, sender: str):
    return wait(w3, fn.transact({"from": sender}))


def deploy(w3: Web3, art: Artifact, sender: str, *args):
    factory = w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
    receipt = wait(w3, factory.constructor(*args).transact({"from": sender}))
    return w3.eth.contract(address=receipt["contractAddress"], abi=art.abi)


def feed_answer(price_usd: float) -> int:
    return round(price_usd * 10**FEED_DECIMALS)


# ---- In-process: web3's EthereumTesterProvider ----


CONTRACTS = ("MockERC20", "LPToken", "Clearinghouse", "MockAggregator", "PriceFeed")


@pytest.fixture(scope="module")
def build_dir(project, tmp_path_factory) -> Path:
    """A `.build/`-style folder holding one `<Name>.json` artifact per contract (the layout the
    client reads first), written from the contract types `ape compile` produced.

    A snapshot rather than the live `.build/`: Ape rewrites `.build/__local__.json` in place on
    every compile (unlink, then write), so reading it while another xdist worker or another
    shell compiles can find no file or half of one (the client retries that read for a few
    seconds; `test_load_artifact__ape_manifest__...` covers it)."""
    out = tmp_path_factory.mktemp("build")
    for name in CONTRACTS:
        contract_type = getattr(project, name).contract_type
        (out / f"{name}.json").write_text(contract_type.model_dump_json(by_alias=True))
    return out


@pytest.fixture(scope="module")
def tester(build_dir, tmp_path_factory):
    """The whole system deployed with plain web3.py on a fresh eth-tester chain, and its
    deployment record (same layout `ape run deploy` writes) in a temporary folder.

    eth-tester 0.13's py-evm backend starts on PragueVM (py-evm 0.12), the fork Vyper 0.4.3
    targets by default (transient storage, MCOPY, PUSH0), so no vm_configuration is needed."""
    w3 = Web3(EthereumTesterProvider())
    arts = {n: load_artifact(n, build_dir=build_dir) for n in CONTRACTS}
    acct = w3.eth.accounts
    roles = SimpleNamespace(
        deployer=acct[0], guardian=acct[1], traders=acct[2:8], lp=acct[8], liquidator=acct[9]
    )
    params = SystemParams()
    start_block = int(w3.eth.block_number)
    token = deploy(w3, arts["MockERC20"], roles.deployer, "USD Coin (mock)", "USDC", 6)
    lp_token = deploy(w3, arts["LPToken"], roles.deployer, "Margin Maintenance LP", "mmLP", 12)
    ch = deploy(
        w3,
        arts["Clearinghouse"],
        roles.deployer,
        token.address,
        lp_token.address,
        roles.guardian,
        params.keeper_share_bps,
        params.max_partial_bps,
        round(params.min_keeper_reward * USDC),
        params.pool_reserve_bps,
    )
    send(w3, lp_token.functions.set_minter(ch.address, True), roles.deployer)
    send(w3, lp_token.functions.renounce_ownership(), roles.deployer)
    aggregators, markets = [], []
    for m in params.markets:
        base = m.symbol.split("-")[0]
        agg = deploy(
            w3,
            arts["MockAggregator"],
            roles.deployer,
            FEED_DECIMALS,
            f"{base} / USD",
            feed_answer(m.price_usd),
        )
        feed = deploy(
            w3,
            arts["PriceFeed"],
            roles.deployer,
            agg.address,
            m.heartbeat_s,
            0,
            2**255 - 1,
            ZERO_ADDRESS,
            0,
        )
        receipt = send(
            w3,
            ch.functions.add_market(
                feed.address,
                m.initial_margin_bps,
                m.maintenance_margin_bps,
                m.liquidation_fee_bps,
                m.trading_fee_bps,
                m.max_open_interest_units * WAD,
                m.min_position_notional_usd * USDC,
            ),
            roles.deployer,
        )
        (added,) = ch.events.MarketAdded().process_receipt(receipt, errors=DISCARD)
        market_id = int(added["args"]["market_id"])
        aggregators.append(agg)
        markets.append(
            {"id": market_id, "symbol": m.symbol, "aggregator": agg.address, "feed": feed.address}
        )
    assert [m["id"] for m in markets] == [ETH, BTC]
    record = {
        "network": "eth-tester",
        "chain_id": int(w3.eth.chain_id),
        "start_block": start_block,
        "clearinghouse": ch.address,
        "lp_token": lp_token.address,
        "collateral": {"address": token.address, "decimals": 6},
        "markets": markets,
        "deployer": roles.deployer,
        "guardian": roles.guardian,
    }
    record_path = tmp_path_factory.mktemp("deployments") / "eth-tester.json"
    record_path.write_text(json.dumps(record, indent=2))

    # Counterparty capital for the book.
    send(w3, token.functions.mint(roles.lp, 1_000_000 * USDC), roles.deployer)
    send(w3, token.functions.approve(ch.address, 2**256 - 1), roles.lp)
    send(w3, ch.functions.add_liquidity(1_000_000 * USDC, 0), roles.lp)
    return SimpleNamespace(
        w3=w3,
        ch=ch,
        token=token,
        aggregators=aggregators,
        record_path=record_path,
        build_dir=build_dir,
        roles=roles,
        keys=w3.provider.ethereum_tester.backend.account_keys,
    )


@pytest.fixture(scope="module")
def booked(tester):
    """The six-account BOOK, opened once on the eth-tester chain."""
    w3, ch, token, roles = tester.w3, tester.ch, tester.token, tester.roles
    for who, pos in zip(roles.traders, BOOK, strict=True):
        send(w3, token.functions.mint(who, DEPOSIT_USD * USDC), roles.deployer)
        send(w3, token.functions.approve(ch.address, 2**256 - 1), who)
        send(w3, ch.functions.deposit(DEPOSIT_USD * USDC), who)
        if pos is not None:
            market_id, units = pos
            size = round(units * WAD)
            send(w3, ch.functions.trade(market_id, size, 2**256 - 1 if size > 0 else 0), who)
    return SimpleNamespace(
        traders=list(roles.traders),
        doomed=[roles.traders[i] for i in DOOMED],
        healthy=[t for i, t in enumerate(roles.traders) if i not in DOOMED],
    )


@pytest.fixture
def book(tester, booked):
    """The book, with whatever a test does to the eth-tester chain reverted afterwards."""
    eth_tester = tester.w3.provider.ethereum_tester
    snapshot = eth_tester.take_snapshot()
    yield booked
    eth_tester.revert_to_snapshot(snapshot)


@pytest.fixture
def crash(tester):
    def _crash(price_usd: float = CRASH_PRICE) -> None:
        agg = tester.aggregators[ETH]
        send(tester.w3, agg.functions.set_price(feed_answer(price_usd)), tester.roles.deployer)

    return _crash


@pytest.fixture
def client(tester) -> MarginClient:
    return MarginClient.from_files(tester.w3, tester.record_path, build_dir=tester.build_dir)


def collateral(tester, who: str) -> int:
    return int(tester.ch.functions.collateral(who).call())


def test_accounts_from_events__book__every_trader_in_order(client, book, tester):
    assert client.accounts_from_events() == book.traders
    # The LP only added liquidity: no Deposited/PositionChanged names it.
    assert tester.roles.lp not in client.accounts_from_events()


def test_accounts_from_events__one_block_chunks__same_accounts(tester, book):
    small = MarginClient.from_files(
        tester.w3, tester.record_path, build_dir=tester.build_dir, log_chunk=1
    )
    assert small.accounts_from_events() == book.traders


def test_accounts_from_events__range_before_the_book__none(client, book):
    assert client.accounts_from_events(to_block=client.record.start_block) == []


def test_status__before_crash__nobody_liquidatable(client, book):
    rows = client.status(book.traders)
    assert [r.account for r in rows] == book.traders
    assert not any(r.liquidatable for r in rows)
    assert rows[-1].maintenance == 0  # the deposit-only account
    assert client.liquidatable(book.traders) == []


def test_status__more_accounts_than_a_chunk__chunked_in_order(tester, book):
    small = MarginClient.from_files(
        tester.w3, tester.record_path, build_dir=tester.build_dir, status_chunk=4
    )
    rows = small.status(book.traders)
    assert [r.account for r in rows] == book.traders
    assert rows == MarginClient.from_files(
        tester.w3, tester.record_path, build_dir=tester.build_dir
    ).status(book.traders)


def test_preview__after_crash__doomed_previewed_healthy_zero(client, book, crash):
    crash()
    p = client.preview(book.doomed[0])
    assert p.liquidatable and 0 < p.fraction_wad <= WAD and p.reward > 0
    assert client.preview(book.healthy[0]).fraction_wad == 0
    assert not client.preview(book.healthy[0]).liquidatable


def test_liquidate__crash__finds_and_liquidates_exactly_the_liquidatable(
    client, book, crash, tester
):
    crash()
    found = client.accounts_from_events()
    assert set(client.liquidatable(found)) == set(book.doomed)
    liquidator = tester.roles.liquidator
    before = collateral(tester, liquidator)

    report = client.liquidate_report(found, liquidator)

    assert set(report.liquidated) == set(book.doomed)
    assert set(report.skipped) == set(book.healthy)
    assert len(report.tx_hashes) == 1 and report.gas_used > 0
    assert report.reward > 0
    assert collateral(tester, liquidator) - before == report.reward
    assert client.liquidatable(found) == []
    # Healthy accounts untouched: positions still open.
    for who, pos in zip(book.traders, BOOK, strict=True):
        if who in book.healthy and pos is not None:
            size, _ = tester.ch.functions.position(who, pos[0]).call()
            assert size == round(pos[1] * WAD)


def test_liquidate__private_key__signed_locally(client, book, crash, tester):
    crash()
    liquidator = tester.roles.liquidator
    key = tester.keys[9].to_hex()
    nonce = tester.w3.eth.get_transaction_count(liquidator)

    reward = client.liquidate(client.accounts_from_events(), None, private_key=key)

    assert reward > 0
    assert tester.w3.eth.get_transaction_count(liquidator) == nonce + 1
    assert client.liquidatable(book.traders) == []


def test_liquidate__key_for_another_sender__refused(client, tester):
    with pytest.raises(ClientError, match="signs for"):
        client.liquidate(tester.roles.traders, tester.roles.deployer, tester.keys[9].to_hex())


def test_liquidate__all_healthy__returns_zero_sends_nothing(client, book, tester):
    liquidator = tester.roles.liquidator
    nonce = tester.w3.eth.get_transaction_count(liquidator)
    head = tester.w3.eth.block_number

    assert client.liquidate(book.traders, liquidator) == 0

    assert tester.w3.eth.get_transaction_count(liquidator) == nonce
    assert tester.w3.eth.block_number == head


def test_liquidate__dry_run__sends_nothing(client, book, crash, tester):
    crash()
    head = tester.w3.eth.block_number
    report = client.liquidate_report(book.traders, tester.roles.liquidator, dry_run=True)
    assert report.tx_hashes == () and report.reward == 0
    assert set(report.skipped) == set(book.healthy)
    assert tester.w3.eth.block_number == head


def test_liquidate__estimate_reverts_account_healthy__returns_zero_sends_nothing(
    client, book, crash, tester, monkeypatch
):
    """A competitor got there between the status read and the estimate."""
    crash()
    liquidator = tester.roles.liquidator
    nonce = tester.w3.eth.get_transaction_count(liquidator)

    def reverts(*args, **kwargs):
        raise ContractLogicError("execution reverted: clearinghouse: account healthy")

    monkeypatch.setattr(tester.w3.eth, "estimate_gas", reverts)
    report = client.liquidate_report(book.traders, liquidator)

    assert report.reward == 0 and report.tx_hashes == ()
    assert set(report.skipped) == set(book.traders)
    assert tester.w3.eth.get_transaction_count(liquidator) == nonce


def test_liquidate__estimate_reverts_otherwise__raises_sends_nothing(
    client, book, crash, tester, monkeypatch
):
    crash()
    liquidator = tester.roles.liquidator
    nonce = tester.w3.eth.get_transaction_count(liquidator)

    def reverts(*args, **kwargs):
        raise ContractLogicError("execution reverted: oracle: stale price")

    monkeypatch.setattr(tester.w3.eth, "estimate_gas", reverts)
    with pytest.raises(ClientError, match="stale price"):
        client.liquidate(book.traders, liquidator)
    assert tester.w3.eth.get_transaction_count(liquidator) == nonce


def test_liquidate__batch_size_one__one_tx_per_target(tester, book, crash):
    crash()
    small = MarginClient.from_files(
        tester.w3, tester.record_path, build_dir=tester.build_dir, batch_size=1
    )
    report = small.liquidate_report(book.traders, tester.roles.liquidator)
    assert len(report.tx_hashes) == len(book.doomed)
    assert set(report.liquidated) == set(book.doomed)


def test_client__record_for_another_chain__refused(tester):
    data = json.loads(tester.record_path.read_text())
    data["chain_id"] = 1
    with pytest.raises(ClientError, match="chain 1"):
        MarginClient(tester.w3, data, load_abi(build_dir=tester.build_dir))


def test_client__no_contract_at_record_address__refused(tester):
    data = json.loads(tester.record_path.read_text())
    data["clearinghouse"] = "0x" + "11" * 20
    with pytest.raises(ClientError, match="no contract"):
        MarginClient(tester.w3, data, load_abi(build_dir=tester.build_dir))


# ---- Files ----


def test_load_artifact__ape_manifest__abi_and_bytecode(project, build_dir):
    """The manifest `ape compile` writes (`.build/__local__.json`, contractTypes.<Name>)."""
    art = load_artifact("Clearinghouse", build_dir=Path(project.path) / ".build")
    names = {e.get("name") for e in art.abi}
    assert {"liquidate_many", "margin_status", "Deposited", "PositionChanged"} <= names
    assert art.bytecode is not None and art.bytecode.startswith("0x")
    snapshot = load_artifact("Clearinghouse", build_dir=build_dir)
    assert snapshot.abi == art.abi and snapshot.bytecode == art.bytecode


def test_load_artifact__per_contract_file_or_bare_abi__same_abi(build_dir, tmp_path):
    abi = load_abi(build_dir=build_dir)
    (tmp_path / "Clearinghouse.json").write_text(json.dumps({"abi": abi}))
    assert load_abi(build_dir=tmp_path) == abi
    (tmp_path / "bare.json").write_text(json.dumps(abi))
    assert load_abi(tmp_path / "bare.json") == abi


def test_load_artifact__nothing_compiled__clear_error(tmp_path):
    with pytest.raises(ClientError, match="ape compile"):
        load_abi(build_dir=tmp_path / "never-compiled")
    (tmp_path / "x.json").write_text(json.dumps({"contractTypes": {}}))
    with pytest.raises(ClientError, match="no contract type"):
        load_abi(tmp_path / "x.json")
    (tmp_path / "y.json").write_text("{not json")
    with pytest.raises(ClientError, match="not valid JSON"):
        load_abi(tmp_path / "y.json")


def test_deployment_record__malformed__clear_error(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"chain_id": 1, "clearinghouse": "0x" + "11" * 20}))
    with pytest.raises(ClientError, match="malformed"):
        DeploymentRecord.load(path)
    with pytest.raises(ClientError, match="no deployment record"):
        DeploymentRecord.load(tmp_path / "missing.json")


def test_helpers__batching_dedup_gas_cap():
    assert list(batched([1, 2, 3, 4, 5], 2)) == [[1, 2], [3, 4], [5]]
    with pytest.raises(ValueError):
        list(batched([1], 0))
    a = "0x" + "ab" * 20
    assert unique_addresses([a, a.upper().replace("0X", "0x")]) == [Web3.to_checksum_address(a)]
    assert gas_limit_for(100_000, 30_000_000) == 120_000
    assert gas_limit_for(29_000_000, 30_000_000) == 30_000_000
    assert MAX_BATCH == 64


# ---- No Ape ----


def test_client_module__source__imports_no_ape():
    tree = ast.parse(CLIENT_SRC.read_text())
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not [m for m in names if m.split(".")[0] == "ape" or m.startswith("ape_")]


def test_client_module__ape_blocked__imports_and_runs_help():
    """In a fresh interpreter where importing ape (or any ape_* plugin) fails."""
    code = """
import sys

class BlockApe:
    def find_spec(self, name, path=None, target=None):
        if name == "ape" or name.startswith(("ape.", "ape_")):
            raise ImportError("ape is blocked: " + name)
        return None

sys.meta_path.insert(0, BlockApe())
import margin_maintenance.client as client
loaded = sorted(m for m in sys.modules if m == "ape" or m.startswith(("ape.", "ape_")))
assert not loaded, loaded
try:
    client.main(["--help"])
except SystemExit as e:
    assert e.code == 0
"""
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "liquidate" in out.stdout


def test_cli__no_node__exit_one_with_message(tester, capsys):
    rc = main(
        [
            "--rpc",
            "http://127.0.0.1:9",
            "--deployment",
            str(tester.record_path),
            "--build-dir",
            str(tester.build_dir),
            "status",
        ]
    )
    assert rc == 1
    assert "mm-client:" in capsys.readouterr().err


def test_cli__missing_record__exit_one(tmp_path, capsys):
    rc = main(["--deployment", str(tmp_path / "none.json"), "status"])
    assert rc == 1
    assert "no deployment record" in capsys.readouterr().err


# ---- On a real node (anvil): set up with Ape, liquidate with plain web3.py ----


def node_http_uri(chain) -> str | None:
    """The connected node's HTTP endpoint; None on the in-process chain."""
    try:
        uri = chain.provider.http_uri
    except Exception:  # providers without a URI raise rather than return None
        return None
    return uri if isinstance(uri, str) and uri.startswith("http") else None


@pytest.fixture
def node_uri(chain) -> str:
    uri = node_http_uri(chain)
    if uri is None:
        pytest.skip("needs a node with an HTTP endpoint: --network ethereum:local:foundry")
    return uri


@pytest.fixture
def node(node_uri, chain, system, deployer, guardian, tmp_path, build_dir):
    """The system deployed by the Ape fixtures, its record, and a plain web3 handle on the
    same node."""
    uri = node_uri
    dep = deployment_from_system(system, "client-test", chain.chain_id, deployer, guardian)
    record_path = save_deployment(dep, tmp_path)
    return SimpleNamespace(
        uri=uri,
        w3=Web3(Web3.HTTPProvider(uri)),
        record_path=record_path,
        build_dir=build_dir,
    )


@pytest.fixture
def node_book(node, accounts, deposit, seeded_pool, open_position):
    traders = [accounts[i] for i in (2, 3, 6, 7, 8, 9)]
    for who, pos in zip(traders, BOOK, strict=True):
        deposit(who, DEPOSIT_USD)
        if pos is not None:
            open_position(who, *pos)
    addrs = [str(t.address) for t in traders]
    return SimpleNamespace(
        traders=addrs,
        doomed={addrs[i] for i in DOOMED},
        healthy={a for i, a in enumerate(addrs) if i not in DOOMED},
    )


@pytest.mark.integration
def test_node__crash__plain_web3_client_liquidates_exactly_the_liquidatable(
    node, node_book, set_price, ch, liquidator
):
    set_price(ETH, CRASH_PRICE)
    client = MarginClient.from_files(node.w3, node.record_path, build_dir=node.build_dir)
    found = client.accounts_from_events()
    assert found == node_book.traders
    assert set(client.liquidatable(found)) == node_book.doomed
    before = int(ch.collateral(liquidator))

    report = client.liquidate_report(found, None, private_key=liquidator.private_key)

    assert set(report.liquidated) == node_book.doomed
    assert set(report.skipped) == node_book.healthy
    assert report.reward > 0
    assert int(ch.collateral(liquidator)) - before == report.reward
    assert client.liquidatable(found) == []
    assert client.liquidate(found, str(liquidator.address), liquidator.private_key) == 0


@pytest.mark.integration
def test_node__cli_status_and_liquidate__exactly_the_liquidatable(
    node, node_book, set_price, ch, liquidator
):
    set_price(ETH, CRASH_PRICE)
    base = [
        sys.executable,
        "-m",
        "margin_maintenance.client",
        "--rpc",
        node.uri,
        "--deployment",
        str(node.record_path),
        "--build-dir",
        str(node.build_dir),
    ]
    env = {**os.environ, "MM_TEST_LIQUIDATOR_KEY": liquidator.private_key}

    status = subprocess.run(
        [*base, "status", "--json"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert doc["accounts"] == len(node_book.traders)
    assert set(doc["liquidatable"]) == node_book.doomed

    dry = subprocess.run(
        [*base, "liquidate", "--dry-run", "--unlocked-sender", str(liquidator.address)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dry.returncode == 0, dry.stderr
    assert f"dry run: {len(node_book.doomed)} liquidatable" in dry.stdout
    assert all(ch.is_liquidatable(who) for who in node_book.doomed)

    liq = subprocess.run(
        [*base, "liquidate", "--unlocked-sender", str(liquidator.address)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert liq.returncode == 0, liq.stderr
    assert f"liquidated {len(node_book.doomed)} of {len(node_book.traders)}" in liq.stdout
    for who in node_book.doomed:
        assert not ch.is_liquidatable(who)

    no_key = subprocess.run(
        [*base, "liquidate", "--private-key-env", "MM_TEST_UNSET_KEY"],
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if k != "MM_TEST_UNSET_KEY"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert no_key.returncode == 1
    assert "MM_TEST_UNSET_KEY is not set" in no_key.stderr

    again = subprocess.run(
        [*base, "liquidate", "--private-key-env", "MM_TEST_LIQUIDATOR_KEY"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    assert "liquidated 0 of" in again.stdout
