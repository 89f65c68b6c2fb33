"""The tracked plain ABIs in `abi/` match the compiled contracts, and every deployable fits the
EIP-170 code-size limit (the size budget: the engine has little room left, so a change that
grows it shows here first, with the figure)."""

from __future__ import annotations

import json
import subprocess
import sysconfig
from pathlib import Path

import pytest

from margin_maintenance.abi import (
    ABI_DIR,
    EIP170_LIMIT,
    SIZE_BUDGET,
    abi_path,
    contract_abi,
    deployables,
    load_manifest,
    main,
    runtime_sizes,
    stale_files,
    write_abis,
)

# Contracts a bot writer needs on a local network; each must have its plain ABI in abi/.
BOT_FACING = (
    "Clearinghouse",
    "ClearinghouseLens",
    "LPVault",
    "PriceFeed",
    "mocks/MockERC20",
    "mocks/MockAggregator",
)


@pytest.fixture(scope="module")
def manifest(project):
    project.load_contracts()  # compiles if a source changed, then the manifest is current
    return load_manifest()


def test_abi__tracked_files__match_compiled_contracts(manifest):
    stale = stale_files(manifest)
    assert stale == [], f"abi/ is stale: {stale}; run `make abi` and commit abi/"


def test_abi__bot_facing_contracts__plain_abi_lists(manifest):
    for name in BOT_FACING:
        abi = json.loads((ABI_DIR / f"{name}.json").read_text())
        assert isinstance(abi, list) and abi, name
        assert all("type" in entry for entry in abi), name
    ch = {e["name"]: e for e in json.loads((ABI_DIR / "Clearinghouse.json").read_text())
          if e["type"] == "function"}  # fmt: skip
    for view in ("margin_status", "liquidation_preview", "position", "mark_price", "liquidate"):
        assert view in ch
    (preview,) = ch["liquidation_preview"]["outputs"]
    assert [c["name"] for c in preview["components"]] == ["fraction", "reward", "bad_debt"]
    (position,) = ch["position"]["outputs"]
    assert [c["name"] for c in position["components"]] == ["size", "entry_price"]


def test_abi__modules_and_interfaces__no_file(manifest):
    names = set(deployables(manifest))
    assert "margin_math" not in names
    assert "Clearinghouse" in names and "ClearinghouseLens" in names
    assert abi_path("MockERC20", "contracts/mocks/MockERC20.vy") == ABI_DIR / "mocks/MockERC20.json"


def test_abi_main__manifest_of_a_failed_build__refused_and_abi_folder_kept(tmp_path):
    """A failed `ape compile` leaves a manifest with no contract types: writing abi/ from it
    would delete every tracked ABI, so the generator refuses it and touches nothing."""
    empty = tmp_path / "__local__.json"
    empty.write_text(json.dumps({"contractTypes": {}}))
    out = tmp_path / "abi"
    out.mkdir()
    (out / "Clearinghouse.json").write_text("[]\n")
    with pytest.raises(FileNotFoundError, match="holds no compiled contract"):
        load_manifest(empty)
    assert main(["--manifest", str(empty), "--out", str(out)]) == 2
    assert (out / "Clearinghouse.json").read_text() == "[]\n"


def test_write_abis__changed_and_removed_contract__rewritten_and_reported(manifest, tmp_path):
    assert write_abis(manifest, tmp_path)  # a new folder: every file written
    assert stale_files(manifest, tmp_path) == []
    (tmp_path / "Clearinghouse.json").write_text("[]\n")
    (tmp_path / "Gone.json").write_text("[]\n")
    assert stale_files(manifest, tmp_path) == [
        "Clearinghouse.json",
        "Gone.json (removed: no such contract)",
    ]
    write_abis(manifest, tmp_path)
    assert stale_files(manifest, tmp_path) == [] and not (tmp_path / "Gone.json").exists()


def test_size_budget__every_deployable__within_budget_under_eip170(manifest):
    """Every deployable fits the project's budget (1 kB under EIP-170), so a feature that grows
    the engine shows here with the figure before it stops deploying."""
    sizes = runtime_sizes(manifest)
    print(
        "runtime bytes:", {n: f"{s:,} ({SIZE_BUDGET - s:,} under budget)" for n, s in sizes.items()}
    )
    assert SIZE_BUDGET < EIP170_LIMIT
    over = {n: s for n, s in sizes.items() if s > SIZE_BUDGET}
    assert over == {}, f"over the size budget of {SIZE_BUDGET:,} bytes: {over}"
    assert sizes["Clearinghouse"] > 0 and sizes["PriceFeed"] > 0


# ---- The bot-facing interface never changes under a bot's feet ----

