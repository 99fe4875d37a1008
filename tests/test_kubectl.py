"""Fidelity: a real third-party client, Debian's kubectl (package kubernetes-client), against the
lab's API server; it must work and agree with what kcockpit reads."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cluster.config import KubeConfig
from cluster.findings import evaluate
from cluster.kube.source import KubeSource
from cluster.model import EtcdCluster, Snapshot
from lab.control import Lab
from tests.helpers import PROJECT, eventually

LAB_CONTROL_PLANE = True  # the module reads the Kubernetes API or its static pods

DEBIAN_KUBECTL = PROJECT / ".local" / "kubectl" / "usr" / "bin" / "kubectl"


@pytest.fixture(scope="module")
def kubectl_binary() -> Path:
    """$KCOCKPIT_KUBECTL, or Debian's kubectl unpacked into .local/ (installed when missing)."""
    if os.environ.get("KCOCKPIT_KUBECTL"):
        return Path(os.environ["KCOCKPIT_KUBECTL"])
    if not DEBIAN_KUBECTL.exists():
        subprocess.run([str(PROJECT / "scripts" / "install-kubectl.sh")], check=True, timeout=600)
    return DEBIAN_KUBECTL


@pytest.fixture(scope="module")
def kubectl(kubectl_binary: Path, lab: Lab, tmp_path_factory: pytest.TempPathFactory):
    cache = tmp_path_factory.mktemp("kubectl-cache")

    def run(*args: str, kubeconfig: Path | None = None, ok: bool = True) -> str:
        result = subprocess.run(
            [
                str(kubectl_binary),
                f"--kubeconfig={kubeconfig or lab.kubeconfig}",
                f"--cache-dir={cache}",
                "--request-timeout=10s",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert (result.returncode == 0) == ok, result.stderr
        return result.stdout if ok else result.stderr

    return run


@pytest.fixture(scope="module")
async def source(lab: Lab) -> AsyncIterator[KubeSource]:
    config = lab.config().kube
    assert config is not None
    source = KubeSource(config)
    try:
        yield source
    finally:
        source.close()


def table(output: str) -> list[dict[str, str]]:
    """kubectl's aligned column output as dicts, cut at the header's column starts (a header
    such as "NOMINATED NODE" is one column)."""
    header, *lines = output.rstrip().splitlines()
    columns = [(m.start(), m.group()) for m in re.finditer(r"\S+(?: \S+)*", header)]
    ends = [start for start, _ in columns[1:]] + [None]
    return [
        {name: line[start:end].strip() for (start, name), end in zip(columns, ends, strict=True)}
        for line in lines
    ]


async def test_get_nodes_agrees(kubectl, source: KubeSource) -> None:
    rows = table(kubectl("get", "nodes", "-o", "wide"))
    view = await source.collect()
    assert [(r["NAME"], r["STATUS"], r["ROLES"], r["VERSION"], r["INTERNAL-IP"]) for r in rows] == [
        (n.name, "Ready", ",".join(n.roles), n.kubelet_version, n.address())
        for n in view.nodes or ()
    ]


async def test_get_kube_system_pods_wide_agrees(kubectl, source: KubeSource) -> None:
    rows = table(kubectl("get", "pods", "-n", "kube-system", "-o", "wide"))
    view = await source.collect()
    assert {(r["NAME"], r["STATUS"], r["NODE"], r["IP"], r["READY"]) for r in rows} == {
        (p.name, p.status, p.node, p.ip, "1/1" if p.ready else "0/1") for p in view.pods or ()
    }
    assert {r["NAME"] for r in rows if r["NAME"].startswith("etcd-")} == {
        f"etcd-{n.name}" for n in view.nodes or ()
    }


async def test_get_daemonsets_all_namespaces_agrees(kubectl, source: KubeSource) -> None:
    rows = table(kubectl("get", "ds", "-A"))
    view = await source.collect()
    assert {
        (r["NAMESPACE"], r["NAME"], int(r["DESIRED"]), int(r["READY"]), int(r["UP-TO-DATE"]))
        for r in rows
    } == {(d.namespace, d.name, d.desired, d.ready, d.updated) for d in view.daemonsets or ()}
    assert {r["NAME"] for r in rows} == {"calico-node", "kube-proxy"}


async def test_delete_pod_with_kubectl_kcockpit_sees_the_replacement(
    kubectl, source: KubeSource, lab: Lab
) -> None:
    node = lab.spec.nodes[2].name
    [pod] = await source.daemonset_pods_on_node("calico-node", node)
    out = kubectl("delete", "pod", "-n", "kube-system", pod.name)
    assert out.strip() == f'pod "{pod.name}" deleted'

    async def replaced() -> str | None:
        pods = await source.daemonset_pods_on_node("calico-node", node)
        fresh = [p for p in pods if p.name != pod.name and p.running]
        return fresh[0].name if len(pods) == 1 and fresh else None

    new_name = await eventually(replaced, 15, "a replacement calico-node pod")
    listed = kubectl(
        "get", "pods", "-n", "kube-system", "-l", "k8s-app=calico-node",
        f"--field-selector=spec.nodeName={node}", "-o", "name",
    )  # fmt: skip
    assert listed.split() == [f"pod/{new_name}"]


async def test_forbidden_reads_say_the_same_in_kubectl_and_kcockpit(kubectl, lab: Lab) -> None:
    error = kubectl(
        "get", "pods", "-n", "kube-system", kubeconfig=lab.node_reader_kubeconfig, ok=False
    )
    limited = KubeSource(KubeConfig(kubeconfig=lab.node_reader_kubeconfig, timeout=2.0))
    try:
        view = await limited.collect()
        findings = evaluate(Snapshot("test", view.collected_at, EtcdCluster(), kube=view))
    finally:
        limited.close()
    denied = next(f for f in findings if f.subject == "list pods -n kube-system")
    assert error.strip() == f"Error from server (Forbidden): {denied.evidence}"
