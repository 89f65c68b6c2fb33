"""Ape-free chain access shared by the tools (issue "Engine v2 structure", step 3).

`types.py` holds the one definition of what the engine's bot-facing views return; the JSON-RPC
batching, readers, log scans and the deployment record move here next, so that `mm-client`,
the keeper, `ape run status`, the scale bench and the simulator share one implementation.
"""

from .types import AccountStatus, Preview

__all__ = ["AccountStatus", "Preview"]
