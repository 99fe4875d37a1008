"""The findings engine's rules on hand-built snapshots (no I/O), plus its state file on disk."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest

from cluster.config import Config, ConfigError, EtcdConfig, Thresholds, TlsFiles, parse_config
from cluster.findings import FindingsEngine
from cluster.model import EtcdCluster, EtcdMember, Finding, MemberHash, Severity, Snapshot
from cluster.nodes.model import Filesystem, NodeState, StaticPod
from cluster.nodes.parse import parse_df, parse_ss_listeners
from cluster.state import ClusterState

T0 = dt.datetime(2026, 3, 10, 17, 40, tzinfo=dt.UTC)
CLUSTER_ID = 0xC0FFEE


def member(i: int, **changes: object) -> EtcdMember:
    base = EtcdMember(
        id=i,
        name=f"cp-{i}",
        endpoint=f"https://127.0.0.{10 + i}:2379",
        peer_urls=(f"https://127.0.0.{10 + i}:2380",),
        reachable=True,
        leader_id=1,
        version="3.5.16",
        db_size=20_000_000,
        raft_term=2,
        raft_index=500,
        raft_applied_index=500,
        revision=1000,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def node(i: int, **changes: object) -> NodeState:
    etcd = StaticPod("etcd", "present", "/etc/kubernetes/manifests/etcd.yaml", running=True)
    base = NodeState(f"cp-{i}", f"127.0.0.{10 + i}", reachable=True, static_pods=(etcd,))
    return replace(base, **changes)  # type: ignore[arg-type]


def snapshot(
    *members: EtcdMember, nodes: tuple[NodeState, ...] = (), at: float = 0, **etcd: object
) -> Snapshot:
    cluster = EtcdCluster(
        members=members or tuple(member(i) for i in (1, 2, 3)), cluster_id=CLUSTER_ID
    )
    return Snapshot(
        cluster_name="test",
        collected_at=T0 + dt.timedelta(seconds=at),
        etcd=replace(cluster, **etcd),  # type: ignore[arg-type]
        nodes=nodes,
    )


def config(**thresholds: float) -> Config:
    tls = TlsFiles(Path("ca.crt"), Path("client.crt"), Path("client.key"))
    return Config(
        name="test",
        etcd=EtcdConfig(endpoints=("https://127.0.0.11:2379",), tls=tls),
        thresholds=Thresholds(**thresholds),  # type: ignore[arg-type]
    )


@pytest.fixture
def engine(tmp_path: Path) -> FindingsEngine:
    return FindingsEngine(config(), ClusterState.for_cluster("test", tmp_path))


def evaluate(engine: FindingsEngine, snap: Snapshot) -> list[Finding]:
    """The engine's findings about etcd and disks (the hand-built nodes lack CNI, pki …)."""
    found = engine.evaluate(snap).findings
    ours = ("etcd.", "node.disk-pressure", "static-pod.port-conflict")
    return [f for f in found if f.id.startswith(ours)]


def ids(engine: FindingsEngine, snap: Snapshot) -> dict[str, tuple[Severity, str | None]]:
    return {f.id: (f.severity, f.action) for f in evaluate(engine, snap)}


def test_healthy_cluster_has_no_findings(engine: FindingsEngine) -> None:
    assert evaluate(engine, snapshot(nodes=tuple(node(i) for i in (1, 2, 3)))) == []


def test_stale_member_never_started_points_at_member_remove(engine: FindingsEngine) -> None:
    unstarted = EtcdMember(id=0xABC, name="", endpoint=None, peer_urls=("https://127.0.0.14:2380",))
    found = evaluate(engine, snapshot(member(1), member(2), member(3), unstarted))
    stale = next(f for f in found if f.id == "etcd.stale-member")
    assert (stale.severity, stale.action, stale.subject) == (
        Severity.ERROR,
        "member-remove",
        "0000000000000abc",
    )
    assert "member remove 0000000000000abc" in (stale.command or "")
    assert "etcd.even-member-count" in {f.id for f in found}  # 4 voting members


def test_stale_member_whose_node_lost_its_manifest(engine: FindingsEngine) -> None:
    down = member(3, reachable=False, error="UNAVAILABLE")
    gone = StaticPod("etcd", "missing")
    moved = StaticPod("etcd", "moved", moved_to="/etc/kubernetes/manifests-20230310")
    nodes = (node(1), node(2), node(3, static_pods=(gone,)))
    assert "etcd.stale-member" in ids(engine, snapshot(member(1), member(2), down, nodes=nodes))
    nodes = (node(1), node(2), node(3, static_pods=(moved,)))  # the runbook's stop: not stale
    assert "etcd.stale-member" not in ids(engine, snapshot(member(1), member(2), down, nodes=nodes))


