"""The etcd pane: one row per registered member, the columns of `etcdctl endpoint status`
(widgets/rows/etcd.py), and the keys for the guarded actions on the member under the cursor."""

from __future__ import annotations

from typing import Any

from actions.specs import SPECS, TargetKind
from cluster.config import Thresholds
from cluster.model import CLUSTER_TARGET, Snapshot
from widgets.messages import ActionRequested, action_bindings, request_action
from widgets.rows import etcd
from widgets.rows.common import Row
from widgets.table_pane import TablePane


class EtcdPane(TablePane):
    """Members of the etcd cluster; rows keep their identity (and the cursor) across refreshes.

    The keys ask for guarded actions on the member under the cursor (or the whole cluster);
    the app opens the confirmation dialog (the pane itself never acts). `thresholds` are the
    config's: a learner's row says "caught up" exactly when the promote guard would.
    """

    COLUMNS = etcd.COLUMNS
    TARGETS = (TargetKind.MEMBER, TargetKind.NEW_MEMBER, TargetKind.CLUSTER)
    BINDINGS = action_bindings(*TARGETS)

    def __init__(self, *args: Any, thresholds: Thresholds | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.thresholds = thresholds or Thresholds()
        self._previous: Snapshot | None = None  # the snapshot shown before: a learner's pace

    DEFAULT_CSS = """
    EtcdPane { height: auto; max-height: 12; }  /* 7 members + header fit */
    """

    def table_rows(self, snapshot: Snapshot) -> list[Row]:
        previous, self._previous = self._previous, snapshot
        return etcd.rows(snapshot, self.thresholds, previous)

    def action_request(self, action: str) -> None:
        if SPECS[action].target is TargetKind.NEW_MEMBER:
            self.post_message(ActionRequested(action, None))
        elif SPECS[action].target is TargetKind.CLUSTER:
            self.post_message(ActionRequested(action, CLUSTER_TARGET))
        else:
            request_action(self, action, self.selected_name, "member")

    @property
    def selected_name(self) -> str | None:
        """The member under the cursor as actions name it: its row key (etcd.member_keys),
        never its displayed text, which two unstarted members may share."""
        return self.selected_key
