"""The etcd pane: one row per registered member, the columns of `etcdctl endpoint status`."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.binding import Binding

from cluster.model import Snapshot
from widgets.format import human_bytes, member_state, optional
from widgets.messages import ActionRequested, request_action
from widgets.table_pane import Row, TablePane

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


class EtcdPane(TablePane):
    """Members of the etcd cluster; rows keep their identity (and the cursor) across refreshes.

    The keys ask for guarded actions on the member under the cursor; the app opens the
    confirmation dialog (the pane itself never acts).
    """

    COLUMNS = COLUMNS
    BINDINGS = [
        Binding("l", "request('move-leader')", "Move leader here"),
        Binding("x", "request('member-remove')", "Remove member"),
        Binding("a", "request('member-add')", "Add member"),
        Binding("p", "request('member-promote')", "Promote learner"),
        Binding("d", "request('defragment')", "Defragment"),
        Binding("s", "request('snapshot-save')", "Snapshot"),
    ]

    DEFAULT_CSS = """
    EtcdPane { height: auto; max-height: 12; }  /* 7 members + header fit */
    """

    def table_rows(self, snapshot: Snapshot) -> Iterable[Row]:
        for member in snapshot.etcd.members:
            leader = Text("★ leader", style="bold") if member.is_leader else Text("")
            error = member.error or "; ".join(member.errors)
            key = member.id_hex if member.id else (member.endpoint or member.display_name)
            yield (
                key,
                (
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
                ),
            )

    def action_request(self, action: str) -> None:
        if action == "member-add":
            self.post_message(ActionRequested(action, None))
        else:
            request_action(self, action, self.selected_name, "member")

    @property
    def selected_name(self) -> str | None:
        """The member name (or hex ID of an unstarted member) under the cursor."""
        key = self.selected_key
        if key is None:
            return None
        name = str(self.get_row(key)[1])
        return key if name.startswith("(unstarted") else name
