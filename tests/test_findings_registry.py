"""The findings registry against the rules, the actions and the docs.

Every finding id in the registry has a case here: a minimal snapshot that must raise it, and
the same snapshot with its condition inverted (just on the other side of the threshold where
there is one) that must not. A rule that stopped firing, or fired on a healthy cluster, fails
its case; an id registered without a case fails the completeness test. The ids' actions must
be real actions, and docs/findings.md must be what `kcockpit findings --markdown` prints.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import fields, replace
from pathlib import Path

import pytest

from actions.etcd_actions import MemberPromote
from actions.registry import build_action
from actions.specs import SPECS
from cluster.config import Thresholds, parse_config
from cluster.findings import Context, catalog, evaluate
from cluster.findings.etcd import caught_up
from cluster.kube.model import (
    KubeDaemonSet,
    KubeEndpoints,
    KubeNode,
    KubePod,
    KubeReadError,
    KubeView,
)
from cluster.model import (
    EtcdCluster,
    EtcdMember,
    FailedCalls,
    Finding,
    MemberHash,
    MemberMetrics,
    Severity,
    Snapshot,
)
from cluster.nodes.model import (
    DENIED,
    KUBERNETES_DIR,
    MANIFESTS_DIR,
    PKI_DIR,
    Certificate,
    CniFile,
    CniState,
    Filesystem,
    Listener,
    ManifestFile,
    NodeState,
    StaticPod,
)
from cluster.report import metrics_json
from tests.helpers import PROJECT
from tests.test_engine_rules import member as engine_member
from tui.cli import main
from tui.findings_catalog import catalog_markdown

NOW = dt.datetime(2026, 3, 10, 17, 40, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
GIB = 1024**3
ETCD_IMAGE = "registry.k8s.io/etcd:3.5.16-0"
CALICO = CniFile("10-calico.conflist", "file", is_config=True, types=("calico",))
SUDO_WORDS = "cp-1: sudo -n sh -s refused: sudo: a password is required"


def member(i: int, **changes: object) -> EtcdMember:
    """test_engine_rules' member, with a raft log long enough for lag thresholds to matter."""
    return engine_member(i, **{"raft_index": 5000, "raft_applied_index": 5000, **changes})


