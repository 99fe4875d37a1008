"""Pilot tests of the confirmation dialog: Cancel first, typed names, refusals, read-only."""

from __future__ import annotations

from textual.app import App
from textual.widgets import Button, Input, Static

from actions.base import Plan, QuorumView, Verdict
from widgets.confirm import ConfirmScreen

PLAN = Plan(
    summary="Remove etcd member cp-3",
    steps=("Send MemberRemove", "Re-read the member list"),
    commands=("etcdctl member remove 0123 --endpoints=https://127.0.0.11:2379",),
    before=QuorumView(3, 2, 1),
    after=QuorumView(2, 2, 0),
)


class DialogApp(App[None]):
    def __init__(self, verdict: Verdict, read_only: bool = False) -> None:
        super().__init__()
        self.verdict = verdict
        self.read_only = read_only
        self.answers: list[str | None] = []

    def on_mount(self) -> None:
        self.push_screen(
            ConfirmScreen("Remove etcd member: cp-3", self.verdict, PLAN, self.read_only),
            self.answers.append,
        )


def confirm_button(app: App) -> Button:
    return app.screen.query_one("#confirm", Button)


async def test_cancel_has_focus_and_enter_does_nothing() -> None:
    app = DialogApp(Verdict.allowed("fine"))
    async with app.run_test() as pilot:
        await pilot.pause()
        assert app.focused is not None and app.focused.id == "cancel"
        text = " ".join(str(w.render()) for w in app.screen.query(Static))
        assert "quorum: 3 voting, quorum 2, tolerance 1  →  2 voting, quorum 2, tolerance 0" in text
        assert "etcdctl member remove 0123" in text
        await pilot.press("enter")
        await pilot.pause()
    assert app.answers == [None]


async def test_typed_confirmation_enables_confirm_only_for_the_exact_name() -> None:
    app = DialogApp(Verdict.confirm("cp-3", "removes cp-3 for good"))
    async with app.run_test() as pilot:
        await pilot.pause()
        assert confirm_button(app).disabled
        app.screen.query_one("#typed", Input).focus()
        await pilot.press("c", "p", "-")
        assert confirm_button(app).disabled
        await pilot.press("3", "3")
        assert confirm_button(app).disabled
        await pilot.press("backspace")
        assert not confirm_button(app).disabled
        await pilot.press("enter")
        await pilot.pause()
    assert app.answers == ["cp-3"]


async def test_refused_shows_reasons_and_cannot_confirm() -> None:
    app = DialogApp(Verdict.refused("cp-1 is the leader: move leadership first"))
    async with app.run_test() as pilot:
        await pilot.pause()
        assert confirm_button(app).disabled
        assert "REFUSED" in str(app.screen.query_one("#verdict", Static).render())
        await pilot.press("escape")
        await pilot.pause()
    assert app.answers == [None]


async def test_read_only_disables_even_allowed_actions() -> None:
    app = DialogApp(Verdict.confirm("cp-3"), read_only=True)
    async with app.run_test() as pilot:
        await pilot.pause()
        verdict = str(app.screen.query_one("#verdict", Static).render())
        assert "DISABLED" in verdict and "read-only" in verdict
        assert app.screen.query_one("#typed", Input).disabled
        assert confirm_button(app).disabled
        await pilot.click("#confirm")
        await pilot.press("escape")
        await pilot.pause()
    assert app.answers == [None]
