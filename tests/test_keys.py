"""Pilot tests for the keyboard: every key the help lists is pressed and does what it says.

The help is built from the bindings, so this walks the same list an operator reads; a key
whose action has no expectation here fails the test (add one when adding a key). The app runs
read-only so the action keys open their (disabled) confirmation dialogs and change nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual.command import CommandPalette
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import DataTable, TabbedContent

from actions.audit import AuditLog
from actions.specs import SPECS
from lab.control import Lab
from tests.helpers import running_lab
from tests.test_app_etcd import screen_up, until
from tui.app import TABLES_SCOPE, CockpitApp
from tui.commands import CockpitCommands
from widgets.add_member import AddMemberScreen
from widgets.confirm import ConfirmScreen
from widgets.filter import FilterableTable, FilterScreen
from widgets.help import HelpKey, HelpScreen, own_bindings
from widgets.incident_bar import IncidentBar
from widgets.static_pods_pane import StaticPodsPane
from widgets.table_pane import TablePane

NO_MATCH = "no-row-has-this-text"


@pytest.fixture(scope="module")
def incident_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A lab with an incident, so every table (findings included) has rows to filter."""
    with running_lab(tmp_path_factory.mktemp("keys-lab"), scenarios=("cni-conflict",)) as lab:
        yield lab


# Keys that open a screen, by action (or by the action's argument).
MODALS: dict[str, type[Screen]] = {
    "help": HelpScreen,
    "command_palette": CommandPalette,
    "member-add": AddMemberScreen,
}


def panes(app: CockpitApp) -> TabbedContent:
    return app.query_one("#panes", TabbedContent)


def widget_for(app: CockpitApp, key: HelpKey, pane_id: str) -> DataTable:
    """Shows the pane and returns (focused) its first widget that binds the key."""
    panes(app).active = pane_id
    widget = next(
        w
        for w in panes(app).get_pane(pane_id).query("*")
        if any(b.key == key.key for b in own_bindings(w))
    )
    widget.focus()
    assert isinstance(widget, DataTable)
    return widget


def panes_of(app: CockpitApp, key: HelpKey) -> list[str]:
    """The panes a key works in: all of them for the tables' keys, else the one it names."""
    if key.scope == TABLES_SCOPE:  # the panes that have a table
        return [p for p in app.pane_ids if panes(app).get_pane(p).query(FilterableTable)]
    return [p for p in app.pane_ids if f"{panes(app).get_tab(p).label.plain} pane" == key.scope]


async def close_modal(pilot: Pilot, app: CockpitApp) -> None:
    await pilot.press("escape")
    await until(pilot, lambda: len(app.screen_stack) == 1)


async def opens(
    pilot: Pilot,
    app: CockpitApp,
    key: HelpKey,
    screen: type[Screen],
    inspect: Callable[[Screen], None] = lambda _: None,
) -> None:
    """Presses the key, waits for that screen, inspects it and closes it again."""
    await pilot.press(key.key)
    await until(pilot, lambda: isinstance(app.screen, screen))
    inspect(app.screen)
    await close_modal(pilot, app)


def read_only_dialog_for(action: str) -> Callable[[Screen], None]:
    def inspect(dialog: Screen) -> None:
        assert SPECS[action].title in str(dialog.query_one("#title").render())
        assert dialog.query_one("#confirm").disabled  # read-only

    return inspect


async def filter_rows(pilot: Pilot, app: CockpitApp, text: str) -> None:
    """Types `text` into the filter dialog (replacing what it holds) and closes it."""
    await pilot.press("slash")
    await until(pilot, lambda: isinstance(app.screen, FilterScreen))
    await pilot.press(*["backspace"] * len(NO_MATCH), *text, "enter")
    await until(pilot, lambda: not isinstance(app.screen, FilterScreen))


def every_row(table: FilterableTable) -> int:
    """How many rows the table draws from the snapshot it shows, filter or not (a refresh
    may land at any time: the incident lab's findings come and go)."""
    assert isinstance(table, TablePane) and table.shown_snapshot is not None
    return len(list(table.table_rows(table.shown_snapshot)))