SNAPSHOT = Path(__file__).parent / "snapshots" / "IClearinghouse.json"
INTERFACE = Path(__file__).parent.parent / "contracts" / "interfaces" / "IClearinghouse.vyi"


def _interface_abi() -> list[dict]:
    """The ABI of `IClearinghouse.vyi` as Vyper compiles it (functions with their structs,
    events with their fields and indexing), sorted by kind and name."""
    out = subprocess.run(
        ["vyper", "-f", "abi", "-p", str(INTERFACE.parent.parent), str(INTERFACE)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted(json.loads(out), key=lambda e: (e["type"], e.get("name", "")))


def _by_name(abi: list[dict]) -> dict[tuple[str, str], dict]:
    return {(e["type"], e.get("name", "")): e for e in abi}


def test_interface__compiled_iclearinghouse__equals_snapshot():
    """A removed or changed function, struct or event breaks every bot that decodes it (an event
    that gains a field changes its topic): never. An addition is recorded on purpose, by writing
    the new snapshot (`vyper -f abi` of the interface, sorted, into tests/snapshots/)."""
    now, then = _by_name(_interface_abi()), _by_name(json.loads(SNAPSHOT.read_text()))
    removed = sorted(set(then) - set(now))
    changed = sorted(k for k in set(then) & set(now) if then[k] != now[k])
    added = sorted(set(now) - set(then))
    assert removed == [] and changed == [], f"breaking change: removed {removed}, changed {changed}"
    assert added == [], f"new in IClearinghouse: {added}; record them in {SNAPSHOT.name}"


def test_interface__engine_abi__holds_every_interface_entry(manifest):
    # What callers see at the engine's address: its own ABI and its extension's functions.
    engine = _by_name(contract_abi(manifest, "Clearinghouse"))
    for k, entry in _by_name(json.loads(SNAPSHOT.read_text())).items():
        assert k in engine, f"the engine lacks {k}"
        got = engine[k]
        # Input types, not names: a public getter names its key `arg0` (the selector and the
        # encoding depend on the types alone).
        assert [i["type"] for i in got["inputs"]] == [i["type"] for i in entry["inputs"]], k
        if k[0] == "event":
            assert got["inputs"] == entry["inputs"], k  # names and indexing: the topic
        assert got.get("outputs") == entry.get("outputs"), k


# ---- The extension runs in the engine's storage ----


def _layout(contract: str) -> dict:
    root = Path(__file__).parent.parent
    site = sysconfig.get_paths()["purelib"]  # the venv's site-packages: snekmate
    out = subprocess.run(
        ["vyper", "-f", "layout", "-p", str(root / "contracts"), "-p", str(site), contract],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
    ).stdout
    return json.loads(out)


def test_extension__storage_layout__equals_the_engine():
    """The extension's code runs on the engine's storage by delegatecall: one slot for one
    variable, in storage and in transient storage (the reentrancy lock, the batch price cache),
    and the same immutables (the engine's constructor checks their values)."""
    engine = _layout("contracts/Clearinghouse.vy")
    extension = _layout("contracts/ClearinghouseExtension.vy")
    assert extension["storage_layout"] == engine["storage_layout"]
    assert extension["transient_storage_layout"] == engine["transient_storage_layout"]
    own = {k: v for k, v in engine["code_layout"].items() if k != "extension"}
    assert extension["code_layout"] == own


def test_extension__engine_forwards_only_what_it_lacks(manifest):
    """Every extension function is one the engine does not define itself (a duplicate would be
    dead code at the engine's address), and the merged ABI holds both."""
    types = manifest["contractTypes"]
    own = {e["name"] for e in types["Clearinghouse"]["abi"] if e["type"] == "function"}
    moved = {e["name"] for e in types["ClearinghouseExtension"]["abi"] if e["type"] == "function"}
    wiring = {"collateral_token", "lp_token", "configurator", "price_updater"}
    cold = {"liquidation_preview", "settle_claim", "fund_insurance", "pool_state", "pool_pull"}
    cold |= {"pool_add", "pool_pay", "configure_market", "configure_params", "configure_pause"}
    cold |= {"configure_funding", "mark_price", "market", "market_funding", "fill_price"}
    cold |= {"trader_unrealized_pnl", "position", "account_market_ids", "accrued_funding"}
    cold |= {"is_liquidatable", "equity", "maintenance_requirement", "initial_requirement"}
    cold |= {"liquidation_params", "pool_assets", "insurance_fund", "keeper_reward_params"}
    cold |= {"configure_keeper_gas", "deposit", "withdraw"}
    assert moved - wiring == cold
    assert (moved - wiring) & own == set()
    merged = {e["name"] for e in contract_abi(manifest, "Clearinghouse") if e["type"] == "function"}
    assert merged == own | moved
