"""The cluster header: the numbers an operator looks at first, and the worst finding."""

from __future__ import annotations

from rich.text import Text

from cluster.model import Severity, Snapshot
from widgets.base import QuietStatic
from widgets.format import SEVERITY_STYLE, SEVERITY_SYMBOL


def header_text(snapshot: Snapshot | None, name: str) -> Text:
    text = Text()
    text.append(" kcockpit ", style="bold reverse")
    text.append(f" {name} ", style="bold")
    if snapshot is None:
        text.append("  connecting…")
        return text
    etcd = snapshot.etcd
    leader = etcd.leader
    # Most important first: at 80 columns the end of the line is what gets cut, so the verdict
    # and who leads come before the quorum arithmetic.
    text.append_text(banner(snapshot))
    if leader:
        text.append(f" ★ {leader.name}", style="bold")
    else:
        text.append(" ✗ no leader", style="bold red")
    text.append(f" │ voting {len(etcd.voting)} healthy {etcd.healthy_voting} quorum {etcd.quorum} ")
    tolerance_style = "bold red" if etcd.tolerance == 0 else "green"
    text.append(f"tolerance {etcd.tolerance}/{etcd.design_tolerance}", style=tolerance_style)
    return text


def banner(snapshot: Snapshot) -> Text:
    """The worst state in one word: QUORUM LOST outranks everything."""
    if any(f.id == "etcd.quorum-lost" for f in snapshot.findings):
        return Text(" ‼ QUORUM LOST ", style=SEVERITY_STYLE[Severity.CRITICAL])
    worst = snapshot.worst
    if worst is None:
        return Text(" ✔ OK ", style="bold green")
    count = sum(1 for f in snapshot.findings if f.severity == worst)
    return Text(
        f" {SEVERITY_SYMBOL[worst]} {count} {worst.label.upper()} ", style=SEVERITY_STYLE[worst]
    )


class ClusterHeader(QuietStatic):
    DEFAULT_CSS = """
    ClusterHeader { height: 1; background: $panel; }
    """

    def show(self, snapshot: Snapshot | None, name: str) -> None:
        self.update(header_text(snapshot, name), layout=False)  # always one line
