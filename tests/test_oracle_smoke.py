import pytest

from conftest import ETH_PRICE, WAD


@pytest.mark.integration
def test_latest_price__8_decimal_feed__returns_wad(make_aggregator, make_feed):
    agg = make_aggregator()
    feed = make_feed(agg)
    assert feed.latest_price() == ETH_PRICE * WAD
