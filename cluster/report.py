"""The snapshot as JSON (`kcockpit report --json`): field names are a contract, never renamed."""

from __future__ import annotations

import datetime as dt
from typing import Any

from cluster.kube.report import kube_json
from cluster.model import (
    EtcdMember,
    FailedCalls,
    Finding,
    LeaderChange,
    MemberMetrics,
    Snapshot,
)
from cluster.nodes.report import nodes_json


def member_json(member: EtcdMember) -> dict[str, Any]:
    return {
        "name": member.name,
        "id": member.id_hex,
        "endpoint": member.endpoint,
        "version": member.version,
        "db_size": member.db_size,
        "db_size_in_use": member.db_size_in_use,
        "is_leader": member.is_leader,
        "is_learner": member.is_learner,
        "raft_term": member.raft_term,
        "raft_index": member.raft_index,
        "raft_applied_index": member.raft_applied_index,
        "revision": member.revision,
        "reachable": member.reachable,
        "healthy": member.healthy,
        "error": member.error or ("; ".join(member.errors) if member.errors else None),
        "peer_urls": list(member.peer_urls),
    }


def metrics_json(metrics: MemberMetrics, now: dt.datetime) -> dict[str, Any]:
    """One member's /metrics figures; seconds and bytes as numbers, None when not known."""
    scraped = metrics.scraped_at
    return {
        "member": metrics.member,
        "endpoint": metrics.endpoint,
        "scraped_at": scraped.isoformat() if scraped else None,
        "scrape_age_seconds": round((now - scraped).total_seconds(), 3) if scraped else None,
        "error": metrics.error,
        "window_seconds": metrics.window,
        "long_window_seconds": metrics.long_window,
        "has_leader": metrics.has_leader,
        "db_size": metrics.db_size,
        "db_size_in_use": metrics.db_in_use,
        "quota_backend_bytes": metrics.quota,
        "leader_changes": metrics.leader_changes,
        "proposals_applied_per_second": metrics.applied_per_second,
        "proposals_failed_per_minute": metrics.failed_per_minute,
        "wal_fsync_p99_seconds": metrics.fsync_p99,
        "backend_commit_p99_seconds": metrics.commit_p99,
        "peer_round_trip_p99_seconds": dict(metrics.peer_rtt_p99),
        "grpc_failed": grpc_failed_json(metrics.grpc_failed) if metrics.grpc_failed else None,
        "db_growth_bytes_per_second": metrics.growth_per_second,
    }


def grpc_failed_json(calls: FailedCalls) -> dict[str, Any]:
    """The calls of the method failing most: its share, counts and the count per code."""
    return {
        "method": calls.method,
        "share": calls.share,
        "failed": calls.failed,
        "handled": calls.handled,
        "codes": dict(calls.codes),
    }


def leader_change_json(change: LeaderChange) -> dict[str, Any]:
    return {
        "time": change.at.isoformat(),
        "old": change.old,
        "new": change.new,
        "term": change.term,
    }


def finding_json(finding: Finding) -> dict[str, Any]:
    return {
        "id": finding.id,
        "severity": finding.severity.label,
        "subject": finding.subject,
        "summary": finding.summary,
        "evidence": finding.evidence,
        "next": finding.next,
        "command": finding.command,
        "action": finding.action,
    }


def snapshot_json(snapshot: Snapshot) -> dict[str, Any]:
    etcd = snapshot.etcd
    leader = etcd.leader
    return {
        "cluster": snapshot.cluster_name,
        "collected_at": snapshot.collected_at.isoformat(),
        "etcd": {
            "members": [member_json(m) for m in etcd.members],
            "leader": leader.name if leader else None,
            "voting": len(etcd.voting),
            "healthy": etcd.healthy_voting,
            "quorum": etcd.quorum,
            "tolerance": etcd.tolerance,
            "design_tolerance": etcd.design_tolerance,
            "error": etcd.error,
            "alarms": [{"member_id": f"{m:016x}", "alarm": a} for m, a in etcd.alarms],
            "leader_changes": [leader_change_json(c) for c in snapshot.leader_changes],
        },
        "metrics": [metrics_json(m, snapshot.collected_at) for m in snapshot.metrics],
        "nodes": nodes_json(snapshot.nodes, snapshot.collected_at),
        "kube": kube_json(snapshot.kube),
        "findings": [finding_json(f) for f in snapshot.findings],
    }
