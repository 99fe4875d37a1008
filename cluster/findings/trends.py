"""Rules that need the past: what one snapshot alone cannot show.

The engine keeps a bounded history of recent snapshots (raft terms over the election window)
and the state file keeps the highest revision ever seen per cluster, so a restore from an old
snapshot (troubleshooting-case-etcd-rollback) is caught even across cockpit restarts.
"""

from __future__ import annotations

import datetime as dt

from cluster.findings.etcd import status_command
from cluster.findings.registry import MAINTENANCE, ROLLBACK, Context, finding, rule
from cluster.model import EtcdCluster, Finding, Severity, Snapshot


def cluster_revision(cluster: EtcdCluster) -> int | None:
    return max((m.revision for m in cluster.members if m.revision), default=None)


def raft_term(cluster: EtcdCluster) -> int | None:
    return max((m.raft_term for m in cluster.members if m.raft_term), default=None)


@rule(
    finding(
        "etcd.revision-regressed",
        Severity.CRITICAL,
        "the cluster revision is lower than one seen earlier: etcd restored from an old snapshot",
        f"{ROLLBACK} 阶段 1-3",
    )
)
def revision_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    """The rollback case: etcd restored from an old snapshot, Kubernetes went back in time."""
    revision = cluster_revision(snapshot.etcd)
    if revision is None or ctx.max_revision is None or revision >= ctx.max_revision:
        return []
    return [
        Finding(
            id="etcd.revision-regressed",
            severity=Severity.CRITICAL,
            subject="etcd",
            summary=f"etcd revision went back from {ctx.max_revision} to {revision}: restored "
            "from an old snapshot?",
            evidence=f"highest revision seen {ctx.max_revision} (state file {ctx.state_path}), "
            f"now {revision}" + _api_evidence(snapshot, ctx.max_revision),
            next="Kubernetes objects, resourceVersions and Endpoints went back in time: restart "
            "kube-apiserver, check Deployments' rollout history, recreate kube-proxy and CNI "
            "pods (troubleshooting-case-etcd-rollback). Once handled, delete the state file.",
            command="kubectl -n kube-system delete pod -l k8s-app=kube-proxy",
        )
    ]


def _api_evidence(snapshot: Snapshot, highest: int) -> str:
    """What the API servers do after the restore: they serve the old data as current."""
    kube = snapshot.kube
    if kube is None or kube.resource_version is None:
        return ""
    if kube.resource_version >= highest:
        return f"; the API still lists kube-system pods at resourceVersion {kube.resource_version}"
    return (
        f"; the API servers serve the restored data: kube-system pods listed at resourceVersion "
        f"{kube.resource_version}, below the {highest} already handed out: what was made "
        "since the snapshot is gone from the API, and clients' cached resourceVersions are "
        "ahead of it"
    )


@rule(
    finding(
        "etcd.frequent-elections",
        Severity.WARNING,
        "the raft term rose by election_terms or more within election_window seconds",
        f"{MAINTENANCE} §一 (切换leader, raft term column)",
    )
)
def elections_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    term = raft_term(snapshot.etcd)
    window = ctx.thresholds.election_window
    since = snapshot.collected_at - dt.timedelta(seconds=window)
    earlier = [
        t for s in ctx.history if s.collected_at >= since and (t := raft_term(s.etcd)) is not None
    ]
    if term is None or not earlier or term - min(earlier) < ctx.thresholds.election_terms:
        return []
    return [
        Finding(
            id="etcd.frequent-elections",
            severity=Severity.WARNING,
            subject="etcd",
            summary=f"raft term rose by {term - min(earlier)} within {window:g} s",
            evidence=f"raft term {min(earlier)} → {term}",
            next="Leaders keep changing: check disk fsync latency and the network between members.",
            command=status_command(ctx),
        )
    ]
