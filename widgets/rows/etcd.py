"""The etcd members table: one row per registered member, the columns of `etcdctl endpoint
status`, keyed by what an action on the member is given (never by its displayed name)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from rich.text import Text

from cluster.model import EtcdMember, Snapshot
from widgets.format import human_bytes, member_state, optional
from widgets.rows.common import Column, Row

# Narrow terminals keep who is up, who leads and how far raft got; the ID, version and
# endpoint are what a wider one adds.
COLUMNS = (
    Column("state", "STATE", 1),
    Column("name", "NAME", 1),
    Column("endpoint", "ENDPOINT", 8),
    Column("id", "ID", 6),
    Column("version", "VERSION", 7),
    Column("db", "DB SIZE", 5),
    Column("leader", "LEADER", 2),
    Column("learner", "LEARNER", 2),
    Column("term", "RAFT TERM", 5),
    Column("index", "RAFT INDEX", 3),
    Column("applied", "APPLIED", 3),
    Column("errors", "ERRORS", 4),
)


def member_keys(members: Sequence[EtcdMember]) -> list[str]:
    """Each member's row key, which is also the target an action on its row is given: its
    name; its hex ID where it has no name yet or shares it (etcd does not insist on unique
    names); for an endpoint that answered without a member list (no ID either), the endpoint."""
    names = Counter(m.name for m in members)
    return [
        m.name
        if m.name and names[m.name] == 1
        else m.id_hex
        if m.id
        else m.endpoint or m.display_name
        for m in members
    ]


def rows(snapshot: Snapshot) -> list[Row]:
    members = snapshot.etcd.members
    return [(key, cells(member)) for key, member in zip(member_keys(members), members, strict=True)]


def cells(member: EtcdMember) -> tuple[str | Text, ...]:
    error = member.error or "; ".join(member.errors)
    return (
        member_state(member),
        member.display_name,
        member.endpoint or "-",
        member.id_hex,
        optional(member.version),
        human_bytes(member.db_size),
        Text("★ leader", style="bold") if member.is_leader else "",
        "learner" if member.is_learner else "",
        optional(member.raft_term),
        optional(member.raft_index),
        optional(member.raft_applied_index),
        Text(error, style="red") if error else "",
    )
