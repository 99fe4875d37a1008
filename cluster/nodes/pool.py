"""The node connections of one cockpit: one access object per configured node, kept open.

The collector reads through it on every refresh and guarded actions borrow the same objects
(`await pool.get("cp-2")`), so an action never opens a second connection to a node the
screen is already watching.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from cluster.config import Config, ConfigError, NodeConfig
from cluster.nodes.access import NodeAccess
from cluster.nodes.local import LocalNodeAccess
from cluster.nodes.model import ROLE_COMPONENTS
from cluster.nodes.ssh import SshNodeAccess


def open_access(node: NodeConfig) -> NodeAccess:
    access: NodeAccess = (
        LocalNodeAccess(node.name, node.root, node.timeout, node.address)
        if node.local
        else SshNodeAccess(node)
    )
    access.components = ROLE_COMPONENTS[node.role]
    return access


class NodePool:
    """Access objects by node name, in config order; `close()` when the cockpit exits."""

    def __init__(self, config: Config) -> None:
        self.nodes = {node.name: node for node in config.nodes}
        self._accesses = {name: open_access(node) for name, node in self.nodes.items()}

    def __iter__(self) -> Iterator[NodeAccess]:
        return iter(self._accesses.values())

    def __len__(self) -> int:
        return len(self._accesses)

    def access(self, name: str) -> NodeAccess:
        """The access object for `name`, not necessarily connected yet."""
        try:
            return self._accesses[name]
        except KeyError:
            known = ", ".join(self._accesses) or "none configured"
            raise ConfigError(f"no node {name!r} in the config ({known})") from None

    async def get(self, name: str) -> NodeAccess:
        """A connected access object; raises NodeError when the node cannot be reached."""
        access = self.access(name)
        await access.connect()
        return access

    async def close(self) -> None:
        await asyncio.gather(*(a.close() for a in self._accesses.values()), return_exceptions=True)
