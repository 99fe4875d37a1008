"""What every pane shares: it renders (part of) a snapshot when the app hands it one."""

from __future__ import annotations

from cluster.model import Snapshot


class SnapshotView:
    """Mixin for widgets that render a snapshot; the app calls show_snapshot() on each refresh.

    Widgets carrying it get the CSS class `snapshot-view`, which is how the app finds them,
    so a new pane only has to be composed somewhere to be kept up to date.
    """

    DEFAULT_CLASSES = "snapshot-view"

    def show_snapshot(self, snapshot: Snapshot) -> None:
        raise NotImplementedError
