"""Keeper settings: MM_* environment, deployment record, precedence."""

import json

import pytest
from pydantic import ValidationError

from margin_maintenance.keeper.settings import KeeperSettings, network_slug, resolve_watch

CH = "0x" + "ab" * 20
OTHER = "0x" + "cd" * 20


@pytest.fixture
def clean_env(monkeypatch):
    for key in (
        "DEPLOYMENT",
        "DEPLOYMENTS_DIR",
        "CLEARINGHOUSE",
        "START_BLOCK",
        "DRY_RUN",
        "BATCH_CAP",
    ):
        monkeypatch.delenv(f"MM_{key}", raising=False)
    return monkeypatch


@pytest.fixture
def record(tmp_path):
    path = tmp_path / "local.json"
    path.write_text(json.dumps({"chain_id": 31337, "start_block": 7, "clearinghouse": CH}))
    return path


def test_defaults__documented_values(clean_env):
    s = KeeperSettings()
    assert (s.dry_run, s.batch_cap, s.gas_per_account, s.status_chunk) == (False, 64, 35_000, 512)
    assert s.min_profit == 0 and s.poll_interval == 1.0


def test_env__mm_prefix__parsed(clean_env):
    clean_env.setenv("MM_DRY_RUN", "1")
    clean_env.setenv("MM_BATCH_CAP", "16")
    s = KeeperSettings()
    assert s.dry_run is True and s.batch_cap == 16


def test_env__batch_cap_above_contract_bound__rejected(clean_env):
    clean_env.setenv("MM_BATCH_CAP", "65")
    with pytest.raises(ValidationError):
        KeeperSettings()


def test_resolve__deployment_record__address_start_chain(clean_env, record):
    watch = resolve_watch(KeeperSettings(deployment=record))
    assert (watch.clearinghouse, watch.start_block, watch.chain_id) == (CH, 7, 31337)


def test_resolve__explicit_address_and_start__override_record(clean_env, record):
    clean_env.setenv("MM_CLEARINGHOUSE", OTHER)
    clean_env.setenv("MM_START_BLOCK", "3")
    watch = resolve_watch(KeeperSettings(deployment=record))
    assert (watch.clearinghouse, watch.start_block) == (OTHER, 3)


def test_resolve__address_only__starts_at_genesis(clean_env):
    watch = resolve_watch(KeeperSettings(clearinghouse=CH))
    assert (watch.start_block, watch.chain_id) == (0, None)


def test_resolve__network_default_record__used_when_present(clean_env, tmp_path, record):
    clean_env.setenv("MM_DEPLOYMENTS_DIR", str(tmp_path))
    record.rename(tmp_path / "arbitrum-sepolia.json")
    slug = network_slug("arbitrum", "sepolia")
    assert resolve_watch(KeeperSettings(), slug).clearinghouse == CH
    assert network_slug("ethereum", "local") == "local"


def test_resolve__nothing_set__explains(clean_env, tmp_path):
    clean_env.setenv("MM_DEPLOYMENTS_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="MM_CLEARINGHOUSE"):
        resolve_watch(KeeperSettings(), "local")


def test_resolve__not_a_record__rejected(clean_env, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    with pytest.raises(ValueError, match="not a deployment record"):
        resolve_watch(KeeperSettings(deployment=bad))
