"""The Kubernetes API's tables (nodes, kube-system DaemonSets, Warning events) and the cells
the node tables borrow from the API's view (a component's mirror pod, a node's CNI agent).

When the API cannot be read, the nodes table says why in its one row and the other two are
empty: the reason is said once.
"""

from __future__ import annotations

from rich.text import Text

from cluster.kube.model import KubeDaemonSet, KubeNode, KubeView
from cluster.model import Snapshot
from widgets.rows.common import Column, Row, padded, unreachable_cell

NODE_COLUMNS = (
    Column("state", "STATE", 1),
    Column("name", "NAME", 1),
    Column("roles", "ROLES", 3),
    Column("version", "VERSION", 4),
    Column("address", "INTERNAL-IP", 5),
    Column("mirror", "CONTROL-PLANE PODS (API)", 2),
    Column("detail", "DETAIL", 2),
)
DAEMONSET_COLUMNS = (
    Column("state", "STATE", 1),
    Column("name", "DAEMONSET", 1),
    Column("desired", "DESIRED", 3),
    Column("current", "CURRENT", 4),
    Column("ready", "READY", 3),
    Column("updated", "UP-TO-DATE", 4),
    Column("available", "AVAILABLE", 4),
    Column("unready", "NOT READY", 2),
)
EVENT_COLUMNS = (
    Column("seen", "LAST SEEN", 2),
    Column("reason", "REASON", 1),
    Column("object", "OBJECT", 1),
    Column("count", "COUNT", 3),
    Column("message", "MESSAGE", 1),
)


def node_state_cell(node: KubeNode) -> Text:
    if node.ready:
        return Text("● Ready", style="green")
    if node.ready is None:
        return Text("? Unknown", style="bold yellow")
    return Text("✗ NotReady", style="bold red")


def mirror_pods_cell(view: KubeView, node: str) -> Text:
    """The control-plane mirror pods the API has on this node: `etcd ●`, `kube-apiserver ✗`."""
    text = Text()
    for pod in sorted(
        (p for p in view.mirror_pods if p.node == node), key=lambda p: p.component or ""
    ):
        if text:
            text.append("  ")
        if pod.running:
            text.append(f"{pod.component} ●", style="green")
        else:
            text.append(f"{pod.component} ✗ {pod.status}", style="bold red")
    return text or Text("-", style="dim")


def daemonset_state_cell(ds: KubeDaemonSet) -> Text:
    if ds.is_ready:
        return Text("● ready", style="green")
    return Text(f"✗ {ds.ready}/{ds.desired} ready", style="bold red")


def problem_row(view: KubeView | None) -> Row:
    """The one row that says why there is nothing to show."""
    if view is None:
        first = Text("- no Kubernetes API configured ([kube])", style="dim")
    else:
        first = unreachable_cell(view.error or view.config_error)
    return "problem", padded((first,), NODE_COLUMNS)


def readable(snapshot: Snapshot) -> KubeView | None:
    """The API's view when it answered, else None."""
    view = snapshot.kube
    return view if view is not None and view.reachable else None


def node_rows(snapshot: Snapshot) -> list[Row]:
    """The API's nodes keyed by name, or the one row saying why there are none."""
    view = readable(snapshot)
    if view is None:
        return [problem_row(snapshot.kube)]
    found: list[Row] = []
    for node in view.nodes or ():
        cells = (
            node_state_cell(node),
            node.name,
            ",".join(node.roles) or "<none>",
            node.kubelet_version,
            node.address() or "-",
            mirror_pods_cell(view, node.name),
            "" if node.ready else f"{node.ready_reason}: {node.ready_message}",
        )
        found.append((node.name, cells))
    return found


def daemonset_rows(snapshot: Snapshot) -> list[Row]:
    view = readable(snapshot)
    if view is None:
        return []
    found: list[Row] = []
    for ds in view.daemonsets or ():
        unready = ", ".join(
            f"{p.name} on {p.node}" for p in view.daemonset_pods(ds) if not p.running
        )
        counts = (ds.desired, ds.current, ds.ready, ds.updated, ds.available)
        found.append((ds.name, (daemonset_state_cell(ds), ds.name, *map(str, counts), unready)))
    return found


def event_rows(snapshot: Snapshot) -> list[Row]:
    """Warning events in the API's order, keyed by position (events have no stable name)."""
    view = readable(snapshot)
    if view is None:
        return []
    found: list[Row] = []
    for index, event in enumerate(view.events or ()):
        cells = (
            f"{event.last_seen:%H:%M:%S}" if event.last_seen else "-",
            Text(f"▲ {event.reason}", style="yellow"),
            event.object,
            str(event.count),
            event.message,
        )
        found.append((f"{index}", cells))
    return found


def api_pod_cell(view: KubeView | None, node: str, component: str) -> Text:
    """The static pods table's "per API" column: the component's mirror pod on that node."""
    if view is None:
        return Text("-", style="dim")
    if not view.reachable or view.pods is None:
        return Text("? API not readable", style="yellow")
    pod = view.mirror_pod(node, component)
    if pod is None:
        return Text("✗ no mirror pod", style="bold red")
    if pod.running:
        return Text("● running", style="green")
    return Text(f"✗ {pod.status}", style="bold red")


def cni_agent_cell(view: KubeView | None, node: str) -> Text:
    """The CNI table's column: the CNI DaemonSet's pod on that node and whether it is ready."""
    if view is None:
        return Text("-", style="dim")
    if not view.reachable or view.pods is None or view.daemonsets is None:
        return Text("? API not readable", style="yellow")
    pods = [p for ds in view.cni_daemonsets for p in view.daemonset_pods(ds) if p.node == node]
    if not pods:
        return Text("✗ no CNI agent pod", style="bold red")
    text = Text()
    for pod in pods:
        if text:
            text.append("  ")
        if pod.running:
            text.append(f"● {pod.name} ready", style="green")
        else:
            text.append(f"✗ {pod.name} {pod.status}, not ready", style="bold red")
    return text
