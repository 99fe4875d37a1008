"""The static pods table: per control-plane node, each expected component's manifest and
state, keyed `node/component` (what the stop/start actions take).

A manifest moved away says where it went (so the restore command is obvious), one the node's
user may not read says permission denied (never missing), and whether the component runs says
which evidence told (crictl, or the node's listening sockets and etcd's health endpoint).
"""

from __future__ import annotations

from rich.text import Text

from cluster.model import Snapshot
from cluster.nodes.model import KUBERNETES_DIR, ManifestFile, StaticPod
from widgets.rows.common import Column, Row, node_cell, padded, unreachable_cell
from widgets.rows.kube import api_pod_cell

COLUMNS = (
    Column("node", "NODE", 1),
    Column("component", "COMPONENT", 1),
    Column("manifest", "MANIFEST", 1),
    Column("running", "RUNNING", 2),
    Column("version", "VERSION", 4),
    Column("flags", "KEY FLAGS", 5),
    Column("evidence", "EVIDENCE", 6),
    Column("api", "RUNNING PER API", 3),
)


def manifest_cell(pod: StaticPod) -> Text:
    if pod.state == "present":
        return Text("✔ present", style="green")
    if pod.state == "moved":
        where = (pod.moved_to or "").removeprefix(KUBERNETES_DIR + "/")
        return Text(f"↪ moved to {where}", style="bold red")
    if pod.state == "invalid":
        return Text(f"✖ invalid: {pod.error}", style="bold red")
    if pod.state == "denied":  # unknown, not missing: the user the node is read as may not look
        return Text("⊘ permission denied", style="yellow")
    return Text("✗ missing", style="bold red")


def running_cell(running: bool | None) -> Text:
    if running is None:
        return Text("? unknown", style="dim")
    return Text("● running", style="green") if running else Text("✗ stopped", style="bold red")


def extra_cell(extra: ManifestFile) -> Text:
    if extra.stray:
        return Text(f"▲ stray copy: {extra.name}", style="yellow")
    if extra.error:
        return Text(f"✖ {extra.name}: {extra.error}", style="bold red")
    return Text(f"+ extra: {extra.name}")


def rows(snapshot: Snapshot) -> list[Row]:
    """Unreachable nodes say so in one row; extra manifests follow their node's components."""
    found: list[Row] = []
    for node in snapshot.nodes:
        if not node.reachable:
            found.append(
                (node.name, padded((node.name, "-", unreachable_cell(node.error)), COLUMNS))
            )
            continue
        for pod in node.static_pods:
            cells = (
                node_cell(node),
                pod.component,
                manifest_cell(pod),
                running_cell(pod.running),
                pod.version or "-",
                " ".join(f"--{k}={v}" for k, v in pod.flags),
                pod.evidence,
                api_pod_cell(snapshot.kube, node.name, pod.component),
            )
            found.append((f"{node.name}/{pod.component}", cells))
        for extra in node.extra_manifests:
            first = (node_cell(node), f"({extra.pod_name or '-'})", extra_cell(extra))
            found.append((f"{node.name}/extra/{extra.name}", padded(first, COLUMNS)))
    return found
