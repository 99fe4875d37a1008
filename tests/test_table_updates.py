"""A refresh or a key costs the UI only what changed (issue 7: < 50 ms per key with 7 nodes x
40 certificates): an unchanged refresh leaves a table alone, a changed value is rewritten in
place with the cursor where the operator left it, a pane shown again is drawn from the rows its
table already rendered, and importing the cockpit leaves the cluster clients to the collector's
thread, and the key footer is rebuilt only when its keys change. Pure tests on hand-built
rows; no lab."""

from __future__ import annotations

import datetime as dt
import gc
import subprocess
import sys
from collections.abc import Iterable
from typing import Any

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.widgets import TabbedContent, TabPane
from textual.widgets._footer import FooterKey

from cluster.model import EtcdCluster, Snapshot
from tests.helpers import PROJECT
from tui.startup import GC_YOUNG_THRESHOLD, calm_garbage_collector
from widgets.base import QuietStatic
from widgets.footer import QuietFooter
from widgets.rows.common import Column, Row
from widgets.table_pane import TablePane

SNAPSHOT = Snapshot("test", dt.datetime.now(dt.UTC), EtcdCluster())
UP = [("a", ("cp-a", "up")), ("b", ("cp-b", "up")), ("c", ("cp-c", "up"))]


class Listing(TablePane):
    """Shows `listed` whatever the snapshot; counts how it changes the table."""

    COLUMNS = (Column("name", "NAME"), Column("state", "STATE"))

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.listed: list[Row] = list(UP)
        self.cleared = 0
        self.updated: list[tuple[str, str]] = []

    def table_rows(self, snapshot: Snapshot) -> Iterable[Row]:
        return self.listed

    def clear(self, columns: bool = False) -> Listing:
        self.cleared += 1
        return super().clear(columns)

    def update_cell(self, row_key: Any, column_key: Any, value: Any, **kwargs: Any) -> None:
        self.updated.append((str(row_key), str(column_key)))
        super().update_cell(row_key, column_key, value, **kwargs)


class TwoPanes(App[None]):
    def compose(self) -> ComposeResult:
        with TabbedContent(id="panes"):
            with TabPane("one", id="one"):
                yield Listing(id="listing")
            with TabPane("two", id="two"):
                yield Listing(id="other")


async def shown(app: TwoPanes) -> Listing:
    table = app.query_one("#listing", Listing)
    table.show_snapshot(SNAPSHOT)
    table.focus()
    table.move_cursor(row=1)  # on cp-b
    return table


async def test_an_unchanged_refresh_leaves_the_table_alone() -> None:
    async with TwoPanes().run_test() as pilot:
        table = await shown(pilot.app)
        table.show_snapshot(SNAPSHOT)
        assert (table.cleared, table.updated) == (1, [])  # only the first fill
        assert table.selected_key == "b"


async def test_a_changed_value_is_rewritten_in_place_and_the_cursor_stays() -> None:
    async with TwoPanes().run_test() as pilot:
        table = await shown(pilot.app)
        table.listed = [("a", ("cp-a", "up")), ("b", ("cp-b", "DOWN")), ("c", ("cp-c", "up"))]
        table.show_snapshot(SNAPSHOT)
        assert (table.cleared, table.updated) == (1, [("b", "state")])
        assert table.row_texts() == [["cp-a", "up"], ["cp-b", "DOWN"], ["cp-c", "up"]]
        assert table.selected_key == "b"


async def test_rows_that_come_go_or_move_rebuild_the_table_in_order_keeping_the_cursor() -> None:
    async with TwoPanes().run_test() as pilot:
        table = await shown(pilot.app)
        table.listed = [("c", ("cp-c", "DOWN")), ("b", ("cp-b", "up"))]  # worst first; a gone
        table.show_snapshot(SNAPSHOT)
        assert table.cleared == 2
        assert table.row_texts() == [["cp-c", "DOWN"], ["cp-b", "up"]]
        assert table.selected_key == "b"


