"""The confirmation dialog every action goes through.

It shows what will happen, quorum and tolerance before → after, the guard's verdict and reasons,
and the equivalent commands. Focus starts on Cancel, so Enter alone never mutates anything;
actions that reduce fault tolerance or remove a member enable Confirm only once the exact name
is typed. Refused actions and read-only mode show everything but keep Confirm disabled.
"""

from __future__ import annotations

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from actions.base import Plan, Verdict, VerdictKind
from actions.specs import READ_ONLY_REASON


class ConfirmScreen(ModalScreen[str | None]):
    """Dismisses with the confirmation (typed text, or "yes") or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    # Focus starts on Cancel; set by the screen as it is shown, so a dialog closed before it
    # finished mounting (an operator quick on Esc) has nothing left to look up.
    AUTO_FOCUS = "#cancel"
    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > VerticalScroll {
        width: 96%; max-width: 110; height: auto; max-height: 96%;
        border: thick $warning; background: $surface; padding: 0 1;
    }
    ConfirmScreen .verdict-refused { color: $error; text-style: bold; }
    ConfirmScreen .verdict-confirm { color: $warning; text-style: bold; }
    ConfirmScreen .verdict-allowed { color: $success; text-style: bold; }
    ConfirmScreen #commands { color: $text-muted; }
    ConfirmScreen Horizontal { height: auto; align-horizontal: right; }
    ConfirmScreen Button { margin: 0 1; }
    """

    def __init__(
        self, title: str, verdict: Verdict, plan: Plan | None, read_only: bool = False
    ) -> None:
        super().__init__()
        self.title_text = title
        self.verdict = verdict
        self.plan = plan
        self.read_only = read_only

    @property
    def enabled(self) -> bool:
        return not (self.read_only or self.verdict.is_refused)

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(f"[b]{escape(self.title_text)}[/b]", id="title")
            yield from self._plan_lines()
            yield self._verdict_line()
            if self.verdict.kind is VerdictKind.CONFIRM:
                yield Input(
                    placeholder=f"type {self.verdict.confirm_text} to confirm",
                    id="typed",
                    disabled=not self.enabled,
                )
            with Horizontal():
                yield Button("Cancel", id="cancel", variant="primary")
                yield Button(
                    "Confirm",
                    id="confirm",
                    variant="error",
                    disabled=not self.enabled or self.verdict.kind is VerdictKind.CONFIRM,
                )

    def _plan_lines(self) -> ComposeResult:
        if self.plan is None:
            return
        plan = self.plan
        steps = "\n".join(f"  {i}. {escape(step)}" for i, step in enumerate(plan.steps, 1))
        yield Static(f"{escape(plan.summary)}\n{steps}", id="plan")
        yield Static(f"quorum: {plan.before.describe()}  →  {plan.after.describe()}", id="quorum")
        commands = "\n".join(f"$ {escape(c)}" for c in plan.commands)
        follow = "\n".join(f"then: {escape(f)}" for f in plan.follow_up)
        yield Static(
            "equivalent commands:\n" + commands + (f"\n{follow}" if follow else ""), id="commands"
        )

    def _verdict_line(self) -> Static:
        reasons = "; ".join(self.verdict.reasons)
        if self.read_only:
            return Static(
                f"⛔ DISABLED — {READ_ONLY_REASON}", id="verdict", classes="verdict-refused"
            )
        if self.verdict.is_refused:
            return Static(
                f"✋ REFUSED — {escape(reasons)}", id="verdict", classes="verdict-refused"
            )
        if self.verdict.kind is VerdictKind.CONFIRM:
            text = (
                f"⌨ TYPE {escape(self.verdict.confirm_text or '')!r} TO CONFIRM — {escape(reasons)}"
            )
            return Static(text, id="verdict", classes="verdict-confirm")
        return Static(f"✔ ALLOWED — {escape(reasons)}", id="verdict", classes="verdict-allowed")

    def on_input_changed(self, event: Input.Changed) -> None:
        matches = event.value == self.verdict.confirm_text
        self.query_one("#confirm", Button).disabled = not (self.enabled and matches)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if self.enabled and event.value == self.verdict.confirm_text:
            self.dismiss(event.value)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "confirm" and self.enabled:
            typed = self.query("#typed")
            self.dismiss(typed.first(Input).value if typed else "yes")
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
