"""Messages widgets post to the app: they ask for things, the app (which owns I/O) does them."""

from __future__ import annotations

from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widget import Widget

from actions.specs import TargetKind, of_kinds


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


def action_bindings(*kinds: TargetKind) -> list[BindingType]:
    """A pane's action keys, from the table of actions (actions/specs.py): each action on the
    kinds of target the pane's rows are is its key, running `request('<name>')` and described
    by its title, so a new action shows up in its pane, the footer and the help unedited."""
    return [Binding(spec.key, f"request('{spec.name}')", spec.title) for spec in of_kinds(*kinds)]
