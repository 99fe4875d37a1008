"""Whether a static pod runs, on real lab nodes without crictl: the node's own etcd found by its
listening socket and process (ss under sudo) and its health endpoint (curl on the node's
loopback); not running once its manifest is moved away, as runbook §2.1 does. The other
components are manifests without a binary on the lab: nothing listens for them, which their rows
say and no finding makes noise of. Restores what it changes."""

from __future__ import annotations

from pathlib import Path

from cluster.collect import Collector
from cluster.model import Snapshot
from cluster.nodes.model import StaticPod
from lab.control import Lab
from tests.helpers import eventually, wait_until

LAB_CONTROL_PLANE = True  # the module reads the Kubernetes API or its static pods


def node_pid(host_pid: int) -> int:
    """The pid a process has inside its node's PID namespace (what the node's ss shows)."""
    status = Path(f"/proc/{host_pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("NSpid:")).split()[-1])


def pods(snapshot: Snapshot, node: str) -> dict[str, StaticPod]:
    state = snapshot.node(node)
    assert state.reachable, state.error
    return {pod.component: pod for pod in state.static_pods}


async def test_etcd_runs_by_its_socket_and_health_and_stops_with_its_manifest(
    lab: Lab, collector: Collector
) -> None:
    node = lab.spec.nodes[-1]
    host_pid = wait_until(lambda: lab.etcd_pid(node.name), what="the node's etcd")
    snapshot = await collector.collect(fresh=True)
    seen = pods(snapshot, node.name)
    etcd = seen["etcd"]
    assert etcd.running is True, etcd.evidence
    assert etcd.evidence.startswith(f"ss: etcd (pid {node_pid(host_pid)}) listens on ")
    assert f"{node.address}:2379" in etcd.evidence and "127.0.0.1:2379" in etcd.evidence
    assert etcd.evidence.endswith("; http://127.0.0.1:2381/health: healthy")
    apiserver, scheduler = seen["kube-apiserver"], seen["kube-scheduler"]
    assert apiserver.running is True and apiserver.evidence.startswith("ss: kube-apiserver (pid")
    assert apiserver.evidence.endswith("listens on *:6443")  # every address, kubeadm's default
    assert scheduler.running is True and "listens on 127.0.0.1:10259" in scheduler.evidence
    assert not [f for f in snapshot.findings if f.id.startswith("static-pod.")]

    lab.stop_node(node.name)
    try:
        wait_until(lambda: lab.etcd_pid(node.name) is None, what="the lab kubelet to stop etcd")
        stopped = pods(await collector.collect(fresh=True), node.name)["etcd"]
        assert stopped.state == "moved"
        assert (stopped.running, stopped.evidence) == (False, "ss: nothing listens on :2379")
    finally:
        lab.start_node(node.name)

    async def running_again() -> bool:
        etcd = pods(await collector.collect(fresh=True), node.name)["etcd"]
        return etcd.running is True and etcd.evidence.endswith("healthy")

    await eventually(running_again, timeout=30, what="etcd running and healthy again")
