"""The Kubernetes API view against the lab's API server: nodes, mirror pods following the real
etcd processes, DaemonSets from the CNI configs, API down, a 403, pod deletion, the nodes pane."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from actions.audit import AuditLog
from actions.registry import build_action, context_for
from actions.runner import Status, perform
from cluster.collect import Collector
from cluster.config import Config, KubeConfig
from cluster.kube.model import KubeView
from cluster.kube.source import KubeSource
from cluster.model import Severity, Snapshot
from lab.control import Lab
from lab.loadbalancer import endpoint_url
from tests.helpers import eventually, loud, settled
from tests.test_app_etcd import until
from tui.app import CockpitApp
from widgets.cni_pane import CniPane
from widgets.nodes_pane import NodesPane
from widgets.static_pods_pane import StaticPodsPane

LAB_CONTROL_PLANE = True  # the module reads the Kubernetes API or its static pods


@pytest.fixture(scope="module")
def config(lab: Lab) -> Config:
    return lab.config()


@pytest.fixture(scope="module")
async def collector(config: Config) -> AsyncIterator[Collector]:
    collector = Collector(config)
    try:
        yield collector
    finally:
        await collector.close()


def ids(snapshot: Snapshot) -> set[str]:
    return {f.id for f in snapshot.findings}


async def honest_view(lab: Lab, source: KubeSource) -> KubeView:
    """Reads the API and checks the lab API's honesty rule: a mirror pod it shows running had
    a live etcd process behind it (per the kubelet just before or just after the read)."""
    before = {n.name: lab.etcd_pid(n.name) for n in lab.spec.nodes}
    view = await source.collect()
    after = {n.name: lab.etcd_pid(n.name) for n in lab.spec.nodes}
    for pod in view.mirror_pods:
        if pod.running:
            pids = {before[pod.node or ""], after[pod.node or ""]} - {None}
            assert pids, f"{pod.name} is running per the API, but the kubelet runs no etcd"
    return view


@pytest.mark.fresh_lab
async def test_clean_lab_nodes_ready_daemonsets_ready_no_warnings(
    lab: Lab, collector: Collector
) -> None:
    def every_api_server_an_endpoint(snapshot: Snapshot) -> bool:
        # each API server adds itself to the `kubernetes` Endpoints once it is up
        endpoints = snapshot.kube.endpoints if snapshot.kube else None
        return bool(endpoints) and len(endpoints.ready) == len(lab.spec.nodes)

    snapshot = await settled(collector, every_api_server_an_endpoint)
    view = snapshot.kube
    assert view is not None and view.reachable, view
    assert view.server == endpoint_url(lab.spec)  # the bridge's address: the load balancer's
    assert [(n.name, n.ready, n.roles) for n in view.nodes or ()] == [
        (n.name, True, ("control-plane", "master"))
        for n in lab.spec.nodes  # kubeadm 1.20's
    ]
    components = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
    assert {(p.node, p.component) for p in view.mirror_pods if p.running and p.ready} == {
        (n.name, c) for n in lab.spec.nodes for c in components
    }
    assert {(d.name, d.desired, d.ready) for d in view.daemonsets or ()} == {
        ("calico-node", 3, 3),
        ("kube-proxy", 3, 3),
    }
    assert view.endpoints is not None and set(view.endpoints.ready) == {
        f"{n.address}:6443" for n in lab.spec.nodes
    }
    assert collector.kube is not None
    await honest_view(lab, collector.kube)
    assert not loud(await collector.collect())


async def test_the_api_is_read_every_interval_and_at_once_when_fresh(config: Config) -> None:
    assert config.kube is not None
    slow = dataclasses.replace(config, kube=dataclasses.replace(config.kube, interval=3600.0))
    collector = Collector(slow)
    try:
        first = (await collector.collect()).kube
        again = (await collector.collect()).kube  # within the interval: the same view
        fresh = (await collector.collect(fresh=True)).kube
        assert first is not None and again is first
        assert fresh is not None and fresh.collected_at > first.collected_at
    finally:
        await collector.close()


async def test_moving_a_nodes_manifests_away_stops_its_whole_control_plane_and_the_api_notices(
    lab: Lab, collector: Collector
) -> None:
    """Runbook §2.1's `mv manifests manifests-<date>`: all four static pods stop. The node's
    kubelet talks to its own API server, which is gone, so its mirror pods go stale (the API
    still says running: static-pod.api-disagrees) and its Lease stops; the controller-manager
    marks the node NotReady after its grace period, and the API servers drop the stopped one
    from the `kubernetes` Endpoints. Moving it back heals all of it."""
    node = lab.spec.nodes[2]
    components = {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}
    lab.stop_node(node.name)
    try:

        async def stale() -> Snapshot | None:
            snapshot = await collector.collect()
            disagree = {f.subject for f in snapshot.findings if f.id == "static-pod.api-disagrees"}
            return snapshot if disagree == {f"{node.name}/{c}" for c in components} else None

        snapshot = await eventually(stale, 30, "the API's stale mirror pods")
        assert snapshot.kube is not None
        assert {p.component for p in snapshot.kube.mirror_pods if p.node == node.name} == components
        assert "static-pod.manifest-missing" in ids(snapshot)

        async def noticed() -> Snapshot | None:
            """The node NotReady, its API server out of the Endpoints and its pods not ready:
            the controllers do these one after the other, so they are awaited together."""
            snapshot = await collector.collect()
            kube = snapshot.kube
            if kube is None or kube.endpoints is None or "kube.node-not-ready" not in ids(snapshot):
                return None
            ready_pods = {p.node for p in kube.mirror_pods if p.ready}
            serving = f"{node.address}:6443" in kube.endpoints.ready
            return None if serving or node.name in ready_pods else snapshot

        # the node lifecycle controller's grace (40 s), plus a leader election when the
        # stopped node held the controller-manager's lease
        snapshot = await eventually(noticed, 90, "the API noticing the node is gone")
        [finding] = [f for f in snapshot.findings if f.id == "kube.node-not-ready"]
        assert finding.subject == node.name
        assert "Kubelet stopped posting node status" in finding.evidence
    finally:
        lab.start_node(node.name)

    async def healed() -> bool:
        snapshot = await collector.collect()
        running = (
            {p.component for p in snapshot.kube.mirror_pods if p.node == node.name and p.running}
            if snapshot.kube
            else set()
        )
        bad = {f.id for f in snapshot.findings if f.severity >= Severity.WARNING}
        return running == components and not bad & {
            "kube.node-not-ready",
            "static-pod.not-running",
            "static-pod.api-disagrees",
        }

    await eventually(healed, 60, "the node's control plane back, per the node and the API")


async def test_a_missing_cni_config_makes_the_node_and_calico_node_not_ready(
    lab: Lab, collector: Collector
) -> None:
    node = lab.spec.nodes[2].name
    conflist = lab.paths.node_root(node) / "etc/cni/net.d/10-calico.conflist"
    moved = conflist.with_name("10-calico.conflist.off")
    conflist.rename(moved)
    try:

        async def not_ready() -> Snapshot | None:
            snapshot = await collector.collect()
            by_id = {f.id: f for f in snapshot.findings}
            cni = by_id.get("cni.daemonset-not-ready")
            # pods and DaemonSets are separate reads: wait until both tell the change
            named = cni is not None and f"on {node}" in cni.evidence
            return snapshot if named and "kube.node-not-ready" in by_id else None

        snapshot = await eventually(not_ready, 40, "node and calico-node not ready")
        by_id = {f.id: f for f in snapshot.findings}
        assert by_id["kube.node-not-ready"].subject == node
        assert "NetworkPluginNotReady" in by_id["kube.node-not-ready"].evidence
        assert f"on {node}" in by_id["cni.daemonset-not-ready"].evidence
        assert by_id["cni.daemonset-not-ready"].action == "restart-ds-pod"
        assert by_id["cni.daemonset-not-ready"].target == f"{node}/calico-node"
        assert "kube-proxy.not-ready" not in by_id  # kube-proxy does not need the CNI
    finally:
        moved.rename(conflist)

    async def ready_again() -> bool:
        found = ids(await collector.collect())
        return not {"kube.node-not-ready", "cni.daemonset-not-ready"} & found

    await eventually(ready_again, 40, "node ready again")


async def test_api_down_is_a_finding_with_its_address_and_etcd_stays_live(
    lab: Lab, collector: Collector
) -> None:
    url = lab.stop_endpoint()
    try:

        async def down() -> Snapshot | None:
            snapshot = await collector.collect()
            return snapshot if "kube.api-unreachable" in ids(snapshot) else None

        snapshot = await eventually(down, 15, "kube.api-unreachable")
        [finding] = [f for f in snapshot.findings if f.id == "kube.api-unreachable"]
        address = url.removeprefix("https://")
        assert finding.summary == f"The connection to the server {address} was refused"
        assert address in finding.evidence and "refused" in finding.evidence
        assert finding.severity == Severity.CRITICAL
        assert snapshot.etcd.healthy_voting == 3 and snapshot.etcd.leader is not None
    finally:
        lab.start_endpoint()

    async def back() -> bool:
        snapshot = await collector.collect()
        return bool(snapshot.kube and snapshot.kube.reachable and snapshot.kube.nodes)

    await eventually(back, 15, "API back")


async def test_a_403_is_a_finding_naming_verb_and_resource_not_a_crash(
    lab: Lab, config: Config
) -> None:
    limited = replace(config, kube=KubeConfig(kubeconfig=lab.node_reader_kubeconfig, timeout=2.0))
    collector = Collector(limited)
    try:
        snapshot = await collector.collect()
    finally:
        await collector.close()
    assert snapshot.kube is not None and snapshot.kube.nodes is not None  # nodes still read
    denied = {f.subject: f for f in snapshot.findings if f.id == "kube.rbac-denied"}
    assert set(denied) == {
        "list pods -n kube-system",
        "list daemonsets.apps -n kube-system",
        "get endpoints -n default",
        "list events -n kube-system",
    }
    evidence = denied["list pods -n kube-system"].evidence
    assert 'User "kcockpit-nodes-only" cannot list resource "pods"' in evidence


async def test_delete_one_daemonset_pod_on_a_node_and_it_is_recreated(
    lab: Lab, config: Config
) -> None:
    assert config.kube is not None
    source = KubeSource(config.kube)
    node = lab.spec.nodes[1].name
    try:
        [pod] = await source.daemonset_pods_on_node("kube-proxy", node)
        others = {p.name for p in (await source.collect()).pods or () if p.name != pod.name}
        deleted = await source.delete_pod("kube-system", pod.name)
        assert deleted is not None and deleted.uid == pod.uid

        async def replaced() -> bool:
            pods = await source.daemonset_pods_on_node("kube-proxy", node)
            return len(pods) == 1 and pods[0].name != pod.name and pods[0].running

        await eventually(replaced, 15, "a new kube-proxy pod")
        after = {p.name for p in (await source.collect()).pods or ()}
        assert pod.name not in after and others <= after  # exactly the one pod went
    finally:
        source.close()


async def test_nodes_pane_lists_the_lab_nodes_ready(lab: Lab, config: Config) -> None:
    app = CockpitApp(config, refresh=0.5)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.press("5")  # a pane is kept current while it is shown
        pane = app.query_one(NodesPane)
        await until(pilot, lambda: pane.node_rows() == {n.name: "● Ready" for n in lab.spec.nodes})
        assert {"calico-node", "kube-proxy"} <= set(pane.daemonset_rows())
        await pilot.press("2")
        static_pods = app.query_one(StaticPodsPane)
        components = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
        every_pod_running = {
            (n.name, c): ("● running", "● running") for n in lab.spec.nodes for c in components
        }
        # per the node (its sockets and processes) and per the API (its real mirror pods)
        await until(
            pilot,
            lambda: (
                {(r[0], r[1]): (r[3], r[-1]) for r in static_pods.row_texts()} == every_pod_running
            ),
        )
        await pilot.press("4")
        cni = app.query_one(CniPane)
        agents = [r[-1] for r in cni.row_texts() if r[-1]]
        assert len(agents) == 3 and all(a.startswith("● calico-node-") for a in agents)
        await pilot.press("q")


async def test_restart_ds_pod_action_deletes_exactly_one_pod_and_sees_it_replaced(
    lab: Lab, collector: Collector, tmp_path
) -> None:
    node = lab.spec.nodes[1].name
    snapshot = await collector.collect()
    assert snapshot.kube is not None and snapshot.kube.pods is not None
    before = {p.uid: p for p in snapshot.kube.pods if p.owner_name == "calico-node"}
    audit = AuditLog(tmp_path / "audit.jsonl")
    action = build_action("restart-ds-pod", f"{node}/calico-node")
    result = await perform(action, snapshot, context_for(collector, tmp_path), audit, yes=True)
    assert result.status is Status.VERIFIED, result.message
    assert (
        "kubectl" in result.plan.commands[0]
        and "delete pod calico-node-" in result.plan.commands[0]
    )
    after = {
        p.uid: p for p in (await collector.collect()).kube.pods if p.owner_name == "calico-node"
    }
    gone = set(before) - set(after)
    assert len(gone) == 1 and before[gone.pop()].node == node  # exactly the one pod on that node
    assert {u for u, p in before.items() if p.node != node} <= set(after)  # other nodes untouched
    assert [r["phase"] for r in audit.read()] == ["intent", "outcome"]


async def test_etcd_quorum_lost_every_api_server_fails_readiness_and_the_api_is_unreachable(
    lab: Lab, collector: Collector
) -> None:
    """Two of three etcd members stopped (their manifests moved out; every API server keeps
    running): no API server can serve, each fails its etcd readiness check, and kcockpit says
    the API is unreachable because of etcd, beside the quorum findings."""
    stopped = lab.spec.nodes[1:]
    for node in stopped:
        manifest = lab.paths.manifests(node.name) / "etcd.yaml"
        manifest.rename(lab.paths.kubernetes_dir(node.name) / "etcd.yaml.parked")
    try:

        async def unreachable_for_etcd() -> Snapshot | None:
            snapshot = await collector.collect()
            found = [f for f in snapshot.findings if f.id == "kube.api-unreachable"]
            return snapshot if found and "[-]etcd failed" in found[0].evidence else None

        snapshot = await eventually(unreachable_for_etcd, 60, "API unreachable, etcd not ready")
        [finding] = [f for f in snapshot.findings if f.id == "kube.api-unreachable"]
        assert "fails its etcd readiness check" in finding.summary
        assert "quorum" in finding.next
        assert "etcd.quorum-lost" in ids(snapshot)
        assert all(lab.processes(n.name, "kube-apiserver") for n in lab.spec.nodes)
    finally:
        for node in stopped:
            parked = lab.paths.kubernetes_dir(node.name) / "etcd.yaml.parked"
            parked.rename(lab.paths.manifests(node.name) / "etcd.yaml")

    settled_since: list[float] = []

    async def serving_and_settled() -> bool:
        # Leases went stale while nothing could be written: the node lifecycle controller may
        # still mark a node NotReady until its kubelet renews; wait until that has settled.
        snapshot = await collector.collect()
        kube = snapshot.kube
        ready = bool(kube and kube.reachable and kube.nodes and all(n.ready for n in kube.nodes))
        if not ready:
            settled_since.clear()
            return False
        settled_since[:] = settled_since or [time.monotonic()]
        return time.monotonic() - settled_since[0] >= 20

    await eventually(serving_and_settled, 120, "the API serving, every node Ready for 20 s")