async def check_filter(pilot: Pilot, app: CockpitApp, table: FilterableTable) -> None:
    assert table.row_count > 0, f"{table.id}: nothing to filter"
    await filter_rows(pilot, app, NO_MATCH)
    await until(pilot, lambda: table.row_count == 0)
    assert NO_MATCH in str(table.border_title)
    refreshes = app.refresh_count
    app.action_refresh_now()
    await until(pilot, lambda: app.refresh_count > refreshes)
    assert table.row_count == 0, "the filter must survive a refresh"
    await filter_rows(pilot, app, "")
    await until(pilot, lambda: table.row_count == every_row(table) > 0)
    assert not table.border_title


async def check_key(pilot: Pilot, app: CockpitApp, key: HelpKey, target: DataTable | None) -> None:
    action, _, argument = key.action.partition("(")
    argument = argument.rstrip(")").strip("'")
    if action == "refresh_now":
        refreshes = app.refresh_count
        await pilot.press(key.key)
        await until(pilot, lambda: app.refresh_count > refreshes)
    elif (argument or action) in MODALS:
        await opens(pilot, app, key, MODALS[argument or action])
    elif action == "show_pane":
        wanted = app.pane_ids[int(argument) - 1]
        other = next(p for p in app.pane_ids if p != wanted)
        panes(app).active = other
        await pilot.press(key.key)
        await until(pilot, lambda: panes(app).active == wanted)
        # The footer follows: the shown pane's widget has the focus.
        assert app.focused is not None and panes(app).get_pane(wanted) in app.focused.ancestors
    elif action == "filter":
        assert isinstance(target, FilterableTable)
        await check_filter(pilot, app, target)
    elif action == "request":
        await opens(pilot, app, key, ConfirmScreen, read_only_dialog_for(argument))
    elif action == "act":  # the findings pane: the selected finding's action, or why not
        notes = len(app._notifications)
        await pilot.press(key.key)
        await until(
            pilot,
            lambda: isinstance(app.screen, ConfirmScreen) or len(app._notifications) > notes,
        )
        if isinstance(app.screen, ConfirmScreen):
            await close_modal(pilot, app)
    else:
        pytest.fail(f"help lists {key.display} ({key.action}) but this test has no expectation")


async def test_every_key_in_help_does_what_it_says(incident_lab: Lab, tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")
    # A long refresh interval: only the keys (and this test) refresh.
    app = CockpitApp(incident_lab.config(), refresh=600, read_only=True, audit=audit)
    async with app.run_test(size=(120, 36)) as pilot:
        await until(
            pilot,
            lambda: (
                app.snapshot is not None
                and len(app.snapshot.nodes) == 3
                and bool(app.query(StaticPodsPane))
            ),  # the panes behind the tabs come after
        )
        keys = app.help_keys()
        await pilot.press("question_mark")
        help_screen = await screen_up(pilot, app, HelpScreen, "#help-text")
        help_text = str(help_screen.query_one("#help-text").render())
        for key in keys:
            assert key.description in help_text and key.display in help_text, key
        await close_modal(pilot, app)

        palette = [text for text, _, _ in CockpitCommands(app.screen).commands()]
        for pane_id in app.pane_ids:
            assert f"Show pane: {panes(app).get_tab(pane_id).label.plain}" in palette
        assert {"Refresh now", "Show every key (help)"} <= set(palette)
        assert "Stop static pod(s): cp-1/kube-scheduler" in palette  # every component

        actions = {k.action.partition("(")[0] for k in keys}
        assert {"quit", "help", "refresh_now", "show_pane", "filter", "request"} <= actions
        assert {"S", "T", "l", "x", "slash", "1", "5"} <= {k.key for k in keys}
        for key in keys:
            if key.scope == "everywhere" and key.action != "quit":
                await check_key(pilot, app, key, None)
            for pane_id in [] if key.scope == "everywhere" else panes_of(app, key):
                await check_key(pilot, app, key, widget_for(app, key, pane_id))
        assert "watching" in str(app.query_one(IncidentBar).render())
        await pilot.press(next(k.key for k in keys if k.action == "quit"))
        await until(pilot, lambda: app.return_code is not None)
    assert audit.read() == []  # read-only: no key changed anything
