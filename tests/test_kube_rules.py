"""Kubernetes API findings on hand-built views (pure), kubeconfig resolution and bad kubeconfigs."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from textual.app import App, ComposeResult

from cluster.config import KubeConfig, parse_config
from cluster.findings import RULES, evaluate, kube
from cluster.kube.model import (
    KubeDaemonSet,
    KubeEndpoints,
    KubeNode,
    KubePod,
    KubeReadError,
    KubeView,
)
from cluster.kube.source import KubeSource, resolve_kubeconfig
from cluster.model import EtcdCluster, Finding, Severity, Snapshot
from cluster.nodes.model import NodeState, StaticPod
from widgets.nodes_pane import KubeStatus

NOW = dt.datetime(2025, 3, 10, 3, 0, tzinfo=dt.UTC)
NODES = ("cp-1", "cp-2", "cp-3")
KUBE_IDS = {f.id for spec in RULES if spec.rule.__module__ == kube.__name__ for f in spec.findings}


def evaluate_kube(view: KubeView | None, nodes: Sequence[NodeState] = ()) -> list[Finding]:
    """The findings of the API's rules (the hand-built nodes lack CNI, pki … for the others)."""
    snapshot = Snapshot("test", NOW, EtcdCluster(), nodes=tuple(nodes), kube=view)
    return [f for f in evaluate(snapshot) if f.id in KUBE_IDS]


def mirror(node: str, component: str = "etcd", running: bool = True) -> KubePod:
    return KubePod(
        namespace="kube-system",
        name=f"{component}-{node}",
        node=node,
        phase="Running" if running else "Pending",
        ready=running,
        status="Running" if running else "CrashLoopBackOff",
        component=component,
        mirror=True,
        owner_kind="Node",
        owner_name=node,
    )


def agent(ds: str, node: str, ready: bool = True) -> KubePod:
    return KubePod(
        namespace="kube-system",
        name=f"{ds}-{node}",
        node=node,
        phase="Running",
        ready=ready,
        status="Running",
        owner_kind="DaemonSet",
        owner_name=ds,
    )


def daemonset(name: str, ready: int = 3) -> KubeDaemonSet:
    return KubeDaemonSet("kube-system", name, 3, 3, ready, 3, ready, (("k8s-app", name),))


def healthy_view() -> KubeView:
    return KubeView(
        server="https://10.0.0.11:6443",
        collected_at=NOW,
        context="admin@prod",
        user="admin",
        kubeconfig="/root/.kube/config",
        nodes=tuple(
            KubeNode(n, True, "KubeletReady", roles=("control-plane",), kubelet_version="v1.29.4")
            for n in NODES
        ),
        pods=tuple(
            [mirror(n) for n in NODES]
            + [mirror(n, "kube-apiserver") for n in NODES]
            + [agent(ds, n) for ds in ("calico-node", "kube-proxy") for n in NODES]
        ),
        daemonsets=(daemonset("calico-node"), daemonset("kube-proxy")),
        endpoints=KubeEndpoints(ready=("10.0.0.11:6443",)),
        events=(),
    )


def by_id(view: KubeView) -> dict[str, list]:
    found: dict[str, list] = {}
    for finding in evaluate_kube(view):
        found.setdefault(finding.id, []).append(finding)
    return found


def test_a_healthy_view_has_no_findings_and_no_view_none() -> None:
    assert evaluate_kube(healthy_view()) == []
    assert evaluate_kube(None) == []


def test_refused_names_the_server_like_kubectl_and_keeps_the_error_verbatim() -> None:
    error = "https://10.0.0.11:6443: Failed to establish a new connection: [Errno 111] Connection refused"
    view = KubeView(server="https://10.0.0.11:6443", collected_at=NOW, error=error)
    [finding] = evaluate_kube(view)
    assert finding.id == "kube.api-unreachable" and finding.severity == Severity.CRITICAL
    assert finding.summary == "The connection to the server 10.0.0.11:6443 was refused"
    assert finding.evidence == error
    assert finding.subject == "10.0.0.11:6443"


