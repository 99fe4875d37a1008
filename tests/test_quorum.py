"""Quorum arithmetic and the etcd findings, on hand-built snapshots (no I/O)."""

import datetime as dt

import pytest

from cluster.findings import evaluate
from cluster.model import EtcdCluster, EtcdMember, Finding, Severity, Snapshot


def member(i: int, up: bool = True, leader: int = 1, learner: bool = False) -> EtcdMember:
    return EtcdMember(
        id=i,
        name=f"cp-{i}",
        endpoint=f"https://127.0.0.{10 + i}:2379",
        is_learner=learner,
        reachable=up,
        leader_id=leader if up else None,
        error=None if up else "UNAVAILABLE: connection refused",
    )


def evaluate_etcd(cluster: EtcdCluster) -> list[Finding]:
    """Every rule's findings about a snapshot holding only this etcd cluster."""
    return list(evaluate(Snapshot("test", dt.datetime.now(dt.UTC), cluster)))


def cluster(total: int, down: int = 0, learners: int = 0, leader: int = 1) -> EtcdCluster:
    members = [member(i, up=i > down, leader=leader) for i in range(1, total + 1)]
    members += [member(100 + i, learner=True, leader=leader) for i in range(learners)]
    return EtcdCluster(members=tuple(members))


@pytest.mark.parametrize(
    ("voting", "quorum", "design"),
    [(1, 1, 0), (2, 2, 0), (3, 2, 1), (4, 3, 1), (5, 3, 2), (6, 4, 2), (7, 4, 3), (9, 5, 4)],
)
def test_quorum_and_design_tolerance(voting: int, quorum: int, design: int) -> None:
    # The runbook's table says 9 members tolerate 5 failures: computed, it is 4.
    c = cluster(voting)
    assert (c.quorum, c.design_tolerance, c.tolerance) == (quorum, design, design)


def test_learners_do_not_vote() -> None:
    c = cluster(3, learners=2)
    assert (len(c.voting), c.quorum, c.tolerance) == (3, 2, 1)


def test_clean_cluster_has_no_findings() -> None:
    assert evaluate_etcd(cluster(3)) == []


def test_one_down_is_no_fault_tolerance_and_unreachable() -> None:
    c = cluster(3, down=1, leader=2)
    findings = evaluate_etcd(c)
    assert c.tolerance == 0
    assert [(f.id, f.severity, f.subject) for f in findings] == [
        ("etcd.member-unreachable", Severity.ERROR, "cp-1"),
        ("etcd.no-fault-tolerance", Severity.WARNING, "etcd"),
    ]
    assert "connection refused" in findings[0].evidence


def test_two_of_three_down_is_quorum_lost_and_leader_missing() -> None:
    c = cluster(3, down=2, leader=0)
    ids = [f.id for f in evaluate_etcd(c)]
    assert ids[:2] == ["etcd.leader-missing", "etcd.quorum-lost"]
    assert ids.count("etcd.member-unreachable") == 2
    assert "etcd.no-fault-tolerance" not in ids
    assert c.leader is None


def test_unknown_membership_reports_endpoints_not_quorum() -> None:
    c = EtcdCluster(
        members=(
            EtcdMember(id=0, name="", endpoint="https://127.0.0.11:2379", error="UNAVAILABLE: ssl"),
        ),
        error="no endpoint answered MemberList",
    )
    findings = evaluate_etcd(c)
    assert [f.id for f in findings] == ["etcd.member-unreachable"]
    assert "openssl verify" in findings[0].next
