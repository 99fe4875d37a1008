"""The guards of the multi-step maintenance actions on hand-built snapshots (no I/O): what a
rolling defragment and a static pod's restart refuse, and what they ask for."""

from __future__ import annotations

from dataclasses import replace

import pytest

from actions.base import VerdictKind
from actions.rolling_defragment import RollingDefragment
from actions.static_pod_actions import RestartStaticPod
from cluster.model import Snapshot
from cluster.nodes.model import ETCD_DATA_DIR, Filesystem, NodeState, StaticPod
from tests.test_guards import HEALTHY, ONE_DOWN, RUNNING, member, node, reasons, snap, with_nodes

GiB = 1024**3


def roomy(name: str, *pods: StaticPod, free_kib: int = 10 * GiB // 1024) -> NodeState:
    """A node whose etcd data dir has `free_kib` KiB free (as `df -P` says)."""
    disk = Filesystem(ETCD_DATA_DIR, "/", 20 * GiB // 1024, 20 * GiB // 1024 - free_kib, 50.0)
    return replace(node(name, *pods), filesystems=(disk,))


def nodes_of(snapshot: Snapshot, *nodes: NodeState) -> Snapshot:
    return with_nodes(snapshot, *(nodes or (roomy("cp-1"), roomy("cp-2"), roomy("cp-3"))))


def test_rolling_defragment_of_a_healthy_cluster_is_allowed() -> None:
    verdict = RollingDefragment("etcd").guard(nodes_of(HEALTHY))
    assert verdict.kind is VerdictKind.ALLOWED


@pytest.mark.parametrize(
    ("snapshot", "why"),
    [
        (nodes_of(ONE_DOWN), "cp-3 is not healthy"),
        (nodes_of(snap(member(1, index=5000), member(2, applied=1), member(3))), "not caught up"),
        (
            nodes_of(replace(HEALTHY, etcd=replace(HEALTHY.etcd, alarms=((2, "CORRUPT"),)))),
            "alarm CORRUPT",
        ),
        (nodes_of(HEALTHY, roomy("cp-1"), roomy("cp-2")), "free disk for cp-3's /var/lib/etcd"),
        (nodes_of(HEALTHY, roomy("cp-1"), roomy("cp-2"), roomy("cp-3", free_kib=50)), "less than"),
    ],
)
def test_rolling_defragment_refusals(snapshot: Snapshot, why: str) -> None:
    verdict = RollingDefragment("etcd").guard(snapshot)
    assert verdict.is_refused and why in reasons(verdict), reasons(verdict)


def test_rolling_defragment_ignores_nospace_and_a_syncing_learner_and_leads_with_followers() -> (
    None
):
    cluster = snap(member(1), member(2), member(3), member(4, learner=True, applied=1))
    full = replace(cluster, etcd=replace(cluster.etcd, alarms=((1, "NOSPACE"),)))
    action = RollingDefragment("etcd")
    assert action.guard(nodes_of(full)).kind is VerdictKind.ALLOWED
    assert [m.name for m in action.order(full.etcd)] == ["cp-2", "cp-3", "cp-1"]  # leader last


def test_restart_static_pod_asks_for_the_node_and_refuses_below_quorum() -> None:
    three = (node("cp-1", RUNNING), node("cp-2", RUNNING), node("cp-3", RUNNING))
    verdict = RestartStaticPod("cp-2/etcd").guard(with_nodes(HEALTHY, *three))
    assert (verdict.kind, verdict.confirm_text) == (VerdictKind.CONFIRM, "cp-2")
    verdict = RestartStaticPod("cp-2/etcd").guard(with_nodes(ONE_DOWN, *three))
    assert verdict.is_refused and "below quorum" in reasons(verdict)  # no override either
    verdict = RestartStaticPod("cp-2").guard(with_nodes(HEALTHY, *three))
    assert verdict.is_refused and "name one component" in reasons(verdict)


def test_restart_never_stops_the_last_running_apiserver() -> None:
    up = StaticPod("kube-apiserver", "present", file="kube-apiserver.yaml", running=True)
    down = replace(up, running=False)
    last = with_nodes(HEALTHY, node("cp-1", up), node("cp-2", down))
    verdict = RestartStaticPod("cp-1/kube-apiserver").guard(last)
    assert verdict.is_refused and "last running kube-apiserver" in reasons(verdict)
    two = with_nodes(HEALTHY, node("cp-1", up), node("cp-2", up))
    assert RestartStaticPod("cp-1/kube-apiserver").guard(two).kind is VerdictKind.ALLOWED
