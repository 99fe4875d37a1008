"""`kcockpit report` for people: the cockpit's tables (and `--all`, the fleet's) printed with Rich.

Every table comes from the row builder its pane uses (widgets/rows), so the report and the
cockpit cannot drift apart, and printing one needs no widget. Printed, no column is hidden:
the console is as wide as the terminal, or wide enough for a pipe (tui/console.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from cluster.config import Thresholds
from cluster.fleet import FleetRow, now
from cluster.model import Snapshot
from tui.console import output_console
from widgets.header import header_text
from widgets.rows import certificates, cni, etcd, findings, fleet, kube, static_pods
from widgets.rows.common import Column, Row, literal


def print_fleet(rows: list[FleetRow], console: Console | None = None) -> None:
    """`kcockpit report --all`: the fleet's table, worst first, then each cluster's findings."""
    console = console or output_console()
    console.print(table("fleet (worst first)", fleet.COLUMNS, fleet.rows(rows, now())))
    for row in rows:
        if row.snapshot is not None and row.snapshot.findings:
            title = f"{row.name}: findings"
            console.print(table(title, findings.COLUMNS, findings.rows(row.snapshot)))


def print_report(
    snapshot: Snapshot, console: Console | None = None, thresholds: Thresholds | None = None
) -> None:
    """`thresholds`: the config's, which the learner rows judge "caught up" with."""
    console = console or output_console()
    console.print(header_text(snapshot, snapshot.cluster_name))
    if snapshot.etcd.error:
        console.print(Text(f"etcd: {snapshot.etcd.error}", style="red"))
    for title, columns, rows in tables(snapshot, thresholds):
        console.print(table(title, columns, rows))
    if not snapshot.findings:
        console.print(findings.finding_detail(None))
        return
    console.print(table("findings", findings.COLUMNS, findings.rows(snapshot)))
    for finding in findings.by_key(snapshot.findings).values():  # the detail box of each
        console.print(findings.finding_detail(finding), end="\n\n")


Titled = tuple[str, Sequence[Column], list[Row]]  # a table's title, columns and rows


def tables(snapshot: Snapshot, thresholds: Thresholds | None = None) -> list[Titled]:
    """The panes' tables in the cockpit's order: the nodes' only when nodes are configured,
    the API's only when an API is (and, when it could not be read, the row saying why)."""
    found: list[Titled] = [("etcd members", etcd.COLUMNS, etcd.rows(snapshot, thresholds))]
    if snapshot.nodes:
        found += [
            ("static pods", static_pods.COLUMNS, static_pods.rows(snapshot)),
            ("certificates (most urgent first)", certificates.COLUMNS, certificates.rows(snapshot)),
            ("CNI (/etc/cni/net.d)", cni.COLUMNS, cni.rows(snapshot)),
        ]
    if snapshot.kube is not None:
        found.append(("nodes (Kubernetes API)", kube.NODE_COLUMNS, kube.node_rows(snapshot)))
    if kube.readable(snapshot) is not None:
        found += [
            ("kube-system DaemonSets", kube.DAEMONSET_COLUMNS, kube.daemonset_rows(snapshot)),
            ("Warning events (kube-system)", kube.EVENT_COLUMNS, kube.event_rows(snapshot)),
        ]
    return found


def table(title: str, columns: Sequence[Column], rows: Sequence[Row]) -> Table:
    """One builder's rows as a Rich table: its columns, every one of them."""
    printed = Table(title=title, title_justify="left")
    for column in columns:
        printed.add_column(column.label)
    for _, cells in rows:
        printed.add_row(*map(literal, cells))
    return printed
