"""The pure parts of `margin_maintenance.report` on synthetic event dicts (no chain needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from margin_maintenance.audit import rebuild
from margin_maintenance.report import (
    PriceUpdate,
    Segment,
    at_block,
    blocks_needing_time,
    cluster_marks,
    compute_figures,
    detect_windows,
    driven_updates,
    ledger_path,
    liquidation_closes,
    liquidation_marks,
    plan_segments,
    plot_data,
    plot_report,
    price_move,
    price_updates,
    render_markdown,
    render_text,
    share_price_blocks,
    table_rows,
)

USDC = 10**6  # collateral token units (6 decimals)
ANSWER = 10**8  # aggregator units (8 decimals)
WAD = 10**18
ALICE, BOB, CAROL = "0xA11ce", "0xB0b", "0xCa201"
KEEPER, LP, FUNDER = "0xKeeper", "0xLp", "0xFunder"
ETH, BTC = 0, 1
SYMBOLS = {ETH: "ETH-USD", BTC: "BTC-USD"}


def ev(name: str, block: int, log_index: int = 0, tx: str | None = None, **fields: Any) -> dict:
    return {
        "event": name,
        "block_number": block,
        "log_index": log_index,
        "tx": tx or f"0xtx{block}",
        **fields,
    }


def trade(block, account, market, delta, new_size, price, pnl=0, fee=0, log_index=0, tx=None):
    return ev(
        "PositionChanged",
        block,
        log_index,
        tx,
        account=account,
        market_id=market,
        size_delta=delta * WAD,
        new_size=new_size * WAD,
        price=price * WAD,
        realized_pnl=pnl,
        fee=fee,
    )


def liquidated(block, account, fee, reward, full, log_index, tx=None, notional=0):
    return ev(
        "Liquidated",
        block,
        log_index,
        tx,
        account=account,
        liquidator=KEEPER,
        fraction=WAD if full else WAD // 2,
        closed_notional=notional,
        fee=fee,
        keeper_reward=reward,
        insurance_delta=fee - reward,
        full=full,
    )


def bad_debt(block, account, bad, covered, socialised, log_index, tx=None):
    return ev(
        "BadDebtSettled",
        block,
        log_index,
        tx,
        account=account,
        bad_debt=bad,
        insurance_covered=covered,
        socialised=socialised,
        uncovered=bad - covered - socialised,
    )


def answer(block: int, value: float, ts: int | None = None, log_index: int = 0) -> dict:
    return ev(
        "AnswerUpdated",
        block,
        log_index,
        current=int(value * ANSWER),
        round_id=block,
        updated_at=ts if ts is not None else 1_000 + 60 * block,
    )


# A run: setup (blocks 1-9), an ETH crash (10-19), a BTC crash (20-30).
#   block 1-2   the aggregators post their initial answers (deploy)
#   block 3     LP adds 1,000,000; 4: insurance funded 50,000
#   block 5-6   Alice goes long ETH, Bob long BTC (fees 10 and 20)
#   block 10-14 ETH 2,000 -> 1,600 (five steps); block 13 a BTC heartbeat re-post
#   block 15    Alice partially liquidated (fee 30, reward 20, closes 1 ETH at 1,700)
#   block 17    liquidate_many: Alice fully (fee 0, reward 5 topped up, bad debt 100:
#               60 insurance, 40 pool) and Carol fully on BTC (fee 8, reward 8)
#   block 20-24 BTC 40,000 -> 30,000; block 25 a profit haircut and Bob closes at a loss
#   block 27    LP removes 100,000
PRICES = {
    "ETH-USD": [answer(1, 2000)]
    + [answer(b, p) for b, p in [(10, 2000), (11, 1900), (12, 1800), (14, 1600), (19, 1650)]],
    "BTC-USD": [answer(2, 40_000), answer(13, 40_000)]
    + [answer(b, p) for b, p in [(20, 38_000), (21, 35_000), (22, 31_000), (24, 30_000)]],
}
EVENTS = [
    ev("LiquidityAdded", 3, provider=LP, assets=1_000_000 * USDC, shares=10**18),
    ev("InsuranceFunded", 4, funder=FUNDER, amount=50_000 * USDC),
    ev("Deposited", 5, account=ALICE, amount=1_000 * USDC),
    trade(5, ALICE, ETH, 2, 2, 2000, fee=10 * USDC, log_index=1),
    ev("Deposited", 6, account=BOB, amount=1_000 * USDC),
    trade(6, BOB, BTC, 1, 1, 40_000, fee=20 * USDC, log_index=1),
    ev("Deposited", 7, account=CAROL, amount=500 * USDC),
    trade(7, CAROL, BTC, -1, -1, 40_000, fee=5 * USDC, log_index=1),
    # partial liquidation of Alice
    trade(15, ALICE, ETH, -1, 1, 1700, pnl=-300 * USDC, log_index=0),
    liquidated(15, ALICE, 30 * USDC, 20 * USDC, False, 1, notional=1_700 * USDC),
    # liquidate_many: Alice fully (bad debt), then Carol (a profit)
    trade(17, ALICE, ETH, -1, 0, 1600, pnl=-780 * USDC, log_index=0, tx="0xmany"),
    bad_debt(17, ALICE, 100 * USDC, 60 * USDC, 40 * USDC, 1, tx="0xmany"),
    liquidated(17, ALICE, 0, 5 * USDC, True, 2, tx="0xmany", notional=1_600 * USDC),
    trade(17, CAROL, BTC, 1, 0, 41_000, pnl=-1_000 * USDC + 600 * USDC, log_index=3, tx="0xmany"),
    liquidated(17, CAROL, 8 * USDC, 8 * USDC, True, 4, tx="0xmany", notional=41_000 * USDC),
    ev("ProfitHaircut", 25, account=BOB, market_id=BTC, owed=50 * USDC, paid=30 * USDC),
    trade(25, BOB, BTC, -1, 0, 30_000, pnl=-500 * USDC, fee=15 * USDC, log_index=1),
    ev("LiquidityRemoved", 27, provider=LP, assets=100_000 * USDC, shares=10**17),
]
END = 30


@pytest.fixture
def updates() -> list[PriceUpdate]:
    return price_updates(PRICES)


@pytest.fixture
def windows(updates) -> list[Segment]:
    return detect_windows(updates, END)


@pytest.fixture
def figures(windows):
    segs = plan_segments(windows, 0, END)
    path = ledger_path(EVENTS)
    return {s.label: compute_figures(s, EVENTS, path, None, price_updates(PRICES)) for s in segs}


# ---- Prices and windows ----


def test_price_updates__two_markets__chain_order(updates):
    assert [(u.market, u.block_number) for u in updates[:3]] == [
        ("ETH-USD", 1),
        ("BTC-USD", 2),
        ("ETH-USD", 10),
    ]
    assert updates[0].answer == 2000 * ANSWER and updates[0].timestamp == 1_060


def test_driven_updates__heartbeat_repost__dropped(updates):
    driven = driven_updates(updates)
    assert (13, "BTC-USD") not in [(u.block_number, u.market) for u in driven]
    # the replay's first step re-posts the current price, so it is not driven either
    assert (10, "ETH-USD") not in [(u.block_number, u.market) for u in driven]
    assert [u.block_number for u in driven if u.market == "ETH-USD"] == [1, 11, 12, 14, 19]


def test_detect_windows__two_replays__one_window_each(windows):
    assert [(w.label, w.market, w.start_block, w.end_block) for w in windows] == [
        ("ETH-USD crash", "ETH-USD", 11, 19),
        ("BTC-USD crash", "BTC-USD", 20, END),
    ]


def test_detect_windows__names__label_in_order(updates):
    ws = detect_windows(updates, END, names=["2020-03-12 ETH", "2021-05-19 BTC", "unused"])
    assert [w.label for w in ws] == ["2020-03-12 ETH", "2021-05-19 BTC"]


def test_detect_windows__short_runs__no_window(updates):
    assert detect_windows(updates, END, min_steps=5) == []
    assert len(detect_windows(updates, END, min_steps=4)) == 2
    # with one step enough, each deploy answer would make a window of its own
    assert [w.start_block for w in detect_windows(updates, END, min_steps=1)] == [1, 2, 11, 20]


def test_detect_windows__same_market_twice__numbered():
    ups = price_updates(
        {
            "ETH-USD": [answer(b, 2000 - b) for b in (1, 2, 3, 10, 11, 12)],
            "BTC-USD": [answer(b, 40_000 - b) for b in (5, 6, 7)],
        }
    )
    ws = detect_windows(ups, 20)
    assert [(w.label, w.start_block, w.end_block) for w in ws] == [
        ("ETH-USD crash #1", 1, 4),
        ("BTC-USD crash", 5, 9),
        ("ETH-USD crash #2", 10, 20),
    ]


def test_plan_segments__windows__setup_windows_whole_run(windows):
    segs = plan_segments(windows, 0, END)
    assert [(s.label, s.start_block, s.end_block) for s in segs] == [
        ("setup", 0, 10),
        ("ETH-USD crash", 11, 19),
        ("BTC-USD crash", 20, END),
        ("whole run", 0, END),
    ]


def test_plan_segments__no_window__one_run_column():
    assert plan_segments([], 5, 9) == [Segment("run", 5, 9)]


def test_price_move__eth_window__start_low_end_drawdown(updates, windows):
    move = price_move(updates, "ETH-USD", windows[0])
    assert (move.start, move.low, move.end) == (2000 * ANSWER, 1600 * ANSWER, 1650 * ANSWER)
    assert move.drawdown == pytest.approx(-0.2)
    assert price_move(updates, "SOL-USD", windows[0]) is None


# ---- Balance paths ----


def test_ledger_path__same_block_bad_debt_then_fee__one_snapshot_per_block():
    path = ledger_path(EVENTS)
    assert len({s.block for s in path}) == len(path)
    s17 = at_block(path, 17)
    # insurance: 50,000 + (30 - 20) then block 17: -60 covered, +(0 - 5), +(8 - 8)
    assert s17.insurance_fund == (50_000 + 10 - 60 - 5) * USDC
    assert s17.bad_debt == 100 * USDC and s17.socialised == 40 * USDC


def test_ledger_path__end__matches_audit_rebuild():
    led = rebuild(EVENTS)
    last = ledger_path(EVENTS)[-1]
    assert (last.insurance_fund, last.pool_assets) == (led.insurance_fund, led.pool_assets)


def test_at_block__before_first_event__zeros():
    assert at_block(ledger_path(EVENTS), 2).insurance_fund == 0


# ---- Figures ----


def test_compute_figures__eth_window__liquidations_split_and_accounts(figures):
    f = figures["ETH-USD crash"]
    assert (f.liquidations, f.partial, f.full) == (3, 1, 2)
    assert f.accounts_liquidated == 2  # Alice twice, Carol once
    assert f.liquidators == 1
    assert f.keeper_rewards == (20 + 5 + 8) * USDC
    assert f.insurance_topup == 5 * USDC  # only Alice's full liquidation paid beyond its fee
    assert f.liquidation_fees == (30 + 0 + 8) * USDC
    assert f.closed_notional == (1_700 + 1_600 + 41_000) * USDC


def test_compute_figures__eth_window__insurance_start_end_min(figures):
    f = figures["ETH-USD crash"]
    assert f.insurance_start == 50_000 * USDC
    assert f.insurance_end == (50_000 + 10 - 65) * USDC
    assert f.insurance_min == f.insurance_end
    # the low is taken from the first funding on: a run that starts at zero has no low of 0
    assert figures["setup"].insurance_start == 0
    assert figures["setup"].insurance_min == 50_000 * USDC


def test_compute_figures__insurance_exhausted__min_zero():
    events = [
        ev("InsuranceFunded", 1, funder=FUNDER, amount=10 * USDC),
        bad_debt(3, ALICE, 15 * USDC, 10 * USDC, 5 * USDC, 0),
        liquidated(3, ALICE, 0, 0, True, 1),
        ev("InsuranceFunded", 5, funder=FUNDER, amount=7 * USDC),
    ]
    f = compute_figures(Segment("run", 0, 6), events)
    assert (f.insurance_start, f.insurance_min, f.insurance_end) == (0, 0, 7 * USDC)
    assert compute_figures(Segment("late", 4, 6), events).insurance_min == 0
    assert compute_figures(Segment("never", 0, 0), events).insurance_min == 0


def test_compute_figures__bad_debt__split_by_payer(figures):
    f = figures["ETH-USD crash"]
    assert (f.bad_debt, f.covered_by_insurance, f.socialised, f.uncovered) == (
        100 * USDC,
        60 * USDC,
        40 * USDC,
        0,
    )
    assert f.bad_debt_events == 1
    assert figures["BTC-USD crash"].bad_debt == 0


def test_compute_figures__pnl_fees_haircuts__per_window(figures):
    eth, btc = figures["ETH-USD crash"], figures["BTC-USD crash"]
    assert eth.trader_realized_pnl == (-300 - 780 - 400) * USDC
    assert eth.liquidation_realized_pnl == eth.trader_realized_pnl
    assert eth.trades == 0 and eth.trading_fees == 0
    assert btc.trader_realized_pnl == -500 * USDC and btc.liquidation_realized_pnl == 0
    assert btc.trades == 1 and btc.trading_fees == 15 * USDC
    assert btc.haircuts == 20 * USDC
    assert figures["setup"].trading_fees == 35 * USDC


def test_compute_figures__lp_pnl__net_of_deposits(figures):
    eth, btc, setup = figures["ETH-USD crash"], figures["BTC-USD crash"], figures["setup"]
    # the pool takes traders' losses, less socialised bad debt
    assert eth.lp_pnl == (300 + 780 + 400 - 40) * USDC
    assert btc.lp_net_deposits == -100_000 * USDC
    assert btc.lp_pnl == (500 + 15) * USDC
    assert setup.lp_pnl == 35 * USDC and setup.lp_net_deposits == 1_000_000 * USDC


def test_compute_figures__windows__add_up_to_whole_run(figures):
    parts = [figures[k] for k in ("setup", "ETH-USD crash", "BTC-USD crash")]
    whole = figures["whole run"]
    for name in (
        "liquidations",
        "partial",
        "full",
        "keeper_rewards",
        "insurance_topup",
        "bad_debt",
        "socialised",
        "haircuts",
        "trader_realized_pnl",
        "trading_fees",
        "lp_net_deposits",
        "lp_pnl",
    ):
        assert sum(getattr(p, name) for p in parts) == getattr(whole, name), name
    assert whole.insurance_end == parts[-1].insurance_end
    assert whole.insurance_min == min(p.insurance_min for p in parts)


def test_compute_figures__share_prices__read_at_boundaries(windows):
    segs = plan_segments(windows, 0, END)
    prices = {3: 1_000_000, 10: 1_000_035, 19: 1_001_000, END: 1_001_500}
    figs = [compute_figures(s, EVENTS, share_prices=prices) for s in segs]
    setup, eth, btc, whole = figs
    assert (setup.share_price_start, setup.share_price_end) == (1_000_000, 1_000_035)
    assert (eth.share_price_start, eth.share_price_end) == (1_000_035, 1_001_000)
    assert (whole.share_price_start, whole.share_price_end) == (1_000_000, 1_001_500)
    assert btc.share_price_change == pytest.approx(1_001_500 / 1_001_000 - 1)


def test_share_price_blocks__no_lp_before__first_deposit_block():
    assert share_price_blocks(Segment("s", 0, 10), EVENTS) == (3, 10)
    assert share_price_blocks(Segment("w", 11, 19), EVENTS) == (10, 19)
    assert share_price_blocks(Segment("early", 0, 2), EVENTS) == (None, 2)


def test_compute_figures__no_events__all_zero():
    f = compute_figures(Segment("empty", 0, 5), [])
    assert (f.liquidations, f.bad_debt, f.lp_pnl, f.insurance_min) == (0, 0, 0, 0)
    assert f.share_price_change is None and f.price is None


# ---- Liquidation marks ----


def test_liquidation_closes__liquidate_many__legs_per_account():
    closes = liquidation_closes(EVENTS)
    assert [p["market_id"] for p in closes[("0xmany", 2)]] == [ETH]
    assert [p["account"] for p in closes[("0xmany", 4)]] == [CAROL]
    assert [p["price"] for p in closes[("0xtx15", 1)]] == [1700 * WAD]


def test_liquidation_marks__markets_prices_and_kind():
    times = {15: 5_000, 17: 5_100}
    marks = liquidation_marks(EVENTS, times, SYMBOLS)
    assert [(m.market, m.timestamp, m.price, m.full) for m in marks] == [
        ("ETH-USD", 5_000, 1700.0, False),
        ("ETH-USD", 5_100, 1600.0, True),
        ("BTC-USD", 5_100, 41_000.0, True),
    ]


def test_cluster_marks__same_batch_same_price__counted_once():
    a = liquidation_marks(EVENTS, {15: 5_000, 17: 5_100}, SYMBOLS)
    twice = [*a, a[1]]
    clusters = cluster_marks(twice)
    assert [(m.market, m.timestamp, n) for m, n in clusters] == [
        ("ETH-USD", 5_000, 1),
        ("BTC-USD", 5_100, 1),
        ("ETH-USD", 5_100, 2),
    ]


def test_liquidation_marks__unknown_block_time__skipped():
    assert liquidation_marks(EVENTS, {15: 5_000}, SYMBOLS)[0].timestamp == 5_000
    assert len(liquidation_marks(EVENTS, {}, SYMBOLS)) == 0


# ---- Rendering ----


def test_table_rows__columns__one_per_segment(figures):
    header, rows = table_rows(list(figures.values()), 6, {"ETH-USD": 8, "BTC-USD": 8})
    assert header == ["figure", "setup", "ETH-USD crash", "BTC-USD crash", "whole run"]
    assert all(len(r) == len(header) for r in rows)
    by_name = {r[0]: r[1:] for r in rows}
    assert by_name["liquidations (partial / full)"][1] == "3 (1 / 2)"
    assert by_name["keeper rewards"][1] == "33.00"
    assert by_name["  socialised to LPs"][1] == "40.00"
    assert by_name["LP net deposits"][2] == "-100,000.00"
    assert "-20.0%" in by_name["replayed price: start -> low -> end (drawdown)"][1]
    assert by_name["LP share price start"][0] == "-"  # not read


def test_render_text__aligned__equal_widths(figures):
    header, rows = table_rows(list(figures.values()), 6)
    lines = render_text(header, rows).splitlines()
    assert len(lines) == len(rows) + 2
    assert lines[0].startswith("figure") and set(lines[1]) <= {"-", " "}
    assert len({len(line) for line in lines}) == 1  # every column padded to its width


def test_render_markdown__table_image_notes__well_formed(figures):
    header, rows = table_rows(list(figures.values()), 6)
    md = render_markdown(header, rows, intro=["hello"], image="demo.png", notes=["n1"])
    table = [line for line in md.splitlines() if line.startswith("|")]
    assert len(table) == len(rows) + 2
    assert all(line.count(" | ") == len(header) - 1 for line in table if "---" not in line)
    assert "![" in md and "(demo.png)" in md and "- n1" in md and "hello" in md
    assert "| &nbsp;&nbsp;socialised to LPs |" in md  # indentation survives Markdown


# ---- Plot ----


def test_blocks_needing_time__balance_steps_and_bounds(windows):
    segs = plan_segments(windows, 0, END)
    blocks = blocks_needing_time(EVENTS, segs, ledger_path(EVENTS))
    assert {4, 15, 17, 0, 10, 11, 19, 20, END} <= blocks
    assert 6 not in blocks  # a trade moves neither insurance nor bad debt


def test_plot_report__synthetic_run__writes_png(tmp_path: Path, updates, windows):
    path = ledger_path(EVENTS)
    segs = plan_segments(windows, 0, END)
    times = {b: 1_000 + 60 * b for b in blocks_needing_time(EVENTS, segs, path)}
    data = plot_data(updates, {"ETH-USD": 8, "BTC-USD": 8}, EVENTS, path, times, SYMBOLS, 6,
                     windows, END)  # fmt: skip
    assert data.insurance[-1] == (1_000 + 60 * END, 50_000 + 10 - 65)
    assert (data.partial, data.full) == (1, 2)
    assert list(data.prices) == ["ETH-USD", "BTC-USD"]  # the order given, not alphabetical
    assert data.bad_debt[-1][1] == 100.0
    assert data.windows == [
        ("ETH-USD crash", 1_000 + 60 * 11, 1_000 + 60 * 20),  # shaded up to the next window
        ("BTC-USD crash", 1_000 + 60 * 20, 1_000 + 60 * END),
    ]
    assert data.prices["ETH-USD"][-1] == (1_000 + 60 * END, 1650.0)
    png = plot_report(data, tmp_path / "r" / "demo.png", "test")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000
