"""The progress of a multi-step action (a rolling defragment, a static pod's restart), one
line per step as it happens, so the operator watches it instead of a spinner.

The lines are what the runner says and audits (`ActionContext.step`); they carry member and
node names from the cluster, so they are shown as literal text. Hiding the screen does not
stop the action: its steps go on in the status line and the audit trail.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from widgets.base import QuietStatic

RUNNING = "⏳ running: Esc hides this (the action goes on, see the status line)"


class ActionProgressScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape", "dismiss_screen", "Hide"), Binding("enter", "close", "Close")]
    DEFAULT_CSS = """
    ActionProgressScreen { align: center middle; }
    ActionProgressScreen > VerticalScroll {
        width: 96%; max-width: 130; height: auto; max-height: 96%;
        border: thick $accent; background: $surface; padding: 0 1;
    }
    ActionProgressScreen #progress-title { text-style: bold; }
    ActionProgressScreen .step { color: $text; }
    ActionProgressScreen #progress-state { margin-top: 1; }
    """

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title_text = title
        self.lines: list[str] = []
        self.finished = False

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield QuietStatic(self.title_text, id="progress-title")
            with VerticalScroll(id="progress-steps"):
                for line in self.lines:  # said before the screen was up
                    yield self._step(line)
            yield QuietStatic(RUNNING, id="progress-state")

    def add(self, line: str) -> None:
        """One more step (or runner line), numbered in the order it came."""
        self.lines.append(line)
        if self.is_mounted:
            steps = self.query_one("#progress-steps", VerticalScroll)
            steps.mount(self._step(line))
            steps.scroll_end(animate=False)

    @staticmethod
    def _step(line: str) -> Static:
        return Static(Text(f"• {line}"), classes="step")

    def finish(self, verdict: str, ok: bool) -> None:
        """The action's result, on the last line; Enter or Esc closes the screen."""
        self.finished = True
        mark, style = ("✔", "bold green") if ok else ("✖", "bold red")
        state = Text(f"{mark} {verdict}  (Enter/Esc: close)", style=style)
        if self.is_mounted:
            self.query_one("#progress-state", QuietStatic).update(state)

    def action_dismiss_screen(self) -> None:
        self.dismiss(None)

    def action_close(self) -> None:
        if self.finished:
            self.dismiss(None)
