"""The etcd pane: one row per registered member, the columns of `etcdctl endpoint status`
(widgets/rows/etcd.py), and the keys for the guarded actions on the member under the cursor."""

from __future__ import annotations

from actions.specs import SPECS, TargetKind
from cluster.model import Snapshot
from widgets.messages import ActionRequested, action_bindings, request_action
from widgets.rows import etcd
from widgets.rows.common import Row
from widgets.table_pane import TablePane


class EtcdPane(TablePane):
    """Members of the etcd cluster; rows keep their identity (and the cursor) across refreshes.

    The keys ask for guarded actions on the member under the cursor; the app opens the
    confirmation dialog (the pane itself never acts).
    """

    COLUMNS = etcd.COLUMNS
    TARGETS = (TargetKind.MEMBER, TargetKind.NEW_MEMBER)
    BINDINGS = action_bindings(*TARGETS)

    DEFAULT_CSS = """
    EtcdPane { height: auto; max-height: 12; }  /* 7 members + header fit */
    """

    def table_rows(self, snapshot: Snapshot) -> list[Row]:
        return etcd.rows(snapshot)

    def action_request(self, action: str) -> None:
        if SPECS[action].target is TargetKind.NEW_MEMBER:
            self.post_message(ActionRequested(action, None))
        else:
            request_action(self, action, self.selected_name, "member")

    @property
    def selected_name(self) -> str | None:
        """The member under the cursor as actions name it: its row key (etcd.member_keys),
        never its displayed text, which two unstarted members may share."""
        return self.selected_key
