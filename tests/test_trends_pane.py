"""The trends pane, from hand-built snapshots: its figures, its refresh, its picture at 80x24.

No lab here: the figures are constants, so the SVG only changes when the pane's rendering
does (`pytest --snapshot-update` after a deliberate change).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from textual.app import App, ComposeResult
from textual.widgets import Sparkline

from cluster.model import EtcdCluster, LeaderChange, MemberMetrics, MetricsTrend, Snapshot
from widgets.base import QuietStatic
from widgets.rows.trends import TIMELINE_LINES, seconds_text, timeline_lines
from widgets.trends_pane import TrendsPane

NOW = dt.datetime(2023, 3, 10, 9, 0, tzinfo=dt.UTC)
MIB = 1024**2


def member(name: str, fsync: tuple[float, ...], **figures: object) -> MemberMetrics:
    trend = MetricsTrend(
        applied_per_second=(12.0, 15.0, 9.0, 20.0, 18.0, 25.0, 14.0, 16.0),
        db_size=(40 * MIB,) * 4 + (48 * MIB,) * 4,
        db_in_use=(30 * MIB, 31 * MIB, 33 * MIB, 35 * MIB, 36 * MIB, 38 * MIB, 41 * MIB, 42 * MIB),
        fsync_p99=fsync,
        peer_rtt_p99=(0.002, 0.003, 0.002, 0.004, 0.003, 0.002, 0.003, 0.002),
    )
    read = MemberMetrics(
        name,
        f"https://{name}:2379",
        NOW - dt.timedelta(seconds=3),
        window=300.0,
        long_window=900.0,
        has_leader=True,
        db_size=48 * MIB,
        db_in_use=42 * MIB,
        quota=2048 * MIB,
        applied_per_second=16.0,
        fsync_p99=fsync[-1],
        peer_rtt_p99=(("1", 0.002),),
        trend=trend,
    )
    return replace(read, **figures)  # type: ignore[arg-type]


CHANGES = (
    LeaderChange(NOW - dt.timedelta(minutes=9), "cp-1", "cp-2", 3),
    LeaderChange(NOW - dt.timedelta(minutes=4), "cp-2", None, 4),
    LeaderChange(NOW - dt.timedelta(minutes=4), None, "cp-3", 4),
)
SNAPSHOT = Snapshot(
    "prod-eu1",
    NOW,
    EtcdCluster(),
    metrics=(
        member("cp-1", (0.002, 0.003, 0.002, 0.004, 0.003, 0.002, 0.003, 0.0036)),
        member("cp-2", (0.002, 0.01, 0.08, 0.3, 0.62, 0.7, 0.65, 0.61)),
        MemberMetrics("cp-3", "https://cp-3:2379", error="https://cp-3:2379/metrics: no answer"),
    ),
    leader_changes=CHANGES,
)


class TrendsApp(App[None]):
    def compose(self) -> ComposeResult:
        yield TrendsPane(id="trends")

    def on_mount(self) -> None:
        self.query_one(TrendsPane).show_snapshot(SNAPSHOT)


def test_the_trends_tab_at_80x24(snap_compare) -> None:
    assert snap_compare(TrendsApp(), terminal_size=(80, 24))


async def test_a_new_scrape_redraws_its_member_and_the_timeline_grows() -> None:
    app = TrendsApp()
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(TrendsPane)
        values = [w for w in pane.query(QuietStatic) if w.has_class("trend-value")]
        assert [str(v.content) for v in values[:3]] == ["16.0/s", "16.0/s", "-"]
        slow = replace(SNAPSHOT.metrics[0], fsync_p99=1.5, trend=MetricsTrend(fsync_p99=(1.5,)))
        moved = LeaderChange(NOW, "cp-3", "cp-1", 5)
        later = replace(
            SNAPSHOT, metrics=(slow, *SNAPSHOT.metrics[1:]), leader_changes=(*CHANGES, moved)
        )
        pane.show_snapshot(later)
        await pilot.pause()
        values = [w for w in pane.query(QuietStatic) if w.has_class("trend-value")]
        assert "1.50 s" in [str(v.content) for v in values]
        sparklines = list(pane.query(Sparkline))
        assert [1.5] in [list(s.data or []) for s in sparklines]
        timeline = str(pane.query_one("#leader-timeline", QuietStatic).content)
        assert timeline.splitlines()[-1] == "09:00:00  cp-3 → cp-1  term 5"


def test_the_timeline_shows_the_latest_changes_and_counts_the_rest() -> None:
    many = tuple(LeaderChange(NOW, f"m{i}", f"m{i + 1}", i) for i in range(TIMELINE_LINES + 3))
    lines = timeline_lines(many).splitlines()
    assert lines[0] == "… 3 earlier" and len(lines) == TIMELINE_LINES + 1
    assert timeline_lines(()) == "no leader change since the cockpit started"
    assert seconds_text(0.0036) == "3.6 ms" and seconds_text(1.5) == "1.50 s"
