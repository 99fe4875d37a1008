"""The snapshot as JSON (`kcockpit report --json`): field names are a contract, never renamed."""

from __future__ import annotations

from typing import Any

from cluster.kube.report import kube_json
from cluster.model import EtcdMember, Finding, Snapshot
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
        },
        "nodes": nodes_json(snapshot.nodes, snapshot.collected_at),
        "kube": kube_json(snapshot.kube),
        "findings": [finding_json(f) for f in snapshot.findings],
    }
