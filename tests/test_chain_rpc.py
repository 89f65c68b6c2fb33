"""The shared JSON-RPC client (`margin_maintenance.chain.rpc`) against a real anvil."""

from __future__ import annotations

import pytest

from margin_maintenance.chain.rpc import JsonRpc, RpcCallError, RpcError

pytestmark = pytest.mark.integration


@pytest.fixture
def rpc(chain):
    uri = getattr(chain.provider, "http_uri", None)
    if not uri:
        pytest.skip("needs a node with an HTTP endpoint: --network ethereum:local:foundry")
    return JsonRpc(uri, timeout=30)


def test_batch_results__one_request_fails__error_in_its_place_others_answered(rpc, chain):
    calls = [("eth_chainId", []), ("eth_no_such_method", []), ("eth_blockNumber", [])]
    chain_id, failed, head = rpc.batch_results(calls, chunk=2)  # two HTTP batches
    assert int(chain_id, 16) == chain.chain_id
    assert isinstance(failed, RpcCallError) and failed.method == "eth_no_such_method"
    assert int(head, 16) == rpc.block_number()


def test_batch__one_request_fails__raises_with_its_index(rpc):
    with pytest.raises(RpcError, match=r"eth_no_such_method #1"):
        rpc.batch([("eth_chainId", []), ("eth_no_such_method", [])])


def test_call__node_error__raises(rpc):
    with pytest.raises(RpcError, match="eth_no_such_method"):
        rpc.call("eth_no_such_method")
