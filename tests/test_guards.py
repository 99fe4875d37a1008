"""Every guard rule on hand-built snapshots (no I/O): what is refused, what needs typing."""

from __future__ import annotations

import datetime as dt

import pytest

from actions.base import VerdictKind
from actions.etcd_actions import Defragment, MemberAdd, MemberPromote, MemberRemove, MoveLeader
from actions.static_pod_actions import StartStaticPod, StopStaticPod
from cluster.model import EtcdCluster, EtcdMember, Snapshot
from cluster.nodes.model import NodeState, StaticPod


def member(
    i: int,
    up: bool = True,
    learner: bool = False,
    leader: int = 1,
    applied: int = 100,
    index: int = 100,
    db: tuple[int, int] = (100_000, 90_000),
) -> EtcdMember:
    return EtcdMember(
        id=i,
        name=f"cp-{i}",
        endpoint=f"https://127.0.0.{10 + i}:2379",
        peer_urls=(f"https://127.0.0.{10 + i}:2380",),
        is_learner=learner,
        reachable=up,
        error=None if up else "UNAVAILABLE: connection refused",
        leader_id=leader if up else None,
        raft_index=index if up else None,
        raft_applied_index=applied if up else None,
        db_size=db[0] if up else None,
        db_size_in_use=db[1] if up else None,
    )


def snap(*members: EtcdMember) -> Snapshot:
    return Snapshot("test", dt.datetime.now(dt.UTC), EtcdCluster(members=members))


HEALTHY = snap(member(1), member(2), member(3))
ONE_DOWN = snap(member(1), member(2), member(3, up=False))
TWO_DOWN = snap(member(1, leader=0), member(2, up=False), member(3, up=False))


def reasons(verdict) -> str:
    return " ".join(verdict.reasons)


def test_move_leader_to_a_healthy_follower_is_allowed() -> None:
    assert MoveLeader("cp-2").guard(HEALTHY).kind is VerdictKind.ALLOWED


@pytest.mark.parametrize(
    ("snapshot", "target", "why"),
    [
        (ONE_DOWN, "cp-3", "not healthy"),
        (snap(member(1), member(2), member(4, learner=True)), "cp-4", "learner"),
        (HEALTHY, "cp-1", "already the leader"),
        (snap(member(1, index=5000), member(2, applied=1), member(3)), "cp-2", "not caught up"),
        (TWO_DOWN, "cp-2", "quorum lost"),
        (HEALTHY, "cp-9", "no etcd member named"),
    ],
)
def test_move_leader_refusals(snapshot: Snapshot, target: str, why: str) -> None:
    verdict = MoveLeader(target).guard(snapshot)
    assert verdict.is_refused and why in reasons(verdict)


def test_an_unreadable_membership_is_refused_with_its_cause_not_as_an_unknown_name() -> None:
    unanswered = EtcdMember(id=0, name="", endpoint="https://127.0.0.11:2379", error="timeout")
    unreadable = Snapshot(
        "test",
        dt.datetime.now(dt.UTC),
        EtcdCluster(members=(unanswered,), error="no endpoint answered MemberList: timeout"),
    )
    for action in (MoveLeader("cp-1"), MemberRemove("cp-1"), Defragment("cp-1")):
        verdict = action.guard(unreadable)
        assert verdict.is_refused
        assert reasons(verdict) == (
            "cannot tell whether 'cp-1' is a member: no endpoint answered MemberList: timeout"
        )


def test_remove_needs_the_typed_name() -> None:
    verdict = MemberRemove("cp-3").guard(HEALTHY)
    assert (verdict.kind, verdict.confirm_text) == (VerdictKind.CONFIRM, "cp-3")


def test_remove_the_dead_member_is_allowed_with_typing() -> None:
    verdict = MemberRemove("cp-3").guard(ONE_DOWN)
    assert verdict.kind is VerdictKind.CONFIRM
    after = MemberRemove("cp-3").quorum_after(ONE_DOWN)
    assert (after.voting, after.quorum, after.tolerance) == (2, 2, 0)


@pytest.mark.parametrize(
    ("snapshot", "target", "why"),
    [
        (HEALTHY, "cp-1", "is the leader"),
        (ONE_DOWN, "cp-2", "below the new quorum"),
        (TWO_DOWN, "cp-2", "quorum lost"),
    ],
)
def test_remove_refusals(snapshot: Snapshot, target: str, why: str) -> None:
    verdict = MemberRemove(target).guard(snapshot)
    assert verdict.is_refused and why in reasons(verdict)


def test_two_to_one_needs_an_explicit_override() -> None:
    verdict = MemberRemove("cp-2").guard(snap(member(1), member(2)))
    assert verdict.kind is VerdictKind.CONFIRM
    assert verdict.confirm_text == "override cp-2"


def test_add_is_refused_while_a_member_is_down_remove_first() -> None:
    verdict = MemberAdd("cp-4", "https://127.0.0.14:2380").guard(ONE_DOWN)
    assert verdict.is_refused and "Remove the dead member before adding" in reasons(verdict)


def test_add_as_learner_keeps_quorum_and_voting_add_needs_typing() -> None:
    assert MemberAdd("cp-4", "https://127.0.0.14:2380").guard(HEALTHY).kind is VerdictKind.ALLOWED
    voting = MemberAdd("cp-4", "https://127.0.0.14:2380", voting=True).guard(HEALTHY)
    assert (voting.kind, voting.confirm_text) == (VerdictKind.CONFIRM, "cp-4")