@pytest.mark.parametrize(
    ("error", "words"),
    [
        ("Read timed out. (read timeout=2.0)", "timed out"),
        ("SSLError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed", "TLS"),
    ],
)
def test_timeouts_and_tls_errors_are_told_apart(error: str, words: str) -> None:
    view = KubeView(server="https://10.0.0.11:6443", collected_at=NOW, error=error)
    [finding] = evaluate_kube(view)
    assert words in finding.summary and finding.evidence == error


def test_node_not_ready_carries_the_kubelet_reason() -> None:
    view = healthy_view()
    nodes = list(view.nodes or ())
    nodes[1] = replace(
        nodes[1],
        ready=False,
        ready_reason="KubeletNotReady",
        ready_message="cni plugin not initialized",
    )
    [finding] = by_id(replace(view, nodes=tuple(nodes)))["kube.node-not-ready"]
    assert finding.subject == "cp-2" and "cni plugin not initialized" in finding.evidence
    assert finding.command and "describe node cp-2" in finding.command


def test_a_missing_or_crashing_mirror_pod_is_a_static_pod_not_running() -> None:
    view = healthy_view()
    pods = [p for p in view.pods or () if p.name != "etcd-cp-2"]
    pods = [
        mirror("cp-3", "kube-apiserver", running=False) if p.name == "kube-apiserver-cp-3" else p
        for p in pods
    ]
    found = by_id(replace(view, pods=tuple(pods)))["static-pod.not-running"]
    assert {f.subject for f in found} == {"cp-2/etcd", "cp-3/kube-apiserver"}
    missing = next(f for f in found if f.subject == "cp-2/etcd")
    assert "no mirror pod" in missing.evidence and "cp-1, cp-3" in missing.evidence
    crashing = next(f for f in found if f.subject == "cp-3/kube-apiserver")
    assert "CrashLoopBackOff" in crashing.evidence


def test_unready_calico_and_kube_proxy_name_the_pod_and_its_node() -> None:
    view = healthy_view()
    pods = [
        agent(p.owner_name or "", p.node or "", ready=False)
        if p.name in ("calico-node-cp-3", "kube-proxy-cp-1")
        else p
        for p in view.pods or ()
    ]
    view = replace(
        view,
        pods=tuple(pods),
        daemonsets=(daemonset("calico-node", ready=2), daemonset("kube-proxy", ready=2)),
    )
    found = by_id(view)
    [cni] = found["cni.daemonset-not-ready"]
    [proxy] = found["kube-proxy.not-ready"]
    assert cni.subject == "calico-node" and "calico-node-cp-3 on cp-3" in cni.evidence
    assert cni.command and cni.command.endswith("-n kube-system delete pod calico-node-cp-3")
    assert proxy.subject == "kube-proxy" and "kube-proxy-cp-1 on cp-1" in proxy.evidence
    assert "--kubeconfig=/root/.kube/config" in (proxy.command or "")


def test_empty_kubernetes_endpoints() -> None:
    found = by_id(replace(healthy_view(), endpoints=KubeEndpoints(not_ready=("10.0.0.12:6443",))))
    [finding] = found["kube.endpoints-empty"]
    assert "not ready: 10.0.0.12:6443" in finding.evidence
    missing = by_id(replace(healthy_view(), endpoints=KubeEndpoints(exists=False)))
    assert "does not exist" in missing["kube.endpoints-empty"][0].evidence


def test_a_403_names_the_verb_and_resource_and_the_rest_still_counts() -> None:
    denied = KubeReadError(
        "list",
        "pods",
        "kube-system",
        403,
        "Forbidden",
        'pods is forbidden: User "viewer" cannot list resource "pods" in API group "" in the '
        'namespace "kube-system"',
    )
    view = replace(healthy_view(), pods=None, read_errors=(denied,))
    found = by_id(view)
    [finding] = found["kube.rbac-denied"]
    assert finding.subject == "list pods -n kube-system"
    assert finding.evidence == denied.message
    assert finding.command and finding.command.endswith("auth can-i list pods -n kube-system")
    assert set(found) == {"kube.rbac-denied"}  # pods unknown: no static-pod guesses


