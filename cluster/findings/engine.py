"""The findings engine: every registered rule over a snapshot and its past, sorted once.

Rules are pure: they read the current snapshot, a bounded history of earlier ones (for trends
such as elections) and the per-cluster state file (for facts that outlive the process, such as
the highest revision seen). The Collector owns one engine, so the live cockpit and one-shot
`report` diagnose the same way; `report` simply has a history of one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import replace

from cluster.config import Config
from cluster.findings.registry import RULES, Context
from cluster.findings.trends import cluster_revision
from cluster.model import Finding, Snapshot
from cluster.state import ClusterState

HISTORY_LIMIT = 900  # snapshots kept for trends: 15 min at the default 1 s refresh


def sort_findings(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """Worst first; among equals by id then subject, so the order never flickers."""
    return tuple(sorted(findings, key=lambda f: (-f.severity, f.id, f.subject)))


def evaluate(snapshot: Snapshot, ctx: Context | None = None) -> tuple[Finding, ...]:
    """Every registered rule's findings about `snapshot`, worst first.

    Without a context the rules see no config (default thresholds, etcdctl lines without
    flags) and no past: what a test or a one-off check of a hand-built snapshot needs."""
    ctx = ctx or Context(now=snapshot.collected_at)
    return sort_findings(finding for spec in RULES for finding in spec.rule(snapshot, ctx))


class FindingsEngine:
    """Runs every rule on each new snapshot; keeps the history and the state file up to date."""

    def __init__(self, config: Config, state: ClusterState | None = None) -> None:
        self.config = config
        self.state = state or ClusterState.for_cluster(config.name)
        self.history: deque[Snapshot] = deque(maxlen=HISTORY_LIMIT)

    def evaluate(self, snapshot: Snapshot) -> Snapshot:
        """The snapshot with its findings; then remembers it (and its revision) for next time."""
        cluster_id = snapshot.etcd.cluster_id
        ctx = Context(
            now=snapshot.collected_at,
            config=self.config,
            history=tuple(self.history),
            max_revision=self.state.max_revision(cluster_id) if cluster_id else None,
            state_path=str(self.state.path),
        )
        evaluated = replace(snapshot, findings=evaluate(snapshot, ctx))
        # Trends read only etcd's Status: keep the history small (no nodes, no API view, and
        # no metrics: their source keeps its own history).
        self.history.append(replace(snapshot, nodes=(), kube=None, metrics=(), leader_changes=()))
        revision = cluster_revision(snapshot.etcd)
        if cluster_id and revision is not None:
            self.state.see_revision(cluster_id, revision)
        return evaluated
