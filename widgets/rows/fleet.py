"""The fleet table: one row per cluster, worst first, keyed by the cluster's name in the
config (what `enter` opens).

Every state is a symbol and a word, never colour alone; names, finding ids and error words are
the clusters' own, shown as literal text.
"""

from __future__ import annotations

import datetime as dt

from rich.text import Text

from cluster.fleet import FleetRow, Verdict
from cluster.model import Severity
from cluster.untrusted import printable
from widgets.format import SEVERITY_STYLE, SEVERITY_SYMBOL
from widgets.rows.common import Cell, Column, Row

# At 80 columns: the cluster, its state, its members, its worst finding, the counts and the
# row's age; wider terminals bring back tolerance, leader, certificates and quorum.
COLUMNS = (
    Column("cluster", "CLUSTER", 1),
    Column("verdict", "STATE", 1),
    Column("healthy", "HEALTHY", 1),
    Column("quorum", "QUORUM", 5),
    Column("tolerance", "TOL", 3),
    Column("leader", "LEADER", 3),
    Column("worst", "WORST FINDING", 1),
    Column("findings", "FINDINGS", 2),
    Column("certs", "CERT", 4),
    Column("age", "AGE", 2),
)
WORST_WIDTH = 26  # a longer finding id or error is cut: the cockpit shows it whole


VERDICT_STYLE = {
    Verdict.QUORUM_LOST: ("‼", SEVERITY_STYLE[Severity.CRITICAL]),
    Verdict.UNREACHABLE: ("✗", "bold red"),
    Verdict.DEGRADED: ("▲", "yellow"),
    Verdict.CONNECTING: ("…", "dim"),
    Verdict.OK: ("✔", "green"),
}


def verdict_cell(verdict: Verdict) -> Text:
    symbol, style = VERDICT_STYLE[verdict]
    return Text(f"{symbol} {verdict.word}", style=style)


def age_cell(row: FleetRow, now: dt.datetime) -> str:
    """How long ago the row was read: its freshness."""
    if row.read_at is None:
        return "-"
    seconds = max(0.0, (now - row.read_at).total_seconds())
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.0f}m"


def findings_cell(row: FleetRow) -> Text:
    text = Text()
    for severity, count in row.counts.items():
        if text:
            text.append(" ")
        text.append(f"{SEVERITY_SYMBOL[severity]}{count}", style=SEVERITY_STYLE[severity])
    return text or Text("-")


def cut(text: str) -> str:
    return text if len(text) <= WORST_WIDTH else text[: WORST_WIDTH - 1] + "…"


def worst_cell(row: FleetRow) -> Cell:
    """The worst finding (or why the cluster could not be read), cut to WORST_WIDTH."""
    if row.error and (row.snapshot is None or row.verdict is Verdict.UNREACHABLE):
        return Text(cut(printable(row.error)), style="red")
    snapshot = row.snapshot
    if snapshot is None:
        return "-"
    if not snapshot.findings:
        return Text("none", style="green")
    worst = snapshot.findings[0]  # the engine sorts them worst first
    text = cut(f"{SEVERITY_SYMBOL[worst.severity]} {worst.id}")
    return Text(text, style=SEVERITY_STYLE[worst.severity])


def certs_cell(row: FleetRow) -> str:
    expiry = row.soonest_expiry
    return "-" if expiry is None else f"{expiry.days:.0f}d {expiry.node}"


def row_cells(row: FleetRow, now: dt.datetime) -> tuple[Cell, ...]:
    snapshot = row.snapshot
    etcd = snapshot.etcd if snapshot else None
    leader = etcd.leader if etcd else None
    return (
        row.name,
        verdict_cell(row.verdict),
        f"{etcd.healthy_voting}/{len(etcd.voting)}" if etcd else "-",
        str(etcd.quorum) if etcd else "-",
        f"{etcd.tolerance}/{etcd.design_tolerance}" if etcd else "-",
        (leader.display_name if leader else Text("✗ none", style="red")) if etcd else "-",
        worst_cell(row),
        findings_cell(row),
        certs_cell(row),
        age_cell(row, now),
    )


def rows(fleet: list[FleetRow], now: dt.datetime) -> list[Row]:
    """The fleet's rows in the order given (worst first: `Fleet.rows`)."""
    return [(row.name, row_cells(row, now)) for row in fleet]