def node(i: int, **changes: object) -> NodeState:
    etcd = StaticPod("etcd", "present", f"{MANIFESTS_DIR}/etcd.yaml", image=ETCD_IMAGE)
    base = NodeState(
        f"cp-{i}",
        f"127.0.0.{10 + i}",
        reachable=True,
        hostname=f"cp-{i}",
        addresses=(f"127.0.0.{10 + i}",),
        clock_offset=0.0,
        static_pods=(etcd,),
        cni=CniState((CALICO,)),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


HEALTHY = Snapshot(
    "test",
    NOW,
    EtcdCluster(members=tuple(member(i) for i in (1, 2, 3)), cluster_id=0xC0FFEE),
    nodes=tuple(node(i) for i in (1, 2, 3)),
    kube=KubeView(server="https://127.0.0.11:6443", collected_at=NOW),
)


def etcd(*members: EtcdMember, **changes: object) -> Snapshot:
    cluster = replace(HEALTHY.etcd, members=members, **changes)  # type: ignore[arg-type]
    return replace(HEALTHY, etcd=cluster)


def members(**changed: EtcdMember) -> Snapshot:
    """The healthy three members with some replaced (by name: cp_2=member(2, …))."""
    return etcd(*(changed.get(f"cp_{i}", member(i)) for i in (1, 2, 3)))


def first_node(**changes: object) -> Snapshot:
    return replace(HEALTHY, nodes=(node(1, **changes), *HEALTHY.nodes[1:]))


def etcd_pod(**changes: object) -> tuple[StaticPod, ...]:
    return (replace(node(1).static_pods[0], **changes),)  # type: ignore[arg-type]


def cert(path: str = "pki/apiserver-kubelet-client.crt", **changes: object) -> Snapshot:
    base = Certificate(
        f"{KUBERNETES_DIR}/{path}",
        subject="kube-apiserver-kubelet-client",
        issuer="kubernetes",
        sans=("cp-1", "127.0.0.11"),
        not_before=NOW - 300 * DAY,
        not_after=NOW + 65 * DAY,
        ca_path=f"{PKI_DIR}/ca.crt",
        signed_by_ca=True,
    )
    return first_node(certificates=(replace(base, **changes),))  # type: ignore[arg-type]


def kube(**changes: object) -> Snapshot:
    assert HEALTHY.kube is not None
    return replace(HEALTHY, kube=replace(HEALTHY.kube, **changes))  # type: ignore[arg-type]


def mirror(node_name: str, running: bool) -> KubePod:
    return KubePod(
        "kube-system",
        f"etcd-{node_name}",
        node_name,
        "Running" if running else "Pending",
        ready=running,
        status="Running" if running else "CrashLoopBackOff",
        component="etcd",
        mirror=True,
    )


def daemonset(name: str, ready: int) -> KubeDaemonSet:
    return KubeDaemonSet("kube-system", name, 3, 3, ready, 3, ready, (("k8s-app", name),))


def read_error(status: int) -> tuple[KubeReadError, ...]:
    return (KubeReadError("list", "pods", "kube-system", status, "Forbidden", "denied"),)


def control_plane(*names: str) -> tuple[KubeNode, ...]:
    return tuple(KubeNode(n, True, roles=("control-plane",)) for n in names)


def with_history(term: int) -> tuple[Snapshot, Context]:
    earlier = replace(HEALTHY, collected_at=NOW - dt.timedelta(seconds=60))
    now = etcd(*(member(i, raft_term=term) for i in (1, 2, 3)))
    return now, Context(now=NOW, history=(earlier,))


def hashes(second: int) -> Snapshot:
    sizes = members(cp_2=member(2, db_size=30_000_000))
    found = tuple(MemberHash(i, 1000, h) for i, h in ((1, 7), (2, second), (3, 7)))
    return replace(sizes, etcd=replace(sizes.etcd, hashes=found))


def metrics(**figures: object) -> Snapshot:
    """The healthy snapshot with cp-1's /metrics figures over full windows."""
    read = MemberMetrics("cp-1", "https://127.0.0.11:2379", NOW, window=300.0, long_window=900.0)
    return replace(HEALTHY, metrics=(replace(read, **figures),))  # type: ignore[arg-type]


def growing(hours_to_quota: float) -> Snapshot:
    return metrics(db_size=GIB, quota=2 * GIB, growth_per_second=GIB / (hours_to_quota * 3600))


Case = Callable[[bool], Snapshot | tuple[Snapshot, Context]]
# finding id -> a snapshot that raises it (True) and the same with its condition inverted (False)
CASES: dict[str, Case] = {
    "etcd.quorum-lost": lambda bad: members(
        cp_2=member(2, reachable=not bad), cp_3=member(3, reachable=False)
    ),
    "etcd.no-fault-tolerance": lambda bad: members(cp_3=member(3, reachable=not bad)),
    "etcd.leader-missing": lambda bad: etcd(
        *(member(i, leader_id=0 if bad else 1) for i in (1, 2, 3))
    ),
    "etcd.member-unreachable": lambda bad: members(
        cp_3=member(3, reachable=not bad, error="connection refused")
    ),
    "etcd.stale-member": lambda bad: members(
        cp_3=member(3, reachable=False, name="" if bad else "cp-3")
    ),
    "etcd.even-member-count": lambda bad: etcd(*(member(i) for i in range(1, 5 if bad else 4))),
    "etcd.too-many-members": lambda bad: etcd(*(member(i) for i in range(1, 10 if bad else 8))),
    "etcd.learner-not-promoted": lambda bad: etcd(
        *(member(i) for i in (1, 2, 3)), *([member(4, is_learner=True)] if bad else [])
    ),
    "etcd.raft-lag": lambda bad: members(
        cp_2=member(2, raft_applied_index=5000 - (1001 if bad else 1000))
    ),
    "etcd.db-size-divergence": lambda bad: members(
        cp_2=member(2, db_size=30_000_000 if bad else 23_000_000)
    ),
    "etcd.hash-mismatch": lambda bad: hashes(8 if bad else 7),
    "etcd.alarm": lambda bad: etcd(*HEALTHY.etcd.members, alarms=((1, "NOSPACE"),) if bad else ()),
    "etcd.db-near-quota": lambda bad: etcd(
        *(member(i, db_size=int((0.81 if bad else 0.79) * 2 * GIB)) for i in (1, 2, 3))
    ),
    "etcd.version-skew": lambda bad: members(cp_2=member(2, version="3.5.17" if bad else "3.5.16")),
    "etcd.revision-regressed": lambda bad: (
        HEALTHY,
        Context(now=NOW, max_revision=2000 if bad else 1000),
    ),
    "etcd.frequent-elections": lambda bad: with_history(5 if bad else 4),
    "node.unreachable": lambda bad: first_node(reachable=not bad, error="connection refused"),
    "static-pod.manifest-missing": lambda bad: first_node(
        static_pods=etcd_pod(state="missing" if bad else "present")
    ),
    "static-pod.stray-file": lambda bad: first_node(
        extra_manifests=(ManifestFile("etcd.yaml.bak", stray=bad),)
    ),
    "static-pod.invalid-manifest": lambda bad: first_node(
        static_pods=etcd_pod(state="invalid" if bad else "present", error="not YAML")
    ),
    "static-pod.image-skew": lambda bad: first_node(
        static_pods=etcd_pod(image="registry.k8s.io/etcd:3.5.17-0" if bad else ETCD_IMAGE)
    ),
    "cert.expired": lambda bad: cert(not_after=NOW - DAY if bad else NOW + 31 * DAY),
    "cert.expiring": lambda bad: cert(not_after=NOW + (29 if bad else 31) * DAY),
    "cert.not-yet-valid": lambda bad: cert(not_before=NOW + DAY if bad else NOW - DAY),
    "cert.san-missing-node-address": lambda bad: cert(
        "pki/apiserver.crt", sans=("cp-2", "127.0.0.12") if bad else ("cp-1", "127.0.0.11")
    ),
    "cert.wrong-issuer": lambda bad: cert(signed_by_ca=not bad),
    "cert.unreadable": lambda bad: cert(error="not a PEM certificate" if bad else None),
    "cni.invalid-config": lambda bad: first_node(
        cni=CniState((CALICO, CniFile("99-x.conflist", "file", is_config=bad, error="x")))
    ),
    "cni.config-missing": lambda bad: first_node(cni=CniState(() if bad else (CALICO,))),
    "cni.multiple-configs": lambda bad: first_node(
        cni=CniState(
            (
                CALICO,
                CniFile(
                    "20-f.conflist",
                    "file",
                    is_config=True,
                    types=("flannel" if bad else "loopback",),
                ),
            )
        )
    ),
    "cni.inconsistent-across-nodes": lambda bad: first_node(
        cni=CniState(
            (
                CniFile(
                    "10-f.conflist", "file", is_config=True, types=("flannel" if bad else "calico",)
                ),
            )
        )
    ),
    "node.clock-skew": lambda bad: first_node(clock_offset=1.5 if bad else 0.9),
    "node.permission-denied": lambda bad: first_node(denied=(MANIFESTS_DIR,) if bad else ()),
    "node.sudo-failed": lambda bad: first_node(sudo_refused=SUDO_WORDS if bad else None),
    "node.disk-pressure": lambda bad: first_node(
        filesystems=(Filesystem("/var/lib/etcd", "/", 100, 86 if bad else 85, 86 if bad else 85),)
    ),
    "static-pod.port-conflict": lambda bad: first_node(
        listeners=(Listener("0.0.0.0", 6443, "haproxy" if bad else "kube-apiserver", 42),)
    ),
    "kube.api-unreachable": lambda bad: kube(error="connection refused" if bad else None),
    "kube.kubeconfig-invalid": lambda bad: kube(config_error="no context" if bad else None),
    "kube.node-not-ready": lambda bad: kube(nodes=(KubeNode("cp-1", not bad),)),
    "static-pod.not-running": lambda bad: kube(
        nodes=control_plane("cp-1", "cp-2"), pods=(mirror("cp-1", True), mirror("cp-2", not bad))
    ),
    "cni.daemonset-not-ready": lambda bad: kube(
        daemonsets=(daemonset("calico-node", 2 if bad else 3),)
    ),
    "kube-proxy.not-ready": lambda bad: kube(
        daemonsets=(daemonset("kube-proxy", 2 if bad else 3),)
    ),
    "kube.endpoints-empty": lambda bad: kube(
        endpoints=KubeEndpoints(ready=() if bad else ("127.0.0.11:6443",))
    ),
    "kube.rbac-denied": lambda bad: kube(read_errors=read_error(403) if bad else ()),
    "kube.read-failed": lambda bad: kube(read_errors=read_error(500) if bad else ()),
    "etcd.slow-fsync": lambda bad: metrics(fsync_p99=0.6 if bad else 0.009),
    "etcd.slow-commit": lambda bad: metrics(commit_p99=0.3 if bad else 0.2),
    "etcd.slow-peer": lambda bad: metrics(peer_rtt_p99=(("2", 0.2 if bad else 0.1),)),
    "etcd.leader-changes": lambda bad: metrics(leader_changes=4 if bad else 3),
    "etcd.failed-proposals": lambda bad: metrics(failed_per_minute=6.0 if bad else 4.0),
    "etcd.grpc-errors": lambda bad: metrics(
        grpc_failed=FailedCalls("Range", 200, 4 if bad else 1, (("Unavailable", 4 if bad else 1),))
    ),
    "etcd.db-fragmented": lambda bad: metrics(
        db_size=200 * 1024**2, db_in_use=(90 if bad else 110) * 1024**2
    ),
    "etcd.db-growth": lambda bad: growing(3.0 if bad else 5.0),
    "etcd.no-leader": lambda bad: metrics(has_leader=not bad),
    "static-pod.api-disagrees": lambda bad: replace(
        kube(nodes=control_plane("cp-1"), pods=(mirror("cp-1", True),)),
        nodes=(node(1, static_pods=etcd_pod(running=not bad)),),
    ),
}


def findings(case: Case, bad: bool) -> tuple[Finding, ...]:
    made = case(bad)
    snapshot, ctx = made if isinstance(made, tuple) else (made, None)
    return evaluate(snapshot, ctx)


def test_the_healthy_snapshot_has_no_findings() -> None:
    assert evaluate(HEALTHY) == ()


def test_every_registered_finding_has_a_case() -> None:
    assert sorted(CASES) == sorted(spec.id for spec in catalog())


@pytest.mark.parametrize("spec", catalog(), ids=lambda spec: spec.id)
def test_each_finding_is_raised_and_not_when_its_condition_is_inverted(spec) -> None:
    raised = [f for f in findings(CASES[spec.id], True) if f.id == spec.id]
    assert raised, f"{spec.id} not raised"
    assert {f.severity for f in raised} <= set(spec.severities)
    assert {f.action for f in raised} <= {spec.action, None}
    assert spec.id not in {f.id for f in findings(CASES[spec.id], False)}


@pytest.mark.parametrize(
    ("codes", "summary"),
    [
        (
            (("DeadlineExceeded", 5), ("Unavailable", 2)),
            "13.7% of Range calls fail (mostly DeadlineExceeded)",
        ),
        ((("Unavailable", 7),), "13.7% of Range calls fail (all Unavailable)"),
        (
            (("Internal", 3), ("Unavailable", 2), ("DeadlineExceeded", 2)),
            "13.7% of Range calls fail",
        ),
    ],
)
def test_grpc_errors_count_the_failed_calls_by_code(
    codes: tuple[tuple[str, int], ...], summary: str
) -> None:
    calls = FailedCalls("Range", handled=51, failed=7, codes=codes)
    [found] = [
        f for f in evaluate(metrics(window=30.0, grpc_failed=calls)) if f.id == "etcd.grpc-errors"
    ]
    counts = ", ".join(f"{code} {n}" for code, n in codes)
    assert found.summary == f"cp-1: {summary}"
    assert found.evidence.startswith(
        f"grpc_server_handled_total{{grpc_method=Range}}: 7 of 51 calls failed (13.7%) "
        f"over the last 30 s: {counts} (member cp-1, "
    )
    assert found.severity is Severity.CRITICAL
    report = metrics_json(MemberMetrics("cp-1", "e", grpc_failed=calls), NOW)
    assert report["grpc_failed"] == {
        "method": "Range",
        "share": 7 / 51,
        "failed": 7,
        "handled": 51,
        "codes": dict(codes),
    }


def test_every_action_a_finding_advertises_is_a_real_action() -> None:
    advertised = {spec.action for spec in catalog() if spec.action}
    assert advertised and advertised <= set(SPECS)
    produced = {f.action for case in CASES.values() for f in findings(case, True) if f.action}
    assert produced <= advertised


@pytest.mark.parametrize(
    ("applied", "leader_index", "leader_applied", "promotable"),
    [
        (4000, 5000, 5000, True),
        (3999, 5000, 5000, False),
        # The leader's log runs ahead of what it has applied: the learner is measured
        # against the log, as etcd does (the finding once used the applied index).
        (3999, 5000, 4500, False),
    ],
)
def test_the_learner_finding_and_the_promote_guard_agree(
    applied: int, leader_index: int, leader_applied: int, promotable: bool
) -> None:
    leader = member(1, raft_index=leader_index, raft_applied_index=leader_applied)
    learner = member(4, is_learner=True, raft_applied_index=applied)
    snapshot = etcd(leader, member(2), member(3), learner)
    [finding] = [f for f in evaluate(snapshot) if f.id == "etcd.learner-not-promoted"]
    assert ("promotable" in finding.summary) is promotable
    assert caught_up(learner, leader, Thresholds()) is promotable
    assert MemberPromote("cp-4").guard(snapshot).is_refused is not promotable


def test_the_promote_guard_honours_the_configured_threshold() -> None:
    learner = member(4, is_learner=True, raft_applied_index=4900)
    snapshot = etcd(member(1), member(2), member(3), learner)
    assert not MemberPromote("cp-4").guard(snapshot).is_refused
    strict = Thresholds(raft_lag_entries=50)
    assert build_action("member-promote", "cp-4", thresholds=strict).guard(snapshot).is_refused


@pytest.mark.parametrize("name", [f.name for f in fields(Thresholds)])
def test_every_threshold_can_be_set_in_the_config(name: str, tmp_path: Path) -> None:
    default = getattr(Thresholds(), name)
    raw = {
        "etcd": {"endpoints": ["https://127.0.0.1:2379"], "ca": "c", "cert": "c", "key": "k"},
        "thresholds": {name: default * 2},
    }
    assert getattr(parse_config(raw, tmp_path).thresholds, name) == default * 2


def test_docs_findings_md_is_what_kcockpit_findings_prints(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["findings", "--markdown"])
    assert exit_.value.code == 0
    printed = capsys.readouterr().out
    assert printed == catalog_markdown(catalog())
    assert (PROJECT / "docs" / "findings.md").read_text(encoding="utf-8") == printed


# Ids the cockpit raises beyond shared/FINDINGS.md's catalog: what its own reads of the API
# found (kubeconfig, RBAC, errors) and API-side symptoms the runbooks describe. A new id must
# be added to the shared catalog or, deliberately, here; docs/findings.md lists them all.
BEYOND_SHARED_CATALOG = {
    "kube-proxy.not-ready",
    "kube.endpoints-empty",
    "kube.kubeconfig-invalid",
    "kube.node-not-ready",
    "kube.rbac-denied",
    "kube.read-failed",
    "static-pod.api-disagrees",
}


def test_every_id_is_in_the_shared_catalog_or_a_known_addition() -> None:
    shared = PROJECT.parent / "shared" / "FINDINGS.md"
    if not shared.exists():
        pytest.skip("shared/FINDINGS.md is not beside the clone")
    listed = set(re.findall(r"^\| `([a-z.-]+)` \|", shared.read_text(encoding="utf-8"), re.M))
    ids = {spec.id for spec in catalog()}
    assert ids - listed == BEYOND_SHARED_CATALOG
    docs = (PROJECT / "docs" / "findings.md").read_text(encoding="utf-8")
    assert all(f"`{finding_id}`" in docs for finding_id in ids)


def test_what_the_ssh_user_may_not_read_is_one_finding_never_missing_or_unreadable() -> None:
    denied_pods = tuple(
        StaticPod(c, "denied") for c in ("etcd", "kube-apiserver", "kube-scheduler")
    )
    kubeconfig = Certificate(f"{KUBERNETES_DIR}/admin.conf", source="kubeconfig", error=DENIED)
    blind = first_node(
        static_pods=denied_pods,
        certificates=(kubeconfig,),
        extra_manifests=(ManifestFile("extra.yaml", stray=False, error=DENIED),),
        denied=(f"{KUBERNETES_DIR}/admin.conf", MANIFESTS_DIR),
    )
    [finding] = evaluate(blind)
    assert finding.id == "node.permission-denied" and finding.subject == "cp-1"
    assert "cannot read the static pod manifests (permission denied)" in finding.summary
    assert MANIFESTS_DIR in finding.evidence and "not missing" in finding.evidence
    assert 'sudo = true (or "auto")' in finding.next
    assert finding.command and "visudo -cf" in finding.command

    refused = replace(blind, nodes=(replace(blind.nodes[0], sudo_refused=SUDO_WORDS),))
    [finding] = evaluate(refused)  # the refusal says it all, with the sudoers fix
    assert finding.id == "node.sudo-failed"
    assert finding.evidence.startswith(SUDO_WORDS) and MANIFESTS_DIR in finding.evidence
    assert "/etc/sudoers.d/kcockpit" in (finding.command or "")


def test_the_sudoers_fix_names_the_configured_user_quoted() -> None:
    config = parse_config(
        {
            "etcd": {"endpoints": ["https://127.0.0.1:2379"], "ca": "c", "cert": "c", "key": "k"},
            "nodes": [{"name": "cp-1", "address": "10.0.0.11", "user": "o'ps", "sudo": True}],
        },
        Path("/"),
    )
    snapshot = first_node(sudo_refused=SUDO_WORDS)
    [finding] = [
        f for f in evaluate(snapshot, Context(now=NOW, config=config)) if f.subject == "cp-1"
    ]
    assert finding.command is not None
    assert finding.command.startswith(
        "printf '%s ALL=(root) NOPASSWD: /bin/sh -s, /bin/mv\\n' 'o'\"'\"'ps' > ~/kcockpit.sudoers"
    )
