"""The `?` help screen: every key of the cockpit, from the app's own bindings."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "dismiss", "Close"),
        Binding("question_mark", "dismiss", "Close"),
        Binding("q", "dismiss", "Close"),
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical { width: 64; height: auto; border: round $accent; padding: 1 2; background: $surface; }
    """

    def __init__(self, keys: list[tuple[str, str]]) -> None:
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        lines = ["[b]kcockpit — keys[/b]", ""]
        lines += [f"  [b]{key:<8}[/b] {description}" for key, description in self.keys]
        lines += ["", "Escape, ? or q closes this help."]
        with Vertical():
            yield Static("\n".join(lines), id="help-text")
