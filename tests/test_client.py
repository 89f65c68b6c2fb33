"""The plain-web3.py client (`margin_maintenance/client.py`, `bin/mm-client`): no Ape, only the
ABIs and the deployment record.

The first group deploys the system with plain web3.py on web3's own `EthereumTesterProvider`
(eth-tester's py-evm backend, a chain separate from Ape's), from the bytecode `ape compile`
wrote to `.build/`. The integration group sets the book up with the Ape fixtures on the
connected node and liquidates through a `Web3(HTTPProvider)` pointed at it; it runs on anvil
(`--network ethereum:local:foundry`) and skips on the in-process chain, which has no URI.

The command line runs in-process through `main(argv, w3=...)` against the eth-tester chain, or
as a subprocess through `bin/mm-client` where the wrapper itself is under test.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from collections import namedtuple
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import pytest
from support.constants import BTC, ETH, FEED_DECIMALS, MAX_UINT, USDC, WAD, ZERO_ADDRESS
from web3 import EthereumTesterProvider, Web3
from web3.exceptions import ContractLogicError, Web3RPCError
from web3.logs import DISCARD

from margin_maintenance import client as client_module
from margin_maintenance.client import (
    KEEPER_BATCH_BASE_GAS,
    KEEPER_BLOCK_GAS_FILL_BPS,
    KEEPER_ETH_MARKET_ID,
    KEEPER_GAS_PER_ACCOUNT,
    MAX_BATCH,
    AccountStatus,
    Artifact,
    ClientError,
    DeploymentRecord,
    MarginClient,
    Preview,
    ProfitCheck,
    batched,
    default_abi_dir,
    gas_limit_for,
    load_abi,
    load_artifact,
    main,
    output_fields,
    plan_liquidations,
    safe_url,
    unique_addresses,
)
from margin_maintenance.client import files as client_files
from margin_maintenance.deployment import deployment_from_system, save_deployment
from margin_maintenance.keeper import decisions
from margin_maintenance.keeper.settings import KeeperSettings
from margin_maintenance.system import SystemParams, engine_contract_type

REPO = Path(__file__).resolve().parent.parent
CLIENT_SRC = REPO / "margin_maintenance" / "client"  # the package
WRAPPER = REPO / "bin" / "mm-client"
CRASH_PRICE = 1_800  # ETH -10%: the 4 ETH and 3.5 ETH longs on 1,000 USDC fall below maintenance
# Six accounts on 1,000 USDC each: two ETH longs a 10% drop makes liquidatable, four that stay
# healthy (a 1 ETH long, a short, a BTC long, a deposit with no position).
BOOK = [(ETH, 4), (ETH, 1), (ETH, 3.5), (ETH, -4), (BTC, 0.12), None]
DOOMED = (0, 2)  # indices into BOOK
DEPOSIT_USD = 1_000


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


CONTRACTS = (
    "MockERC20",
    "LPVault",
    "Configurator",
    "ClearinghouseExtension",
    "Clearinghouse",
    "MockAggregator",
    "PriceFeed",
)


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
def abi_dir(build_dir, tmp_path_factory) -> Path:
    """An `abi/` folder as the repository tracks it: one plain ABI list per deployable, and no
    bytecode (what a bot writer without a compiler has)."""
    out = tmp_path_factory.mktemp("abi")
    for name in CONTRACTS:
        (out / f"{name}.json").write_text(json.dumps(load_abi(build_dir=build_dir, name=name)))
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
    vault = deploy(w3, arts["LPVault"], roles.deployer, "Margin Maintenance LP", "mmLP", 12)
    cfg = deploy(w3, arts["Configurator"], roles.deployer)
    wiring = (token.address, vault.address, cfg.address, ZERO_ADDRESS)  # no price updater
    ext = deploy(w3, arts["ClearinghouseExtension"], roles.deployer, *wiring)
    ch = deploy(w3, arts["Clearinghouse"], roles.deployer, *wiring, ext.address)
    send(
        w3,
        cfg.functions.bind(
            ch.address,
            roles.guardian,
            params.keeper_share_bps,
            params.max_partial_bps,
            round(params.min_keeper_reward * USDC),
            params.pool_reserve_bps,
        ),
        roles.deployer,
    )
    send(w3, vault.functions.bind(ch.address), roles.deployer)
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
            m.stale_window_s,
            m.stale_haircut_bps,
        )
        receipt = send(
            w3,
            cfg.functions.add_market(
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
        (added,) = cfg.events.MarketAdded().process_receipt(receipt, errors=DISCARD)
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
        "lp_token": vault.address,
        "collateral": {"address": token.address, "decimals": 6},
        "markets": markets,
        "deployer": roles.deployer,
        "guardian": roles.guardian,
    }
    record_path = tmp_path_factory.mktemp("deployments") / "eth-tester.json"
    record_path.write_text(json.dumps(record, indent=2))

    # Counterparty capital for the book.
    send(w3, token.functions.mint(roles.lp, 1_000_000 * USDC), roles.deployer)
    send(w3, token.functions.approve(ch.address, MAX_UINT), roles.lp)
    send(w3, vault.functions.add_liquidity(1_000_000 * USDC, 0), roles.lp)
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
        send(w3, token.functions.approve(ch.address, MAX_UINT), who)
        send(w3, ch.functions.deposit(DEPOSIT_USD * USDC), who)
        if pos is not None:
            market_id, units = pos
            size = round(units * WAD)
            send(w3, ch.functions.trade(market_id, size, MAX_UINT if size > 0 else 0), who)
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


def test_accounts_from_events__node_refuses_wide_ranges__split_same_accounts(
    monkeypatch, tester, book, client
):
    """A node that answers at most 4 blocks a request (as public endpoints cap eth_getLogs)."""
    real, widths = tester.w3.eth.get_logs, []

    def capped(f):
        widths.append(f["toBlock"] - f["fromBlock"] + 1)
        if widths[-1] > 4:
            raise Web3RPCError("query exceeds max block range 4")
        return real(f)

    monkeypatch.setattr(tester.w3.eth, "get_logs", capped)
    assert client.accounts_from_events() == book.traders
    answered = [w for w in widths if w <= 4]
    assert widths[0] > 4  # the whole range first, refused
    assert sum(answered) == tester.w3.eth.block_number - client.record.start_block + 1


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
    assert set(report.plan.to_send) == set(book.doomed)
    # No sender, no key: a dry run needs neither.
    keyless = client.liquidate_report(book.traders, None, dry_run=True, profit=ProfitCheck())
    assert set(keyless.plan.to_send) == set(book.doomed) and keyless.plan.cost is not None
    assert tester.w3.eth.block_number == head


def estimate_reverts(monkeypatch, w3, reason: str) -> None:
    """Every gas estimate reverts with `reason`, as a node reports it."""

    def reverts(*args, **kwargs):
        raise ContractLogicError(f"execution reverted: {reason}")

    monkeypatch.setattr(w3.eth, "estimate_gas", reverts)


def test_liquidate__estimate_reverts_account_healthy__returns_zero_sends_nothing(
    client, book, crash, tester, monkeypatch
):
    """A competitor got there between the status read and the estimate."""
    crash()
    liquidator = tester.roles.liquidator
    nonce = tester.w3.eth.get_transaction_count(liquidator)
    estimate_reverts(monkeypatch, tester.w3, "clearinghouse: account healthy")

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
    estimate_reverts(monkeypatch, tester.w3, "oracle: stale price")
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
    for source in sorted(CLIENT_SRC.glob("*.py")):  # every module of the client package
        tree = ast.parse(source.read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not [m for m in names if m.split(".")[0] == "ape" or m.startswith("ape_")], source


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


def test_cli__missing_record__exit_one(tmp_path, capsys):
    rc = main(["--deployment", str(tmp_path / "none.json"), "status"])
    assert rc == 1
    assert "no deployment record" in capsys.readouterr().err


# ---- Reach: bin/mm-client ----


def run_wrapper(*args: str, cwd: Path = REPO, wrapper: Path = WRAPPER, env=None):
    return subprocess.run(
        [str(wrapper), *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=env
    )


def test_wrapper__help_from_another_directory__runs_the_venv_client(tmp_path):
    out = run_wrapper("--help", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: mm-client")
    assert "liquidate" in out.stdout and "--abi-dir" in out.stdout


def test_wrapper__symlinked__finds_the_checkout(tmp_path):
    link = tmp_path / "mm-client"
    link.symlink_to(WRAPPER)
    out = run_wrapper("liquidate", "--help", cwd=tmp_path, wrapper=link)
    assert out.returncode == 0, out.stderr
    assert "--min-profit USD" in out.stdout


def test_wrapper__no_venv__one_line_hint_exit_two(tmp_path):
    (tmp_path / "bin").mkdir()
    copy = tmp_path / "bin" / "mm-client"
    shutil.copy2(WRAPPER, copy)
    out = run_wrapper("status", cwd=tmp_path, wrapper=copy)
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and "run `make setup` first" in lines[0], out.stderr


# ---- Node down ----


def test_cli__node_down__one_line_exit_two_no_traceback(tester, abi_dir):
    out = run_wrapper(
        "--rpc",
        "http://127.0.0.1:1",
        "--deployment",
        str(tester.record_path),
        "--abi-dir",
        str(abi_dir),
        "status",
    )
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr == (
        "mm-client: cannot reach the node at http://127.0.0.1:1 (connection refused); "
        "start anvil (see README)\n"
    )


def test_unreachable_message__remote_url__credentials_and_path_hidden():
    assert safe_url("https://user:pw@mainnet.infura.io/v3/SECRET?x=1") == (
        "https://mainnet.infura.io/..."
    )
    assert safe_url("http://127.0.0.1:8545") == "http://127.0.0.1:8545"
    assert safe_url("http://[::1]:8545/") == "http://[::1]:8545"
    err = OSError("boom")
    msg = client_module.unreachable_message("https://node.example/v3/SECRET", err)
    assert msg == (
        "mm-client: cannot reach the node at https://node.example/... (connection failed); "
        "check --rpc or MM_RPC_URL"
    )


# ---- ABIs: abi/ folder, --abi, .build ----


def test_load_artifact__abi_dir__plain_lists_and_mocks(abi_dir, build_dir, tmp_path):
    art = load_artifact("Clearinghouse", abi_dir=abi_dir)
    assert art.abi == load_abi(build_dir=build_dir) and art.bytecode is None
    mocks = tmp_path / "abi" / "mocks"
    mocks.mkdir(parents=True)
    (mocks / "ReentrantToken.json").write_text(json.dumps([{"type": "fallback"}]))
    assert load_abi(abi_dir=tmp_path / "abi", name="ReentrantToken") == [{"type": "fallback"}]
    with pytest.raises(ClientError, match="no PriceFeed.json in"):
        load_abi(abi_dir=tmp_path / "abi", name="PriceFeed")


def test_default_abi_dir__cwd_abi_first_else_the_checkouts(abi_dir, tmp_path, monkeypatch):
    checkout, work = tmp_path / "checkout", tmp_path / "work"
    work.mkdir()
    monkeypatch.setattr(client_files, "REPO_ROOT", checkout)
    monkeypatch.chdir(work)
    assert default_abi_dir() is None
    shutil.copytree(abi_dir, checkout / "abi")
    assert default_abi_dir() == checkout / "abi"
    assert load_abi() == load_abi(abi_dir=abi_dir)  # no --abi-dir, no --build-dir: abi/
    (work / "abi").mkdir()
    assert default_abi_dir() == work / "abi"


def test_load_artifact__default_abi_dir_without_the_file__falls_back_to_build(
    build_dir, tmp_path, monkeypatch
):
    monkeypatch.setattr(client_files, "REPO_ROOT", tmp_path / "nowhere")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "abi").mkdir()  # an abi/ without Clearinghouse.json
    shutil.copytree(build_dir, tmp_path / ".build")
    assert load_abi() == load_abi(build_dir=build_dir)


def test_repo_abi_folder__plain_lists_matching_the_compiled_contracts(project):
    """The tracked `abi/` (written by the project's generator) against what compiles now."""
    folder = REPO / "abi"
    if not folder.is_dir():
        pytest.skip("no abi/ folder in this checkout yet")
    for name in CONTRACTS:
        abi = load_abi(abi_dir=folder, name=name)  # abi/<Name>.json or abi/mocks/<Name>.json
        assert isinstance(abi, list), name
        ct = engine_contract_type(project) if name == "Clearinghouse" else None
        ct = ct or getattr(project, name).contract_type  # the engine: with its extension's
        compiled = json.loads(ct.model_dump_json(by_alias=True))
        assert {(e["type"], e.get("name")) for e in abi} == {
            (e["type"], e.get("name")) for e in compiled["abi"]
        }, f"abi/{name}.json is stale"


def test_cli__only_record_and_abi_dir__status_preview_liquidate(
    tester, abi_dir, book, crash, capsys, monkeypatch
):
    """What a bot writer has: the deployment record and abi/, nothing compiled."""
    crash()
    base = ["--deployment", str(tester.record_path), "--abi-dir", str(abi_dir)]
    assert main([*base, "status"], w3=tester.w3) == 0
    assert "6 accounts, 2 liquidatable" in capsys.readouterr().out
    assert main([*base, "preview", book.doomed[0]], w3=tester.w3) == 0
    assert f"{book.doomed[0]}: fraction" in capsys.readouterr().out
    monkeypatch.setenv("MM_TEST_KEY", tester.keys[9].to_hex())
    assert main([*base, "liquidate", "--private-key-env", "MM_TEST_KEY"], w3=tester.w3) == 0
    assert "liquidated 2 of 6 accounts in 1 tx" in capsys.readouterr().out
    assert (
        MarginClient.from_files(tester.w3, tester.record_path, abi_dir=abi_dir).liquidatable(
            book.traders
        )
        == []
    )


# ---- Output shapes: flat outputs (old ABIs) and named structs (new) ----


def reshaped(abi: list[dict], shape: str) -> list[dict]:
    """The ABI with `liquidation_preview` and `position` declared as several unnamed outputs
    ("flat", the old ABI) or as one named struct ("struct"); same encoded bytes either way."""
    structs = {
        "liquidation_preview": [
            ("fraction", "uint256"),
            ("reward", "uint256"),
            ("bad_debt", "uint256"),
        ],
        "position": [("size", "int256"), ("entry_price", "uint256")],
    }
    out = []
    for entry in abi:
        fields = structs.get(entry.get("name", "")) if entry.get("type") == "function" else None
        if fields is not None:
            if shape == "struct":
                comps = [{"name": n, "type": t} for n, t in fields]
                outputs = [{"name": "", "type": "tuple", "components": comps}]
            else:
                outputs = [{"name": "", "type": t} for _, t in fields]
            entry = {**entry, "outputs": outputs}
        out.append(entry)
    return out


def test_output_fields__flat_outputs__values_in_order():
    assert output_fields([10, 20, 30], ("fraction", "reward", "bad_debt")) == (10, 20, 30)
    assert output_fields((-5, 7), ("size", "entry_price")) == (-5, 7)


def test_output_fields__one_struct__every_decoded_form():
    names = ("fraction", "reward", "bad_debt")
    struct = namedtuple("LiquidationPreview", names)(10, 20, 30)
    assert output_fields((10, 20, 30), names) == (10, 20, 30)  # web3 call(): the tuple
    assert output_fields(((10, 20, 30),), names) == (10, 20, 30)  # w3.codec.decode: (tuple,)
    assert output_fields(struct, names) == (10, 20, 30)  # decode_tuples=True
    assert output_fields({"bad_debt": 30, "reward": 20, "fraction": 10}, names) == (10, 20, 30)
    with pytest.raises(ClientError, match="expected 3 values"):
        output_fields([1, 2], names)


def test_client__struct_shaped_abi__same_preview_and_position(tester, book, crash, build_dir):
    crash()
    abi = load_abi(build_dir=build_dir)
    flat = MarginClient(
        tester.w3, json.loads(tester.record_path.read_text()), reshaped(abi, "flat")
    )
    new = MarginClient(
        tester.w3, json.loads(tester.record_path.read_text()), reshaped(abi, "struct")
    )
    who = book.doomed[0]
    raw_flat = flat.contract.functions.liquidation_preview(who).call()
    raw_struct = new.contract.functions.liquidation_preview(who).call()
    assert isinstance(raw_flat, list) and isinstance(raw_struct, tuple)  # the two shapes
    for account in book.traders:
        assert flat.preview(account) == new.preview(account)
        assert flat.position(account, ETH) == new.position(account, ETH)
    assert new.preview(who).liquidatable
    assert new.position(who, ETH)[0] == 4 * WAD


# ---- Profit: the keeper's own decisions ----


def test_keeper_defaults__client_figures__agree_with_keeper_settings():
    fields = KeeperSettings.model_fields
    assert fields["gas_per_account"].default == KEEPER_GAS_PER_ACCOUNT
    assert fields["batch_base_gas"].default == KEEPER_BATCH_BASE_GAS
    assert fields["block_gas_fill_bps"].default == KEEPER_BLOCK_GAS_FILL_BPS
    assert fields["eth_market_id"].default == KEEPER_ETH_MARKET_ID
    assert fields["min_profit"].default == float(ProfitCheck().min_profit_usd)
    assert fields["token_usd"].default == float(ProfitCheck().token_usd)


A, B, C = ("0x" + c * 40 for c in "abc")


def book_rows(reward_a: int, reward_b: int) -> tuple[list[AccountStatus], dict[str, Preview]]:
    """A and B liquidatable (B the deeper shortfall), C healthy."""
    rows = [
        AccountStatus(A, 900 * USDC, 1_000 * USDC, 2_000 * USDC, True),
        AccountStatus(B, 800 * USDC, 1_000 * USDC, 2_000 * USDC, True),
        AccountStatus(C, 5_000 * USDC, 1_000 * USDC, 2_000 * USDC, False),
    ]
    previews = {A: Preview(A, WAD // 2, reward_a, 0), B: Preview(B, WAD, reward_b, 0)}
    return rows, previews


def cost(min_profit: int = 0, gas_price_gwei: int = 1) -> decisions.CostModel:
    return decisions.CostModel(
        gas_price_wei=gas_price_gwei * 10**9,
        eth_usd=Decimal(2_000),
        token_usd=Decimal(1),
        token_decimals=6,
        per_account_gas=KEEPER_GAS_PER_ACCOUNT,
        base_gas=KEEPER_BATCH_BASE_GAS,
        min_profit_usd=Decimal(min_profit),
    )


def test_plan_liquidations__min_profit__one_target_kept_one_filtered_out():
    rows, previews = book_rows(10 * USDC, 3 * USDC)  # one account's batch: 0.19 USD of gas
    plan = plan_liquidations(rows, previews, batch_size=1, cost=cost(min_profit=5))
    assert plan.liquidatable == [A, B]  # ranked by reward
    assert plan.batches == ((A,),)
    kept, dropped = plan.targets
    assert kept.send and kept.batch == 0 and kept.reason == ""
    assert not dropped.send and dropped.reason == "its batch nets under the minimum profit"
    assert kept.reward_usd == Fraction(10) and kept.gas_cost_usd == Fraction(35_000 * 2_000, 10**9)
    assert plan.not_liquidatable == (C,)
    assert plan.unprofitable == [B]
    # Without the threshold both clear their gas.
    assert plan_liquidations(rows, previews, batch_size=1, cost=cost()).to_send == [A, B]


def test_plan_liquidations__reward_below_its_gas__filtered_out():
    rows, previews = book_rows(10 * USDC, 300 * USDC)
    # 1,000 gwei: an account's marginal gas costs 35,000 x 1e-6 ETH x 2,000 = 70 USD, a
    # batch of one 190 USD.
    plan = plan_liquidations(rows, previews, batch_size=64, cost=cost(gas_price_gwei=1_000))
    assert plan.to_send == [B]
    (dropped,) = [t for t in plan.targets if not t.send]
    assert dropped.account == A and dropped.reason == "reward does not pay its gas"


def test_plan_liquidations__no_profit_check__every_target_sent_by_reward():
    rows, previews = book_rows(0, 3 * USDC)  # a bankrupt account's zero reward too
    plan = plan_liquidations(rows, previews, batch_size=1)
    assert plan.batches == ((B,), (A,))
    assert all(t.send and t.reward_usd is None for t in plan.targets)
    assert plan.batch_gas(0) == KEEPER_BATCH_BASE_GAS + KEEPER_GAS_PER_ACCOUNT


def test_plan_liquidations__previewed_as_healthy__not_a_target():
    rows, previews = book_rows(10 * USDC, 3 * USDC)
    previews[B] = Preview(B, 0, 0, 0)  # healthy again between the two reads
    plan = plan_liquidations(rows, previews, cost=cost())
    assert plan.liquidatable == [A] and set(plan.not_liquidatable) == {B, C}


def test_cost_model__no_mark_price_in_abi__eth_price_from_the_feed(tester, build_dir):
    abi = [e for e in load_abi(build_dir=build_dir) if e.get("name") != "mark_price"]
    feed_abi = load_abi(build_dir=build_dir, name="PriceFeed")
    record = json.loads(tester.record_path.read_text())
    client = MarginClient(tester.w3, record, abi, feed_abi=feed_abi)
    assert client.mark_price(ETH) == 2_000 * WAD
    model = client.cost_model(ProfitCheck(min_profit_usd=Decimal(3)))
    assert model.eth_usd == 2_000 and model.gas_price_wei == tester.w3.eth.gas_price
    assert model.min_profit_usd == 3 and model.token_decimals == 6
    assert client.cost_model(ProfitCheck(eth_usd=Decimal(5))).eth_usd == 5
    with pytest.raises(ClientError, match="pass --eth-usd"):
        MarginClient(tester.w3, record, abi).mark_price(ETH)


def test_mark_price__clearinghouse_view_in_abi__used(tester, build_dir):
    abi = load_abi(build_dir=build_dir)
    if not any(e.get("name") == "mark_price" for e in abi):
        pytest.skip("the compiled Clearinghouse has no mark_price view yet")
    client = MarginClient(tester.w3, json.loads(tester.record_path.read_text()), abi)
    assert client.feed_abi is None  # so the price can only come from the clearinghouse
    assert client.mark_price(ETH) == 2_000 * WAD
    assert client.mark_price(BTC) == 60_000 * WAD


# ---- Command line: liquidate, --dry-run, --min-profit, --json ----


def cli(tester, abi_dir, *args: str) -> list[str]:
    return ["--deployment", str(tester.record_path), "--abi-dir", str(abi_dir), *args]


def test_cli_liquidate__dry_run_without_key__lists_targets_sends_nothing(
    tester, abi_dir, book, crash, capsys, monkeypatch
):
    crash()
    monkeypatch.delenv("MM_PRIVATE_KEY", raising=False)
    head = tester.w3.eth.block_number
    assert main(cli(tester, abi_dir, "liquidate", "--dry-run"), w3=tester.w3) == 0
    out = capsys.readouterr().out
    assert out.startswith("dry run: 2 liquidatable of 6 accounts, 2 would be sent in 1 tx")
    assert "gas price 1.000 gwei, ETH 1,800.00 USD" in out
    for who in book.doomed:
        (line,) = [x for x in out.splitlines() if who in x]
        assert "reward" in line and "gas 0.0630 USD" in line and "send (batch 1)" in line
    assert "batch 1: liquidate_many(2 accounts)" in out
    assert tester.w3.eth.block_number == head
    assert set(
        MarginClient.from_files(tester.w3, tester.record_path, abi_dir=abi_dir).liquidatable(
            book.traders
        )
    ) == set(book.doomed)


def test_cli_liquidate__no_key_without_dry_run__clear_error(
    tester, abi_dir, book, crash, capsys, monkeypatch
):
    crash()
    monkeypatch.delenv("MM_PRIVATE_KEY", raising=False)
    head = tester.w3.eth.block_number
    assert main(cli(tester, abi_dir, "liquidate"), w3=tester.w3) == 1
    err = capsys.readouterr().err
    assert err.startswith("mm-client: $MM_PRIVATE_KEY is not set") and "--dry-run" in err
    assert tester.w3.eth.block_number == head


def test_cli_liquidate__min_profit__only_the_target_that_clears_it_is_sent(
    tester, abi_dir, book, crash, capsys, monkeypatch
):
    crash()
    client = MarginClient.from_files(tester.w3, tester.record_path, abi_dir=abi_dir)
    rewards = {who: client.preview(who).reward for who in book.doomed}
    rich, poor = sorted(rewards, key=rewards.__getitem__, reverse=True)
    assert rewards[rich] - rewards[poor] > USDC  # far more than a batch's gas (0.17 USD)
    threshold = f"{(rewards[rich] + rewards[poor]) / 2 / USDC:.6f}"
    args = cli(tester, abi_dir, "liquidate", "--min-profit", threshold, "--batch-size", "1")

    assert main([*args, "--dry-run"], w3=tester.w3) == 0
    out = capsys.readouterr().out
    assert "2 liquidatable of 6 accounts, 1 would be sent in 1 tx" in out
    assert "send (batch 1)" in next(x for x in out.splitlines() if rich in x)
    assert "skip: its batch nets under the minimum profit" in next(
        x for x in out.splitlines() if poor in x
    )

    monkeypatch.setenv("MM_PRIVATE_KEY", tester.keys[9].to_hex())
    assert main(args, w3=tester.w3) == 0
    out = capsys.readouterr().out
    assert "liquidated 1 of 6 accounts in 1 tx" in out and "1 not worth it" in out
    assert client.liquidatable(book.traders) == [poor]


def test_cli_json__every_document__token_decimals_and_integer_token_units(
    tester, abi_dir, book, crash, capsys
):
    crash()
    client = MarginClient.from_files(tester.w3, tester.record_path, abi_dir=abi_dir)
    record = client.record

    def doc(*args: str) -> dict:
        assert main(cli(tester, abi_dir, *args), w3=tester.w3) == 0
        d = json.loads(capsys.readouterr().out)
        assert d["token"] == record.collateral.address and d["decimals"] == 6
        assert d["chain_id"] == record.chain_id and "10**decimals" in d["units"]
        return d

    status = doc("status", "--all", "--json")
    assert status["accounts"] == 6 and set(status["liquidatable"]) == set(book.doomed)
    by_account = {r["account"]: r for r in status["rows"]}
    assert by_account == {r.account: {**r.__dict__} for r in client.status(book.traders)}
    assert all(isinstance(r["equity"], int) for r in status["rows"])

    preview = doc("preview", book.doomed[0], "--json")
    expected = client.preview(book.doomed[0])
    assert preview["reward"] == expected.reward and preview["fraction_wad"] == expected.fraction_wad
    assert preview["bad_debt"] == expected.bad_debt and preview["liquidatable"] is True

    dry = doc("liquidate", "--dry-run", "--json")
    assert dry["dry_run"] is True and set(dry["to_send"]) == set(book.doomed)
    check = dry["profit_check"]
    assert check["gas_price_wei"] == 10**9 and check["eth_usd"] == 1_800.0
    assert check["gas_per_account"] == KEEPER_GAS_PER_ACCOUNT
    for t in dry["targets"]:
        assert t["reward"] == client.preview(t["account"]).reward
        assert t["reward_usd"] == t["reward"] / USDC and t["gas_cost_usd"] == 0.063
        assert t["send"] is True and t["batch"] == 0
    (batch,) = dry["batches"]
    assert batch["reward"] == sum(t["reward"] for t in dry["targets"])
    assert batch["gas"] == KEEPER_BATCH_BASE_GAS + 2 * KEEPER_GAS_PER_ACCOUNT


def test_cli_liquidate__json_live__reward_in_token_units(
    tester, abi_dir, book, crash, capsys, monkeypatch
):
    crash()
    monkeypatch.setenv("MM_PRIVATE_KEY", tester.keys[9].to_hex())
    before = collateral(tester, tester.roles.liquidator)
    assert main(cli(tester, abi_dir, "liquidate", "--json"), w3=tester.w3) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["dry_run"] is False and d["decimals"] == 6
    assert set(d["liquidated"]) == set(book.doomed) and len(d["tx_hashes"]) == 1
    assert d["reward"] == collateral(tester, tester.roles.liquidator) - before > 0


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
def node(node_uri, chain, system, deployer, guardian, tmp_path, build_dir, abi_dir):
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
        abi_dir=abi_dir,
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
        str(WRAPPER),
        "--rpc",
        node.uri,
        "--deployment",
        str(node.record_path),
        "--abi-dir",
        str(node.abi_dir),
    ]
    env = {**os.environ, "MM_TEST_LIQUIDATOR_KEY": liquidator.private_key}
    keyless = {k: v for k, v in os.environ.items() if k != "MM_PRIVATE_KEY"}

    status = subprocess.run(
        [*base, "status", "--json"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert doc["accounts"] == len(node_book.traders)
    assert set(doc["liquidatable"]) == node_book.doomed
    assert doc["token"] == str(ch.collateral_token()) and doc["decimals"] == 6

    n = len(node_book.doomed)
    dry = subprocess.run(
        [*base, "liquidate", "--dry-run"],
        cwd=REPO,
        env=keyless,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dry.returncode == 0, dry.stderr
    assert f"dry run: {n} liquidatable of 6 accounts, {n} would be sent in 1 tx" in dry.stdout
    greedy = subprocess.run(
        [*base, "liquidate", "--dry-run", "--min-profit", "1000000"],
        cwd=REPO,
        env=keyless,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert greedy.returncode == 0, greedy.stderr
    assert f"dry run: {n} liquidatable of 6 accounts, 0 would be sent in 0 tx" in greedy.stdout
    assert greedy.stdout.count("skip: its batch nets under the minimum profit") == n
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
