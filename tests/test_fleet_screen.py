"""The fleet screen from hand-built rows: verdicts, worst-first order, the filter, and its
picture at 80x24.

No lab here (tests/test_fleet_lab.py has the real clusters): the rows are constants, so the
SVG only changes when the screen's rendering does (`pytest --snapshot-update` after a
deliberate change).
"""

from __future__ import annotations

import datetime as dt

from textual.app import App
from textual.screen import Screen

from cluster.fleet import FleetRow, Verdict, sort_key
from cluster.model import EtcdCluster, EtcdMember, Finding, Severity, Snapshot
from cluster.nodes.model import Certificate, NodeState
from tests.test_app_etcd import until
from tui.fleet import FleetScreen
from widgets.fleet_table import FleetTable
from widgets.rows.fleet import age_cell, certs_cell

NOW = dt.datetime(2023, 3, 10, 9, 0, tzinfo=dt.UTC)


def members(healthy: int, total: int = 3, leader: int = 1) -> EtcdCluster:
    return EtcdCluster(
        tuple(
            EtcdMember(
                n,
                f"cp-{n}",
                f"https://10.0.0.{n}:2379",
                reachable=n <= healthy,
                leader_id=leader if n <= healthy else None,
            )
            for n in range(1, total + 1)
        )
    )


def finding(id: str, severity: Severity) -> Finding:
    return Finding(id, severity, "etcd", id, "evidence", "next")


def cert_node(days: int) -> NodeState:
    cert = Certificate("/etc/kubernetes/pki/apiserver.crt", not_after=NOW + dt.timedelta(days))
    return NodeState("cp-1", "10.0.0.1", reachable=True, certificates=(cert,))


def row(name: str, etcd: EtcdCluster, *found: Finding, days: int = 300, age: int = 2) -> FleetRow:
    snapshot = Snapshot(name, NOW, etcd, findings=found, nodes=(cert_node(days),))
    return FleetRow(name, snapshot, NOW - dt.timedelta(seconds=age))


ROWS = [
    row("prod-eu1", members(3)),
    row(
        "prod-us2",
        members(1, leader=0),
        finding("etcd.quorum-lost", Severity.CRITICAL),
        finding("etcd.no-leader", Severity.CRITICAL),
        age=4,
    ),
    row("staging", members(2), finding("etcd.no-fault-tolerance", Severity.WARNING), days=12),
    FleetRow("edge-7", None, NOW - dt.timedelta(seconds=1), "ConnectionRefusedError: refused"),
    FleetRow("lab", None, None, None),
    row("prod-ap1", members(3), finding("etcd.fsync-slow", Severity.INFO), days=41),
]
FLEET = sorted(ROWS, key=sort_key)


class FleetShotApp(App[None]):
    def get_default_screen(self) -> Screen:
        return Shown(id="_default")


class Shown(FleetScreen):
    def on_mount(self) -> None:
        self.show(FLEET, NOW, 4)


def test_verdicts_and_worst_first() -> None:
    assert [(r.name, r.verdict) for r in FLEET] == [
        ("prod-us2", Verdict.QUORUM_LOST),
        ("edge-7", Verdict.UNREACHABLE),
        ("staging", Verdict.DEGRADED),
        ("lab", Verdict.CONNECTING),
        ("prod-ap1", Verdict.OK),  # an info finding is no trouble
        ("prod-eu1", Verdict.OK),
    ]
    staging = next(r for r in FLEET if r.name == "staging")
    assert staging.soonest_expiry is not None and round(staging.soonest_expiry.days) == 12
    assert certs_cell(staging) == "12d cp-1"  # a wide terminal's CERT column
    assert staging.fails(Severity.WARNING) and not staging.fails(Severity.ERROR)
    edge = next(r for r in FLEET if r.name == "edge-7")
    assert edge.fails(Severity.CRITICAL)  # a cluster nobody can read counts as critical
    assert age_cell(edge, NOW) == "1s" and age_cell(FLEET[3], NOW) == "-"


async def test_the_filter_keeps_the_matching_clusters() -> None:
    app = FleetShotApp()
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.screen.query_one(FleetTable)
        await until(pilot, lambda: table.row_count == len(ROWS))
        table.set_filter("prod")
        assert [r[0] for r in table.row_texts()] == ["prod-us2", "prod-ap1", "prod-eu1"]
        table.set_filter("")
        assert table.row_count == len(ROWS)


def test_the_fleet_screen_at_80x24(snap_compare) -> None:
    assert snap_compare(FleetShotApp(), terminal_size=(80, 24))