async def test_the_filter_still_applies_to_updated_rows() -> None:
    async with TwoPanes().run_test() as pilot:
        table = await shown(pilot.app)
        table.set_filter("cp-c")
        assert table.row_texts() == [["cp-c", "up"]]
        table.listed = [("a", ("cp-a", "up")), ("b", ("cp-b", "up")), ("c", ("cp-c", "DOWN"))]
        table.show_snapshot(SNAPSHOT)
        assert table.row_texts() == [["cp-c", "DOWN"]]
        table.set_filter("")
        assert [row[0] for row in table.row_texts()] == ["cp-a", "cp-b", "cp-c"]


async def test_a_pane_shown_again_is_drawn_from_the_rows_its_table_rendered() -> None:
    async with TwoPanes().run_test() as pilot:
        app, table = pilot.app, await shown(pilot.app)
        panes = app.query_one("#panes", TabbedContent)
        await pilot.pause()
        rendered = set(table._cell_render_cache.keys())
        assert rendered
        for pane, focus in (("two", "#other"), ("one", "#listing")):  # blur, hide, show, focus
            panes.active = pane
            app.query_one(focus).focus()
            await pilot.pause()
        assert rendered <= set(table._cell_render_cache.keys())  # nothing was dropped
        assert table.cursor_coordinate == Coordinate(1, 0)
        app.theme = "textual-light"  # other colours: the rendered cells are stale
        await pilot.pause()
        assert not rendered & set(table._cell_render_cache.keys())


async def test_a_static_updated_with_what_it_shows_does_not_repaint() -> None:
    class Line(App[None]):
        def compose(self) -> ComposeResult:
            yield QuietStatic("refreshed every 1 s", id="line")

    async with Line().run_test() as pilot:
        line = pilot.app.query_one("#line", QuietStatic)
        await pilot.pause()
        repaints: list[dict[str, Any]] = []
        line.refresh = lambda *regions, **how: repaints.append(how) or line  # type: ignore[method-assign]
        line.update("refreshed every 1 s")
        assert repaints == []
        line.update("etcd: deadline exceeded")
        assert len(repaints) == 1
        assert str(line.content) == "etcd: deadline exceeded"


def test_importing_the_cockpit_leaves_the_cluster_clients_to_the_collector_thread() -> None:
    """Launch to first screen is measured against `import textual`: the gRPC, SSH and
    Kubernetes clients load on the collector's thread, once the UI is starting."""
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, tui.app\n"
            "print(sorted(m for m in ('grpc', 'asyncssh', 'kubernetes', 'actions.registry')"
            " if m in sys.modules))",
        ],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert loaded == "[]"


def test_calming_the_garbage_collector_freezes_startup_objects_once_and_turns_it_on() -> None:
    """A quick launch runs without the collector until the first screen; then startup's
    objects are frozen out of its walks and it is back on."""
    threshold, frozen = gc.get_threshold(), gc.get_freeze_count()  # an app test may have run
    gc.disable()
    try:
        calm_garbage_collector()
        after = gc.get_freeze_count()
        calm_garbage_collector()
        assert after > 0 and gc.get_freeze_count() == after
        assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD
        assert gc.isenabled()
    finally:
        gc.enable()
        if not frozen:
            gc.unfreeze()
            gc.set_threshold(*threshold)


class CountingFooter(QuietFooter):
    rebuilt = 0

    async def recompose(self) -> None:
        self.rebuilt += 1
        await super().recompose()


class Marked(Listing):
    BINDINGS = [Binding("m", "mark", "Mark row")]


async def test_the_footer_is_rebuilt_once_per_change_of_the_keys_it_shows() -> None:
    class Keys(App[None]):
        def compose(self) -> ComposeResult:
            yield Listing(id="one")
            yield Listing(id="two")  # the same keys as one
            yield Marked(id="marked")  # one more key
            yield CountingFooter()

    async with Keys().run_test() as pilot:
        app = pilot.app
        footer = app.query_one(CountingFooter)
        app.query_one("#one").focus()
        await pilot.pause()
        rebuilt = footer.rebuilt
        assert rebuilt >= 1
        for _ in range(3):  # a burst of signals, nothing new to show
            app.screen.refresh_bindings()
        app.query_one("#two").focus()
        await pilot.pause()
        assert footer.rebuilt == rebuilt
        app.query_one("#marked").focus()
        await pilot.pause()
        assert footer.rebuilt == rebuilt + 1
        assert "Mark row" in {key.description for key in footer.query(FooterKey)}
