"""The keeper scale bench (`ape run scale`, margin_maintenance/scalebench.py).

Pure parts (the book plan, the statistics, the report) need no chain. The integration test
runs the whole bench on a 50-account book against its own anvil and checks its structure:
everyone it made liquidatable is liquidated and the counts agree. No test asserts a time.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
import requests

from margin_maintenance.scalebench import (
    BTC,
    ETH,
    WAD,
    AccountPlan,
    BookParams,
    ClearResult,
    ScaleResult,
    Stats,
    Timing,
    account_address,
    count_rpc,
    crossing_move,
    growth,
    last_summary,
    liquidatable_after,
    plan_book,
    position_size,
    predicted_liquidatable,
    render_markdown,
    spec_verdicts,
    split_send,
    to_json,
)

# ---- Statistics ----


def test_stats__odd_runs__median_is_middle_sample():
    s = Stats.of([0.30, 0.10, 0.20, 0.90, 0.25])
    assert (s.median, s.min, s.max, s.runs) == (0.25, 0.10, 0.90, 5)


def test_stats__even_runs__median_is_mean_of_middle_two():
    s = Stats.of([4.0, 1.0, 3.0, 2.0])
    assert (s.median, s.min, s.max, s.runs) == (2.5, 1.0, 4.0, 4)


def test_stats__one_run():
    assert Stats.of([0.5]) == Stats(0.5, 0.5, 0.5, 1)


def test_stats__no_samples__refused():
    with pytest.raises(ValueError):
        Stats.of([])


# ---- The book ----


@pytest.mark.parametrize("n", [50, 200, 1_000, 10_000])
def test_plan_book__exactly_a_tenth_doomed(n):
    plans = plan_book(n)
    assert len(plans) == n and [p.index for p in plans] == list(range(n))
    assert sum(p.doomed for p in plans) == round(n / 10)


def test_plan_book__deterministic_in_seed():
    assert plan_book(500) == plan_book(500)
    assert plan_book(500) != plan_book(500, BookParams(seed=8))


def test_plan_book__doomed_are_9x_eth_longs_rest_2_to_3x_in_both_markets():
    plans = plan_book(2_000)
    doomed = [p for p in plans if p.doomed]
    safe = [p for p in plans if not p.doomed]
    assert all((p.market, p.side, p.leverage) == (ETH, 1, 9.0) for p in doomed)
    assert all(2.0 <= p.leverage <= 3.0 for p in safe)
    assert {p.market for p in safe} == {ETH, BTC} and {p.side for p in safe} == {1, -1}
    assert all(500.0 <= p.collateral_usd <= 5_000.0 for p in plans)


def test_crossing_move__9x_near_6_4_percent_3x_near_30_percent():
    assert crossing_move(9.0) == pytest.approx(0.0643, abs=5e-4)
    assert crossing_move(3.0) == pytest.approx(0.298, abs=5e-4)
    assert crossing_move(2.0) > crossing_move(3.0) > 0.10 > crossing_move(9.0)


def test_liquidatable_after__agrees_with_crossing_move():
    for leverage in (2.0, 3.0, 9.0):
        x = crossing_move(leverage)
        long = AccountPlan(0, ETH, 1, leverage, 1_000.0, False)
        assert not liquidatable_after(long, [-(x - 1e-4), 0.0])
        assert liquidatable_after(long, [-(x + 1e-4), 0.0])
        short = AccountPlan(1, ETH, -1, leverage, 1_000.0, False)
        assert not liquidatable_after(short, [-0.5, 0.0])  # a short gains on the drop


@pytest.mark.parametrize("n", [50, 1_000, 10_000])
def test_chosen_move__makes_exactly_the_doomed_tenth_liquidatable(n):
    params = BookParams()
    plans = plan_book(n, params)
    moves = [params.eth_move, 0.0]
    assert {p.index for p in plans if liquidatable_after(p, moves)} == {
        p.index for p in plans if p.doomed
    }
    assert predicted_liquidatable(plans, params) == round(n / 10)
    assert not any(liquidatable_after(p, [0.0, 0.0]) for p in plans)  # healthy before


def test_chosen_move__has_margin_on_both_sides():
    """Rounding in the engine cannot flip anyone: the move is well past the 9x crossing and
    well short of the 3x crossing."""
    p = BookParams()
    assert crossing_move(p.doomed_leverage) < -p.eth_move - 0.03
    assert crossing_move(p.safe_leverage[1]) > -p.eth_move + 0.15


def test_position_size__sign_and_notional():
    long = AccountPlan(0, ETH, 1, 9.0, 1_000.0, True)
    short = AccountPlan(1, BTC, -1, 2.5, 600.0, False)
    assert position_size(long, 2_000.0) == round(4.5 * WAD)
    assert position_size(short, 60_000.0) == -round(0.025 * WAD)


def test_account_address__deterministic_distinct_checksummed():
    addrs = [account_address(i) for i in range(10_000)]
    assert len(set(addrs)) == 10_000
    assert addrs[7] == account_address(7) and addrs[7].startswith("0x") and len(addrs[7]) == 42
    assert addrs[7] != addrs[7].lower()  # checksummed, as the keeper's index stores them


# ---- Counting RPC ----


class _FakeResponse:
    status_code = 200

    def __init__(self, body):
        self._body = body

    def raise_for_status(self):
        pass

    def json(self):
        return self._body


def test_count_rpc__counts_http_requests_and_batched_methods(monkeypatch):
    def fake_send(self, request, **kwargs):
        return _FakeResponse([])

    monkeypatch.setattr(requests.Session, "send", fake_send)
    counted, skipped = requests.Session(), requests.Session()
    with count_rpc(exclude=[skipped]) as counts:
        batch = [{"jsonrpc": "2.0", "id": i, "method": "eth_call", "params": []} for i in range(3)]
        counted.post("http://127.0.0.1:1", json=batch)
        counted.post("http://127.0.0.1:1", json={"id": 1, "method": "eth_blockNumber"})
        skipped.post("http://127.0.0.1:1", json={"id": 1, "method": "eth_chainId"})
    assert counts == Counter({"_http": 2, "eth_call": 3, "eth_blockNumber": 1})
    assert requests.Session.send is fake_send  # restored


def test_split_send__receipt_waits_taken_out_of_send():
    raw = {"status read": 0.2, "send": 1.5, "receipts": 0.4}
    assert split_send(raw) == pytest.approx(
        {"status read": 0.2, "estimate+sign+send": 1.1, "await receipts": 0.4}
    )
    assert split_send({"status read": 0.1}) == {"status read": 0.1}


# ---- The report ----


def _clear(block_time=1, blocks=2, liquidatable=100, liquidated=100, left=0, gas=30_000.0):
    return ClearResult(
        block_time=block_time,
        price_block=50,
        liquidatable_at_update=liquidatable,
        liquidated=liquidated,
        still_liquidatable=left,
        blocks_to_clear=blocks,
        liquidation_blocks=[50 + b for b in range(1, blocks + 1)],
        seconds_to_clear=1.5 * blocks,
        iterations=blocks + 1,
        batches=2,
        gas_total=int(gas * liquidated),
        gas_per_liquidation=gas,
        max_batch_gas=1_900_000,
        max_block_gas=3_000_000,
        block_gas_limit=30_000_000,
        rpc_requests=60,
        rpc_methods={"eth_call": 100, "eth_estimateGas": 2},
        iteration_seconds=[1.2] * (blocks + 1),
        iteration_phases=[{"status read": 0.1}] * (blocks + 1),
        iteration_liquidated=[liquidated] + [0] * blocks,
    )


def _result(n, read_s, clears):
    return ScaleResult(
        accounts=n,
        doomed_planned=n // 10,
        predicted_liquidatable=n // 10,
        seed_seconds=3.0,
        seed_txs=4 * n,
        index_seconds=0.5,
        status=Stats(read_s, read_s * 0.8, read_s * 1.5, 5),
        status_http_requests=1,
        status_eth_calls=-(-n // 512),
        clears=clears,
    )


def test_cleared__needs_everyone_liquidated_and_none_left():
    assert _clear().cleared
    assert not _clear(left=1).cleared
    assert not _clear(liquidated=99).cleared


def test_spec_verdicts__only_at_10k__read_on_the_slowest_run():
    assert spec_verdicts(_result(1_000, 0.01, [_clear()])) == ("", [""])
    read, clears = spec_verdicts(
        _result(10_000, 0.3, [_clear(1, blocks=4), _clear(12, blocks=2), _clear(2, left=3)])
    )
    assert read == "< 1 s: met"
    assert clears == ["<= 3 blocks: missed", "<= 3 blocks: met", "<= 3 blocks: missed"]
    slow_max = _result(10_000, 0.7, [])  # max = 1.05 s
    assert spec_verdicts(slow_max)[0] == "< 1 s: missed"


def test_growth__states_ratios_per_block_time():
    small = _result(1_000, 0.01, [_clear(1, blocks=1), _clear(12, blocks=1)])
    large = _result(
        10_000, 0.2, [_clear(1, blocks=4, liquidatable=1_000, liquidated=1_000), _clear(12)]
    )
    lines = growth(small, large)
    assert "10x the accounts took 20.0x the time" in lines[0]
    assert "eth_calls 2 -> 20" in lines[0]
    assert any("1-s blocks: 100 -> 1,000 liquidatable" in s and "1 -> 4 block" in s for s in lines)
    assert any(s.startswith("clearing at 12-s blocks") for s in lines)
    assert lines[-1].startswith("gas per liquidation: 30,000-30,000 -> 30,000-30,000")


def test_render_markdown__tables_growth_and_timings():
    results = [
        _result(1_000, 0.01, [_clear(1, blocks=1)]),
        _result(10_000, 0.2, [_clear(1, blocks=3, liquidatable=1_000, liquidated=1_000)]),
    ]
    timings = [Timing("test suite", "ape test tests -q -n 2", 250.4, 0, "300 passed in 250s")]
    text = render_markdown(results, timings, machine="Measured on 2 CPU(s).")
    assert text.startswith("<!-- written by `ape run scale`")
    assert "Measured on 2 CPU(s)." in text
    assert "| 10,000 | 200 ms | 160 ms | 300 ms | 5 | 20 | 1 | < 1 s: met |" in text
    assert "| 10,000 | 1 s | 1,000 | 1,000 | 3 | +1, +2, +3 |" in text
    assert "<= 3 blocks: met" in text
    assert "## Growth from 1,000 to 10,000 accounts" in text
    assert "| test suite | `ape test tests -q -n 2` | 250 s | 0 | 300 passed in 250s |" in text
    quick = render_markdown(results[:1], quick=True)
    assert "(quick run)" in quick and "Growth" not in quick and "Wall times" not in quick


def test_render_markdown__signed_results_in_their_own_section():
    push = _result(10_000, 0.2, [_clear(1, blocks=3, liquidatable=1_000, liquidated=1_000)])
    signed = _result(10_000, 0.2, [_clear(1, blocks=2, liquidatable=1_000, liquidated=1_000)])
    signed.oracle = "signed"
    signed.clears[0].first_liquidation_s = 1.25
    text = render_markdown([push, signed])
    head, _, section = text.partition("## Clearing on signed prices while the push feed is stale")
    assert section and "| 10,000 | 1 s | 1,000 | 1,000 | 3 |" in head
    assert "| 10,000 | 1 s | 1,000 | 1,000 | 2 | +1, +2 | 1.2 s | 3.0 s | 2 | 30,000 |" in section
    assert "| 10,000 | 1 s | 1,000 | 1,000 | 2 |" not in head  # not in the push tables


def test_last_summary__pytest_tally_and_pipes():
    out = "collected 3\n...\n===== 3 passed, 1 skipped in 12.3s =====\n\n"
    assert last_summary(out) == "3 passed, 1 skipped in 12.3s"
    assert last_summary("a | b\n") == "a / b"
    demo = "demo finished in 61 s; logs in out/demo/\nmake[1]: Leaving directory '/w'\n"
    assert last_summary(demo) == "demo finished in 61 s; logs in out/demo/"
    assert last_summary("") == ""


def test_to_json__round_trips():
    data = json.loads(to_json([_result(1_000, 0.01, [_clear()])], [Timing("x", "y", 1.0, 0)]))
    assert data["scale"][0]["accounts"] == 1_000
    assert data["scale"][0]["clears"][0]["blocks_to_clear"] == 2
    assert data["timings"][0]["name"] == "x"


# ---- The whole bench, small ----


@pytest.mark.integration
def test_run_size__50_accounts__everyone_made_liquidatable_is_liquidated(tmp_path):
    from ape import accounts, project

    from margin_maintenance.scalebench import run_size

    r = run_size(project, accounts.test_accounts, 50, runs=2, block_times=(1,), workdir=tmp_path)
    assert (r.accounts, r.doomed_planned, r.predicted_liquidatable) == (50, 5, 5)
    assert r.seed_txs == 4 * 50
    assert r.status.runs == 2 and r.status.min <= r.status.median <= r.status.max
    assert (r.status_eth_calls, r.status_http_requests) == (1, 1)
    (c,) = r.clears
    assert c.block_time == 1 and c.cleared
    assert c.liquidatable_at_update == c.liquidated == 5 and c.still_liquidatable == 0
    assert c.blocks_to_clear >= 1 and c.liquidation_blocks[-1] == c.price_block + c.blocks_to_clear
    assert all(b > c.price_block for b in c.liquidation_blocks)
    assert c.batches >= 1 and c.gas_total > 0
    assert c.gas_per_liquidation == c.gas_total / c.liquidated
    assert c.max_block_gas <= c.block_gas_limit
    assert len(c.iteration_seconds) == len(c.iteration_phases) == c.iterations
    assert sum(c.iteration_liquidated) == 5
    assert c.rpc_methods.get("eth_sendRawTransaction", 0) == c.batches
    assert (tmp_path / "anvil-50.log").is_file()


@pytest.mark.integration
def test_run_size__signed__push_stale__keeper_brings_the_move(tmp_path):
    from ape import accounts, project

    from margin_maintenance.scalebench import run_size

    r = run_size(
        project,
        accounts.test_accounts,
        50,
        runs=1,
        block_times=(1,),
        workdir=tmp_path,
        oracle="signed",
    )
    (c,) = r.clears
    assert r.oracle == "signed" and c.cleared and c.liquidated == 5
    assert all(b > c.price_block for b in c.liquidation_blocks)
    assert 0 < c.first_liquidation_s <= c.seconds_to_clear
