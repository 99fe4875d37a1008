"""The CNI pane: per node, the files in /etc/cni/net.d and which one the kubelet uses.

The kubelet takes the lexicographically first valid config; every other primary config is a
second CNI waiting to fight the first one over pod IPs (runbook §3.3), so it is marked.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text

from cluster.model import Snapshot
from cluster.nodes.model import CniFile, CniState
from widgets.format import human_bytes
from widgets.nodes_pane import cni_agent_cell
from widgets.table_pane import Row, TablePane, node_cell, unreachable_cell

COLUMNS = (
    ("node", "NODE"),
    ("file", "FILE"),
    ("role", "ROLE"),
    ("types", "TYPES"),
    ("size", "SIZE"),
    ("detail", "DETAIL"),
    ("agent", "AGENT (API)"),
)


def role_cell(file: CniFile, cni: CniState) -> Text:
    if file.is_config and not file.valid:
        return Text("✖ invalid", style="bold red")
    if file == cni.active:
        return Text("★ active", style="bold green")
    if file.primary:
        return Text("▲ conflicting", style="bold yellow")
    if file.valid:
        return Text("loopback")
    if file.server:
        return Text("kubeconfig")
    return Text("- not a config", style="dim")


class CniPane(TablePane):
    COLUMNS = COLUMNS

    def table_rows(self, snapshot: Snapshot) -> Iterable[Row]:
        for node in snapshot.nodes:
            if not node.reachable:
                agent = cni_agent_cell(snapshot.kube, node.name)
                yield node.name, (node.name, "-", unreachable_cell(node.error), "", "", "", agent)
                continue
            cni = node.cni
            if cni.active is None:
                detail = cni.error or "no valid config: new pods get no network"
                yield (
                    f"{node.name}/none",
                    (
                        node_cell(node),
                        "-",
                        Text("‼ no CNI config", style="bold red"),
                        "",
                        "",
                        detail,
                        cni_agent_cell(snapshot.kube, node.name),
                    ),
                )
            for file in cni.files:
                detail = file.error or (f"server {file.server}" if file.server else "")
                yield (
                    f"{node.name}/{file.name}",
                    (
                        node_cell(node),
                        file.name,
                        role_cell(file, cni),
                        ", ".join(file.types),
                        human_bytes(file.size),
                        detail,
                        cni_agent_cell(snapshot.kube, node.name) if file == cni.active else "",
                    ),
                )
