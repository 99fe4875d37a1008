"""The leader changes the cockpit has seen since it started: who led before, who leads now.

Each collection's Status answers say which member each one follows and in which raft term;
the answer of the highest term is the newest word on the leader (a frozen old leader's last
answer still names itself, in its older term). A change of leader or of term is one entry of
the timeline, kept in a bounded list; a collection in which no member answered says nothing
about the leader and changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections import deque

from cluster.model import EtcdCluster, LeaderChange

MAX_CHANGES = 500


def current_leader(cluster: EtcdCluster) -> tuple[int, int] | None:
    """(raft term, leader ID) as the reachable member with the highest term reports it; the
    leader ID is 0 while that member knows none. None when no member answered."""
    answers = [
        (m.raft_term, m.leader_id or 0)
        for m in cluster.members
        if m.reachable and m.raft_term is not None
    ]
    return max(answers) if answers else None


class LeaderTimeline:
    """Collects the leader changes over the cockpit's life (see the module docstring)."""

    def __init__(self) -> None:
        self.changes: deque[LeaderChange] = deque(maxlen=MAX_CHANGES)
        self._shown: tuple[LeaderChange, ...] = ()  # the same tuple until the next change
        self._last: tuple[int, int] | None = None  # (term, leader ID) last seen
        self._names: dict[int, str] = {}  # member ID -> how it was named when last seen

    def observe(self, cluster: EtcdCluster, at: dt.datetime) -> tuple[LeaderChange, ...]:
        """The timeline after this collection's answers."""
        self._names.update({m.id: m.ref for m in cluster.members if m.id})
        seen = current_leader(cluster)
        if seen is not None and seen != self._last and (self._last is None or seen > self._last):
            if self._last is not None:
                term, leader = seen
                self.changes.append(
                    LeaderChange(at, self._name(self._last[1]), self._name(leader), term)
                )
                self._shown = tuple(self.changes)
            self._last = seen
        return self._shown

    def _name(self, member_id: int) -> str | None:
        return self._names.get(member_id, f"{member_id:016x}") if member_id else None
