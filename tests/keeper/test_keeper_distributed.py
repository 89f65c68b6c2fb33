"""The keeper on Silverback's distributed runner: `silverback run` dispatches blocks through a
taskiq-redis broker to two `silverback worker -w 2` processes sharing one signer.

Needs a node other processes can reach, so it runs on anvil only:

    ape test tests/keeper/test_keeper_distributed.py -q -m integration \\
        --network ethereum:local:foundry

The test starts `redis-server` on a free loopback port, points the runner and the workers at
the anvil this session already runs on (`APE_FOUNDRY_HOST`), moves prices in two waves and
checks that the workers liquidate exactly what one in-process keeper liquidates from the same
state (a snapshot taken before), with no account liquidated more often, no lost race, no
reverted or refused batch and the engine's ledgers conserved. Every process it starts is
stopped by its pid; every wait is bounded.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from ape import chain, config
from local_redis import redis_server, stop, wait_for
from support.constants import BTC, ETH
from support.deployers import engine_ledger_total

from margin_maintenance.keeper.core import Keeper, index_scope
from margin_maintenance.keeper.index import AccountIndex
from margin_maintenance.keeper.settings import KeeperSettings
from margin_maintenance.population import mnemonic_account

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BOT = "margin_maintenance.keeper.bot:bot"
NETWORK = "ethereum:local:foundry"
BATCH_CAP = 2  # small batches: each wave takes several liquidate_many, i.e. several nonces
FIRST_INDEX = 4_000  # mnemonic index of the first trader made here
# (market, size in units per 1,000 USD of collateral, liquidated by the wave?) at ETH 2,000 and
# BTC 60,000: ETH longs at 8x and 9x and BTC longs at 8x fall below maintenance after a 10%
# drop of their market; 3x longs, shorts and an idle deposit stay healthy.
BOOK = [
    (ETH, 4.0, True),
    (ETH, 4.5, True),
    (ETH, 4.0, True),
    (ETH, 4.5, True),
    (ETH, 4.0, True),
    (BTC, 0.1334, True),
    (BTC, 0.1334, True),
    (BTC, 0.1334, True),
    (ETH, 1.5, False),
    (ETH, -2.0, False),
    (BTC, 0.05, False),
    (None, 0.0, False),
]
WAVES = [(ETH, 1_800), (BTC, 54_000)]
STARTUP_TIMEOUT = 120  # s: three Python processes importing Ape on a small machine
WAVE_TIMEOUT = 60  # s per price move


class Logs:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.log"

    def text(self, name: str) -> str:
        p = self.path(name)
        return p.read_text(errors="replace") if p.exists() else ""

    def tails(self, lines: int = 40) -> str:
        out = []
        for p in sorted(self.folder.glob("*.log")):
            tail = "\n".join(p.read_text(errors="replace").splitlines()[-lines:])
            out.append(f"---- {p.name} (last {lines} lines)\n{tail}")
        return "\n".join(out)


def mine_a_block() -> None:
    with suppress(Exception):  # the node is gone: the runner is killed after its timeout
        chain.mine()


@contextmanager
def keeper_processes(env: dict[str, str], logs: Logs) -> Iterator[dict[str, subprocess.Popen]]:
    """`silverback run` and two `silverback worker -w 2`, stopped (by pid) on exit: the runner
    first (its shutdown task needs a worker), then the workers. The runner notices SIGTERM at
    its event loop's next wake-up (its signal handler does not wake the loop): a new block, or
    else the next whole minute of its cron timer; so a block is mined after the signal."""
    silverback = str(Path(sys.executable).with_name("silverback"))
    commands = {
        "worker-1": [silverback, "worker", "-w", "2", BOT, "--network", NETWORK,
                     "--account", "TEST::5"],
        "worker-2": [silverback, "worker", "-w", "2", BOT, "--network", NETWORK,
                     "--account", "TEST::5"],
        "runner": [silverback, "run", BOT, "--network", NETWORK],
    }  # fmt: skip
    procs: dict[str, subprocess.Popen] = {}
    try:
        for name, cmd in commands.items():
            with open(logs.path(name), "w") as log:
                procs[name] = subprocess.Popen(
                    cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
                )
        yield procs
    finally:
        runner = procs.get("runner")
        if runner is not None and runner.poll() is None:
            runner.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            mine_a_block()
            stop(runner, signal.SIGTERM, 30)
        for name in ("worker-1", "worker-2"):
            if name in procs:
                stop(procs[name], signal.SIGINT, 20)


@pytest.fixture
def node_uri():
    uri = getattr(chain.provider, "http_uri", None)
    if chain.provider.name != "foundry" or not str(uri or "").startswith("http"):
        pytest.skip(
            "the runner and the workers are separate processes and need a node they can "
            f"reach: run with --network {NETWORK} (this is {chain.provider.network.choice}:"
            f"{chain.provider.name})"
        )
    return str(uri)


@pytest.fixture
def book(ch, deployer, deposit, seeded_pool, open_position):
    """Twelve traders made for this test: {"doomed": [wave 1, wave 2], "healthy": [...]}."""
    doomed: dict[int, list] = {ETH: [], BTC: []}
    healthy = []
    for i, (market, units, dies) in enumerate(BOOK):
        who = mnemonic_account(FIRST_INDEX + i)
        deployer.transfer(who, 10**18)
        deposit(who, 1_000)
        if market is not None:
            open_position(who, market, units)
        (doomed[market] if dies else healthy).append(who)
    return {"doomed": [doomed[m] for m, _ in WAVES], "healthy": healthy}


def liquidated_since(ch, start_block: int) -> list:
    return list(ch.Liquidated.range(start_block, chain.blocks.head.number + 1))


def no_pending(address: str) -> bool:
    eth = chain.provider.web3.eth
    return eth.get_transaction_count(address, "pending") == eth.get_transaction_count(address)


def reference_run(ch, system, set_price, liquidator, tmp_path) -> tuple[Counter, int]:
    """One in-process keeper (the single-process bot's handler), same settings, both waves:
    (liquidations per account, liquidate_many transactions sent)."""
    settings = KeeperSettings(dry_run=False, min_profit=0.0, batch_cap=BATCH_CAP)
    scope = index_scope(chain.chain_id, str(ch.address), system.start_block)
    index = AccountIndex(tmp_path / "reference.sqlite", system.start_block, scope=scope)
    keeper = Keeper(ch, index, settings, liquidator)
    keeper.catch_up()
    start, nonce = chain.blocks.head.number + 1, liquidator.nonce
    try:
        for market, price in WAVES:
            set_price(market, price)
            for _ in range(5):  # until a pass finds nothing left (partial closes may need two)
                (result,) = keeper.on_block(chain.blocks.head.number)
                if not result.liquidatable:
                    break
            else:
                pytest.fail(f"reference keeper still sees {result.liquidatable}")
    finally:
        keeper.close()
    events = liquidated_since(ch, start)
    assert {str(e.liquidator) for e in events} == {str(liquidator.address)}
    return Counter(str(e.account) for e in events), liquidator.nonce - nonce


def test_two_workers_one_redis__same_liquidations_as_one_process(
    node_uri, ch, token, system, book, set_price, liquidator, accounts, tmp_path
):
    traders = [*book["healthy"], *(t for wave in book["doomed"] for t in wave)]
    everyone = [*accounts, *traders]
    doomed = {str(t.address) for wave in book["doomed"] for t in wave}
    assert not any(ch.is_liquidatable(t) for t in traders)
    positions = {str(t.address): (ch.position(t, ETH), ch.position(t, BTC)) for t in traders}

    # What one process does from this state, then back to it.
    snapshot = chain.provider.snapshot()
    try:
        expected, expected_txs = reference_run(ch, system, set_price, liquidator, tmp_path)
    finally:
        chain.provider.restore(snapshot)
    assert set(expected) == doomed
    assert not any(ch.is_liquidatable(t) for t in traders)

    logs = Logs(tmp_path / "logs")
    logs.folder.mkdir()
    with redis_server(tmp_path) as redis_url:
        bot_name = f"keeper-distributed-{redis_url.rsplit(':', 1)[1]}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MM_", "SILVERBACK_"))}
        env.update(
            APE_FOUNDRY_HOST=node_uri,  # the node this session deployed to
            APE_DATA_FOLDER=str(config.DATA_FOLDER),
            HOME=str(tmp_path / "home"),  # Silverback writes ~/.silverback/profile.toml
            PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
            SILVERBACK_BOT_NAME=bot_name,
            SILVERBACK_BROKER_CLASS="taskiq_redis:ListQueueBroker",
            # redis-py 8 times out idle reads after 5 s, which kills a worker waiting in BRPOP
            SILVERBACK_BROKER_KWARGS=f'{{"url": "{redis_url}", "socket_timeout": null}}',
            SILVERBACK_RESULT_BACKEND_CLASS="taskiq_redis:RedisAsyncResultBackend",
            SILVERBACK_RESULT_BACKEND_KWARGS=f'{{"redis_url": "{redis_url}"}}',
            MM_CLEARINGHOUSE=str(ch.address),
            MM_START_BLOCK=str(system.start_block),
            MM_DEPLOYMENTS_DIR=str(tmp_path / "deployments"),
            MM_DB_PATH=str(tmp_path / "keeper.sqlite"),  # one host: both workers share it
            MM_BATCH_CAP=str(BATCH_CAP),
            MM_MIN_PROFIT="0",
            MM_DRY_RUN="0",
        )
        (tmp_path / "home").mkdir()
        start, nonce = chain.blocks.head.number + 1, liquidator.nonce
        try:
            with keeper_processes(env, logs) as procs:

                def running() -> bool:
                    dead = [n for n, p in procs.items() if p.poll() is not None]
                    if dead:
                        pytest.fail(f"{dead} exited early\n{logs.tails()}")
                    return "Startup complete" in logs.text("runner")

                wait_for("the runner's startup", running, STARTUP_TIMEOUT, logs.tails)
                for (market, price), wave in zip(WAVES, book["doomed"], strict=True):
                    set_price(market, price)
                    chain.mine(3)  # a burst of blocks: tasks for both workers while one sends

                    def wave_done(wave=wave) -> bool:
                        running()
                        return not any(ch.is_liquidatable(t) for t in wave) and no_pending(
                            str(liquidator.address)
                        )

                    wait_for(f"the {market} wave", wave_done, WAVE_TIMEOUT, logs.tails)
                # Quiet: later blocks find nothing to do.
                chain.mine(2)
                time.sleep(3)
                wait_for("no pending tx", lambda: no_pending(str(liquidator.address)), 30)
                block_tasks = {
                    name: logs.text(name).count("liquidate_on_block[")
                    for name in ("worker-1", "worker-2")
                }
        finally:
            shutil.rmtree(REPO / ".silverback-sessions" / bot_name, ignore_errors=True)

    events = liquidated_since(ch, start)
    got = Counter(str(e.account) for e in events)
    diag = logs.tails()
    assert got == expected, diag  # the same accounts, each as often as one process does
    assert {str(e.liquidator) for e in events} == {str(liquidator.address)}
    assert liquidator.nonce - nonce == expected_txs, diag  # the same number of batches
    assert all(n > 0 for n in block_tasks.values()), (block_tasks, diag)  # both did work
    worker_logs = logs.text("worker-1") + logs.text("worker-2")
    for bad in ("Traceback", "lost to a competitor", "not sent or reverted", "already healthy",
                "lease lost", "nonce too low"):  # fmt: skip
        assert bad not in worker_logs, (bad, diag)
    assert "ERROR" not in logs.text("runner"), diag
    assert not any(ch.is_liquidatable(t) for t in traders)
    for t in book["healthy"]:
        assert (ch.position(t, ETH), ch.position(t, BTC)) == positions[str(t.address)]
    assert token.balanceOf(ch) == engine_ledger_total(ch, everyone)
