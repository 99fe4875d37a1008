"""Immutable snapshot of a control plane.

Everything the screen shows and every guard decides comes from one of these, so both can be
tested without I/O. Sources build them; findings read them; widgets render them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from cluster.kube.model import KubeView
from cluster.nodes.model import NodeState

NO_LEADER_ERROR = "etcdserver: no leader"
# How the etcd cluster as a whole is named: cluster-wide findings' subject, and the target a
# cluster-wide action is given (`kcockpit act rolling-defragment etcd`).
CLUSTER_TARGET = "etcd"


class Severity(enum.IntEnum):
    """Finding severities, comparable: CRITICAL > ERROR > WARNING > INFO."""

    INFO = 0
    WARNING = 1
    ERROR = 2
    CRITICAL = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.label for s in cls)
            raise ValueError(f"unknown severity {text!r} (one of: {names})") from None


@dataclass(frozen=True)
class Finding:
    """What is wrong, the evidence, and what to do next (ids: shared/FINDINGS.md)."""

    id: str
    severity: Severity
    subject: str
    summary: str
    evidence: str
    next: str
    command: str | None = None
    action: str | None = None  # the guarded action that performs `next`, when one exists
    action_target: str | None = None  # its target when that is not `subject`

    @property
    def target(self) -> str:
        return self.action_target or self.subject


@dataclass(frozen=True)
class EtcdMember:
    """One registered etcd member as seen by MemberList, merged with its own Status answer."""

    id: int
    name: str
    endpoint: str | None
    peer_urls: tuple[str, ...] = ()
    is_learner: bool = False
    reachable: bool = False
    error: str | None = None
    version: str | None = None
    db_size: int | None = None
    db_size_in_use: int | None = None
    leader_id: int | None = None
    raft_term: int | None = None
    raft_index: int | None = None
    raft_applied_index: int | None = None
    revision: int | None = None
    errors: tuple[str, ...] = ()

    @property
    def id_hex(self) -> str:
        return f"{self.id:016x}" if self.id else "?"

    @property
    def is_leader(self) -> bool:
        return self.reachable and bool(self.id) and self.leader_id == self.id

    @property
    def healthy(self) -> bool:
        """Answers and reports no fault of its own: "no leader" and an alarm ("memberID:…
        alarm:NOSPACE", which every member repeats) are the cluster's, not its; they have their
        own findings, and counting them here would call a full database a lost quorum."""
        return self.reachable and all(e == NO_LEADER_ERROR or " alarm:" in e for e in self.errors)

    @property
    def ref(self) -> str:
        """How an operator names it: its name, or its hex ID until it has one."""
        return self.name or self.id_hex

    @property
    def display_name(self) -> str:
        return self.name or f"(unstarted {self.id_hex})"


@dataclass(frozen=True)
class MemberHash:
    """A member's HashKV at a revision: equal hashes mean equal data (collected when DB sizes
    diverge, to tell fragmentation from corruption, and by preflight; see cluster/etcd/hashes.py
    for the one revision every member is asked at)."""

    member_id: int
    revision: int
    hash: int
    compact_revision: int = 0


@dataclass(frozen=True)
class EtcdCluster:
    """The etcd membership with quorum arithmetic over voting members (learners excluded)."""

    members: tuple[EtcdMember, ...] = ()
    error: str | None = None
    cluster_id: int | None = None
    alarms: tuple[tuple[int, str], ...] = ()
    hashes: tuple[MemberHash, ...] = ()

    @property
    def voting(self) -> tuple[EtcdMember, ...]:
        return tuple(m for m in self.members if not m.is_learner)

    @property
    def learners(self) -> tuple[EtcdMember, ...]:
        return tuple(m for m in self.members if m.is_learner)

    @property
    def healthy_voting(self) -> int:
        return sum(1 for m in self.voting if m.healthy)

    @property
    def quorum(self) -> int:
        return len(self.voting) // 2 + 1

    @property
    def tolerance(self) -> int:
        """How many more voting members may fail right now."""
        return max(0, self.healthy_voting - self.quorum)

    @property
    def design_tolerance(self) -> int:
        return (len(self.voting) - 1) // 2 if self.voting else 0

    @property
    def has_quorum(self) -> bool:
        return bool(self.voting) and self.healthy_voting >= self.quorum

    @property
    def leader(self) -> EtcdMember | None:
        leaders = [m for m in self.members if m.is_leader]
        return leaders[0] if leaders else None

    def member(self, name_or_id: str) -> EtcdMember | None:
        """Finds a member by name or by hex ID."""
        for m in self.members:
            if name_or_id in (m.name, m.id_hex):
                return m
        return None


@dataclass(frozen=True)
class MetricsTrend:
    """What a member's sparklines draw: one point per scrape, oldest first (bounded)."""

    applied_per_second: tuple[float, ...] = ()
    db_size: tuple[float, ...] = ()
    db_in_use: tuple[float, ...] = ()
    fsync_p99: tuple[float, ...] = ()
    peer_rtt_p99: tuple[float, ...] = ()


