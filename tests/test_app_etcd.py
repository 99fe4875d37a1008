"""Pilot tests of the cockpit on the real lab: rows, leader mark, a stopped member, keys."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from textual.app import App
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widget import Widget

from lab.control import Lab
from tests.helpers import POLL_SECONDS, report_json, wait_until
from tui.app import CockpitApp
from widgets.certificates_pane import CertificatesPane
from widgets.etcd_pane import EtcdPane
from widgets.header import ClusterHeader
from widgets.help import HelpScreen

S = TypeVar("S", bound=Screen[Any])


async def until(pilot: Pilot, condition: Callable[[], object], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await pilot.pause(POLL_SECONDS)


async def screen_up(pilot: Pilot, app: App[Any], kind: type[S], part: str | type[Widget]) -> S:
    """`app`'s top screen once it is a `kind` and composed (`part` is in it): a pushed screen
    is on top before it is mounted, and its widgets are queried only then."""
    await until(pilot, lambda: isinstance(app.screen, kind) and bool(app.screen.query(part)))
    assert isinstance(app.screen, kind)
    return app.screen


def row_texts(table: EtcdPane) -> dict[str, list[str]]:
    return {
        str(table.get_row_at(i)[1]): [str(cell) for cell in table.get_row_at(i)]
        for i in range(table.row_count)
    }


async def test_app_shows_members_leader_and_a_stopped_member(lab: Lab) -> None:
    app = CockpitApp(lab.config(), refresh=0.5)
    async with app.run_test(size=(160, 30)) as pilot:
        table = app.query_one(EtcdPane)
        await until(pilot, lambda: table.row_count == 3)
        rows = row_texts(table)
        assert sorted(rows) == ["cp-1", "cp-2", "cp-3"]
        leaders = [name for name, cells in rows.items() if "★ leader" in cells]
        assert len(leaders) == 1
        header = str(app.query_one(ClusterHeader).render())
        assert "quorum 2" in header and f"★ {leaders[0]}" in header and "OK" in header

        stopped = next(name for name in rows if name != leaders[0])
        lab.stop_node(stopped)
        try:
            await until(pilot, lambda: "✗ down" in row_texts(table)[stopped][0])
            error = row_texts(table)[stopped][-1]
            assert "UNAVAILABLE" in error, error  # stopped: refused at once, no deadline waited
            count = app.refresh_count
            await until(pilot, lambda: app.refresh_count >= count + 2)  # still refreshing
            assert "tolerance 0" in str(app.query_one(ClusterHeader).render())
        finally:
            lab.start_node(stopped)
        await until(pilot, lambda: "● up" in row_texts(table)[stopped][0])

        count = app.refresh_count
        await pilot.press("r")
        await until(pilot, lambda: app.refresh_count > count)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, HelpScreen))
        await pilot.press("q")
    assert app.return_code == 0
    wait_until(lambda: report_json(lab.paths.config)["etcd"]["healthy"] == 3, 15, "lab healthy")


async def test_the_other_tabs_are_mounted_after_the_first_screen_and_kept_current_when_shown(
    lab: Lab,
) -> None:
    """The first screen waits only for what it shows; the panes behind the other tabs come
    right after it, filled from the same snapshot, before any second refresh. Later refreshes
    update the pane on screen; a pane is brought up to date when it is shown."""
    app = CockpitApp(lab.config(), refresh=600)
    async with app.run_test(size=(160, 30)) as pilot:
        await until(pilot, lambda: app.refresh_count == 1)
        assert app.query_one(EtcdPane).row_count == 3
        await app.later_panes()
        certificates = app.query_one(CertificatesPane)
        assert certificates.row_count > 0 and app.refresh_count == 1
        assert {row[1] for row in certificates.row_texts()} == {"cp-1", "cp-2", "cp-3"}
        first = app.snapshot
        assert certificates.shown_snapshot is first
        app.action_refresh_now()
        await until(pilot, lambda: app.refresh_count == 2)
        # Behind its tab the pane is left alone; shown, it is brought up to date at once.
        assert certificates.shown_snapshot is first
        assert app.query_one(EtcdPane).shown_snapshot is app.snapshot
        await pilot.press("3")
        assert certificates.shown_snapshot is app.snapshot and app.snapshot is not first
        await until(pilot, lambda: app.focused is certificates)


async def test_quitting_as_the_first_screen_comes_up_is_clean(lab: Lab) -> None:
    """The operator may quit before the other tabs' panes are mounted: no error, exit 0."""

    class QuitsAtOnce(CockpitApp):
        async def _refresh(self, fresh: bool = False) -> None:
            await super()._refresh(fresh)
            self.exit()

    app = QuitsAtOnce(lab.config(), refresh=600)
    async with app.run_test(size=(160, 30)) as pilot:
        await until(pilot, lambda: app.return_code is not None)
    assert app.return_code == 0 and app.refresh_count == 1
