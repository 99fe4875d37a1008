"""The trends pane: per member, sparklines of etcd's own figures with the value beside each,
and the leader changes since the cockpit started (widgets/rows/trends.py builds the lines).

A row per figure, a column per member, so five figures of three members fit 80x24; the
sparklines are Textual's own, redrawn only when a member's trend changed (a new scrape), not
on every refresh. The column set is rebuilt only when the members change.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Sparkline, Static

from cluster.model import MemberMetrics, Snapshot
from widgets.base import QuietStatic, SnapshotView
from widgets.rows.trends import FIGURES, member_heading, timeline_lines


class TrendsPane(SnapshotView, VerticalScroll):
    DEFAULT_CSS = """
    TrendsPane { height: 1fr; padding: 0 1; }
    TrendsPane #trend-rows { height: auto; }
    TrendsPane .trend-row { height: 1; }
    TrendsPane .trend-label { width: 13; color: $text-muted; }
    TrendsPane .trend-heading {
        width: 1fr; text-style: bold; text-wrap: nowrap; text-overflow: ellipsis;
    }
    TrendsPane .trend-cell { width: 1fr; height: 1; padding-right: 1; }
    TrendsPane Sparkline { width: 1fr; height: 1; }
    TrendsPane .trend-value { width: 9; text-align: right; }
    TrendsPane #leader-timeline { height: auto; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._members: tuple[str, ...] | None = None
        self._shown: dict[str, MemberMetrics] = {}  # the figures each column shows
        self._headings: list[QuietStatic] = []
        self._cells: list[list[tuple[Sparkline, QuietStatic]]] = []  # by figure, then member

    def compose(self) -> ComposeResult:
        yield Vertical(id="trend-rows")
        yield Static("leader changes", classes="section")
        yield QuietStatic("", id="leader-timeline")

    def show_snapshot(self, snapshot: Snapshot) -> None:
        members = tuple(m.member for m in snapshot.metrics)
        if members != self._members:
            self._members = members
            self._shown = {}
            self._rebuild(snapshot.metrics)
        for index, metrics in enumerate(snapshot.metrics):
            self._headings[index].update(member_heading(metrics, snapshot.collected_at))
            if self._shown.get(metrics.member) is metrics:
                continue
            self._shown[metrics.member] = metrics
            for row, figure in enumerate(FIGURES):
                cell = self._cells[row][index]
                cell[0].data = list(figure.series(metrics.trend))
                cell[1].update(figure.value(metrics))
        self.query_one("#leader-timeline", QuietStatic).update(
            timeline_lines(snapshot.leader_changes)
        )

    def _rebuild(self, metrics: tuple[MemberMetrics, ...]) -> None:
        rows = self.query_one("#trend-rows", Vertical)
        rows.remove_children()
        if not metrics:
            self._headings, self._cells = [], []
            rows.mount(QuietStatic("no member's /metrics read yet"))
            return
        self._headings = [QuietStatic("", classes="trend-heading") for _ in metrics]
        self._cells = [
            [(Sparkline([]), QuietStatic("-", classes="trend-value")) for _ in metrics]
            for _ in FIGURES
        ]
        heading = Horizontal(Static("", classes="trend-label"), *self._headings)
        lines = [heading]
        for figure, cells in zip(FIGURES, self._cells, strict=True):
            boxes = [Horizontal(*cell, classes="trend-cell") for cell in cells]
            lines.append(Horizontal(Static(figure.label, classes="trend-label"), *boxes))
        for line in lines:
            line.add_class("trend-row")
        rows.mount(*lines)
