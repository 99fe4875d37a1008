"""The static pods pane: per control-plane node, each expected component's manifest and state
(widgets/rows/static_pods.py), and the keys that stop, start or restart the component under the
cursor.
"""

from __future__ import annotations

from actions.specs import TargetKind
from cluster.model import Snapshot
from widgets.messages import action_bindings, request_action
from widgets.rows import static_pods
from widgets.rows.common import Row
from widgets.table_pane import TablePane


class StaticPodsPane(TablePane):
    """S/T/R ask for stopping/starting/restarting the component under the cursor (the app
    confirms first)."""

    COLUMNS = static_pods.COLUMNS
    TARGETS = (TargetKind.NODE_OR_COMPONENT, TargetKind.COMPONENT)
    BINDINGS = action_bindings(*TARGETS)

    def action_request(self, action: str) -> None:
        request_action(self, action, self.selected_pod, "static pod (node/component row)")

    @property
    def selected_pod(self) -> str | None:
        """`node/component` under the cursor; None on unreachable-node or extra-manifest rows."""
        key = self.selected_key
        return key if key is not None and key.count("/") == 1 else None

    def table_rows(self, snapshot: Snapshot) -> list[Row]:
        return static_pods.rows(snapshot)