def test_kubeconfig_resolution_follows_kubectl_then_admin_conf(tmp_path: Path) -> None:
    home = tmp_path / "home"
    admin = tmp_path / "admin.conf"
    explicit = tmp_path / "explicit"
    assert resolve_kubeconfig(None, {}, home, admin) is None
    admin.write_text("{}")
    assert resolve_kubeconfig(None, {}, home, admin) == str(admin)
    (home / ".kube").mkdir(parents=True)
    (home / ".kube" / "config").write_text("{}")
    assert resolve_kubeconfig(None, {}, home, admin) == str(home / ".kube" / "config")
    assert resolve_kubeconfig(None, {"KUBECONFIG": "/a:/b"}, home, admin) == "/a:/b"
    assert resolve_kubeconfig(explicit, {"KUBECONFIG": "/a"}, home, admin) == str(explicit)


def test_kube_table_is_optional_and_validated(tmp_path: Path) -> None:
    base = {"etcd": {"endpoints": ["https://a:2379"], "ca": "ca", "cert": "c", "key": "k"}}
    assert parse_config(base, tmp_path).kube is None
    config = parse_config({**base, "kube": {"kubeconfig": "kc", "context": "x"}}, tmp_path)
    assert config.kube == KubeConfig(kubeconfig=tmp_path / "kc", context="x")


@pytest.mark.parametrize(
    "content",
    [b"clusters: [unclosed\n", b"\x00\x01binary junk\xff", b"apiVersion: v1\nkind: Config\n", b""],
)
def test_a_bad_kubeconfig_is_a_finding_not_a_crash(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "kubeconfig"
    path.write_bytes(content)
    source = KubeSource(KubeConfig(kubeconfig=path, timeout=1.0))
    view = asyncio.run(source.collect())
    [finding] = evaluate_kube(view)
    assert finding.id == "kube.kubeconfig-invalid" and str(path) in finding.evidence


def test_the_node_and_the_api_disagreeing_is_a_finding() -> None:
    def node(name: str, running: bool | None) -> NodeState:
        pod = StaticPod("etcd", "present", running=running, evidence="crictl: container running")
        return NodeState(name, "10.0.0.12", True, static_pods=(pod,))

    view = healthy_view()
    without = replace(view, pods=tuple(p for p in view.pods or () if p.name != "etcd-cp-2"))
    [finding] = evaluate_kube(without, [node("cp-2", True)])[-1:]
    assert finding.id == "static-pod.api-disagrees" and finding.subject == "cp-2/etcd"
    assert "running (crictl: container running); per the API: no mirror pod" in finding.evidence
    assert not by_id_with_nodes(view, [node("cp-2", True), node("cp-3", None)])
    assert by_id_with_nodes(view, [node("cp-1", False)]) == {"static-pod.api-disagrees"}


def by_id_with_nodes(view: KubeView, nodes: list[NodeState]) -> set[str]:
    return {f.id for f in evaluate_kube(view, nodes)}


async def test_the_api_is_called_slow_only_while_a_newer_read_is_awaited() -> None:
    """The API is read every few seconds: an older view alone is not a slow API."""

    class StatusLine(App[None]):
        def compose(self) -> ComposeResult:
            yield KubeStatus()

    async with StatusLine().run_test() as pilot:
        status = pilot.app.query_one(KubeStatus)
        later = NOW + dt.timedelta(seconds=4)  # a view from the last read, 4 s ago
        status.show_snapshot(Snapshot("prod", later, EtcdCluster(), kube=healthy_view()))
        assert "as of 03:00:00" in str(status.content) and "slow" not in str(status.content)
        awaited = replace(healthy_view(), slow_for=3.4)
        status.show_snapshot(Snapshot("prod", later, EtcdCluster(), kube=awaited))
        assert "(no answer for 3 s: the API is slow)" in str(status.content)
