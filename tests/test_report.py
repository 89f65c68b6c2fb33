"""The pure parts of `margin_maintenance.report` on synthetic event dicts (no chain needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.constants import BTC, ETH, FEED_UNIT, USDC, VIRTUAL_ASSETS, VIRTUAL_SHARES, WAD

from margin_maintenance.audit import rebuild
from margin_maintenance.crashdata import PricePoint, plan_replay
from margin_maintenance.model import PoolState
from margin_maintenance.report import (
    CONSOLE_WIDTH,
    CrashClock,
    LPSample,
    PriceUpdate,
    RunReport,
    Segment,
    assemble_report,
    at_block,
    blocks_needing_time,
    cluster_marks,
    compute_figures,
    console_report,
    detect_windows,
    driven_updates,
    ledger_path,
    liquidation_closes,
    liquidation_marks,
    lp_blocks,
    lp_note,
    lp_path,
    match_crash,
    plan_segments,
    plan_windows,
    plot_data,
    plot_report,
    price_move,
    price_updates,
    render_console,
    render_markdown,
    render_text,
    replay_steps,
    report_json,
    sample_blocks,
    share_price_blocks,
    table_rows,
    thin,
    window_lines,
)

ANSWER = FEED_UNIT  # one USD in aggregator units (8 decimals)
ALICE, BOB, CAROL = "0xA11ce", "0xB0b", "0xCa201"
KEEPER, LP, FUNDER = "0xKeeper", "0xLp", "0xFunder"
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
    assert by_name["liquidations"][1] == "3"
    assert (by_name["  partial"][1], by_name["  full"][1]) == ("1", "2")
    assert by_name["keeper rewards"][1] == "33.00"
    assert by_name["  socialised to LPs"][1] == "40.00"
    assert by_name["LP net deposits"][2] == "-100,000.00"
    assert by_name["  drawdown (low / start)"][1] == "-20.0%"
    assert by_name["replayed price start"][1] == "2,000.00"
    assert by_name["LP share price start"][0] == "-"  # not read
    assert by_name["LP PnL, unrealised"][1] == "-"  # open PnL not read either


def test_table_rows__lp_parts__add_up(figures):
    header, rows = table_rows(list(figures.values()), 6)
    by_name = {r[0]: r[1:] for r in rows}
    num = lambda s: float(s.replace(",", ""))  # noqa: E731
    for col in range(len(header) - 1):
        parts = ("  trading fees", "  traders' net realised loss", "  bad debt socialised")
        assert sum(num(by_name[p][col]) for p in parts) == num(by_name["LP PnL, realised"][col])


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


# ---- Market time: matching a window to its crash file ----

H = 3_600
ETH_FILE = "eth_usdt_binance_1h_2020-03-12_black_thursday"
BTC_FILE = "btc_usdt_binance_1h_2021-05-19_china_ban"
T_ETH = 1_583_971_200  # 2020-03-12 00:00 UTC
T_BTC = 1_621_382_400  # 2021-05-19 00:00 UTC


def hourly(t0: int, prices: list[float]) -> list[PricePoint]:
    return [PricePoint(t0 + H * i, p) for i, p in enumerate(prices)]


# PRICES replays rows 1..5 of the ETH file (x10: 200 -> 2,000) and rows 0..4 of the BTC file
# (x10: 4,000 -> 40,000; its first step is the block-13 re-post). The CoinAPI decoy fits neither.
CRASHES = {
    ETH_FILE: hourly(T_ETH, [210, 200, 190, 180, 160, 165, 170]),
    BTC_FILE: hourly(T_BTC, [4_000, 3_800, 3_500, 3_100, 3_000]),
    "eth_usd_coinapi_10m_2020-03-12_black_thursday": hourly(T_ETH, [200, 195, 190, 170]),
}
PRICE_DECIMALS = {"ETH-USD": 8, "BTC-USD": 8}
NAMES = ("2020-03-12 ETH crash", "2021-05-19 BTC crash")


def test_replay_steps__window__starts_with_the_replays_re_post(updates, windows):
    steps = replay_steps(updates, windows[0])
    assert [(u.block_number, u.answer // ANSWER) for u in steps] == [
        (10, 2000),  # the first step re-posts the current price: not driven, before the window
        (11, 1900),
        (12, 1800),
        (14, 1600),
        (19, 1650),
    ]


def test_match_crash__replayed_window__file_first_row_rescale_and_dates(updates, windows):
    clock = match_crash(updates, windows[0], CRASHES)
    assert (clock.crash, clock.market, clock.first_row, clock.rows) == (ETH_FILE, "ETH-USD", 1, 5)
    assert (clock.source_start_price, clock.start_price) == (200, 2000.0)
    assert clock.rescale == pytest.approx(10.0)
    assert clock.anchors[0] == (1_000 + 60 * 10, T_ETH + H)  # chain time -> candle time
    assert clock.anchors[-1] == (1_000 + 60 * 19, T_ETH + 5 * H)
    btc = match_crash(updates, windows[1], CRASHES)
    assert (btc.crash, btc.first_row, btc.rows) == (BTC_FILE, 0, 5)
    assert btc.interval == "1h"


def test_match_crash__planned_replay__compression_and_every_step_exact():
    points = hourly(T_ETH, [203.4, 201.4, 194.6, 167.9, 132.9, 140.1, 128.0, 137.2])
    plan = plan_replay(points, 2000 * ANSWER, 60, skip=2, max_steps=5)
    t0 = 1_700_000_000
    ups = price_updates(
        {
            "ETH-USD": [answer(1, 2000, ts=t0 - 500)]
            + [
                ev("AnswerUpdated", 10 + i, current=s.answer, updated_at=t0 + s.offset_s)
                for i, s in enumerate(plan)
            ]
        }
    )
    (w,) = detect_windows(ups, 20)
    clock = match_crash(ups, w, {ETH_FILE: points})
    assert (clock.first_row, clock.rows, clock.compression) == (2, 5, 60.0)
    assert [t for _, t in clock.anchors] == [p.timestamp_s for p in points[2:7]]
    for c, t in clock.anchors:
        assert clock.market_time(c) == t


def test_match_crash__no_file_fits__none(updates, windows):
    decoy = {k: v for k, v in CRASHES.items() if "coinapi" in k}
    assert match_crash(updates, windows[0], decoy) is None
    assert match_crash(updates, windows[0], {}) is None
    # a file that fits the first moves but not the last driven one is no match either
    short = {ETH_FILE: hourly(T_ETH, [210, 200, 190, 180, 160, 166])}
    assert match_crash(updates, windows[0], short) is None


def test_match_crash__two_files_fit__the_longest_match_wins():
    # the last update re-posts 1,650 (a heartbeat after the replay, or a flat candle)
    ups = price_updates(
        {
            "ETH-USD": [
                answer(b, p)
                for b, p in [(1, 2000), (2, 1900), (3, 1800), (4, 1600), (5, 1650), (6, 1650)]
            ]
        }
    )
    (w,) = detect_windows(ups, 9)
    fits_five = {"a_" + ETH_FILE: hourly(T_ETH, [200, 190, 180, 160, 165, 170])}
    fits_six = {"b_" + ETH_FILE: hourly(T_ETH, [200, 190, 180, 160, 165, 165])}
    assert match_crash(ups, w, fits_five).rows == 5
    clock = match_crash(ups, w, {**fits_five, **fits_six})
    assert (clock.crash, clock.rows) == ("b_" + ETH_FILE, 6)
    same = {"c_" + ETH_FILE: fits_six["b_" + ETH_FILE]}
    assert match_crash(ups, w, {**same, **fits_six}).crash == "b_" + ETH_FILE  # tie: first name


def test_crash_clock__market_time__exact_at_steps_linear_between_extrapolated_outside():
    clock = CrashClock(
        ETH_FILE, "ETH-USD", 0, 200.0, 2000.0, ((100, 10_000), (160, 13_600), (220, 17_200))
    )
    assert clock.compression == 60.0
    assert clock.market_time(160) == 13_600
    assert clock.market_time(130) == 11_800  # halfway between two steps
    assert clock.market_time(250) == 17_200 + 30 * 60  # after the last step: x compression
    assert clock.market_time(90) == 10_000 - 600
    one = CrashClock(ETH_FILE, "ETH-USD", 0, 200.0, 2000.0, ((100, 10_000),))
    assert one.compression == 1.0 and one.market_time(105) == 10_005


def test_plan_windows__no_names__labelled_after_the_crash_file(updates):
    segs, clocks = plan_windows(updates, 0, END, CRASHES, PRICE_DECIMALS)
    assert [s.label for s in segs] == ["setup", *NAMES, "whole run"]
    assert [c.crash for c in clocks] == [ETH_FILE, BTC_FILE]
    segs, _ = plan_windows(updates, 0, END, CRASHES, PRICE_DECIMALS, names=["first"])
    assert [s.label for s in segs[1:3]] == ["first", "2021-05-19 BTC crash"]
    segs, clocks = plan_windows(updates, 0, END, {}, PRICE_DECIMALS)
    assert [s.label for s in segs[1:3]] == ["ETH-USD crash", "BTC-USD crash"]
    assert clocks == [None, None]


# ---- The LP pool ----

ONE_SHARE = 10**12  # LP shares have 6 more decimals than the token


def trader_pnl(block: int) -> tuple[int, int]:
    """Open PnL per market (ETH, BTC): longs losing on ETH, shorts winning on BTC."""
    return (-10 * block * USDC, 100 * block * USDC)


def lp_samples(events, blocks, pnl=trader_pnl) -> dict[int, LPSample]:
    """Samples as the engine would report them (one side per market, traders' collateral
    covering every loss): redemption value = pool assets + open losses - open profit - account
    debt, per share with the virtual offset."""
    path = ledger_path(events)
    out = {}
    for b in blocks:
        s = at_block(path, b)
        pnls = pnl(b)
        profit, loss = sum(max(p, 0) for p in pnls), sum(max(-p, 0) for p in pnls)
        nav = max(s.pool_assets + loss - profit - s.account_debt, 0)
        price = ONE_SHARE * (nav + VIRTUAL_ASSETS) // (s.lp_shares + VIRTUAL_SHARES)
        out[b] = LPSample(price, profit, loss)
    return out


def test_thin__cap__evenly_spread_first_and_last_kept():
    assert thin([1, 2, 3], 5) == [1, 2, 3]
    assert thin(list(range(100)), 5) == [0, 25, 50, 74, 99]
    assert thin(list(range(10)), 1) == [9] and thin([1, 2], 0) == []


def test_lp_blocks__window__base_moves_and_last_block(updates, windows):
    assert lp_blocks(windows[0], EVENTS, updates) == [10, 11, 12, 14, 15, 17, 19]
    assert lp_blocks(windows[1], EVENTS, updates) == [19, 20, 21, 22, 24, 25, 27, END]
    assert lp_blocks(windows[1], EVENTS, updates, cap=3) == [19, 20, END]
    segs = plan_segments(windows, 0, END)
    assert {3, 10, 19, END} <= set(sample_blocks(segs, EVENTS, updates))  # share-price blocks


def test_ledger_path__lp_fields__debt_deposits_and_shares():
    s = at_block(ledger_path(EVENTS), 27)
    assert s.account_debt == 20 * USDC  # Alice: -120 after her full close, 100 settled
    assert s.lp_net_deposits == 900_000 * USDC and s.lp_shares == 9 * 10**17
    assert s.lp_realised == s.pool_assets - 900_000 * USDC


def test_compute_figures__lp_samples__mark_to_market_is_the_share_price_change(updates, windows):
    eth = windows[0]
    samples = lp_samples(EVENTS, sample_blocks([eth], EVENTS, updates))
    f = compute_figures(eth, EVENTS, None, None, updates, samples)
    assert (f.open_profit_start, f.open_profit_end) == (1_000 * USDC, 1_900 * USDC)
    assert (f.open_loss_start, f.open_loss_end) == (100 * USDC, 190 * USDC)
    assert (f.account_debt_start, f.account_debt_end) == (0, 20 * USDC)
    assert f.lp_unrealised == (90 - 900 - 20) * USDC  # losses up, profit up, debt up
    assert f.lp_mark_to_market == f.lp_pnl + f.lp_unrealised
    # no LP joined or left: the share price moves by mark-to-market / redemption value
    nav0 = f.pool_start + f.open_loss_start - f.open_profit_start - f.account_debt_start
    assert f.share_price_change == pytest.approx(f.lp_mark_to_market / nav0, rel=1e-6)
    bare = compute_figures(eth, EVENTS, None, {10: 1, 19: 2}, updates)
    assert bare.lp_unrealised is None and bare.lp_mark_to_market is None


def test_lp_path__window__pnl_relative_to_its_start(updates, windows):
    eth = windows[0]
    samples = lp_samples(EVENTS, lp_blocks(eth, EVENTS, updates))
    points = lp_path(eth, samples, ledger_path(EVENTS))
    assert [p.block for p in points] == [10, 11, 12, 14, 15, 17, 19]
    assert (points[0].realised, points[0].unrealised) == (0, 0)
    whole = compute_figures(eth, EVENTS, None, None, updates, samples)
    assert points[-1].total == whole.lp_mark_to_market
    assert points[3].realised == 0 and points[4].realised == 300 * USDC  # the partial close
    assert lp_path(eth, {b: s for b, s in samples.items() if b != 10}, ledger_path(EVENTS)) == []


def test_lp_note__share_price_down_realised_up__explained_with_the_numbers(updates, windows):
    eth = windows[0]
    samples = lp_samples(
        EVENTS, sample_blocks([eth], EVENTS, updates), pnl=lambda b: (0, 2_000 * b * USDC)
    )
    f = compute_figures(eth, EVENTS, None, None, updates, samples)
    assert f.lp_pnl > 0 and f.share_price_change < 0
    note = lp_note(f, 6)
    assert note.startswith("LP share price vs realised LP PnL (ETH-USD crash)")
    assert f"{f.share_price_change * 100:+.2f}%" in note
    assert "was +1,440 USDC" in note  # realised
    assert "20,000 -> 38,000 USDC" in note  # open profit owed, start -> end
    assert f"mark-to-market PnL was {f.lp_mark_to_market / USDC:+,.0f} USDC" in note
    assert lp_note(compute_figures(eth, EVENTS), 6) is None


# ---- A realistic two-window report ----

SCALED = {
    "amount",
    "assets",
    "realized_pnl",
    "fee",
    "keeper_reward",
    "insurance_delta",
    "closed_notional",
    "bad_debt",
    "insurance_covered",
    "socialised",
    "uncovered",
    "owed",
    "paid",
}


def realistic_report(scale: int = 10) -> RunReport:
    """The synthetic run with every amount x`scale` (a 10,000,000 USDC pool), named windows,
    matched crash files, block times and LP samples: what `read_report` would return."""
    events = [{k: v * scale if k in SCALED else v for k, v in e.items()} for e in EVENTS]
    ups = price_updates(PRICES)
    segs, clocks = plan_windows(ups, 0, END, CRASHES, PRICE_DECIMALS, NAMES)
    samples = lp_samples(
        events,
        sample_blocks(segs, events, ups),
        pnl=lambda b: (-b * 1_000 * USDC, b * 30_000 * USDC),
    )
    path = ledger_path(events)
    times = {b: 1_000 + 60 * b for b in blocks_needing_time(events, segs, path) | set(samples)}
    return assemble_report(
        0, END, events, ups, PRICE_DECIMALS, SYMBOLS, segs, clocks, times, samples
    )


def test_console_report__realistic_two_windows__every_line_fits_100_columns():
    rep = realistic_report()
    text = console_report(rep, "local: run report (blocks 0..30)")
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= CONSOLE_WIDTH
    # one table block (figures as rows, windows as columns), then windows and notes
    assert sum(1 for line in lines if line.startswith("-----")) == 1
    assert any("2020-03-12" in line for line in lines[:4])  # window labels wrap in the header
    assert "LP PnL, mark-to-market" in text and "+10,000,000.00" in text
    assert "Notes:" in text and "LP share price vs realised LP PnL (whole run)" in text
    assert "market time 2020-03-12 01:00 .. 2020-03-12 05:00 UTC" in " ".join(lines)


def test_render_console__many_columns__split_into_blocks_each_within_width():
    figs = realistic_report().figures
    header, rows = table_rows([*figs, *figs], 6, PRICE_DECIMALS)
    text = render_console(header, rows, 100)
    assert max(len(line) for line in text.splitlines()) <= 100
    assert sum(1 for line in text.splitlines() if line.startswith("-----")) == 2
    assert text.count("LP share price change") == 2  # the label column repeats per block
    narrow = render_console(header, rows, 60)
    assert max(len(line) for line in narrow.splitlines()) <= 60


def test_window_lines__matched_and_unmatched__file_dates_compression_rescale():
    rep = realistic_report()
    eth, btc = window_lines(rep.windows, rep.clocks, rep.block_times, markdown=True)
    assert eth.startswith("**2020-03-12 ETH crash**: ETH-USD, blocks 11..19: `" + ETH_FILE)
    assert "rows 1..5 (5 1h closes, market time 2020-03-12 01:00 .. 2020-03-12 05:00 UTC)" in eth
    assert "prices x10 (200.00 rescaled to 2,000.00)" in eth
    (plain,) = window_lines(rep.windows[:1], [None], rep.block_times)
    assert "no crash file matched" in plain


def test_report_json__decimals_units_and_windows():
    rep = realistic_report()
    doc = report_json(rep, "local", 31337, "0xCh")
    assert doc["decimals"] == 6 and doc["collateral_decimals"] == 6 and doc["unit"] == "USDC"
    assert "10**decimals" in doc["units"]["amounts"]
    eth = doc["windows"][0]
    assert (eth["crash_file"], eth["first_row"], eth["rows"]) == (ETH_FILE, 1, 5)
    assert eth["market_time_start"] == T_ETH + H and eth["rescale"] == pytest.approx(10.0)
    whole = doc["columns"][-1]
    assert whole["lp_mark_to_market"] == whole["lp_pnl"] + whole["lp_unrealised"]
    import json

    assert json.loads(json.dumps(doc)) == doc  # plain JSON


# ---- Plot ----


def test_plot_data__windows__market_time_marks_and_lp(tmp_path: Path):
    rep = realistic_report()
    data = plot_data(rep)
    eth, btc = data.windows
    assert eth.market_time and eth.title.startswith("2020-03-12 ETH crash: 2020-03-12 01:00")
    assert eth.x_start == T_ETH + H  # the first replayed row's candle time, not chain time
    assert eth.prices[:2] == [(T_ETH + H, 2000.0), (T_ETH + 2 * H, 1900.0)]
    assert eth.rescale == pytest.approx(10.0) and eth.source == "ETH/USDT binance 1h close"
    # the partial at block 15 lands 60 chain seconds after the block-14 step, and the next step
    # comes 300 chain seconds (one candle) later: 12 minutes of market time
    assert eth.marks[0] == (T_ETH + 4 * H + 12 * 60, 1700.0, False, 1)
    assert eth.other_legs == {"BTC-USD": 1}  # Carol's BTC close in the same batch
    assert (eth.partial, eth.full) == (1, 2)
    assert eth.bad_debt[-1][1] == 1_000.0 and btc.bad_debt[-1][1] == 0.0  # per window
    assert eth.lp[0][1:3] == (0.0, 0.0) and eth.lp_nav_start is not None
    assert btc.lp_nav_start is None  # an LP withdrew inside: the share price gets its own axis
    png = plot_report(data, tmp_path / "r" / "demo.png", "test")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000


def test_plot_data__no_window__whole_run_on_chain_time():
    ups = price_updates({"ETH-USD": [answer(1, 2000), answer(5, 1900)]})
    rep = assemble_report(
        0,
        9,
        [],
        ups,
        {"ETH-USD": 8},
        SYMBOLS,
        plan_segments([], 0, 9),
        [],
        {b: 1_000 + 60 * b for b in range(10)},
        {},
    )
    (run,) = plot_data(rep).windows
    assert not run.market_time and run.label == "run" and run.lp == []
    assert plot_data(assemble_report(0, 9, [], [], {}, {}, [], [], {}, {})).windows == []


# ---- Integration: the Ape reader on a real replay ----


@pytest.mark.integration
def test_read_report__black_thursday_replay__market_time_and_lp_pnl_match_the_chain(
    project, chain, deployer, guardian, liquidator
):
    from margin_maintenance.crashdata import load_prices, resolve_scenario
    from margin_maintenance.deployment import with_chain_market_ids
    from margin_maintenance.population import (
        PopulationParams,
        generate_population,
        seed_population,
    )
    from margin_maintenance.replay import current_answer, run_replay
    from margin_maintenance.report import read_report
    from margin_maintenance.status import read_margin_status
    from margin_maintenance.system import SystemParams, deploy_system

    system = with_chain_market_ids(deploy_system(project, deployer, guardian, SystemParams()))
    pop = generate_population(
        7, system.symbols, PopulationParams(traders=5, lp_deposit_usd=1_000_000, long_share=0.8)
    )
    seeded = seed_population(system, deployer, pop, first_index=2_100, insurance_usd=10_000)
    eth = system.symbols.index("ETH-USD")
    points = load_prices(resolve_scenario(ETH_FILE).path)
    steps = plan_replay(points, current_answer(system, eth), factor=60, skip=47, max_steps=20)
    run_replay(system, eth, steps, deployer)
    ch = system.clearinghouse
    vault = system.vault
    traders = [t.address for t in seeded.traders]
    victims = [r.account for r in read_margin_status(ch, traders) if r.liquidatable]
    assert victims
    ch.liquidate_many(victims, sender=liquidator)

    # On a node with an HTTP endpoint the reader batches through the chain layer (the
    # in-process chain has none and takes the one-call-at-a-time path instead).
    from margin_maintenance.report.reader import _batched

    if getattr(chain.provider, "http_uri", None):
        assert _batched([("eth_blockNumber", [])]) == [hex(chain.blocks.head.number)]
    else:
        with pytest.raises(RuntimeError, match="no HTTP endpoint"):
            _batched([("eth_blockNumber", [])])

    rep = read_report(system, system.start_block)
    (window,) = rep.windows
    (clock,) = rep.clocks
    assert window.label == "2020-03-12 ETH crash"  # named after the matched file
    assert (clock.crash, clock.first_row, clock.rows, clock.compression) == (ETH_FILE, 47, 20, 60)
    assert [t for _, t in clock.anchors] == [s.source_ts for s in steps]
    assert clock.rescale == pytest.approx(2_000 / points[47].price_usd)
    assert rep.decimals == 6 and rep.unit == "USDC"

    f = rep.figures[rep.segments.index(window)]
    assert f.liquidations == len(victims)
    # mark-to-market = the change in the LPs' redemption value, as the chain prices it
    supply = int(system.vault.totalSupply())
    base, end = window.start_block - 1, window.end_block
    value = [int(vault.convert_to_assets(supply, block_id=b)) for b in (base, end)]
    assert f.lp_mark_to_market == pytest.approx(value[1] - value[0], abs=10)
    assert f.share_price_end == int(vault.convert_to_assets(10**12))
    assert f.open_profit_end == PoolState(*ch.pool_state()).trader_profit
    text = console_report(rep, "test")
    assert max(len(line) for line in text.splitlines()) <= CONSOLE_WIDTH
