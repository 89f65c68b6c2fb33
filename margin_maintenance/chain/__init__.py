"""Ape-free chain access shared by the tools (issue "Engine v2 structure", step 3).

`types.py` holds the one definition of what the engine's bot-facing views return, `record.py`
the one definition of the deployment record (`deployments/<network>.json`), `rpc.py` the
JSON-RPC batching and `logs.py` the event-log scan (chunked `eth_getLogs`, refused ranges
split, ABI decoding, chain order) that `mm-client`, the keeper's account index and the Ape-side
readers (`events.fetch_events`: audit, report, simulator, `ape run status`) share; the readers
move here next, so that those tools and the scale bench share one implementation.
"""

from .record import Deployment, DeploymentError
from .types import AccountStatus, Preview

__all__ = ["AccountStatus", "Deployment", "DeploymentError", "Preview"]