def test_too_many_members(engine: FindingsEngine) -> None:
    found = ids(engine, snapshot(*(member(i) for i in range(1, 10))))
    assert found["etcd.too-many-members"][0] == Severity.WARNING
    assert "etcd.even-member-count" not in found


def test_learner_says_whether_it_is_promotable(engine: FindingsEngine) -> None:
    leader = member(1, raft_index=50_000, raft_applied_index=50_000)
    synced = member(4, is_learner=True, raft_applied_index=49_990)
    behind = member(5, is_learner=True, raft_applied_index=3)
    found = evaluate(engine, snapshot(leader, member(2), member(3), synced, behind))
    learners = {f.subject: f for f in found if f.id == "etcd.learner-not-promoted"}
    assert "promotable" in learners["cp-4"].summary and "syncing" in learners["cp-5"].summary
    assert {f.action for f in learners.values()} == {"member-promote"}


def test_raft_lag(engine: FindingsEngine) -> None:
    found = evaluate(
        engine,
        snapshot(member(1, raft_applied_index=9000), member(2), member(3, raft_applied_index=8900)),
    )
    assert [f.subject for f in found if f.id == "etcd.raft-lag"] == ["cp-2"]


def test_db_divergence_with_equal_hashes_is_fragmentation(engine: FindingsEngine) -> None:
    hashes = tuple(MemberHash(i, 1000, 0xFEED) for i in (1, 2, 3))
    snap = snapshot(member(1), member(2), member(3, db_size=90_000_000), hashes=hashes)
    finding = next(f for f in evaluate(engine, snap) if f.id == "etcd.db-size-divergence")
    assert (finding.subject, finding.action, finding.target) == (
        "cp-3",
        "rolling-defragment",
        "etcd",
    )
    assert "fragmentation" in finding.summary


def test_db_divergence_with_different_hashes_is_corruption(engine: FindingsEngine) -> None:
    hashes = (MemberHash(1, 1000, 0xFEED), MemberHash(2, 1000, 0xFEED), MemberHash(3, 1000, 0xBAD))
    snap = snapshot(member(1), member(2), member(3, db_size=90_000_000), hashes=hashes)
    found = ids(engine, snap)
    assert found["etcd.hash-mismatch"][0] == Severity.CRITICAL
    assert "etcd.db-size-divergence" not in found


def test_near_quota_reads_the_manifest_quota(engine: FindingsEngine) -> None:
    quota = StaticPod("etcd", "present", flags=(("quota-backend-bytes", "16000000"),), running=True)
    nodes = (node(1, static_pods=(quota,)), node(2), node(3))
    found = evaluate(engine, snapshot(nodes=nodes))
    assert [(f.id, f.subject) for f in found] == [("etcd.db-near-quota", "cp-1")]
    big = snapshot(*(member(i, db_size=1_800_000_000) for i in (1, 2, 3)))  # default 2 GiB
    assert {f.subject for f in evaluate(engine, big) if f.id == "etcd.db-near-quota"} == {
        "cp-1",
        "cp-2",
        "cp-3",
    }


def test_alarm(engine: FindingsEngine) -> None:
    found = evaluate(engine, snapshot(alarms=((2, "NOSPACE"),)))
    assert [(f.id, f.severity, f.subject) for f in found] == [
        ("etcd.alarm", Severity.CRITICAL, "cp-2")
    ]


def test_frequent_elections_over_the_window(tmp_path: Path) -> None:
    engine = FindingsEngine(config(election_window=60), ClusterState.for_cluster("t", tmp_path))
    for second, term in enumerate((2, 3, 4)):
        assert "etcd.frequent-elections" not in ids(
            engine, snapshot(*(member(i, raft_term=term) for i in (1, 2, 3)), at=second)
        )
    assert "etcd.frequent-elections" in ids(
        engine, snapshot(*(member(i, raft_term=5) for i in (1, 2, 3)), at=3)
    )
    # the same rise spread over longer than the window is not frequent
    assert "etcd.frequent-elections" not in ids(
        engine, snapshot(*(member(i, raft_term=6) for i in (1, 2, 3)), at=100)
    )


def test_version_skew(engine: FindingsEngine) -> None:
    found = ids(engine, snapshot(member(1), member(2), member(3, version="3.4.23")))
    assert found == {"etcd.version-skew": (Severity.INFO, None)}


