"""Messages widgets post to the app: they ask for things, the app (which owns I/O) does them."""

from __future__ import annotations

from textual.message import Message
from textual.widget import Widget


class ActionRequested(Message):
    """The operator asked for a guarded action on a target (None: the app asks for one)."""

    def __init__(self, action: str, target: str | None) -> None:
        super().__init__()
        self.action = action
        self.target = target


def request_action(widget: Widget, action: str, target: str | None, what: str) -> None:
    """Posts ActionRequested for the row under the cursor, or says that no `what` is selected."""
    if target is None:
        widget.notify(f"no {what} selected", severity="warning")
        return
    widget.post_message(ActionRequested(action, target))
