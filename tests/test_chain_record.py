"""The deployment record (`margin_maintenance.chain.record`): round trip, old records, errors.

Plain unit tests: no chain, no Ape.
"""

import json

import pytest
from eth_utils import to_checksum_address

from margin_maintenance import deployment
from margin_maintenance.chain import record
from margin_maintenance.chain.record import (
    REQUIRED_KEYS,
    SCHEMA_VERSION,
    CollateralRecord,
    Deployment,
    DeploymentError,
    MarketRecord,
    load_deployment,
    network_slug,
    record_path,
    save_deployment,
)
from margin_maintenance.client import ClientError, DeploymentRecord
from margin_maintenance.keeper import settings as keeper_settings


def addr(byte: str) -> str:
    return "0x" + byte * 20


# Checksummed (mixed case) addresses, as Ape and web3 write them.
CH = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
TOKEN = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
AGG = "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"
FEED = "0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9"

# A version-1 record as `ape run deploy` wrote it before the configurator.
V1 = {
    "network": "local",
    "chain_id": 31337,
    "start_block": 3,
    "clearinghouse": CH,
    "lp_token": addr("22"),
    "collateral": {"address": TOKEN, "decimals": 6},
    "markets": [{"id": 0, "symbol": "ETH-USD", "aggregator": AGG, "feed": FEED}],
    "deployer": addr("88"),
    "guardian": None,
    "deployed_at": 1_764_000_000,
}


def sample(**changes) -> Deployment:
    dep = Deployment(
        network="local",
        chain_id=31337,
        start_block=3,
        clearinghouse=CH,
        lp_token=addr("22"),
        collateral=CollateralRecord(TOKEN, 6),
        markets=(
            MarketRecord(0, "ETH-USD", AGG, FEED),
            MarketRecord(1, "BTC-USD", addr("66"), addr("77")),
        ),
        deployer=addr("88"),
        guardian=addr("99"),
        deployed_at=1_764_000_000,
        configurator=addr("aa"),
        schema_version=SCHEMA_VERSION,
    )
    return Deployment(**{**dep.__dict__, **changes})


def test_round_trip__dict_and_file__same_record(tmp_path):
    dep = sample()
    assert Deployment.from_dict(dep.to_dict()) == dep
    path = save_deployment(dep, tmp_path)
    assert path == record_path("local", tmp_path) == tmp_path / "local.json"
    assert load_deployment("local", tmp_path) == dep == Deployment.load(path)
    assert not path.with_suffix(".json.tmp").exists()  # written atomically


def test_to_dict__every_key__in_the_written_order():
    data = sample().to_dict()
    assert list(data) == [
        "network",
        "chain_id",
        "start_block",
        "clearinghouse",
        "lp_token",
        "collateral",
        "markets",
        "deployer",
        "guardian",
        "deployed_at",
        "configurator",
        "schema_version",
    ]
    assert data["collateral"] == {"address": TOKEN, "decimals": 6}
    assert data["markets"][1] == {
        "id": 1,
        "symbol": "BTC-USD",
        "aggregator": addr("66"),
        "feed": addr("77"),
    }
    assert data["schema_version"] == SCHEMA_VERSION == 3


def test_new_addresses__omitted_while_none__round_trip_when_set(tmp_path):
    dep = sample()
    assert (dep.lp_vault, dep.lens) == (None, None)
    assert "lp_vault" not in dep.to_dict() and "lens" not in dep.to_dict()
    full = sample(lp_vault=addr("bb"), lens=addr("cc"))
    data = full.to_dict()
    assert (data["lp_vault"], data["lens"]) == (addr("bb"), addr("cc"))
    assert list(data)[-2:] == ["lp_vault", "lens"]
    save_deployment(full, tmp_path)
    assert load_deployment("local", tmp_path) == full
    # written as null by some other tool: read as absent
    assert Deployment.from_dict({**dep.to_dict(), "lp_vault": None, "lens": None}) == dep


def test_old_record__no_schema_version_configurator_or_new_keys__reads_as_version_1():
    dep = Deployment.from_dict(V1)
    assert dep.schema_version == 1
    assert (dep.configurator, dep.guardian, dep.lp_vault, dep.lens) == (None, None, None, None)
    assert dep.collateral == CollateralRecord(TOKEN, 6) and dep.unit == 10**6
    assert dep.market("eth") == dep.market(0) == MarketRecord(0, "ETH-USD", AGG, FEED)
    assert dep.find_market("SOL") is None
    with pytest.raises(DeploymentError, match="no market"):
        dep.market("SOL-USD")
    # every key it had is written back as it was; the new optional ones are not added
    data = dep.to_dict()
    assert {k: data[k] for k in V1} == V1
    assert "lp_vault" not in data and "lens" not in data


def test_schema_version__read_as_written__default_1():
    assert Deployment.from_dict({**V1, "schema_version": 2}).schema_version == 2
    assert Deployment.from_dict({**V1, "schema_version": None}).schema_version == 1
    assert Deployment.from_dict({**V1, "schema_version": 3}).schema_version == 3  # not refused
    with pytest.raises(DeploymentError, match="malformed"):
        Deployment.from_dict({**V1, "schema_version": "two"})


