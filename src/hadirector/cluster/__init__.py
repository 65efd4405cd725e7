"""The cluster protocol as pure cores: wire codec, membership, connectivity, arbiter.

The daemon drives one `NodeCore` (node.py) and carries out the actions it returns (actions.py).
See docs/cluster.md.
"""

from .node import NodeCore

__all__ = ["NodeCore"]
