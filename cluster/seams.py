"""Where the product accepts help it cannot give itself, so it never has to know who helps.

On a real cluster kubeadm provisions a new control-plane node and the findings memory lives in
the user's state directory. On the embedded lab (`lab/`) the lab does both: it signs the new
node's certificates and starts its etcd, and it keeps the cockpit's memory inside the lab
directory. Whether a static pod runs needs no help: a lab node shows it as a real one does
(its sockets and health endpoint, cluster/nodes/running.py). The product only defines the
shapes here; the lab fills them in (`lab/plugin.py`) and the CLI hands them over in the
`Config`, so `cluster/`, `actions/` and `widgets/` never import the lab
(tests/test_layering.py proves it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class ProvisionError(Exception):
    """A node could not be provisioned, with a message meant for the operator."""


class NodeProvisioner(Protocol):
    """What kubeadm would do for a member being added: prepare and start its node."""

    def provision(self, name: str, peer_url: str, initial_cluster: str) -> str:
        """Provisions and starts node `name` joining `initial_cluster` ("name=peer-url,…");
        returns what was done, in a few words. Raises ProvisionError."""
        ...

    def peer_url_for(self, name: str) -> str:
        """The peer URL a new node called `name` would get."""
        ...

    def new_member_defaults(self) -> tuple[str, str]:
        """(name, peer URL) proposed for the next member, for the add-member dialog."""
        ...


@dataclass(frozen=True)
class Seams:
    """The help a config brings along: none by default (a real cluster)."""

    provisioner: NodeProvisioner | None = None
    state_dir: Path | None = None  # the findings memory, else the user's state directory
