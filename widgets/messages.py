"""Messages widgets post to the app: they ask for things, the app (which owns I/O) does them."""

from __future__ import annotations

from textual.message import Message


class ActionRequested(Message):
    """The operator asked for a guarded action on a target (None: the app asks for one)."""

    def __init__(self, action: str, target: str | None) -> None:
        super().__init__()
        self.action = action
        self.target = target
