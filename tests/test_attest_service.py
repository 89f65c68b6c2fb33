"""The attestation service over real HTTP on loopback: the Hermes-shaped latest reports, the
health and readiness endpoints, refusals of bad source rows (the last good report stays), and
its blob accepted on chain by the deployed verifier."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from eth_account import Account
from eth_account.messages import encode_typed_data
from support.constants import ETH, WAD

from margin_maintenance.attest import SignerSet, decode_updates, feed_id
from margin_maintenance.attest.codec import (
    LATEST_SLOT,
    UpdateError,
    latest_override,
    merge_updates,
    select_updates,
    typed_data,
)
from margin_maintenance.attest.service import (
    Attestor,
    AttestServer,
    CsvSource,
    ManualSource,
    PriceRow,
    check_row,
    fetch_update,
)

CHAIN, VERIFIER = 31337, "0x" + "ab" * 20
SYMBOLS = ("ETH-USD", "BTC-USD")


class Clock:
    def __init__(self, t: int = 1_800_000_000) -> None:
        self.t = t

    def __call__(self) -> int:
        return self.t


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def service(clock):
    att = Attestor(SignerSet.local(3, 5), CHAIN, VERIFIER, SYMBOLS)
    server = AttestServer(att, ManualSource(), clock=clock).start()
    yield server
    server.stop()


def post(server, rows):
    return requests.post(f"{server.url}/v1/prices", json=rows, timeout=5)


def latest(server, *symbols):
    q = "&".join(f"ids[]=0x{feed_id(s).hex()}" for s in symbols)
    return requests.get(f"{server.url}/v2/updates/price/latest?{q}", timeout=5)


def test_check_row__each_refusal_has_its_reason():
    known = SYMBOLS
    assert check_row(PriceRow("ETH-USD", 1850.5, 0.5, 10), known, 9) is None
    assert "unknown symbol" in check_row(PriceRow("DOGE", 1, 0, 10), known, None)
    for bad in (0, -1, "nan", "inf", "abc", None):
        assert "finite positive" in check_row(PriceRow("ETH-USD", bad, 0, 10), known, None)
    assert "largest price" in check_row(PriceRow("ETH-USD", 2**200, 0, 10), known, None)
    assert "confidence" in check_row(PriceRow("ETH-USD", 1, -1, 10), known, None)
    assert "not newer" in check_row(PriceRow("ETH-USD", 1, 0, 10), known, 10)


def test_latest__hermes_shape__blob_signed_by_k_of_the_set(service, clock):
    assert post(service, [{"symbol": "ETH-USD", "price": 1850.25, "conf": 1.5}]).ok
    body = latest(service, "ETH-USD").json()
    [parsed] = body["parsed"]
    assert parsed["id"] == feed_id("ETH-USD").hex()
    assert parsed["price"] == {
        "price": str(185_025 * WAD // 100),  # decimal, exact
        "conf": str(15 * WAD // 10),
        "expo": -18,
        "publish_time": clock.t,
    }
    assert body["binary"]["encoding"] == "hex"
    [(report, sigs)] = decode_updates(bytes.fromhex(body["binary"]["data"][0]))
    assert (report.price, report.publish_time) == (185_025 * WAD // 100, clock.t)
    message = encode_typed_data(full_message=typed_data(report, CHAIN, VERIFIER))
    signers = {Account.recover_message(message, signature=s) for s in sigs}
    assert signers == set(service.attestor.signers.addresses[:3])


def test_latest__two_ids__one_blob_holds_both(service, clock):
    post(service, [{"symbol": "ETH-USD", "price": 1850}, {"symbol": "BTC-USD", "price": 56000}])
    body = latest(service, "ETH-USD", "BTC-USD").json()
    reports = decode_updates(bytes.fromhex(body["binary"]["data"][0]))
    assert [r.feed_id for r, _ in reports] == [feed_id("ETH-USD"), feed_id("BTC-USD")]


def test_latest__unknown_or_unsigned_id__404_bad_id__400(service):
    r = latest(service, "ETH-USD")  # no price yet
    assert r.status_code == 404 and "not found" in r.json()["error"]
    r = requests.get(f"{service.url}/v2/updates/price/latest?ids[]=0x1234", timeout=5)
    assert r.status_code == 400 and "32 bytes" in r.json()["error"]
    r = requests.get(f"{service.url}/v2/updates/price/latest", timeout=5)
    assert r.status_code == 400


def test_bad_row__refused_with_a_message__last_good_report_kept(service, clock):
    post(service, [{"symbol": "ETH-USD", "price": 1850}])
    clock.t += 5
    r = post(service, [{"symbol": "ETH-USD", "price": "NaN"}])
    assert r.status_code == 422 and "finite positive" in r.json()["error"]
    r = post(service, [{"symbol": "ETH-USD", "price": 1700, "publish_time": clock.t - 10}])
    assert r.status_code == 422 and "not newer" in r.json()["error"]
    [parsed] = latest(service, "ETH-USD").json()["parsed"]
    assert parsed["price"]["price"] == str(1850 * WAD)  # still the last good one
    health = requests.get(f"{service.url}/health", timeout=5).json()
    assert health["refused"] == 2 and "not newer" in health["last_error"]


def test_health_and_ready__report_signers_and_feed_ages(service, clock):
    assert requests.get(f"{service.url}/live", timeout=5).text == "OK"
    assert requests.get(f"{service.url}/ready", timeout=5).status_code == 503
    post(service, [{"symbol": s, "price": 100} for s in SYMBOLS])
    clock.t += 7
    assert requests.get(f"{service.url}/ready", timeout=5).status_code == 200
    health = requests.get(f"{service.url}/health", timeout=5).json()
    assert health["signers"] == "3/5" and health["status"] == "ok"
    assert health["feeds"]["ETH-USD"]["age_s"] == 7


def test_csv_source__replayed_at_its_pace__bad_rows_refused_the_rest_served(tmp_path, clock):
    path = tmp_path / "crash.csv"
    path.write_text("timestamp,price\n1000,2000\n1060,1900\n1120,oops\n1180,1700\n")
    att = Attestor(SignerSet.local(2, 3), CHAIN, VERIFIER, SYMBOLS)
    source = CsvSource(path, "ETH-USD", factor=60, start_price=1000)  # rescaled by 1/2
    seen = []
    for dt in range(4):
        for row in source.poll(clock.t + dt):
            seen.append(att.offer(row))
    assert [s.report.price if s else None for s in seen] == [1000 * WAD, 950 * WAD, None, 850 * WAD]
    assert att.refused == 1


def test_fetch_update__blob_accepted_by_the_deployed_verifier(system, accounts, chain):
    """The keeper's path: the service signs for the deployment, the blob lands on chain."""
    att = Attestor(
        SignerSet.local(3, 5), chain.chain_id, system.verifier.address, ["ETH-USD", "BTC-USD"]
    )
    server = AttestServer(
        att, ManualSource(), clock=lambda: int(chain.pending_timestamp) - 1
    ).start()
    try:
        post(server, [{"symbol": "ETH-USD", "price": 1999.5}])
        blob = fetch_update(server.url, [system.feed_ids[ETH]])
    finally:
        server.stop()
    tx = system.verifier.update_prices(blob, accounts[3], sender=accounts[3])
    [log] = tx.decode_logs(system.verifier.PriceAttested)
    assert log.price == 19_995 * WAD // 10 and log.signers == 0b111