def test_revision_regressed_survives_a_new_engine(tmp_path: Path) -> None:
    first = FindingsEngine(config(), ClusterState.for_cluster("test", tmp_path))
    assert evaluate(first, snapshot(*(member(i, revision=5000) for i in (1, 2, 3)))) == []
    restarted = FindingsEngine(config(), ClusterState.for_cluster("test", tmp_path))
    rolled_back = snapshot(*(member(i, revision=1200) for i in (1, 2, 3)))
    assert ids(restarted, rolled_back) == {"etcd.revision-regressed": (Severity.CRITICAL, None)}
    other_cluster = replace(rolled_back, etcd=replace(rolled_back.etcd, cluster_id=0xBEEF))
    assert evaluate(restarted, other_cluster) == []


def test_corrupt_state_file_is_an_error_not_a_crash(tmp_path: Path) -> None:
    state = ClusterState.for_cluster("test", tmp_path)
    state.path.parent.mkdir(parents=True)
    state.path.write_bytes(b"\x00\xff not json")
    reread = ClusterState.for_cluster("test", tmp_path)
    assert reread.error and "unreadable" in reread.error and reread.max_revision(CLUSTER_ID) is None


def test_disk_pressure_levels(engine: FindingsEngine) -> None:
    def fs(percent: float) -> Filesystem:
        return Filesystem("/var/lib/etcd", "/", 100, int(percent), percent)

    nodes = (
        node(1, filesystems=(fs(50),)),
        node(2, filesystems=(fs(90),)),
        node(3, filesystems=(fs(97),)),
    )
    found = evaluate(engine, snapshot(nodes=nodes))
    assert [(f.id, f.subject, f.severity) for f in found] == [
        ("node.disk-pressure", "cp-3", Severity.ERROR),
        ("node.disk-pressure", "cp-2", Severity.WARNING),
    ]


def test_port_conflict_from_ss(engine: FindingsEngine) -> None:
    ss = (
        'LISTEN 0 4096 127.0.0.11:2379 0.0.0.0:* users:(("etcd",pid=7,fd=3))\n'
        'LISTEN 0 4096 0.0.0.0:6443 0.0.0.0:* users:(("docker-proxy",pid=42,fd=4))\n'
        "LISTEN 0 4096 [::]:10259 [::]:*\n"
        'LISTEN 0 4096 127.0.0.1:10257 0.0.0.0:* users:(("kube-controller",pid=9,fd=3))\n'
    )
    listeners = parse_ss_listeners(ss)
    assert [(li.port, li.process) for li in listeners] == [
        (2379, "etcd"),
        (6443, "docker-proxy"),
        (10259, ""),
        (10257, "kube-controller"),  # the kernel's 15-character name of the manager
    ]
    found = evaluate(engine, snapshot(nodes=(node(1, listeners=listeners),)))
    found = [f for f in found if f.id == "static-pod.port-conflict"]
    assert [(f.subject, f.severity) for f in found] == [("cp-1", Severity.ERROR)]


def test_df_parsing() -> None:
    text = "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 1000 870 130 87% /var lib\n"
    assert parse_df("/var/lib/etcd", text) == Filesystem(
        "/var/lib/etcd", "/var lib", 1000, 870, 87.0
    )
    assert parse_df("/", "df: /: No such file or directory\n") is None


def test_thresholds_from_config_and_their_errors(tmp_path: Path) -> None:
    base = {"etcd": {"endpoints": ["https://127.0.0.11:2379"], "ca": "a", "cert": "b", "key": "c"}}
    parsed = parse_config(
        {**base, "thresholds": {"disk_warning_percent": 70, "raft_lag_entries": 50}}, tmp_path
    )
    assert (parsed.thresholds.disk_warning_percent, parsed.thresholds.raft_lag_entries) == (
        70.0,
        50,
    )
    assert parsed.thresholds.election_terms == 3  # the rest keep the catalog's defaults
    with pytest.raises(ConfigError, match="unknown \\[thresholds\\] disk_percent"):
        parse_config({**base, "thresholds": {"disk_percent": 70}}, tmp_path)
    with pytest.raises(ConfigError, match="raft_lag_entries must be a positive number"):
        parse_config({**base, "thresholds": {"raft_lag_entries": "many"}}, tmp_path)


def test_bell_rings_once_per_new_critical(tmp_path: Path) -> None:
    from tui.app import CockpitApp

    app = CockpitApp(config(), bell=True)
    rings: list[None] = []
    app.bell = lambda: rings.append(None)  # type: ignore[method-assign]
    alarm = snapshot(alarms=((2, "NOSPACE"),))
    both = snapshot(alarms=((2, "NOSPACE"), (3, "NOSPACE")))
    for snap in (snapshot(), alarm, alarm, both, alarm):
        app._ring_for_new_criticals(
            FindingsEngine(config(), ClusterState.for_cluster("b", tmp_path)).evaluate(snap)
        )
    assert len(rings) == 2  # the first alarm, then the second member's; never per refresh
