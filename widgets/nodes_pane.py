"""The nodes pane: the Kubernetes API's view: nodes, kube-system DaemonSets, Warning events.

It is the layer the etcd-rollback runbook could only see through the API (NotReady nodes,
calico-node and kube-proxy not ready), shown next to what etcd and the nodes' files say. When
the API cannot be reached the tables say so in their first row; the other panes keep updating.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from cluster.model import Snapshot
from widgets.base import QuietStatic, SnapshotView
from widgets.rows import kube
from widgets.rows.common import Row
from widgets.table_pane import TablePane


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
    COLUMNS = kube.NODE_COLUMNS

    def table_rows(self, snapshot: Snapshot) -> list[Row]:
        return kube.node_rows(snapshot)


class DaemonSetsTable(TablePane):
    COLUMNS = kube.DAEMONSET_COLUMNS

    def table_rows(self, snapshot: Snapshot) -> list[Row]:
        return kube.daemonset_rows(snapshot)


class WarningEventsTable(TablePane):
    COLUMNS = kube.EVENT_COLUMNS

    def table_rows(self, snapshot: Snapshot) -> list[Row]:
        return kube.event_rows(snapshot)


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
