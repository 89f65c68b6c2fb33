"""The crash simulator: pure model parts on plain values, then one small run on the in-process
chain whose reported figures are checked against the chain's own events."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
from support.constants import TOKEN_SCALE, USDC, WAD

from margin_maintenance.audit import rebuild, run_audit
from margin_maintenance.crashdata import PricePoint, Scenario, resolve_scenario
from margin_maintenance.events import fetch_events
from margin_maintenance.keeper import decisions
from margin_maintenance.population import PopulationParams, generate_population
from margin_maintenance.simulator import (
    RESULTS_FILE,
    CrashPath,
    CrashSpec,
    ImpactModel,
    KeeperModel,
    LiquidationRecord,
    MirrorAccount,
    OracleModel,
    PushFeed,
    ScenarioResult,
    SimConfig,
    SimulationResults,
    Sweep,
    SweepPoint,
    apply_events,
    build_path,
    check_rates,
    default_config,
    equity,
    generation_of,
    implied_insurance,
    is_liquidatable,
    maintenance,
    near_maintenance,
    pnl,
    quick_config,
    render_report,
    run_simulation,
    solvency_threshold,
    trigger_price_wad,
    window_around_drop,
    write_outputs,
)
from margin_maintenance.simulator.config import FundingModel
from margin_maintenance.simulator.funding_report import pair_rows, render_markdown

BLACK_THURSDAY = "eth_usdt_binance_1h_2020-03-12_black_thursday"


# ---- Sweeps and configuration ----


def test_sweep_points__default__base_first_then_one_axis_at_a_time():
    sweep = Sweep()
    points = sweep.points()
    assert points[0] == (sweep.base, ("mm_bps", "fee_bps", "insurance_usd", "latency"))
    assert len(points) == 9  # 1 base + 3 mm + 1 fee + 2 insurance + 2 latency
    assert len({p for p, _ in points}) == len(points)
    for p, axes in points[1:]:
        (axis,) = axes
        differs = [
            a
            for a in ("mm_bps", "fee_bps", "insurance_usd", "latency")
            if getattr(p, a) != getattr(sweep.base, a)
        ]
        assert differs == [axis]


def test_sweep_points__base_value_not_on_axis__base_kept_without_that_axis():
    sweep = Sweep(SweepPoint(500, 100, 10_000.0, 0), (300, 700), (), (), ())
    points = sweep.points()
    assert [p.mm_bps for p, _ in points] == [500, 300, 700]
    assert points[0][1] == ()
    assert points[1][1] == ("mm_bps",)


def test_check_rates__partial_bound_unreachable__raises():
    # mm 200 / fee 100 needs f = 800 / 900 = 0.889 at the crossing: 8,000 is unreachable.
    with pytest.raises(ValueError, match="unreachable"):
        check_rates(1_000, 200, 100, 5, 8_000)
    check_rates(1_000, 200, 100, 5, 9_000)


@pytest.mark.parametrize(
    "args, match",
    [
        ((1_000, 1_000, 100, 5, 9_000), "mm"),
        ((1_000, 500, 500, 5, 9_000), "below mm"),
        ((1_000, 500, 100, 200, 9_000), "trading fee"),
        ((1_000, 500, 100, 5, 0), "partial bound"),
    ],
)
def test_check_rates__engine_bounds__raise(args, match):
    with pytest.raises(ValueError, match=match):
        check_rates(*args)


def test_sim_config_validate__default_and_quick__pass_and_bad_bound_fails():
    default_config().validate()
    quick_config().validate()
    with pytest.raises(ValueError, match="unreachable"):
        replace(default_config(), max_partial_bps=8_000).validate()
    with pytest.raises(ValueError, match="negative"):
        replace(default_config(), sweep=Sweep(latency=(-1,))).validate()


def test_keeper_model__capacity__matches_bot_sizing():
    k = KeeperModel()
    size, n = k.capacity()
    usable = k.block_gas_limit * k.block_gas_fill_bps // 10_000
    assert size == decisions.batch_size_for(usable, k.per_account_gas, k.base_gas, cap=64)
    assert 1 <= n <= k.max_batches_per_block
    cost = k.cost_model()
    assert cost.covers_marginal_gas(USDC)  # a 1 USD minimum reward pays for 35k gas at 1 gwei


# ---- Impact model ----


def test_impact_factor__off__no_move():
    assert ImpactModel().factor(1e9) == 1.0


def test_impact_factor__long_liquidations__push_price_down_short_push_up():
    m = ImpactModel(k=0.5, depth_usd=1_000_000)
    assert m.factor(100_000) == pytest.approx(0.95)
    assert m.factor(-100_000) == pytest.approx(1.05)
    assert m.factor(0) == 1.0


def test_impact_factor__huge_sale__floored():
    assert ImpactModel(k=1, depth_usd=1, floor=0.05).factor(1e12) == 0.05


def test_impact_model__bad_parameters__raise():
    with pytest.raises(ValueError):
        ImpactModel(k=-1)
    with pytest.raises(ValueError):
        ImpactModel(depth_usd=0)


def test_push_feed__deviation_and_heartbeat__answer_moves_only_past_either():
    feed = PushFeed(OracleModel(deviation_bps=50, heartbeat_s=3_600), 2_000_00, 0)
    assert feed.step(1, 60, 2_009_00) == 2_000_00  # 0.45%: held
    assert feed.step(2, 120, 2_010_00) == 2_010_00  # 0.5%: sent
    assert feed.step(3, 180, 2_000_00) == 2_010_00  # 0.497% back: held
    assert feed.step(4, 120 + 3_600, 2_001_00) == 2_001_00  # the heartbeat sends any change
    assert feed.step(5, 120 + 3_660, 2_001_00) == 2_001_00
    assert feed.transmissions == 2


def test_push_feed__delay__answers_land_rows_late_in_order():
    feed = PushFeed(OracleModel(deviation_bps=0, delay_rows=2), 100, 0)
    seen = [feed.step(t, 60 * t, a) for t, a in enumerate([100, 90, 80, 80, 70, 70, 70])]
    assert seen == [100, 100, 100, 90, 80, 80, 70]


def test_push_feed__no_deviation_bound__every_change_sent():
    feed = PushFeed(OracleModel(deviation_bps=0), 100, 0)
    assert [feed.step(t, t, a) for t, a in enumerate([100, 101, 101, 99])] == [100, 101, 101, 99]
    assert feed.transmissions == 2


@pytest.mark.parametrize(
    "kw",
    [{"mode": "oracle"}, {"deviation_bps": -1}, {"heartbeat_s": 0}, {"delay_rows": -1}],
)
def test_oracle_model__bad_parameters__raise(kw):
    with pytest.raises(ValueError):
        OracleModel(**kw)


def test_generation_of__market_move_zero__induced_one_deeper():
    assert generation_of(False, [3, 4]) == 0
    assert generation_of(True, []) == 1
    assert generation_of(True, [0, 2, 1]) == 3


# ---- Crash paths ----


def _points(prices):
    return [PricePoint(1_000 + 60 * i, p) for i, p in enumerate(prices)]


def test_window_around_drop__centred_and_clamped():
    prices = [100.0] * 50
    prices[30] = 70.0  # the drop is from row 29 to row 30
    pts = _points(prices)
    assert window_around_drop(pts, 10) == 25
    assert window_around_drop(pts, 0) == 0
    assert window_around_drop(pts, 60) == 0
    prices2 = [100.0] * 50
    prices2[1] = 50.0
    assert window_around_drop(_points(prices2), 10) == 0  # clamped at the start
    prices3 = [100.0] * 50
    prices3[49] = 50.0
    assert window_around_drop(_points(prices3), 10) == 40  # clamped at the end


def test_build_path__first_row_pinned__moves_kept():
    scenario = Scenario("eth_x_1h_2020-01-01_t", None, "ETH", "X", "", "1h", "2020", "t")
    path = build_path(scenario, _points([200.0, 150.0, 100.0, 120.0]), 2_000 * 10**8, 8, 1, 2)
    assert path.answers == (2_000 * 10**8, 1_333_33333333)
    assert path.rows == 2 and path.skip == 1
    assert path.drawdown == pytest.approx(1 / 3)
    assert path.largest_drop == pytest.approx(1 / 3)
    assert path.symbol == "ETH-USD"


# ---- Margin mirror ----


def _long(collateral_usd=1_000, notional_usd=9_000, price=2_000):
    size = notional_usd * WAD // price
    return MirrorAccount("0xa", 0, size, price * WAD, collateral_usd * USDC)


def test_pnl__losses_round_towards_minus_infinity():
    assert pnl(1, 0, 1, TOKEN_SCALE) == 0  # tiny gain rounds down to 0
    assert pnl(-1, 0, 1, TOKEN_SCALE) == -1  # tiny loss rounds up in size
    assert pnl(WAD, 2_000 * WAD, 1_999 * WAD, TOKEN_SCALE) == -USDC


def test_mirror__long_at_trigger__liquidatable_just_below():
    a = _long()
    mm_bps = 500
    trig = trigger_price_wad(a, mm_bps, TOKEN_SCALE)
    above, below = int(trig * 1.0001), int(trig * 0.9999)
    assert not is_liquidatable(a, above, mm_bps, TOKEN_SCALE)
    assert is_liquidatable(a, below, mm_bps, TOKEN_SCALE)
    assert equity(a, below, TOKEN_SCALE) < maintenance(a, below, mm_bps, TOKEN_SCALE)
    # 1,000 on 9,000 notional: equity = mm at a fall of (1/9 - 0.05) / 0.95 of the price
    assert trig / WAD == pytest.approx(2_000 * (1 - (1 / 9 - 0.05) / 0.95), rel=1e-9)


def test_mirror__short__liquidatable_above_trigger():
    a = MirrorAccount("0xb", 0, -(5 * WAD), 2_000 * WAD, 1_000 * USDC)
    trig = trigger_price_wad(a, 500, TOKEN_SCALE)
    assert trig > 2_000 * WAD
    assert is_liquidatable(a, int(trig * 1.0001), 500, TOKEN_SCALE)
    assert not is_liquidatable(a, int(trig * 0.9999), 500, TOKEN_SCALE)


def test_near_maintenance__buffer__flags_before_trigger_only():
    a = _long()
    trig = trigger_price_wad(a, 500, TOKEN_SCALE)
    assert near_maintenance(a, int(trig * 1.004), 500, TOKEN_SCALE, 0.005)
    assert not near_maintenance(a, int(trig * 1.006), 500, TOKEN_SCALE, 0.005)
    assert near_maintenance(a, int(trig * 0.5), 500, TOKEN_SCALE, 0.005)
    closed = replace(a, size=0)
    assert not near_maintenance(closed, 1, 500, TOKEN_SCALE, 0.005)
    assert math.isnan(trigger_price_wad(closed, 500, TOKEN_SCALE))


def test_apply_events__partial_then_bad_debt__mirror_follows_the_ledger():
    a = _long(collateral_usd=1_000)
    a.address = "0xAbC"
    other = {"event": "Liquidated", "account": "0xdef", "fee": 10**9}
    partial = [
        {
            "event": "PositionChanged",
            "account": "0xabc",
            "new_size": a.size // 2,
            "price": 1_850 * WAD,
            "realized_pnl": -300 * USDC,
            "fee": 0,
        },
        {"event": "Liquidated", "account": "0xabc", "fee": 40 * USDC},
        other,
    ]
    apply_events(a, partial)
    assert (a.collateral, a.entry) == (660 * USDC, 1_850 * WAD)
    full = [
        {
            "event": "PositionChanged",
            "account": "0xabc",
            "new_size": 0,
            "price": 1_500 * WAD,
            "realized_pnl": -787 * USDC,
            "fee": 0,
        },
        {
            "event": "BadDebtSettled",
            "account": "0xabc",
            "insurance_covered": 100 * USDC,
            "socialised": 27 * USDC,
        },
        {"event": "Liquidated", "account": "0xabc", "fee": 0},
    ]
    apply_events(a, full)
    assert (a.size, a.entry, a.collateral) == (0, 0, 0)
    assert not a.open


# ---- Results and thresholds ----


def _rec(step, **kw):
    base = dict(
        step=step,
        observed=step,
        account=f"0x{step:040x}",
        market_id=0,
        side=1,
        fraction=WAD,
        full=True,
        closed_notional=10_000 * USDC,
        fee=100 * USDC,
        keeper_reward=50 * USDC,
        insurance_delta=50 * USDC,
        price_usd=1_500.0,
        sold_usd=10_000.0,
    )
    base.update(kw)
    return LiquidationRecord(**base)


def _result(records, insurance_start=1_000 * USDC, point=None, axes=(), rows=5):
    r = ScenarioResult(BLACK_THURSDAY, "ETH 1h", point or SweepPoint(), axes, rows)
    r.liquidations = list(records)
    r.insurance_start = insurance_start
    r.insurance_end = insurance_start + sum(
        x.insurance_delta - x.insurance_covered for x in records
    )
    r.price = [2_000.0, 1_900.0, 1_500.0, 1_400.0, 1_450.0][:rows]
    r.raw_price = list(r.price)
    return r


def test_scenario_result__figures_and_series_from_records():
    recs = [
        _rec(1, full=False, insurance_delta=-1 * USDC),
        _rec(
            2,
            bad_debt=800 * USDC,
            insurance_covered=600 * USDC,
            socialised=200 * USDC,
            generation=2,
        ),
    ]
    r = _result(recs)
    assert (r.n_liquidations, r.n_full, r.accounts_liquidated) == (2, 1, 2)
    assert r.keeper_rewards == 100 * USDC
    assert r.insurance_topups == 1 * USDC
    assert (r.bad_debt, r.socialised, r.lp_loss) == (800 * USDC, 200 * USDC, 200 * USDC)
    assert (r.cascade_depth, r.induced) == (2, 1)
    s = r.series()
    assert s["insurance"] == [1_000.0, 999.0, 449.0, 449.0, 449.0]
    assert s["bad_debt"] == [0.0, 0.0, 800.0, 800.0, 800.0]
    assert s["socialised"][-1] == 200.0
    json.dumps(r.to_dict())  # plain data only


@pytest.mark.parametrize(
    "pairs, value, non_monotone",
    [
        ([(200, 5), (300, 0), (500, 0), (700, 0)], 300, False),
        ([(200, 0), (300, 7), (500, 0), (700, 0)], 500, True),
        ([(200, 1), (300, 2), (500, 3), (700, 4)], None, False),
        ([(200, 0), (300, 0), (500, 0), (700, 9)], None, True),
        ([(200, 0), (700, 0)], 200, False),
    ],
)
def test_solvency_threshold__sweeps(pairs, value, non_monotone):
    t = solvency_threshold("mm_bps", pairs)
    assert t.value == value
    assert t.non_monotone is non_monotone


def test_solvency_threshold__texts():
    fmt = "{:.0f}".format
    assert solvency_threshold("mm_bps", [(200, 1)]).text(fmt) == "none in sweep"
    assert solvency_threshold("mm_bps", []).text(fmt) == "not swept"
    assert solvency_threshold("mm_bps", [(200, 0), (300, 1), (500, 0)]).text(fmt) == "500 (*)"


def test_implied_insurance__from_the_event_trail():
    assert implied_insurance(_result([])) == 0
    # Socialised 200 with a 1,000 fund: 1,200 would have covered everything.
    soc = _result(
        [_rec(2, bad_debt=1_300 * USDC, insurance_covered=1_100 * USDC, socialised=200 * USDC)]
    )
    assert implied_insurance(soc) == 1_200 * USDC
    # Covered with 350 to spare: 1,050 + 50 inflow - 750 = 350 left, so 650 would do.
    covered = _result([_rec(1), _rec(2, bad_debt=750 * USDC, insurance_covered=750 * USDC)])
    assert covered.insurance_end == 350 * USDC
    assert implied_insurance(covered) == 650 * USDC


def _synthetic_results(losses_by_mm):
    cfg = SimConfig(
        population=PopulationParams(traders=4),
        sweep=Sweep(SweepPoint(500, 100, 10_000.0, 0), tuple(losses_by_mm), (), (), ()),
    )
    pop = generate_population(7, ("ETH-USD", "BTC-USD"), cfg.population)
    path = CrashPath(
        BLACK_THURSDAY,
        "ETH 1h",
        "ETH-USD",
        "1h",
        0,
        (0, 3600, 7200, 10800, 14400),
        (200.0, 190.0, 150.0, 140.0, 145.0),
        (2_000 * 10**8,) * 5,
    )
    scenarios = []
    for p, axes in cfg.sweep.points():
        loss = losses_by_mm[p.mm_bps]
        recs = [_rec(2, bad_debt=loss, socialised=loss)] if loss else [_rec(2)]
        scenarios.append(_result(recs, point=p, axes=axes))
    return SimulationResults(cfg, pop, [path], scenarios)


def test_render_report__thresholds_and_rows__deterministic():
    res = _synthetic_results({200: 5 * USDC, 300: 0, 500: 0})
    text = render_report(res)
    assert text == render_report(res)
    assert "| ETH 1h | 5 | " in text
    assert "300 bps" in text  # the mm threshold
    assert "not swept" in text  # the insurance axis
    assert text.count("| ETH 1h | mm") == 3  # base (500 is on the axis), 200, 300
    none = render_report(_synthetic_results({200: 5 * USDC, 500: 7 * USDC}))
    assert "none in sweep" in none


def test_write_outputs__same_results__same_bytes(tmp_path):
    res = _synthetic_results({200: 5 * USDC, 300: 0, 500: 0})
    a, b = tmp_path / "a", tmp_path / "b"
    write_outputs(res, a)
    write_outputs(res, b)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert {str(f) for f in files} >= {"report.md", RESULTS_FILE, "sweep_heatmap.png"}
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


# ---- End to end on the in-process chain ----


def _tiny_config(**kw) -> SimConfig:
    """8 traders, all on ETH, mostly long; 20 hourly rows of Black Thursday (03-12 00:00 to
    19:00 UTC, ETH -29% with the 20.9% hour); two sweep points: insurance 10,000 and 0."""
    cfg = SimConfig(
        seed=7,
        population=PopulationParams(
            traders=8, lp_deposit_usd=1_000_000.0, long_share=0.8, market_weights=(1.0, 0.0)
        ),
        crashes=(CrashSpec(BLACK_THURSDAY, skip=47, rows=20),),
        sweep=Sweep(SweepPoint(500, 100, 10_000.0, 0), (), (), (0.0, 10_000.0), ()),
        first_index=3_100,
    )
    return replace(cfg, **kw)


def _run(project, accounts, tmp_path, name, cfg, check=None):
    ledgers = {}

    def on_scenario(result, sim):
        ch = sim.system.clearinghouse
        first, last = result.blocks
        ledgers[result.point] = rebuild(fetch_events(ch, start_block=first, stop_block=last))
        if check is not None:
            check(result, sim)

    res = run_simulation(
        project, cfg, deployer=accounts[0], keeper=accounts[5], on_scenario=on_scenario
    )
    out = tmp_path / name
    write_outputs(res, out)
    return res, ledgers, out


@pytest.mark.integration
def test_simulate__tiny_run__report_matches_chain_events_and_is_reproducible(
    project, accounts, tmp_path
):
    audits = []

    def audit(result, sim):
        s = sim.system
        report = run_audit(s.clearinghouse, s.token, s.vault, s.market_ids, s.start_block)
        audits.append(report.differences)
        # The mirror the screen runs on, moved only by events, equals the chain.
        fresh = [replace(a) for a in sim.accounts]
        sim.read_accounts(fresh)
        assert fresh == sim.accounts

    res, ledgers, out = _run(project, accounts, tmp_path, "a", _tiny_config(), audit)
    assert audits == [[], []]  # every balance rebuilt from events equals the chain's

    data = json.loads((out / RESULTS_FILE).read_text())
    report = (out / "report.md").read_text()
    assert len(data["scenarios"]) == 2
    by_ins = {s["point"]["insurance_usd"]: s for s in data["scenarios"]}
    for point, ledger in ledgers.items():
        s = by_ins[point.insurance_usd]
        assert s["verified"]
        assert s["liquidations"] == ledger.counts["Liquidated"]
        assert s["keeper_rewards"] == ledger.keeper_rewards_total
        assert s["bad_debt"] == ledger.bad_debt_total
        assert s["socialised"] == ledger.socialised_total
        assert sum(e["socialised"] for e in s["liquidation_events"]) == ledger.socialised_total
        # The markdown row carries the same figures.
        row = next(
            line
            for line in report.splitlines()
            if line.startswith("| ETH 1h 2020-03-12 binance |")
            and f"ins {point.insurance_usd:,.0f} /" in line
        )
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[3] == f"{ledger.counts['Liquidated']} ({s['full']})"
        assert cells[5] == f"{ledger.keeper_rewards_total / USDC:,.2f}"
        assert cells[8] == f"{ledger.bad_debt_total / USDC:,.2f}"
        assert cells[9] == f"{ledger.socialised_total / USDC:,.2f}"

    # The crash makes the run interesting: liquidations, bad debt, and without insurance a
    # socialised loss, so the insurance threshold is the 10,000 fund.
    no_fund, funded = by_ins[0.0], by_ins[10_000.0]
    assert funded["liquidations"] > 0 and funded["bad_debt"] > 0
    assert funded["socialised"] == 0 < no_fund["socialised"]
    assert data["thresholds"][BLACK_THURSDAY]["insurance_usd"] == 10_000.0
    assert "| 10,000 USD |" in report

    # Same seed, same report: a second run on a fresh deployment writes the same bytes.
    _, _, again = _run(project, accounts, tmp_path, "b", _tiny_config())
    for f in ("report.md", RESULTS_FILE, "sweep_heatmap.png", f"plots/{BLACK_THURSDAY}.png"):
        assert (out / f).read_bytes() == (again / f).read_bytes(), f

    # Posting every row and reading every account at every row gives the same figures.
    full, _, _ = _run(project, accounts, tmp_path, "c", _tiny_config(screen=False))
    for quick_run, slow_run in zip(res.scenarios, full.scenarios, strict=True):
        a, b = quick_run.summary(), slow_run.summary()
        assert slow_run.onchain_steps == slow_run.rows > a["onchain_steps"]
        a.pop("onchain_steps"), b.pop("onchain_steps")
        assert a == b
        assert quick_run.liquidations == slow_run.liquidations


@pytest.mark.integration
def test_simulate__pull_beside_a_lagging_push__signed_prices_liquidate_first(
    project, accounts, tmp_path
):
    # The push feed lands every answer two hourly rows late (a congested chain); on signed
    # prices the keeper brings each row's price, and the verifier refuses a report farther
    # than 10% from the (fresh, on chain) push answer.
    lagging = OracleModel("pull", deviation_bps=50, heartbeat_s=3_600, delay_rows=2)
    cfg = _tiny_config(
        sweep=Sweep(SweepPoint(500, 100, 10_000.0, 0), (), (), (), (0,)), oracle=lagging
    )
    res, _, out = _run(project, accounts, tmp_path, "pull", cfg)
    ((path, push, pull),) = res.compared()
    assert push.oracle == "push" and pull.oracle == "pull"
    assert push.verified and pull.verified
    assert pull.signed_updates > 0 and push.signed_updates == 0
    assert pull.signed_refused > 0  # the 20.9% hour, two rows ahead of the push answer
    assert pull.signed_updates + pull.signed_refused <= pull.onchain_steps
    # On the push feed every liquidation is judged at the lagging answer; on signed prices at
    # the row's own price unless the report was refused.
    assert push.n_liquidations > 0 and pull.n_liquidations > 0
    for r in push.liquidations:
        assert r.price_usd == pytest.approx(push.push_price[r.step])
    assert any(r.price_usd != pull.push_price[r.step] for r in pull.liquidations)
    assert min(r.step for r in pull.liquidations) <= min(r.step for r in push.liquidations)
    assert push.push_price != push.price  # the lag is real
    report = (out / "report.md").read_text()
    assert "## Push feed against signed prices" in report
    assert f"| {pull.signed_updates} ({pull.signed_refused}) |" in report
    assert res.summaries()[0].base is pull  # thresholds are the sweep's (signed)


def test_quick_config__crash_file__resolves():
    (spec,) = quick_config().crashes
    assert resolve_scenario(spec.name).name == BLACK_THURSDAY


def test_simulate__latency_and_impact__batches_land_later_and_cascades_counted(project, accounts):
    cfg = _tiny_config(
        sweep=Sweep(SweepPoint(500, 100, 10_000.0, 1), (), (), (), ()),
        impact=ImpactModel(k=1.0, depth_usd=200_000.0),
        first_index=3_200,
    )
    res = run_simulation(project, cfg, deployer=accounts[0], keeper=accounts[5])
    (r,) = res.scenarios
    assert r.verified and r.n_liquidations > 0
    last = r.rows - 1
    assert all(x.step == min(x.observed + 1, last) for x in r.liquidations)
    assert r.planned == r.n_liquidations + r.healthy_at_landing
    # Long liquidations sold into the market: the oracle path ends below the file's.
    assert r.price[-1] < r.raw_price[-1]
    assert r.price[0] == r.raw_price[0]
    assert r.induced >= 1 and r.cascade_depth >= 1
    assert r.cascade_depth == max(x.generation for x in r.liquidations)


@pytest.mark.integration
def test_simulate__funding_on_a_long_book__longs_pay_and_the_chain_agrees(
    project, accounts, tmp_path
):
    # The tiny book is 80% long on ETH until the crash liquidates most longs; with the clock
    # on the file's hours the rate drifts with the skew either way. What each side pays or
    # receives nets to the pool's side, and the liquidations' part is rebuilt from the
    # window's events (FundingSettled).
    sweep = Sweep(SweepPoint(500, 100, 10_000.0, 0), (), (), (), ())
    model = FundingModel(scale_usd=5_000_000.0, velocity_bps=3_000)
    off, _, _ = _run(project, accounts, tmp_path, "off", _tiny_config(sweep=sweep, realtime=True))
    on, ledgers, _ = _run(
        project, accounts, tmp_path, "on", _tiny_config(sweep=sweep, funding=model)
    )
    (without,), (with_,) = off.scenarios, on.scenarios
    assert (without.funding, with_.funding) == ("off", "on")
    assert without.onchain_steps == without.rows == with_.onchain_steps  # every row posted
    assert with_.verified and without.verified
    assert with_.funding_rate_end != 0 and with_.funding_longs != 0 != with_.funding_shorts
    (ledger,) = ledgers.values()
    settled = sum(r.funding for r in with_.liquidations)
    assert settled == sum(ledger.funding.values()) != 0
    rows = pair_rows(off.scenarios, on.scenarios, {BLACK_THURSDAY: 19.0})
    assert rows[0].pool == -(with_.funding_longs + with_.funding_shorts)
    assert rows[0].bad_debt == (without.bad_debt, with_.bad_debt)
    assert "| ETH 1h 2020-03-12 binance | 19 |" in render_markdown(rows, "# t")


def test_funding_model__skew_scale__worth_the_usd_at_the_price():
    assert FundingModel(50_000_000.0).skew_scale_units(2_000.0) == 25_000
    assert FundingModel(1.0).skew_scale_units(60_000.0) == 1  # never zero (the engine refuses)
    assert replace(SimConfig(), realtime=True).clocked and SimConfig(funding=FundingModel()).clocked
    assert not SimConfig().clocked
