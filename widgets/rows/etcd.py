"""The etcd members table: one row per registered member, the columns of `etcdctl endpoint
status`, keyed by what an action on the member is given (never by its displayed name).

A learner's LEARNER cell is its progress towards the leader's log (applied index, percentage,
and an ETA from the previous snapshot's), judged caught up by the same predicate the
`etcd.learner-not-promoted` finding and the member-promote guard ask (`caught_up`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from rich.text import Text

from cluster.config import Thresholds
from cluster.findings.etcd import LearnerProgress, learner_progress
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


def rows(
    snapshot: Snapshot, thresholds: Thresholds | None = None, previous: Snapshot | None = None
) -> list[Row]:
    """`thresholds`: the config's (what caught up means); `previous`: the snapshot shown before,
    for a learner's ETA."""
    members = snapshot.etcd.members
    leader = snapshot.etcd.leader
    judged = thresholds or Thresholds()
    return [
        (key, cells(member, learner_cell(member, leader, judged, snapshot, previous)))
        for key, member in zip(member_keys(members), members, strict=True)
    ]


def learner_cell(
    member: EtcdMember,
    leader: EtcdMember | None,
    thresholds: Thresholds,
    snapshot: Snapshot,
    previous: Snapshot | None,
) -> str | Text:
    if not member.is_learner:
        return ""
    progress = learner_progress(member, leader, thresholds)
    if progress.caught_up:
        return Text("learner ✓ caught up: promotable", style="green")
    if progress.percent is None:
        return "learner (progress unknown)"
    text = f"learner {progress.percent:.0f}% ({progress.applied}/{progress.leader_index})"
    eta = learner_eta(progress, member, snapshot, previous)
    return f"{text} ETA {eta:.0f}s" if eta is not None else text


def learner_eta(
    progress: LearnerProgress, member: EtcdMember, snapshot: Snapshot, previous: Snapshot | None
) -> float | None:
    """Seconds until it has applied the leader's index at the pace since `previous`; None when
    there is no pace to go by (first sight, or it did not move)."""
    before = previous.etcd.member(member.ref) if previous is not None else None
    if before is None or before.raft_applied_index is None or progress.applied is None:
        return None
    elapsed = (snapshot.collected_at - previous.collected_at).total_seconds()  # type: ignore[union-attr]
    gained = progress.applied - before.raft_applied_index
    if elapsed <= 0 or gained <= 0 or progress.behind is None:
        return None
    return progress.behind * elapsed / gained


def cells(member: EtcdMember, learner: str | Text = "") -> tuple[str | Text, ...]:
    error = member.error or "; ".join(member.errors)
    return (
        member_state(member),
        member.display_name,
        member.endpoint or "-",
        member.id_hex,
        optional(member.version),
        human_bytes(member.db_size),
        Text("★ leader", style="bold") if member.is_leader else "",
        learner or ("learner" if member.is_learner else ""),
        optional(member.raft_term),
        optional(member.raft_index),
        optional(member.raft_applied_index),
        Text(error, style="red") if error else "",
    )
