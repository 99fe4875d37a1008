"""The static pods pane: per control-plane node, each expected component's manifest and state.

A manifest moved away says where it went (so the restore command is obvious), and whether the
component runs says which evidence told (crictl, the lab kubelet, or nothing).
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.binding import Binding

from cluster.model import Snapshot
from cluster.nodes.model import KUBERNETES_DIR, ManifestFile, StaticPod
from widgets.messages import request_action
from widgets.nodes_pane import api_pod_cell
from widgets.table_pane import Row, TablePane, node_cell, unreachable_cell

COLUMNS = (
    ("node", "NODE"),
    ("component", "COMPONENT"),
    ("manifest", "MANIFEST"),
    ("running", "RUNNING"),
    ("version", "VERSION"),
    ("flags", "KEY FLAGS"),
    ("evidence", "EVIDENCE"),
    ("api", "RUNNING PER API"),
)


def manifest_cell(pod: StaticPod) -> Text:
    if pod.state == "present":
        return Text("✔ present", style="green")
    if pod.state == "moved":
        where = (pod.moved_to or "").removeprefix(KUBERNETES_DIR + "/")
        return Text(f"↪ moved to {where}", style="bold red")
    if pod.state == "invalid":
        return Text(f"✖ invalid: {pod.error}", style="bold red")
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


class StaticPodsPane(TablePane):
    """S/T ask for stopping/starting the component under the cursor (the app confirms first)."""

    COLUMNS = COLUMNS
    BINDINGS = [
        Binding("S", "request('stop-static-pod')", "Stop static pod"),
        Binding("T", "request('start-static-pod')", "Start static pod"),
    ]

    def action_request(self, action: str) -> None:
        request_action(self, action, self.selected_pod, "static pod (node/component row)")

    @property
    def selected_pod(self) -> str | None:
        """`node/component` under the cursor; None on unreachable-node or extra-manifest rows."""
        key = self.selected_key
        return key if key is not None and key.count("/") == 1 else None

    def table_rows(self, snapshot: Snapshot) -> Iterable[Row]:
        for node in snapshot.nodes:
            if not node.reachable:
                yield node.name, (node.name, "-", unreachable_cell(node.error), "", "", "", "", "")
                continue
            for pod in node.static_pods:
                yield (
                    f"{node.name}/{pod.component}",
                    (
                        node_cell(node),
                        pod.component,
                        manifest_cell(pod),
                        running_cell(pod.running),
                        pod.version or "-",
                        " ".join(f"--{k}={v}" for k, v in pod.flags),
                        pod.evidence,
                        api_pod_cell(snapshot.kube, node.name, pod.component),
                    ),
                )
            for extra in node.extra_manifests:
                label = extra.pod_name or "-"
                cells = (node_cell(node), f"({label})", extra_cell(extra), "", "", "", "", "")
                yield f"{node.name}/extra/{extra.name}", cells
