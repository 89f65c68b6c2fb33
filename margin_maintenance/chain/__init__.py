"""Ape-free chain access shared by the tools (issue "Engine v2 structure", step 3).

`types.py` holds the one definition of what the engine's bot-facing views return, `record.py`
the one definition of the deployment record (`deployments/<network>.json`) and `rpc.py` the
JSON-RPC batching; the readers and log scans move here next, so that `mm-client`, the keeper,
`ape run status`, the scale bench and the simulator share one implementation.
"""

from .record import Deployment, DeploymentError
from .types import AccountStatus, Preview

__all__ = ["AccountStatus", "Deployment", "DeploymentError", "Preview"]
