"""What every pane shares: it renders (part of) a snapshot when the app hands it one."""

from __future__ import annotations

from typing import Any

from textual.visual import VisualType
from textual.widgets import Static

from cluster.model import Snapshot
from cluster.untrusted import printable


class SnapshotView:
    """Mixin for widgets that render a snapshot; the app calls show_snapshot() on each refresh.

    Widgets carrying it get the CSS class `snapshot-view`, which is how the app finds them,
    so a new pane only has to be composed somewhere to be kept up to date.
    """

    DEFAULT_CLASSES = "snapshot-view"

    def show_snapshot(self, snapshot: Snapshot) -> None:
        raise NotImplementedError


class QuietStatic(Static):
    """A Static that ignores an update to the content it already shows, and shows a string
    as it is: what it shows is built from cluster data, which is never markup.

    Static.update() always repaints and re-lays out the screen, and most refreshes change
    none of the lines built from a snapshot: an unchanged refresh must cost the UI nothing.
    """

    def __init__(self, content: VisualType = "", **kwargs: Any) -> None:
        super().__init__(content, markup=False, **kwargs)

    def update(self, content: VisualType = "", *, layout: bool = True) -> None:
        if isinstance(content, str):  # an exception's words, a name: no control codes either
            content = printable(content)
        if content != self.content:
            super().update(content, layout=layout)
