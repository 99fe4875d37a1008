"""The nodes pane: the Kubernetes API's view: nodes, kube-system DaemonSets, Warning events.

It is the layer the etcd-rollback runbook could only see through the API (NotReady nodes,
calico-node and kube-proxy not ready), shown next to what etcd and the nodes' files say. When
the API cannot be reached the tables say so in their first row; the other panes keep updating.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from cluster.kube.model import KubeDaemonSet, KubeNode, KubeView
from cluster.model import Snapshot
from widgets.base import QuietStatic, SnapshotView
from widgets.table_pane import Row, TablePane, unreachable_cell


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


def problem_row(view: KubeView | None, columns: int) -> Row:
    """The one row that says why there is nothing to show."""
    if view is None:
        first = Text("- no Kubernetes API configured ([kube])", style="dim")
    else:
        first = unreachable_cell(view.error or view.config_error)
    return "problem", (first, *[""] * (columns - 1))


class KubeStatus(SnapshotView, QuietStatic):
    """Which API server, as whom, and when it last answered."""

    DEFAULT_CSS = "KubeStatus { height: 1; padding: 0 1; color: $text-muted; }"

    def show_snapshot(self, snapshot: Snapshot) -> None:
        view = snapshot.kube
        if view is None:
            self.update("Kubernetes API: not configured (add a [kube] table to the config)")
            return
        line = Text(f"API {view.server}  user {view.user or '?'}  context {view.context or '?'}  ")
        line.append(f"as of {view.collected_at:%H:%M:%S}")
        if view.slow_for is not None:
            line.append(f" (no answer for {view.slow_for:.0f} s: the API is slow)", style="yellow")
        for error in view.read_errors:
            line.append(f"  ✖ {error.request}: {error.status} {error.reason}", style="bold red")
        self.update(line, layout=False)  # one line, whatever it says


class KubeNodesTable(TablePane):
    COLUMNS = (
        ("state", "STATE"),
        ("name", "NAME"),
        ("roles", "ROLES"),
        ("version", "VERSION"),
        ("address", "INTERNAL-IP"),
        ("mirror", "CONTROL-PLANE PODS (API)"),
        ("detail", "DETAIL"),
    )

    def table_rows(self, snapshot: Snapshot) -> Iterable[Row]:
        view = snapshot.kube
        if view is None or not view.reachable:
            yield problem_row(view, len(self.COLUMNS))
            return
        for node in view.nodes or ():
            detail = "" if node.ready else f"{node.ready_reason}: {node.ready_message}"
            yield (
                node.name,
                (
                    node_state_cell(node),
                    node.name,
                    ",".join(node.roles) or "<none>",
                    node.kubelet_version,
                    node.address() or "-",
                    mirror_pods_cell(view, node.name),
                    detail,
                ),
            )


class DaemonSetsTable(TablePane):
    COLUMNS = (
        ("state", "STATE"),
        ("name", "DAEMONSET"),
        ("desired", "DESIRED"),
        ("current", "CURRENT"),
        ("ready", "READY"),
        ("updated", "UP-TO-DATE"),
        ("available", "AVAILABLE"),
        ("unready", "NOT READY"),
    )

    def table_rows(self, snapshot: Snapshot) -> Iterable[Row]:
        view = snapshot.kube
        if view is None or not view.reachable:
            return
        for ds in view.daemonsets or ():
            unready = ", ".join(
                f"{p.name} on {p.node}" for p in view.daemonset_pods(ds) if not p.running
            )
            yield (
                ds.name,
                (
                    daemonset_state_cell(ds),
                    ds.name,
                    str(ds.desired),
                    str(ds.current),
                    str(ds.ready),
                    str(ds.updated),
                    str(ds.available),
                    unready,
                ),
            )


class WarningEventsTable(TablePane):
    COLUMNS = (
        ("seen", "LAST SEEN"),
        ("reason", "REASON"),
        ("object", "OBJECT"),
        ("count", "COUNT"),
        ("message", "MESSAGE"),
    )

    def table_rows(self, snapshot: Snapshot) -> Iterable[Row]:
        view = snapshot.kube
        if view is None or not view.reachable:
            return
        for index, event in enumerate(view.events or ()):
            seen = f"{event.last_seen:%H:%M:%S}" if event.last_seen else "-"
            yield (
                f"{index}",
                (
                    seen,
                    Text(f"▲ {event.reason}", style="yellow"),
                    event.object,
                    str(event.count),
                    event.message,
                ),
            )


class NodesPane(Vertical):
    """Composes the API's tables; each table renders its own part of the snapshot."""

    DEFAULT_CSS = """
    NodesPane { height: 1fr; }
    NodesPane KubeNodesTable { height: auto; max-height: 10; }
    NodesPane DaemonSetsTable { height: auto; max-height: 8; }
    NodesPane WarningEventsTable { height: 1fr; }
    """

    def compose(self) -> ComposeResult:
        yield KubeStatus(id="kube-status")
        yield KubeNodesTable(id="kube-nodes")
        yield Static("kube-system DaemonSets", classes="section")
        yield DaemonSetsTable(id="kube-daemonsets")
        yield Static("recent Warning events (kube-system)", classes="section")
        yield WarningEventsTable(id="kube-events")

    def node_rows(self) -> dict[str, str]:
        """Node name → its state as shown ("● Ready")."""
        return {row[1]: row[0] for row in self.query_one(KubeNodesTable).row_texts() if row[1]}

    def daemonset_rows(self) -> dict[str, list[str]]:
        return {row[1]: row for row in self.query_one(DaemonSetsTable).row_texts()}


def api_pod_cell(view: KubeView | None, node: str, component: str) -> Text:
    """The static pods pane's "per API" column: the component's mirror pod on that node."""
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
    """The CNI pane's column: the CNI DaemonSet's pod on that node and whether it is ready."""
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
