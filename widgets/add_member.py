"""Asks for the new member's name and peer URL before member-add's confirmation dialog."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label


class AddMemberScreen(ModalScreen[tuple[str, str] | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    AddMemberScreen { align: center middle; }
    AddMemberScreen > Vertical { width: 70; height: auto; border: thick $accent; background: $surface; padding: 0 1; }
    AddMemberScreen Horizontal { height: auto; align-horizontal: right; }
    """

    def __init__(self, name: str = "", peer_url: str = "") -> None:
        super().__init__()
        self.default_name = name
        self.default_peer_url = peer_url

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("[b]Add an etcd member (as a learner)[/b]")
            yield Label("name")
            yield Input(self.default_name, id="name")
            yield Label("peer URL (https://ADDRESS:2380)")
            yield Input(self.default_peer_url, id="peer-url")
            with Horizontal():
                yield Button("Cancel", id="cancel", variant="primary")
                yield Button("Next", id="next")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "next":
            name = self.query_one("#name", Input).value.strip()
            peer_url = self.query_one("#peer-url", Input).value.strip()
            self.dismiss((name, peer_url) if name and peer_url else None)
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
