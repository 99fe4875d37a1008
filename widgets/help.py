"""The `?` help screen: every key of the cockpit, gathered from the bindings themselves.

The list is built from the app's and the panes' BINDINGS (not written by hand), so a key added
to a pane shows up here, and the tests press every listed key and check it does what it says.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen
from textual.widgets import Static


@dataclass(frozen=True)
class HelpKey:
    scope: str  # "everywhere", or the pane the key works in
    key: str  # what to press (Textual key name)
    display: str  # how the key is written
    description: str
    action: str  # the Textual action it runs


def own_bindings(node: DOMNode) -> list[Binding]:
    """The bindings a widget of ours declares, its base classes' included (not Textual's own)."""
    found: list[Binding] = []
    for base in reversed(type(node).__mro__):
        if base.__module__.startswith("widgets.") and "BINDINGS" in vars(base):
            found += [b for b in vars(base)["BINDINGS"] if isinstance(b, Binding)]
    return found


def help_key(scope: str, binding: Binding, description: str | None = None) -> HelpKey:
    display = binding.key_display or binding.key
    return HelpKey(scope, binding.key, display, description or binding.description, binding.action)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "dismiss", "Close"),
        Binding("question_mark", "dismiss", "Close"),
        Binding("q", "dismiss", "Close"),
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 72; height: auto; max-height: 100%; border: round $accent; padding: 0 2; background: $surface; }
    """

    def __init__(self, keys: list[HelpKey]) -> None:
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        text = Text.assemble(("kcockpit — keys", "bold"), " (mouse works too, but is never needed)")
        scope = None
        for key in self.keys:
            if key.scope != scope:
                scope = key.scope
                text.append("\n\n").append(scope, style="underline")
            text.append("\n  ").append(f"{key.display:<8}", style="bold")
            text.append(f" {key.description}")
        text.append("\n\nEscape, ? or q closes this help.")
        with VerticalScroll():
            yield Static(text, id="help-text")
