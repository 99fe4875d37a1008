"""The CNI table: per node, the files in /etc/cni/net.d and which one the kubelet uses.

The kubelet takes the lexicographically first valid config; every other primary config is a
second CNI waiting to fight the first one over pod IPs (runbook §3.3), so it is marked.
"""

from __future__ import annotations

from rich.text import Text

from cluster.model import Snapshot
from cluster.nodes.model import CniFile, CniState
from widgets.format import human_bytes
from widgets.rows.common import Column, Row, node_cell, unreachable_cell
from widgets.rows.kube import cni_agent_cell

COLUMNS = (
    Column("node", "NODE", 1),
    Column("file", "FILE", 1),
    Column("role", "ROLE", 1),
    Column("types", "TYPES", 3),
    Column("size", "SIZE", 5),
    Column("detail", "DETAIL", 4),
    Column("agent", "AGENT (API)", 2),
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


def rows(snapshot: Snapshot) -> list[Row]:
    """Per node its files, keyed `node/file`; a node with no valid config says so first."""
    found: list[Row] = []
    for node in snapshot.nodes:
        agent = cni_agent_cell(snapshot.kube, node.name)
        if not node.reachable:
            found.append(
                (node.name, (node.name, "-", unreachable_cell(node.error), "", "", "", agent))
            )
            continue
        cni = node.cni
        if cni.active is None:
            detail = cni.error or "no valid config: new pods get no network"
            no_config = Text("‼ no CNI config", style="bold red")
            found.append(
                (f"{node.name}/none", (node_cell(node), "-", no_config, "", "", detail, agent))
            )
        for file in cni.files:
            cells = (
                node_cell(node),
                file.name,
                role_cell(file, cni),
                ", ".join(file.types),
                human_bytes(file.size),
                file.error or (f"server {file.server}" if file.server else ""),
                agent if file == cni.active else "",
            )
            found.append((f"{node.name}/{file.name}", cells))
    return found
