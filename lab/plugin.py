"""How the lab plugs into the cockpit: its `[lab]` table read into the product's seams.

The product never imports the lab (cluster/seams.py says why). A config the lab wrote carries
a `[lab]` table naming the lab's directory; `kcockpit` hands that table here (tui/cli.py is the
one place that knows the lab), and the lab answers with the help the product asked for: a node
provisioner acting as kubeadm for member-add and a findings memory inside the lab directory
(which static pods run, its nodes show as real ones do). Kept light to import: the heavy part
of adding a node (PKI, manifests) is imported only once a member is being added.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cluster.config import Config, ConfigError
from cluster.seams import ProvisionError, Seams
from lab.layout import LabError

if TYPE_CHECKING:
    from lab.control import Lab

STATE_DIR = "cockpit-state"


def plugged(config: Config, table: dict[str, Any]) -> Config:
    """`config` with the lab's seams, from the `[lab]` table of the cluster's raw `table`.

    A `[lab]` without `dir` lends nothing (a lab config copied away from its lab); ConfigError,
    in one line naming `[lab]`, when that is no table or `dir` no path. `dir` is resolved
    against the config file's directory, as the product's paths are.
    """
    where = str(config.source or "config")
    lab = table.get("lab")
    if not isinstance(lab, dict):
        raise ConfigError(f"{where}: lab must be a [lab] table, not {lab!r}")
    if "dir" not in lab:
        return config
    directory = lab["dir"]
    if not isinstance(directory, str) or not directory:
        raise ConfigError(f"{where}: [lab] dir must name the lab's directory, not {directory!r}")
    base = config.source.resolve().parent if config.source else Path.cwd()
    return replace(config, seams=lab_seams(base / Path(directory).expanduser()))


def lab_seams(root: Path) -> Seams:
    """What the lab in `root` lends the cockpit."""
    return Seams(
        provisioner=LabProvisioner(root),
        state_dir=root / STATE_DIR,  # every lab reuses one etcd cluster ID: keep its memory apart
    )


@dataclass(frozen=True)
class LabProvisioner:
    """The lab as kubeadm: a new member's node gets certificates from the lab's CAs, a manifest
    joining the existing cluster, and the lab daemon starts it."""

    root: Path

    def provision(self, name: str, peer_url: str, initial_cluster: str) -> str:
        try:
            self._lab().add_node(name, peer_url, initial_cluster)
        except LabError as exc:
            raise ProvisionError(str(exc)) from None
        return f"lab node {name} started"

    def peer_url_for(self, name: str) -> str:
        return self._lab().peer_url_for(name)

    def new_member_defaults(self) -> tuple[str, str]:
        name = f"cp-{len(self._lab().spec.nodes) + 1}"
        return name, self.peer_url_for(name)

    def _lab(self) -> Lab:
        from lab.control import Lab  # PKI and manifests: imported once a member is being added

        return Lab(self.root)