@pytest.mark.parametrize(
    ("name", "url", "why"),
    [
        ("cp-2", "https://127.0.0.14:2380", "already registered"),
        ("cp-4", "https://127.0.0.12:2380", "already registered"),
        ("cp-4", "http://127.0.0.14:2380", "https:// peer URL"),
        ("cp-4", None, "https:// peer URL"),
    ],
)
def test_add_refuses_bad_targets(name: str, url: str | None, why: str) -> None:
    verdict = MemberAdd(name, url).guard(HEALTHY)
    assert verdict.is_refused and why in reasons(verdict)


def test_add_with_quorum_lost_is_refused() -> None:
    verdict = MemberAdd("cp-4", "https://127.0.0.14:2380").guard(TWO_DOWN)
    assert verdict.is_refused and "quorum lost" in reasons(verdict)


def test_promote_only_a_synced_learner() -> None:
    synced = snap(member(1), member(2), member(3), member(4, learner=True))
    assert MemberPromote("cp-4").guard(synced).kind is VerdictKind.ALLOWED
    lagging = snap(member(1, index=5000), member(2), member(3), member(4, learner=True, applied=1))
    assert "not in sync" in reasons(MemberPromote("cp-4").guard(lagging))
    down = snap(member(1), member(2), member(3), member(4, learner=True, up=False))
    assert "does not answer" in reasons(MemberPromote("cp-4").guard(down))
    assert "already a voting member" in reasons(MemberPromote("cp-2").guard(HEALTHY))


def test_defragment_followers_before_the_leader() -> None:
    fragmented = (10_000_000, 2_000_000)
    cluster = snap(member(1), member(2, db=fragmented), member(3))
    verdict = Defragment("cp-1").guard(cluster)
    assert verdict.is_refused and "followers before the leader" in reasons(verdict)
    assert Defragment("cp-2").guard(cluster).kind is VerdictKind.ALLOWED


def test_defragment_at_the_quorum_edge_needs_an_override() -> None:
    verdict = Defragment("cp-2").guard(ONE_DOWN)
    assert (verdict.kind, verdict.confirm_text) == (VerdictKind.CONFIRM, "override cp-2")
    assert "quorum lost" in reasons(Defragment("cp-1").guard(TWO_DOWN))


def node(name: str, *pods: StaticPod, reachable: bool = True) -> NodeState:
    address = f"127.0.0.{10 + int(name[-1])}"
    return NodeState(
        name=name,
        address=address,
        reachable=reachable,
        static_pods=pods,
        error=None if reachable else "refused",
    )


def with_nodes(snapshot: Snapshot, *nodes: NodeState) -> Snapshot:
    return Snapshot(snapshot.cluster_name, snapshot.collected_at, snapshot.etcd, nodes=nodes)


RUNNING = StaticPod("etcd", "present", file="etcd.yaml")
PARKED = StaticPod("etcd", "moved", moved_to="/etc/kubernetes/etcd.yaml")


def test_stopping_etcd_needs_the_node_name_and_never_costs_quorum_silently() -> None:
    healthy = with_nodes(
        HEALTHY, node("cp-1", RUNNING), node("cp-2", RUNNING), node("cp-3", RUNNING)
    )
    verdict = StopStaticPod("cp-2/etcd").guard(healthy)
    assert (verdict.kind, verdict.confirm_text) == (VerdictKind.CONFIRM, "cp-2")
    edge = with_nodes(ONE_DOWN, node("cp-1", RUNNING), node("cp-2", RUNNING), node("cp-3", PARKED))
    verdict = StopStaticPod("cp-2/etcd").guard(edge)
    assert (verdict.kind, verdict.confirm_text) == (VerdictKind.CONFIRM, "override cp-2")
    assert "loses quorum" in reasons(verdict)


def test_stop_and_start_refuse_what_cannot_be_done_exactly() -> None:
    nodes = with_nodes(
        ONE_DOWN, node("cp-1", RUNNING), node("cp-3", PARKED), node("cp-2", reachable=False)
    )
    assert "nothing to stop" in reasons(StopStaticPod("cp-3/etcd").guard(nodes))
    assert "cannot be reached" in reasons(StopStaticPod("cp-2").guard(nodes))
    assert "not stopped" in reasons(StartStaticPod("cp-1/etcd").guard(nodes))
    assert StartStaticPod("cp-3/etcd").guard(nodes).kind is VerdictKind.ALLOWED
    assert StartStaticPod("cp-3/etcd").moved_back(nodes) == (
        "/etc/kubernetes/etcd.yaml",
        "/etc/kubernetes/manifests/etcd.yaml",
    )


def test_guards_judge_with_the_config_thresholds_the_findings_use() -> None:
    """A follower 50 entries behind is caught up by default, and not with a lag limit of 10;
    a follower whose file is 15 % free is fragmented only once the ratio is lowered."""
    from actions.registry import build_action
    from cluster.config import Thresholds

    behind = snap(member(1, index=1_000), member(2, applied=950, index=950), member(3))
    strict = Thresholds(raft_lag_entries=10)
    assert build_action("move-leader", "cp-2").guard(behind).kind is VerdictKind.ALLOWED
    refused = build_action("move-leader", "cp-2", thresholds=strict).guard(behind)
    assert refused.is_refused and "not caught up" in reasons(refused)

    followers_free = snap(
        member(1), member(2, db=(10_000_000, 8_500_000)), member(3, db=(10_000_000, 8_500_000))
    )
    assert not Defragment("cp-1").guard(followers_free).is_refused  # 15 % free: not fragmented
    lowered = Thresholds(fragmented_free_ratio=0.10)
    verdict = build_action("defragment", "cp-1", thresholds=lowered).guard(followers_free)
    assert verdict.is_refused and "followers before the leader" in reasons(verdict)