@dataclass(frozen=True)
class FailedCalls:
    """One gRPC method's calls over a window: `failed` of the `handled` failed, and how many
    failed with each failing code (`codes`, the most frequent first)."""

    method: str
    handled: int
    failed: int
    codes: tuple[tuple[str, int], ...] = ()

    @property
    def share(self) -> float:
        return self.failed / self.handled if self.handled else 0.0


@dataclass(frozen=True)
class MemberMetrics:
    """The figures of one member's own `/metrics` over a window of its recent scrapes.

    `window` is how many seconds of scrapes the rates and p99s cover (the rate window or less,
    0 with a single scrape: no rate yet); `long_window` likewise for the leader changes, the
    failed proposals and the growth. Quantiles are etcd's histograms' bucket increases over the
    window, as `histogram_quantile(0.99, rate(...))` computes them; None when the window saw no
    observation. `peer_rtt_p99` is (peer member ID as etcd writes it, p99) per peer;
    `grpc_failed` the calls of the gRPC method with the largest failed share.
    """

    member: str
    endpoint: str
    scraped_at: datetime | None = None
    error: str | None = None
    window: float = 0.0
    long_window: float = 0.0
    has_leader: bool | None = None
    db_size: int | None = None
    db_in_use: int | None = None
    quota: int | None = None
    leader_changes: int | None = None
    applied_per_second: float | None = None
    failed_per_minute: float | None = None
    fsync_p99: float | None = None
    commit_p99: float | None = None
    peer_rtt_p99: tuple[tuple[str, float], ...] = ()
    grpc_failed: FailedCalls | None = None
    growth_per_second: float | None = None
    trend: MetricsTrend = field(default_factory=MetricsTrend)


@dataclass(frozen=True)
class LeaderChange:
    """A change of leader the cockpit saw in the members' Status answers, at `at`."""

    at: datetime
    old: str | None  # None: there was no leader (or none known yet)
    new: str | None  # None: the leader is gone
    term: int | None


@dataclass(frozen=True)
class Snapshot:
    """One collection of the whole control plane, with the findings drawn from it."""

    cluster_name: str
    collected_at: datetime
    etcd: EtcdCluster
    findings: tuple[Finding, ...] = field(default=())
    nodes: tuple[NodeState, ...] = field(default=())
    kube: KubeView | None = None  # None when no Kubernetes API is configured
    metrics: tuple[MemberMetrics, ...] = field(default=())  # etcd's own /metrics, per member
    leader_changes: tuple[LeaderChange, ...] = field(default=())  # since the cockpit started

    def node(self, name: str) -> NodeState | None:
        return next((n for n in self.nodes if n.name == name), None)

    @property
    def worst(self) -> Severity | None:
        return max((f.severity for f in self.findings), default=None)
