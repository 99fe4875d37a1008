"""`kcockpit report` for people: rich tables of the members and the findings."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from cluster.model import Snapshot
from tui.console import output_console
from widgets.certificates_pane import CertificatesPane
from widgets.cni_pane import CniPane
from widgets.format import human_bytes, member_state, optional, severity_text
from widgets.header import header_text
from widgets.static_pods_pane import StaticPodsPane
from widgets.table_pane import TablePane


def print_report(snapshot: Snapshot, console: Console | None = None) -> None:
    console = console or output_console()
    console.print(header_text(snapshot, snapshot.cluster_name))
    if snapshot.etcd.error:
        console.print(Text(f"etcd: {snapshot.etcd.error}", style="red"))
    members = Table(title="etcd members", title_justify="left")
    for column in (
        "state",
        "name",
        "endpoint",
        "id",
        "version",
        "db size",
        "leader",
        "learner",
        "raft term",
        "raft index",
        "applied",
        "errors",
    ):
        members.add_column(column)
    for m in snapshot.etcd.members:
        members.add_row(
            member_state(m),
            m.display_name,
            m.endpoint or "-",
            m.id_hex,
            optional(m.version),
            human_bytes(m.db_size),
            "★ leader" if m.is_leader else "",
            "learner" if m.is_learner else "",
            optional(m.raft_term),
            optional(m.raft_index),
            optional(m.raft_applied_index),
            m.error or "; ".join(m.errors),
        )
    console.print(members)
    print_node_tables(snapshot, console)
    if not snapshot.findings:
        console.print(Text("✔ no findings", style="green"))
        return
    findings = Table(title="findings", title_justify="left", show_lines=True)
    for column in ("severity", "id", "subject", "evidence", "next"):
        findings.add_column(column)
    for f in snapshot.findings:
        next_step = f.next + (f"\n$ {f.command}" if f.command else "")
        findings.add_row(severity_text(f.severity), f.id, f.subject, f.evidence, next_step)
    console.print(findings)


def print_node_tables(snapshot: Snapshot, console: Console) -> None:
    """The three node panes as tables: the same rows the cockpit shows."""
    if not snapshot.nodes:
        return
    panes: tuple[tuple[str, TablePane], ...] = (
        ("static pods", StaticPodsPane()),
        ("certificates (most urgent first)", CertificatesPane()),
        ("CNI (/etc/cni/net.d)", CniPane()),
    )
    for title, pane in panes:
        table = Table(title=title, title_justify="left")
        for _, label in pane.COLUMNS:
            table.add_column(label)
        for _, cells in pane.table_rows(snapshot):
            table.add_row(*cells)
        console.print(table)
