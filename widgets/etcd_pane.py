"""The etcd pane: one row per registered member, the columns of `etcdctl endpoint status`."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from cluster.model import EtcdCluster, Snapshot
from widgets.base import SnapshotView
from widgets.format import human_bytes, member_state, optional

COLUMNS = (
    ("state", "STATE"),
    ("name", "NAME"),
    ("endpoint", "ENDPOINT"),
    ("id", "ID"),
    ("version", "VERSION"),
    ("db", "DB SIZE"),
    ("leader", "LEADER"),
    ("learner", "LEARNER"),
    ("term", "RAFT TERM"),
    ("index", "RAFT INDEX"),
    ("applied", "APPLIED"),
    ("errors", "ERRORS"),
)


class EtcdPane(SnapshotView, DataTable):
    """Members of the etcd cluster; rows keep their identity (and the cursor) across refreshes."""

    DEFAULT_CSS = """
    EtcdPane { height: auto; max-height: 12; }  /* 7 members + header fit */
    """

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    def show_snapshot(self, snapshot: Snapshot) -> None:
        self.show(snapshot.etcd)

    def show(self, cluster: EtcdCluster) -> None:
        selected = self.selected_member
        self.clear()
        for member in cluster.members:
            leader = Text("★ leader", style="bold") if member.is_leader else Text("")
            error = member.error or "; ".join(member.errors)
            self.add_row(
                member_state(member),
                member.display_name,
                member.endpoint or "-",
                member.id_hex,
                optional(member.version),
                human_bytes(member.db_size),
                leader,
                "learner" if member.is_learner else "",
                optional(member.raft_term),
                optional(member.raft_index),
                optional(member.raft_applied_index),
                Text(error, style="red") if error else "",
                key=member.id_hex if member.id else (member.endpoint or member.display_name),
            )
        if selected is not None and selected in self.rows:
            self.move_cursor(row=self.get_row_index(selected))

    @property
    def selected_member(self) -> str | None:
        """The row key (member ID in hex) under the cursor."""
        if not self.row_count:
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except Exception:
            return None
