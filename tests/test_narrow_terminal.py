"""The cockpit at 80x24, honestly: the header names the leader, and the etcd table keeps who is
up, who leads and how far raft got, leaving out the columns a wider terminal adds (which come
back when it widens). The cockpit runs on a hand-built snapshot (`app.show`), its config
pointing at an etcd nobody answers on; no lab."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from rich.text import Text
from textual.geometry import Region
from textual.widget import Widget

from cluster.model import EtcdCluster, EtcdMember, Snapshot
from tests.test_app_etcd import until
from tests.test_hostile_input import config_for
from tui.cli import cockpit_app
from widgets.etcd_pane import EtcdPane
from widgets.header import ClusterHeader
from widgets.rows.common import Column
from widgets.table_pane import hidden_columns

LEADER_ID = 0x2B


def member(number: int) -> EtcdMember:
    return EtcdMember(
        id=0x2A + number - 1,
        name=f"cp-{number}",
        endpoint=f"https://10.0.0.{10 + number}:2379",
        reachable=True,
        version="3.5.16",
        db_size=25_000_000,
        leader_id=LEADER_ID,
        raft_term=4,
        raft_index=123_456,
        raft_applied_index=123_456,
    )


SNAPSHOT = Snapshot(
    "prod-eu1", dt.datetime.now(dt.UTC), EtcdCluster(members=tuple(map(member, (1, 2, 3))))
)
KEPT = {"state", "name", "leader", "index", "applied"}
ADDED_WHEN_WIDE = {"id", "version", "endpoint"}


def shown(pane: EtcdPane) -> set[str]:
    return {column.key for column in pane.shown_columns}


def narrow(pane: EtcdPane) -> bool:
    return shown(pane) >= KEPT and not shown(pane) & ADDED_WHEN_WIDE


def first_line(widget: Widget) -> str:
    """What the terminal shows on the widget's first line, cut where the screen cuts it."""
    return widget.render_lines(Region(0, 0, widget.size.width, 1))[0].text


async def test_at_80x24_the_header_names_the_leader_and_the_etcd_table_fits(
    tmp_path: Path,
) -> None:
    app = cockpit_app(config_for(tmp_path), refresh=3600)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.refresh_count >= 1)  # the unreachable etcd's snapshot
        app.show(SNAPSHOT)
        pane = app.query_one(EtcdPane)
        await until(pilot, lambda: pane.row_count == 3)
        assert "★ cp-2" in first_line(app.query_one(ClusterHeader))
        await until(pilot, lambda: narrow(pane))
        assert pane.virtual_size.width <= pane.size.width  # nothing scrolled off the edge
        assert "RAFT INDEX" in first_line(pane) and "ENDPOINT" not in first_line(pane)
        assert pane.row_texts()[1][2] == "https://10.0.0.12:2379"  # hidden, not lost

        await pilot.resize_terminal(200, 50)
        await until(pilot, lambda: shown(pane) == {column.key for column in pane.COLUMNS})
        assert "ENDPOINT" in first_line(pane) and "VERSION" in first_line(pane)
        assert [str(c) for c in pane.get_row_at(1)][2] == "https://10.0.0.12:2379"
        await pilot.resize_terminal(80, 24)
        await until(pilot, lambda: narrow(pane))


def test_the_highest_priority_number_goes_first_and_priority_1_stays() -> None:
    columns = (Column("a", "A", 1), Column("b", "B", 3), Column("c", "C", 2), Column("d", "D", 3))
    rows = [("x", ("aaaa", "bbbb", "cccc", "dddd"))]  # each column claims 4 + 2 cells
    assert hidden_columns(columns, rows, 24) == frozenset()
    assert hidden_columns(columns, rows, 23) == {"d"}  # of equal priorities, the rightmost
    assert hidden_columns(columns, rows, 12) == {"b", "d"}
    assert hidden_columns(columns, rows, 1) == {"b", "c", "d"}  # "a" stays: the table scrolls
    # A long free text claims at most FREE_TEXT_CLAIM cells: it does not push the rest out.
    long = [("x", ("aaaa", "bbbb", "cccc", Text("d" * 500)))]
    assert hidden_columns(columns, long, 60) == frozenset()