def test_unknown_keys__ignored():
    assert Deployment.from_dict({**V1, "something_new": [1, 2]}) == Deployment.from_dict(V1)


@pytest.mark.parametrize("key", REQUIRED_KEYS)
def test_missing_required_key__malformed_naming_it(key):
    data = {k: v for k, v in V1.items() if k != key}
    with pytest.raises(
        DeploymentError, match=f"malformed deployment record: missing or null '{key}'"
    ):
        Deployment.from_dict(data)
    with pytest.raises(DeploymentError, match=f"missing or null '{key}'"):
        Deployment.from_dict({**V1, key: None})


def test_bad_values__malformed():
    for bad in (
        {**V1, "chain_id": "mainnet"},
        {**V1, "collateral": {"address": TOKEN}},
        {**V1, "markets": [{"id": 0, "symbol": "ETH-USD"}]},
        {**V1, "deployed_at": "yesterday"},
    ):
        with pytest.raises(DeploymentError, match="malformed deployment record"):
            Deployment.from_dict(bad)
    with pytest.raises(DeploymentError, match="not a JSON object"):
        Deployment.from_dict([V1])  # type: ignore[arg-type]


def test_load__bad_files__clear_errors(tmp_path):
    with pytest.raises(DeploymentError, match="no deployment record at .*ape run deploy"):
        Deployment.load(tmp_path / "none.json")
    path = tmp_path / "x.json"
    path.write_text("{not json")
    with pytest.raises(DeploymentError, match="not valid JSON"):
        Deployment.load(path)
    path.write_text("[]")
    with pytest.raises(DeploymentError, match="does not hold a JSON object"):
        Deployment.load(path)
    path.write_text(json.dumps({"chain_id": 1}))
    with pytest.raises(DeploymentError, match=r"x\.json: malformed deployment record: missing"):
        Deployment.load(path)


def test_load_deployment__network_from_the_file_stem(tmp_path):
    (tmp_path / "arbitrum-sepolia.json").write_text(
        json.dumps({k: v for k, v in V1.items() if k != "network"})
    )
    assert load_deployment("arbitrum-sepolia", tmp_path).network == "arbitrum-sepolia"


def test_paths__slug_and_env(tmp_path, monkeypatch):
    assert network_slug("ethereum", "local") == "local"
    assert network_slug("Arbitrum", "Mainnet") == "arbitrum-mainnet"
    monkeypatch.setenv("MM_DEPLOYMENTS_DIR", str(tmp_path))
    assert record_path("local") == tmp_path / "local.json"
    monkeypatch.delenv("MM_DEPLOYMENTS_DIR")
    assert record_path("local") == record.REPO_ROOT / "deployments" / "local.json"


# ---- The three readers share it ----


def test_ape_side__same_definition_reexported():
    assert deployment.Deployment is Deployment
    assert deployment.DeploymentError is DeploymentError
    assert deployment.CollateralRecord is CollateralRecord
    assert deployment.load_deployment is load_deployment
    assert deployment.network_slug is keeper_settings.network_slug is network_slug


def test_client_record__lenient_checksummed_client_error():
    """The client needs chain_id, start_block, clearinghouse and collateral only."""
    lower = {
        "chain_id": 1,
        "start_block": 0,
        "clearinghouse": CH.lower(),
        "collateral": {"address": TOKEN.lower(), "decimals": 6},
    }
    rec = DeploymentRecord.from_dict(lower)
    assert isinstance(rec, Deployment)
    assert (rec.clearinghouse, rec.collateral.address) == (CH, TOKEN)
    assert (rec.markets, rec.network, rec.lp_token, rec.deployer) == ((), "", None, None)
    assert rec.market(0) is None  # the client's market(id) returns None
    full = DeploymentRecord.from_dict({**V1, "lens": addr("cc")})
    assert full.market(0).feed == FEED and full.lens == to_checksum_address(addr("cc")) != addr(
        "cc"
    )
    with pytest.raises(
        ClientError, match="malformed deployment record: missing or null 'collateral'"
    ):
        DeploymentRecord.from_dict({k: v for k, v in lower.items() if k != "collateral"})
    with pytest.raises(ClientError, match="malformed"):
        DeploymentRecord.from_dict({**lower, "clearinghouse": "0x1234"})


def test_keeper_record__only_clearinghouse_required(tmp_path):
    path = tmp_path / "local.json"
    path.write_text(json.dumps({"clearinghouse": CH}))
    rec = keeper_settings.WatchRecord.load(path)
    assert (rec.clearinghouse, rec.start_block, rec.chain_id) == (CH, 0, None)
    path.write_text(json.dumps({"chain_id": 5}))
    with pytest.raises(ValueError, match="missing or null 'clearinghouse'"):
        keeper_settings.WatchRecord.load(path)
