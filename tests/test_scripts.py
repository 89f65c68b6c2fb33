"""The package functions behind `ape run deploy|seed|replay|status|audit`.

Unit tests need no chain (crash data, population, audit rebuild, records); the integration test
deploys, seeds, replays a real crash and audits on whatever network the run uses.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from support.constants import HEARTBEAT

from margin_maintenance.audit import (
    BALANCE_ITEM,
    Difference,
    Ledger,
    OnChainState,
    compare,
    rebuild,
    run_audit,
)
from margin_maintenance.crashdata import (
    REPO_ROOT,
    CrashDataError,
    PricePoint,
    compress,
    data_dir,
    list_scenarios,
    load_prices,
    max_drawdown,
    parse_scenario_name,
    plan_replay,
    rescale,
    resolve_scenario,
)
from margin_maintenance.deployment import (
    CollateralRecord,
    Deployment,
    DeploymentError,
    LPRecord,
    MarketRecord,
    TraderRecord,
    TradersFile,
    check_chain,
    deployment_from_system,
    load_deployment,
    load_traders,
    network_slug,
    save_deployment,
    save_traders,
    traders_for,
    with_chain_market_ids,
)
from margin_maintenance.events import accounts_in, fetch_events
from margin_maintenance.population import (
    PopulationParams,
    TraderSpec,
    acceptable_price,
    generate_population,
    seed_population,
    size_wad,
    summarize,
    token_amount,
)
from margin_maintenance.replay import current_answer, needs_refresh, run_replay
from margin_maintenance.status import AccountRow, batched, rank_by_risk, read_margin_status
from margin_maintenance.system import WAD, SystemParams, deploy_system

BLACK_THURSDAY = "eth_usdt_binance_1h_2020-03-12_black_thursday"
MARKETS = ("ETH-USD", "BTC-USD")
ALICE = "0x" + "a1" * 20
BOB = "0x" + "b0" * 20
KEEPER = "0x" + "c3" * 20
LP = "0x" + "d4" * 20


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ---- Crash data ----


def test_load_prices__black_thursday_file__close_series_in_order():
    points = load_prices(resolve_scenario(BLACK_THURSDAY).path)
    assert len(points) == 120
    assert points[0] == PricePoint(1583802000, 203.38)
    assert points[-1] == PricePoint(1584230400, 122.54)
    gaps = {b.timestamp_s - a.timestamp_s for a, b in zip(points, points[1:], strict=False)}
    assert gaps == {3_600}
    assert min(p.price_usd for p in points) == 96.62  # SOURCES.md: min close
    assert max_drawdown(points) == pytest.approx(0.5297, abs=1e-4)  # SOURCES.md: 52.97%


def test_list_scenarios__data_folder__every_csv_described():
    scenarios = list_scenarios()
    names = {s.name for s in scenarios}
    assert BLACK_THURSDAY in names
    assert len(scenarios) == len(list(data_dir().glob("*.csv")))
    bt = next(s for s in scenarios if s.name == BLACK_THURSDAY)
    assert (bt.base, bt.quote, bt.venue, bt.interval) == ("ETH", "USDT", "binance", "1h")
    assert (bt.date, bt.label, bt.symbol) == ("2020-03-12", "black_thursday", "ETH-USD")


def test_parse_scenario_name__no_venue__venue_empty():
    s = parse_scenario_name(Path("eth_usdt_15m_2024-08-05_yen_unwind.csv"))
    assert (s.base, s.venue, s.interval, s.date, s.label) == (
        "ETH",
        "",
        "15m",
        "2024-08-05",
        "yen_unwind",
    )
    perp = parse_scenario_name(Path("btc_usdt_binance_perp_5m_2025-10-10_tariff_liq.csv"))
    assert (perp.venue, perp.interval, perp.symbol) == ("binance_perp", "5m", "BTC-USD")


def test_resolve_scenario__substring__unique_match_or_error(tmp_path):
    for name in ("eth_usdt_binance_1h_2020-03-12_x", "btc_usdt_binance_1h_2020-03-12_x"):
        write_csv(tmp_path / f"{name}.csv", "timestamp,price\n1,2\n")
    assert resolve_scenario("eth_usdt", tmp_path).base == "ETH"
    assert resolve_scenario("btc_usdt_binance_1h_2020-03-12_x.csv", tmp_path).base == "BTC"
    with pytest.raises(CrashDataError, match="ambiguous"):
        resolve_scenario("2020-03-12", tmp_path)
    with pytest.raises(CrashDataError, match="no crash file"):
        resolve_scenario("luna", tmp_path)


def test_data_dir__env_override__used(tmp_path, monkeypatch):
    monkeypatch.setenv("MM_DATA_DIR", str(tmp_path))
    assert data_dir() == tmp_path
    monkeypatch.delenv("MM_DATA_DIR")
    assert data_dir() == REPO_ROOT / "data" / "crashes"


def test_data_dir__fresh_clone__every_shipped_file_listed_in_sources():
    """The crash data ships with the repository, so a lone clone replays it; SOURCES.md names
    every file (where it came from, its window and its drawdown)."""
    folder = data_dir()
    assert folder == REPO_ROOT / "data" / "crashes"
    sources = (folder / "SOURCES.md").read_text()
    files = sorted(folder.glob("*.csv"))
    assert len(files) == 21
    for f in files:
        assert f.name in sources or f.stem in sources, f"{f.name} not described in SOURCES.md"


def test_load_prices__close_column_alias__accepted(tmp_path):
    p = write_csv(tmp_path / "x.csv", "time,open,close\n100,1,2.5\n160,2.5,2.0\n")
    assert load_prices(p) == [PricePoint(100, 2.5), PricePoint(160, 2.0)]


@pytest.mark.parametrize(
    "body, match",
    [
        ("timestamp,price\n100,1\n100,2\n", "ascend"),
        ("timestamp,price\n100,1\n90,2\n", "ascend"),
        ("timestamp,price\n100,0\n", "positive"),
        ("timestamp,price\n100,nan\n", "positive"),
        ("timestamp,price\n100,abc\n", "bad row"),
        ("timestamp,volume\n100,1\n", "no column"),
        ("timestamp,price\n", "no rows"),
        ("", "empty"),
    ],
)
def test_load_prices__malformed__raises(tmp_path, body, match):
    with pytest.raises(CrashDataError, match=match):
        load_prices(write_csv(tmp_path / "bad.csv", body))


def test_compress__factor_60__hours_become_minutes():
    pts = [PricePoint(1_000, 1.0), PricePoint(4_600, 2.0), PricePoint(8_200, 3.0)]
    assert compress(pts, 60) == [
        PricePoint(1_000, 1.0),
        PricePoint(1_060, 2.0),
        PricePoint(1_120, 3.0),
    ]
    assert compress(pts, 1) == pts
    with pytest.raises(ValueError):
        compress(pts, 0)


def test_rescale__new_level__percentage_moves_kept():
    pts = [PricePoint(0, 200.0), PricePoint(1, 100.0), PricePoint(2, 250.0)]
    out = rescale(pts, 2_000.0)
    assert [p.price_usd for p in out] == pytest.approx([2_000.0, 1_000.0, 2_500.0])


def test_plan_replay__skip_and_max_steps__pinned_to_current_price():
    pts = [PricePoint(3_600 * i, p) for i, p in enumerate([100.0, 90.0, 80.0, 60.0, 120.0])]
    steps = plan_replay(pts, 2_000 * 10**8, factor=60, skip=1, max_steps=3, decimals=8)
    assert [s.row for s in steps] == [1, 2, 3]
    assert [s.offset_s for s in steps] == [0, 60, 120]
    assert steps[0].answer == 2_000 * 10**8  # first replayed row = the market's price now
    assert steps[1].answer == round(2_000 * 10**8 * 80 / 90)
    assert steps[2].price_usd == pytest.approx(2_000 * 60 / 90)
    assert plan_replay(pts, 10**8, skip=5) == []


def test_plan_replay__huge_compression__steps_stay_one_second_apart():
    pts = [PricePoint(i, 1.0 + i) for i in range(5)]
    offsets = [s.offset_s for s in plan_replay(pts, 10**8, factor=1_000)]
    assert offsets == [0, 1, 2, 3, 4]


def test_plan_replay__bad_arguments__raise():
    pts = [PricePoint(0, 1.0)]
    with pytest.raises(ValueError):
        plan_replay(pts, 0)
    with pytest.raises(ValueError):
        plan_replay(pts, 1, skip=-1)


def test_needs_refresh__half_heartbeat__boundary():
    assert not needs_refresh(now=1_800, updated_at=0, max_staleness=3_600)
    assert needs_refresh(now=1_801, updated_at=0, max_staleness=3_600)


# ---- Population ----


def test_generate_population__same_seed__same_population():
    a = generate_population(7, MARKETS, PopulationParams(traders=300))
    b = generate_population(7, MARKETS, PopulationParams(traders=300))
    assert a == b
    assert a.traders[:5] == b.traders[:5]
    c = generate_population(8, MARKETS, PopulationParams(traders=300))
    assert c.traders != a.traders


def test_generate_population__defaults__distributions_within_bounds():
    pop = generate_population(7, MARKETS, PopulationParams(traders=2_000))
    s = summarize(pop)
    assert s.traders == 2_000 and pop.lp_deposits_usd == (2_000_000.0,)
    assert all(1.5 <= t.leverage <= 9.5 for t in pop.traders)
    assert all(500 <= t.collateral_usd <= 50_000 for t in pop.traders)
    assert 0.66 < s.longs / s.traders < 0.74  # 70% long
    assert s.mean_leverage > 5.5  # skewed towards high leverage (midpoint is 5.5)
    assert sorted(t.collateral_usd for t in pop.traders)[1_000] == pytest.approx(3_000, rel=0.15)
    assert all(n > 800 for n in s.per_market.values())  # spread across both markets


def test_generate_population__market_weights__one_market_only():
    pop = generate_population(1, MARKETS, PopulationParams(traders=50, market_weights=(1, 0)))
    assert {t.market for t in pop.traders} == {"ETH-USD"}
    with pytest.raises(ValueError):
        generate_population(1, MARKETS, PopulationParams(market_weights=(1,)))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"long_share": 1.5},
        {"leverage_min": 0.5},
        {"leverage_min": 5, "leverage_max": 4},
        {"collateral_min_usd": 0},
        {"traders": -1},
    ],
)
def test_population_params__out_of_range__raise(kwargs):
    with pytest.raises(ValueError):
        PopulationParams(**kwargs)


def test_size_wad__leverage_and_side__notional_over_price():
    long_ = TraderSpec(0, "ETH-USD", 1, 5.0, 1_000.0)
    short = TraderSpec(1, "ETH-USD", -1, 5.0, 1_000.0)
    assert size_wad(long_, 2_000 * WAD) == 25 * WAD // 10  # 5,000 USD / 2,000 = 2.5 ETH
    assert size_wad(short, 2_000 * WAD) == -(25 * WAD // 10)
    assert size_wad(TraderSpec(2, "BTC-USD", 1, 3.0, 1_000.0), 3 * WAD) == 1_000 * WAD
    assert acceptable_price(1, 2_000 * WAD, 100) == 2_020 * WAD
    assert acceptable_price(-1, 2_000 * WAD, 100) == 1_980 * WAD
    assert token_amount(1_234.56, 6) == 1_234_560_000
    with pytest.raises(ValueError):
        size_wad(long_, 0)


# ---- Audit rebuild ----


def synthetic_events() -> list[dict]:
    """A pool, two traders, a profitable close, a liquidation with bad debt (block order)."""
    return [
        {
            "event": "LiquidityAdded",
            "provider": LP,
            "assets": 1_000_000,
            "shares": 1_000_000_000_000,
        },
        {"event": "InsuranceFunded", "funder": LP, "amount": 310},
        {"event": "Deposited", "account": ALICE, "amount": 10_000},
        {"event": "Deposited", "account": BOB, "amount": 2_000},
        {
            "event": "PositionChanged",
            "account": ALICE,
            "market_id": 0,
            "size_delta": 5 * WAD,
            "new_size": 5 * WAD,
            "price": 2_000 * WAD,
            "realized_pnl": 0,
            "fee": 5,
        },
        {
            "event": "PositionChanged",
            "account": BOB,
            "market_id": 1,
            "size_delta": -WAD,
            "new_size": -WAD,
            "price": 60_000 * WAD,
            "realized_pnl": 0,
            "fee": 30,
        },
        {
            "event": "PositionChanged",
            "account": ALICE,
            "market_id": 0,
            "size_delta": -5 * WAD,
            "new_size": 0,
            "price": 2_100 * WAD,
            "realized_pnl": 500,
            "fee": 5,
        },
        {"event": "ProfitHaircut", "account": ALICE, "market_id": 0, "owed": 600, "paid": 500},
        {"event": "Withdrawn", "account": ALICE, "amount": 490},
        # Bob's short is liquidated in full: it loses 2,300 and ends 330 short, so it pays no
        # fee; the insurance fund pays the keeper's minimum reward (10) and covers 300 of the
        # bad debt, the pool the last 30.
        {
            "event": "PositionChanged",
            "account": BOB,
            "market_id": 1,
            "size_delta": WAD,
            "new_size": 0,
            "price": 62_300 * WAD,
            "realized_pnl": -2_300,
            "fee": 0,
        },
        {
            "event": "BadDebtSettled",
            "account": BOB,
            "bad_debt": 330,
            "insurance_covered": 300,
            "socialised": 30,
            "uncovered": 0,
        },
        {
            "event": "Liquidated",
            "account": BOB,
            "liquidator": KEEPER,
            "fraction": WAD,
            "closed_notional": 62_300,
            "fee": 0,
            "keeper_reward": 10,
            "insurance_delta": -10,
            "full": True,
        },
        {"event": "LiquidityRemoved", "provider": LP, "assets": 1_000, "shares": 1_000_000_000},
    ]


def expected_state() -> OnChainState:
    return OnChainState(
        collateral={ALICE: 10_000, BOB: 0, KEEPER: 10},
        pool_assets=1_000_000 + 35 - 495 + 2_300 - 30 - 1_000,
        insurance_fund=310 - 10 - 300,
        total_debt=0,
        token_balance=1_000_000 + 310 + 10_000 + 2_000 - 490 - 1_000,
        lp_supply=999_000_000_000,
        positions={(ALICE, 0): 0, (BOB, 1): 0},
        open_interest={0: (0, 0), 1: (0, 0)},
    )


def test_rebuild__synthetic_events__balances_and_conservation():
    led = rebuild(synthetic_events())
    assert led.collateral == {ALICE: 10_000, BOB: 0, KEEPER: 10}
    assert led.pool_assets == 1_000_810
    assert led.insurance_fund == 0
    assert led.lp_shares == 999_000_000_000
    assert (led.bad_debt_total, led.socialised_total, led.keeper_rewards_total) == (330, 30, 10)
    assert led.haircut_total == 100
    assert led.counts["PositionChanged"] == 4
    assert led.total_collateral + led.pool_assets + led.insurance_fund == 1_010_820
    assert compare(led, expected_state()) == []


def test_rebuild__block_numbers__applied_in_chain_order():
    evs = [
        {
            "event": "PositionChanged",
            "account": ALICE,
            "market_id": 0,
            "new_size": 0,
            "price": 2_000 * WAD,
            "realized_pnl": 0,
            "fee": 0,
            "block_number": 5,
            "log_index": 0,
        },
        {
            "event": "PositionChanged",
            "account": ALICE,
            "market_id": 0,
            "new_size": WAD,
            "price": 2_000 * WAD,
            "realized_pnl": 0,
            "fee": 0,
            "block_number": 4,
            "log_index": 3,
        },
    ]
    assert rebuild(evs).positions == {(ALICE, 0): 0}  # the later block wins
    assert rebuild(evs).position(ALICE, 0) == (0, 0)  # flat: no entry price left
    assert rebuild(evs).open_interest() == {0: (0, 0)}


def test_compare__tampered_collateral__one_difference():
    state = expected_state()
    tampered = OnChainState(**{**state.__dict__, "collateral": {**state.collateral, BOB: 7}})
    diffs = compare(rebuild(synthetic_events()), tampered)
    # Bob's balance, and the balance sheet no longer adds up to the token balance.
    assert diffs[0] == Difference(f"collateral[{BOB}]", 0, 7)
    assert diffs[0].delta == 7
    assert [d.item for d in diffs[1:]] == [BALANCE_ITEM]


@pytest.mark.parametrize(
    "field, value, item",
    [
        ("pool_assets", 1, "pool_assets"),
        ("insurance_fund", 1, "insurance_fund"),
        ("total_debt", 5, "total_debt"),
        ("lp_supply", 1, "lp_token.totalSupply"),
        ("token_balance", 1_010_821, BALANCE_ITEM),
    ],
)
def test_compare__tampered_item__detected(field, value, item):
    state = OnChainState(**{**expected_state().__dict__, field: value})
    assert item in [d.item for d in compare(rebuild(synthetic_events()), state)]


def test_compare__dropped_event__detected():
    evs = [e for e in synthetic_events() if e["event"] != "Withdrawn"]
    diffs = compare(rebuild(evs), expected_state())
    assert [d.item for d in diffs] == [f"collateral[{ALICE}]"]


def test_compare__open_position_and_debt__checked():
    evs = [
        {"event": "Deposited", "account": ALICE, "amount": 100},
        {
            "event": "PositionChanged",
            "account": ALICE,
            "market_id": 0,
            "new_size": -3 * WAD,
            "price": 2_050 * WAD,
            "realized_pnl": -150,
            "fee": 0,
        },
    ]
    led = rebuild(evs)
    assert led.total_debt == 50 and led.open_interest() == {0: (0, 3 * WAD)}
    assert led.position(ALICE, 0) == (-3 * WAD, 2_050 * WAD)  # re-entered at the fill price
    assert led.position(ALICE, 1) == (0, 0)
    good = OnChainState(
        {ALICE: -50}, 150, 0, 50, 100, None, {(ALICE, 0): -3 * WAD}, {0: (0, 3 * WAD)}
    )
    assert compare(led, good) == []
    bad = OnChainState(
        {ALICE: -50}, 150, 0, 50, 100, None, {(ALICE, 0): -2 * WAD}, {0: (0, 2 * WAD)}
    )
    assert [d.item for d in compare(led, bad)] == [
        f"position[{ALICE}][0]",
        "open_interest_short[0]",
    ]


def test_accounts_in__events__traders_and_liquidators_once():
    assert accounts_in(synthetic_events()) == [ALICE, BOB, KEEPER]


def test_ledger__empty__zero():
    led = Ledger()
    assert (led.total_collateral, led.total_debt, led.open_interest()) == (0, 0, {})


# ---- Status helpers ----


def test_batched__512__splits():
    assert [len(b) for b in batched(list(range(1_100)), 512)] == [512, 512, 76]
    with pytest.raises(ValueError):
        list(batched([1], 0))


def test_rank_by_risk__mixed__liquidatable_first_flat_last():
    flat = AccountRow("0x3", 100, 0, 0, False)
    risky = AccountRow("0x2", 110, 100, 200, False)
    liq = AccountRow("0x1", 90, 100, 200, True)
    safe = AccountRow("0x4", 300, 100, 200, False)
    assert rank_by_risk([flat, safe, risky, liq]) == [liq, risky, safe, flat]
    assert math.isinf(flat.margin_ratio) and risky.margin_ratio == pytest.approx(1.1)


# ---- Deployment records ----


def sample_deployment(network: str = "local") -> Deployment:
    return Deployment(
        network=network,
        chain_id=31337,
        start_block=3,
        clearinghouse="0x" + "11" * 20,
        lp_token="0x" + "22" * 20,
        collateral=CollateralRecord("0x" + "33" * 20, 6),
        markets=(
            MarketRecord(0, "ETH-USD", "0x" + "44" * 20, "0x" + "55" * 20),
            MarketRecord(1, "BTC-USD", "0x" + "66" * 20, "0x" + "77" * 20),
        ),
        deployer="0x" + "88" * 20,
        guardian="0x" + "99" * 20,
        deployed_at=1_764_000_000,
    )


def test_save_deployment__round_trip__same_record(tmp_path):
    dep = sample_deployment()
    path = save_deployment(dep, tmp_path)
    assert path == tmp_path / "local.json"
    data = json.loads(path.read_text())
    assert {
        "chain_id",
        "start_block",
        "clearinghouse",
        "lp_token",
        "collateral",
        "markets",
        "deployer",
    } <= set(data)
    assert data["collateral"] == {"address": "0x" + "33" * 20, "decimals": 6}
    assert data["markets"][1] == {
        "id": 1,
        "symbol": "BTC-USD",
        "aggregator": "0x" + "66" * 20,
        "feed": "0x" + "77" * 20,
    }
    assert load_deployment("local", tmp_path) == dep
    assert dep.market("eth").id == 0 and dep.market(1).symbol == "BTC-USD"
    assert dep.unit == 10**6
    with pytest.raises(DeploymentError, match="no market"):
        dep.market("SOL-USD")


def test_load_deployment__missing_or_malformed__raises(tmp_path, monkeypatch):
    monkeypatch.setenv("MM_DEPLOYMENTS_DIR", str(tmp_path))
    with pytest.raises(DeploymentError, match="ape run deploy"):
        load_deployment("local")
    (tmp_path / "local.json").write_text('{"chain_id": 1}')
    with pytest.raises(DeploymentError, match="malformed"):
        load_deployment("local")
    (tmp_path / "local.json").write_text("[")
    with pytest.raises(DeploymentError, match="not valid JSON"):
        load_deployment("local")


def test_network_slug__ecosystems__file_names():
    assert network_slug("ethereum", "local") == "local"
    assert network_slug("ethereum", "sepolia") == "sepolia"
    assert network_slug("arbitrum", "local") == "arbitrum-local"


def test_check_chain__wrong_chain_or_no_code__raises():
    dep = sample_deployment()
    check_chain(dep, 31337, lambda a: b"\x60")
    with pytest.raises(DeploymentError, match="chain 31337"):
        check_chain(dep, 1, lambda a: b"\x60")
    with pytest.raises(DeploymentError, match="no contract"):
        check_chain(dep, 31337, lambda a: b"")


def test_save_traders__round_trip__and_extension(tmp_path):
    dep = sample_deployment()
    tf = TradersFile(dep.network, dep.chain_id, dep.clearinghouse, deployed_at=dep.deployed_at)
    assert tf.next_hd_index is None
    tf = tf.extended(
        [TraderRecord(ALICE, 1_001, 7, "ETH-USD", "long", 6.5, 1_000.0)],
        [LPRecord(LP, 1_000, 7, 2_000_000.0)],
    )
    save_traders(tf, tmp_path)
    assert (tmp_path / "local-traders.json").is_file()
    assert load_traders("local", tmp_path) == tf
    assert (
        traders_for(dep, tmp_path) == tf and tf.addresses == [ALICE] and tf.next_hd_index == 1_002
    )
    other = Deployment(**{**dep.__dict__, "clearinghouse": "0x" + "ee" * 20})
    assert traders_for(other, tmp_path).traders == ()  # an earlier deployment's traders
    restarted = Deployment(**{**dep.__dict__, "deployed_at": dep.deployed_at + 60})
    assert traders_for(restarted, tmp_path).traders == ()  # same addresses, new chain
    assert traders_for(dep, tmp_path / "nowhere").traders == ()


# ---- Integration: deploy, seed, replay a real crash, audit ----


@pytest.mark.integration
def test_deploy_seed_replay_audit__black_thursday__books_balance(
    project, chain, deployer, guardian, liquidator, tmp_path
):
    system = with_chain_market_ids(deploy_system(project, deployer, guardian, SystemParams()))
    assert system.market_ids == [0, 1]
    dep = deployment_from_system(system, "local", chain.chain_id, deployer, guardian)
    save_deployment(dep, tmp_path)
    assert load_deployment("local", tmp_path) == dep
    check_chain(dep, chain.chain_id, chain.provider.get_code)

    pop = generate_population(
        7, system.symbols, PopulationParams(traders=5, lp_deposit_usd=1_000_000, long_share=0.8)
    )
    result = seed_population(system, deployer, pop, first_index=2_000, insurance_usd=10_000)
    assert result.failed == []
    assert [t.hd_index for t in result.traders] == [2_001, 2_002, 2_003, 2_004, 2_005]
    traders = [t.address for t in result.traders]
    rows = read_margin_status(system.clearinghouse, traders)
    assert all(r.has_position and not r.liquidatable for r in rows)

    # 03-12 00:00 -> 19:00 UTC: ETH 194.61 -> 137.23, the 20.9% hourly drop at 11:00.
    eth = system.symbols.index("ETH-USD")
    points = load_prices(resolve_scenario(BLACK_THURSDAY).path)
    start_answer = current_answer(system, eth)
    steps = plan_replay(points, start_answer, factor=60, skip=47, max_steps=20)
    t_before = chain.blocks.head.timestamp
    replayed = run_replay(system, eth, steps, deployer)
    assert replayed.steps == 20
    assert current_answer(system, eth) == steps[-1].answer
    assert steps[-1].answer / start_answer == pytest.approx(137.23 / 194.61, rel=1e-6)
    assert replayed.last_block_time - replayed.first_block_time >= steps[-1].offset_s
    assert chain.blocks.head.timestamp >= t_before + 19 * 60
    assert system.feeds[eth].latest_price() == steps[-1].answer * 10**10  # fresh, not stale

    ch = system.clearinghouse
    victims = [r.account for r in read_margin_status(ch, traders) if r.liquidatable]
    assert victims  # seed 7 has three ETH longs at 4.5x-7.2x; ETH fell 29%
    ch.liquidate_many(victims, sender=liquidator)
    assert not any(r.liquidatable for r in read_margin_status(ch, traders))

    report = run_audit(ch, system.token, system.vault, system.market_ids, dep.start_block)
    assert report.differences == []
    assert report.ledger.counts["Deposited"] == 5
    assert report.ledger.counts["LiquidityAdded"] == 1
    assert report.ledger.counts["InsuranceFunded"] == 1
    assert report.ledger.keeper_rewards_total > 0  # the fund pays keepers of bad-debt accounts
    assert ch.collateral(liquidator) == report.ledger.keeper_rewards_total
    assert report.ledger.counts["Liquidated"] == len(victims)
    assert set(traders) <= set(accounts_in(fetch_events(ch, start_block=dep.start_block)))


def test_lagged_answer__newest_at_or_before():
    from margin_maintenance.replay import lagged_answer

    history = [(100, 1), (160, 2), (220, 3)]
    assert lagged_answer(history, 99) is None
    assert lagged_answer(history, 100) == (100, 1)
    assert lagged_answer(history, 219) == (160, 2)
    assert lagged_answer(history, 10_000) == (220, 3)


@pytest.mark.integration
def test_replay_signed__push_lags_a_heartbeat__service_prices_liquidate(
    project, chain, deployer, guardian, liquidator
):
    """The demo's second crash: each price offered to the attestation service, the push feed
    a heartbeat and a minute behind (stale all along: no reference), the service's blob
    liquidates on chain what the push feed cannot see."""
    from margin_maintenance.attest import decode_updates, feed_id
    from margin_maintenance.attest.service import (
        Attestor,
        AttestServer,
        ManualSource,
        fetch_update,
        post_price,
    )

    system = with_chain_market_ids(
        deploy_system(project, deployer, guardian, SystemParams(signed_prices=True))
    )
    pop = generate_population(
        7, system.symbols, PopulationParams(traders=5, lp_deposit_usd=1_000_000, long_share=0.8)
    )
    result = seed_population(system, deployer, pop, first_index=3_000, insurance_usd=10_000)
    traders = [t.address for t in result.traders]
    eth = system.symbols.index("ETH-USD")
    att = Attestor(system.signer_set, chain.chain_id, system.verifier.address, system.symbols)
    server = AttestServer(att, ManualSource()).start()
    try:
        steps = plan_replay(
            load_prices(resolve_scenario(BLACK_THURSDAY).path),
            current_answer(system, eth),
            factor=60,
            skip=47,
            max_steps=20,
        )
        lag = HEARTBEAT + 60

        def attest(step, at):
            post_price(server.url, "ETH-USD", str(step.answer / 10**8), at)

        replayed = run_replay(system, eth, steps, deployer, attest=attest, push_lag_s=lag)
        head = chain.blocks.head.timestamp
        agg = system.aggregators[eth]
        assert head - agg.latestTimestamp() >= lag > HEARTBEAT  # stale all along
        assert agg.latestAnswer() == steps[0].answer  # the pre-crash answer, a lag old
        blob = fetch_update(server.url, [feed_id("ETH-USD")])
    finally:
        server.stop()
    assert replayed.last_block_time == head
    [(report, sigs)] = decode_updates(blob)
    assert report.publish_time == head and len(sigs) == 3
    assert report.price == steps[-1].answer * 10**10
    ch = system.clearinghouse
    seen_on_push = {r.account for r in read_margin_status(ch, traders) if r.liquidatable}
    snap = chain.snapshot()  # who the signed price makes liquidatable (py-evm: no override)
    ch.update_prices(blob, sender=liquidator)
    victims = [r.account for r in read_margin_status(ch, traders) if r.liquidatable]
    chain.restore(snap)
    assert len(victims) >= 3 and not seen_on_push  # the seed's three ETH longs; push: none
    tx = ch.liquidate_with_prices(blob, victims, sender=liquidator)
    assert len(tx.decode_logs(ch.Liquidated)) == len(victims)
    assert system.verifier.latest(feed_id("ETH-USD"))[0] == report.price
    assert not any(r.liquidatable for r in read_margin_status(ch, traders))


def test_wait_until_settled__keeper_clears__returns_zero_without_waiting_out():
    from margin_maintenance.replay import wait_until_settled

    counts = iter([3, 2, 0])
    now = [0.0]
    left = wait_until_settled(
        lambda: next(counts),
        10.0,
        poll_s=1.0,
        clock=lambda: now[0],
        sleep=lambda s: now.__setitem__(0, now[0] + s),
    )
    assert left == 0 and now[0] == 2.0


def test_wait_until_settled__keeper_absent__gives_up_at_timeout():
    from margin_maintenance.replay import wait_until_settled

    now = [0.0]
    left = wait_until_settled(
        lambda: 4,
        3.0,
        poll_s=1.0,
        clock=lambda: now[0],
        sleep=lambda s: now.__setitem__(0, now[0] + s),
    )
    assert left == 4 and now[0] == 3.0
