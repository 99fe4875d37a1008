"""Pilot tests: actions from the pane keys and the palette, the dialog flow, read-only mode."""

from __future__ import annotations

from pathlib import Path

from actions.audit import AuditLog
from lab.control import Lab
from tests.test_app_etcd import row_texts, screen_up, until
from tui.app import CockpitApp
from tui.commands import CockpitCommands
from widgets.confirm import ConfirmScreen
from widgets.etcd_pane import EtcdPane
from widgets.incident_bar import IncidentBar


def select(table: EtcdPane, name: str) -> None:
    table.move_cursor(row=sorted(row_texts(table)).index(name))


def follower_of(app: CockpitApp) -> str:
    assert app.snapshot is not None and app.snapshot.etcd.leader is not None
    return next(m.name for m in app.snapshot.etcd.members if not m.is_leader)


async def test_read_only_shows_actions_but_nothing_can_mutate(lab: Lab, tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")
    app = CockpitApp(lab.config(), refresh=0.5, read_only=True, audit=audit)
    async with app.run_test(size=(160, 40)) as pilot:
        table = app.query_one(EtcdPane)
        await until(
            pilot, lambda: table.row_count == 3 and app.snapshot and app.snapshot.etcd.leader
        )
        leader = app.snapshot.etcd.leader.name  # type: ignore[union-attr]
        target = follower_of(app)
        select(table, target)
        table.focus()
        await pilot.press("l")
        dialog = await screen_up(pilot, app, ConfirmScreen, "#title")
        assert "read-only" in str(dialog.query_one("#verdict").render())
        assert dialog.query_one("#confirm").disabled
        await pilot.press("tab", "tab", "enter")  # even trying to reach Confirm does nothing
        await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        assert "READ-ONLY" in str(app.query_one("#status-line").render())
        assert app.last_result is None
        assert app.snapshot.etcd.leader.name == leader  # type: ignore[union-attr]
    assert audit.read() == []


async def test_move_leader_from_the_pane_through_the_dialog(lab: Lab, tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")
    app = CockpitApp(lab.config(), refresh=0.5, audit=audit)
    async with app.run_test(size=(160, 40)) as pilot:
        table = app.query_one(EtcdPane)
        await until(
            pilot, lambda: table.row_count == 3 and app.snapshot and app.snapshot.etcd.leader
        )
        target = follower_of(app)
        select(table, target)
        table.focus()
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        # Cancel has the focus once the dialog is up (AUTO_FOCUS, as the screen activates)
        await until(pilot, lambda: app.focused is not None and app.focused.id == "cancel")
        assert "etcdctl move-leader" in str(app.screen.query_one("#commands").render())
        await pilot.press("tab", "enter")  # Confirm
        await until(pilot, lambda: app.last_result is not None, timeout=30)
        assert app.last_result is not None and app.last_result.status.value == "verified"
        await until(
            pilot, lambda: app.snapshot.etcd.leader and app.snapshot.etcd.leader.name == target
        )
        # The incident bar tells a watching colleague what was just done, and how it ended.
        bar = app.query_one(IncidentBar)
        await until(pilot, lambda: f"move-leader {target} → ✔ verified" in str(bar.render()))
    phases = [r["phase"] for r in audit.read()]
    assert phases == ["intent", "outcome"]


async def test_palette_offers_every_pane_and_every_action(lab: Lab) -> None:
    app = CockpitApp(lab.config(), refresh=0.5)
    async with app.run_test(size=(160, 40)) as pilot:
        await until(pilot, lambda: app.snapshot is not None and len(app.snapshot.nodes) == 3)
        provider = CockpitCommands(app.screen)
        titles = [text for text, _, _ in provider.commands()]
        assert "Show pane: etcd" in titles
        assert "Add etcd member (learner)" in titles
        for name in ("cp-1", "cp-2", "cp-3"):
            for title in ("Move etcd leadership", "Remove etcd member", "Defragment member"):
                assert f"{title}: {name}" in titles
        assert "Stop static pod(s): cp-2/etcd" in titles and "Start static pod(s): cp-2" in titles
        await pilot.press("ctrl+p")
        await pilot.press(*"Remove etcd member: cp-3")
        await pilot.press("enter")
        dialog = await screen_up(pilot, app, ConfirmScreen, "#title")
        assert "cp-3" in str(dialog.query_one("#title").render())
        await pilot.press("escape")