def test_select_updates__keeps_the_flagged_reports_byte_for_byte(service, clock):
    post(service, [{"symbol": "ETH-USD", "price": 2000}, {"symbol": "BTC-USD", "price": 60000}])
    eth = fetch_update(service.url, [feed_id("ETH-USD")])
    btc = fetch_update(service.url, [feed_id("BTC-USD")])
    both = merge_updates([eth, btc])
    assert select_updates(both, [True, False]) == eth
    assert select_updates(both, [False, True]) == btc
    assert select_updates(both, [True, True]) == both
    assert select_updates(both, [False, False]) is None
    with pytest.raises(UpdateError, match="2 flags for 1 reports"):
        select_updates(eth, [True, True])


def test_latest_override__the_word_update_prices_stores(service, clock):
    from eth_utils import keccak

    post(service, [{"symbol": "ETH-USD", "price": 2000}])
    [(report, _)] = decode_updates(fetch_update(service.url, [feed_id("ETH-USD")]))
    override = latest_override([(VERIFIER, report)])
    slot = "0x" + keccak(LATEST_SLOT.to_bytes(32, "big") + report.feed_id).hex()
    assert override == {
        VERIFIER: {"stateDiff": {slot: f"0x{(clock.t << 192) | (2000 * WAD):064x}"}}
    }


def test_cli__record_without_verifier__refused(tmp_path, capsys):
    from margin_maintenance.attest.__main__ import main

    record = {
        "network": "local", "chain_id": 31337, "start_block": 0, "clearinghouse": "0x" + "11" * 20,
        "lp_token": "0x" + "22" * 20, "collateral": {"address": "0x" + "33" * 20, "decimals": 6},
        "markets": [], "deployer": "0x" + "44" * 20,
    }  # fmt: skip
    path = Path(tmp_path / "local.json")
    path.write_text(json.dumps(record))
    assert main(["--deployment", str(path)]) == 2
    assert "no price verifier" in capsys.readouterr().err
