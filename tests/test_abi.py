"""The tracked plain ABIs in `abi/` match the compiled contracts, and every deployable fits the
EIP-170 code-size limit (the size budget: the engine has little room left, so a change that
grows it shows here first, with the figure)."""

from __future__ import annotations

import json

import pytest

from margin_maintenance.abi import (
    ABI_DIR,
    EIP170_LIMIT,
    abi_path,
    deployables,
    load_manifest,
    runtime_sizes,
    stale_files,
    write_abis,
)

# Contracts a bot writer needs on a local network; each must have its plain ABI in abi/.
BOT_FACING = ("Clearinghouse", "LPToken", "PriceFeed", "mocks/MockERC20", "mocks/MockAggregator")


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


def test_size_budget__every_deployable__within_eip170(manifest):
    sizes = runtime_sizes(manifest)
    print("runtime bytes:", {n: f"{s:,} ({EIP170_LIMIT - s:,} left)" for n, s in sizes.items()})
    over = {n: s for n, s in sizes.items() if s > EIP170_LIMIT}
    assert over == {}, f"over the EIP-170 limit of {EIP170_LIMIT:,} bytes: {over}"
    assert sizes["Clearinghouse"] > 0 and sizes["PriceFeed"] > 0
