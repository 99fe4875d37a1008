"""What the lab's stand-in API server serves: the lab's real state in Kubernetes' REST shapes.

Honesty rules, because the cockpit's findings are only as true as this:
- Nodes are the lab's nodes. Ready follows what a kubelet checks: the lab kubelet's state file
  is there, and the node has a valid CNI config in `/etc/cni/net.d` (without one a real kubelet
  reports NetworkPluginNotReady).
- Mirror pods exist only for the static pods the lab kubelet really runs (etcd); they follow
  its state file (`var/lib/kubelet/lab-pods.json`): Running and Ready only while that process
  runs, gone when the manifest is moved away (as a real kubelet deletes the mirror pod). The
  lab has no binary for kube-apiserver, kube-controller-manager or kube-scheduler, so the API
  has no pods for them at all rather than pretending.
- DaemonSets are kube-proxy plus the CNI agent named by the nodes' CNI configs (calico-node,
  cilium…), one pod per node. Each pod is backed by a real placeholder process (`sleep`) that
  this module starts: Running means that process runs; deleting the pod ends it and a
  replacement (new name, new process) is created, as the DaemonSet controller does. A CNI
  agent's pod is Ready only when its node's active CNI config is that plugin's. The
  placeholders program no network: they stand in for the agents' processes, nothing more.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import json
import logging
import secrets
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cluster.nodes.parse import load_yaml
from lab.kubelet import _die_with_parent, stop_process
from lab.layout import KUBE_API_PORT, LabNode, LabPaths, LabSpec
from lab.manifests import KUBE_VERSION
from lab.pki import SERVICE_IP

log = logging.getLogger("kcockpit.lab.kubestate")

LAB_KUBELET_VERSION = f"{KUBE_VERSION}-lab"
KUBE_SYSTEM = "kube-system"
KUBE_PROXY = "kube-proxy"
RUN_COMPONENTS = frozenset({"etcd"})  # the static pods the lab kubelet has a binary for
CNI_CONFIG_SUFFIXES = (".conf", ".conflist", ".json")
POD_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # what Kubernetes uses for name suffixes
MAX_EVENTS = 200
DELETE_GRACE_SECONDS = 2.0
NETWORK_NOT_READY = (
    "container runtime network not ready: NetworkReady=false "
    "reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized"
)


@dataclass(frozen=True)
class DaemonSetKind:
    """A DaemonSet the lab knows how to stand in for."""

    name: str
    labels: dict[str, str]
    image: str
    cni_type: str | None = None  # the CNI plugin type whose config makes its pods Ready


DAEMONSET_KINDS = {
    kind.name: kind
    for kind in (
        DaemonSetKind(
            KUBE_PROXY, {"k8s-app": KUBE_PROXY}, f"registry.k8s.io/kube-proxy:{KUBE_VERSION}"
        ),
        DaemonSetKind(
            "calico-node", {"k8s-app": "calico-node"}, "docker.io/calico/node:v3.27.3", "calico"
        ),
        DaemonSetKind(
            "cilium", {"k8s-app": "cilium"}, "quay.io/cilium/cilium:v1.15.5", "cilium-cni"
        ),
        DaemonSetKind(
            "kube-flannel-ds", {"app": "flannel"}, "docker.io/flannel/flannel:v0.25.1", "flannel"
        ),
    )
}
CNI_DAEMONSETS = {kind.cni_type: kind.name for kind in DAEMONSET_KINDS.values() if kind.cni_type}


def timestamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def active_cni(node_root: Path) -> tuple[str | None, str]:
    """(plugin type, file) of the config the kubelet would use: the lexicographically first
    parseable primary config in /etc/cni/net.d; (None, why) when there is none."""
    net_d = node_root / "etc" / "cni" / "net.d"
    try:
        files = sorted(p for p in net_d.iterdir() if p.suffix in CNI_CONFIG_SUFFIXES)
    except (FileNotFoundError, NotADirectoryError):
        return None, f"no {net_d.name} directory"
    for path in files:
        try:
            config = json.loads(path.read_text())
            plugins = config.get("plugins") or [config]
            plugin_type = plugins[0]["type"]
        except (OSError, ValueError, AttributeError, KeyError, IndexError, TypeError):
            continue
        if plugin_type != "loopback":
            return str(plugin_type), path.name
    return None, "no valid CNI config in /etc/cni/net.d"


@dataclass
class DaemonSetPod:
    daemonset: str
    node: str
    name: str
    uid: str
    created: dt.datetime
    process: asyncio.subprocess.Process | None = None
    started: dt.datetime | None = None
    restarts: int = 0
    unready_reason: str = "starting"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    @property
    def ready(self) -> bool:
        return self.running and not self.unready_reason


@dataclass
class LabKubeState:
    """The lab cluster as the API sees it: read from the lab's files, plus the DaemonSet pods
    this object runs. One instance lives in the lab daemon; all of it runs on its event loop."""

    paths: LabPaths
    created: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    daemonsets: dict[str, dt.datetime] = field(default_factory=dict)  # name -> created
    pods: dict[tuple[str, str], DaemonSetPod] = field(default_factory=dict)
    events: collections.deque[dict[str, Any]] = field(
        default_factory=lambda: collections.deque(maxlen=MAX_EVENTS)
    )
    mirror_generation: dict[tuple[str, str], int] = field(default_factory=dict)
    resource_version: int = 1

    def __post_init__(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.created = dt.datetime.fromtimestamp(self.paths.spec.stat().st_mtime, dt.UTC)

    @property
    def spec(self) -> LabSpec:
        return self.paths.load_spec()

    # -- the DaemonSet controller and the placeholder processes ---------------------------

    async def sync(self) -> None:
        spec = self.spec
        now = dt.datetime.now(dt.UTC)
        active = {node.name: active_cni(self.paths.node_root(node.name)) for node in spec.nodes}
        self.daemonsets.setdefault(KUBE_PROXY, self.created)
        for plugin, _ in active.values():
            if plugin in CNI_DAEMONSETS:
                self.daemonsets.setdefault(CNI_DAEMONSETS[plugin], now)
        names = {node.name for node in spec.nodes}
        for gone in list(self.pods.values()):
            if gone.node not in names:  # the node left the lab (member remove)
                await self.delete_pod(gone.name)
        for name in sorted(self.daemonsets):
            kind = DAEMONSET_KINDS[name]
            for node in spec.nodes:
                pod = self.pods.get((name, node.name))
                if pod is None:
                    pod = self._new_pod(name, node.name, now)
                await self._keep_running(pod)
                plugin, source = active[node.name]
                reason = ""
                if kind.cni_type and plugin != kind.cni_type:
                    reason = f"readiness probe failed: {name} finds no {kind.cni_type} config: " + (
                        f"{source} configures {plugin}" if plugin else source
                    )
                self._set_readiness(pod, reason)

    def _new_pod(self, daemonset: str, node: str, now: dt.datetime) -> DaemonSetPod:
        suffix = "".join(secrets.choice(POD_NAME_ALPHABET) for _ in range(5))
        pod = DaemonSetPod(daemonset, node, f"{daemonset}-{suffix}", str(uuid.uuid4()), now)
        self.pods[(daemonset, node)] = pod
        self.record_event(
            "Normal", "SuccessfulCreate", "DaemonSet", daemonset, f"Created pod: {pod.name}"
        )
        return pod

    async def _keep_running(self, pod: DaemonSetPod) -> None:
        if pod.process is not None and pod.process.returncode is not None:
            pod.restarts += 1
            self.record_event(
                "Warning",
                "BackOff",
                "Pod",
                pod.name,
                f"container exited with {pod.process.returncode}; restarting",
            )
            pod.process = None
        if pod.process is None:
            sleep = shutil.which("sleep") or "/bin/sleep"
            pod.process = await asyncio.create_subprocess_exec(
                sleep,
                "infinity",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )
            pod.started = dt.datetime.now(dt.UTC)
            self.resource_version += 1

    def _set_readiness(self, pod: DaemonSetPod, reason: str) -> None:
        if reason == pod.unready_reason:
            return
        if reason:
            self.record_event("Warning", "Unhealthy", "Pod", pod.name, reason)
        pod.unready_reason = reason
        self.resource_version += 1

    async def delete_pod(self, name: str) -> dict[str, Any] | None:
        """Deletes a kube-system pod by name; returns it as it was, or None if there is none.
        A DaemonSet pod's process is ended before this returns; the next sync replaces it."""
        for key, pod in list(self.pods.items()):
            if pod.name == name:
                document = self.daemonset_pod(pod)
                del self.pods[key]
                if pod.process is not None and pod.process.returncode is None:
                    await stop_process(pod.process, DELETE_GRACE_SECONDS)
                self.record_event("Normal", "Killing", "Pod", name, "Stopping container")
                document["metadata"]["deletionTimestamp"] = timestamp(dt.datetime.now(dt.UTC))
                return document
        for document in self.mirror_pods():
            if document["metadata"]["name"] == name:
                # As a real kubelet does: the mirror pod comes back at once (new uid); the
                # static pod itself keeps running.
                key = (document["spec"]["nodeName"], document["metadata"]["labels"]["component"])
                self.mirror_generation[key] = self.mirror_generation.get(key, 0) + 1
                self.resource_version += 1
                return document
        return None

    async def stop_all(self) -> None:
        await asyncio.gather(
            *(stop_process(p.process) for p in self.pods.values() if p.process and p.running),
            return_exceptions=True,
        )

    def record_event(self, type_: str, reason: str, kind: str, name: str, message: str) -> None:
        now = timestamp(dt.datetime.now(dt.UTC))
        self.resource_version += 1
        self.events.append(
            {
                "kind": "Event",
                "apiVersion": "v1",
                "metadata": {
                    "name": f"{name}.{secrets.token_hex(8)}",
                    "namespace": KUBE_SYSTEM,
                    "uid": str(uuid.uuid4()),
                    "resourceVersion": str(self.resource_version),
                    "creationTimestamp": now,
                },
                "involvedObject": {"kind": kind, "namespace": KUBE_SYSTEM, "name": name},
                "reason": reason,
                "message": message,
                "source": {"component": "kcockpit-lab"},
                "firstTimestamp": now,
                "lastTimestamp": now,
                "count": 1,
                "type": type_,
                "reportingComponent": "kcockpit-lab",
                "reportingInstance": "",
            }
        )

    # -- objects -------------------------------------------------------------------------

    def _meta(self, name: str, created: dt.datetime, **extra: Any) -> dict[str, Any]:
        return {
            "name": name,
            "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.paths.root}/{name}")),
            "resourceVersion": str(self.resource_version),
            "creationTimestamp": timestamp(created),
            **extra,
        }

    def nodes(self) -> list[dict[str, Any]]:
        return [self._node(node) for node in self.spec.nodes]

    def _node(self, node: LabNode) -> dict[str, Any]:
        now = timestamp(dt.datetime.now(dt.UTC))
        plugin, _ = active_cni(self.paths.node_root(node.name))
        kubelet_up = self.paths.kubelet_state(node.name).exists()
        if not kubelet_up:
            ready = ("Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
        elif plugin is None:
            ready = ("False", "KubeletNotReady", NETWORK_NOT_READY)
        else:
            ready = ("True", "KubeletReady", "kubelet is posting ready status")
        conditions = [
            {
                "type": kind,
                "status": "False",
                "reason": f"KubeletHasNo{kind}"
                if kind != "PIDPressure"
                else "KubeletHasSufficientPID",
                "message": f"kubelet has no {kind}",
                "lastHeartbeatTime": now,
                "lastTransitionTime": timestamp(self.created),
            }
            for kind in ("MemoryPressure", "DiskPressure", "PIDPressure")
        ]
        status, reason, message = ready
        conditions.append(
            {
                "type": "Ready",
                "status": status,
                "reason": reason,
                "message": message,
                "lastHeartbeatTime": now,
                "lastTransitionTime": now if status != "True" else timestamp(self.created),
            }
        )
        return {
            "kind": "Node",
            "apiVersion": "v1",
            "metadata": self._meta(
                node.name,
                self.created,
                labels={
                    "kubernetes.io/hostname": node.name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "node-role.kubernetes.io/control-plane": "",
                    "node.kubernetes.io/exclude-from-external-load-balancers": "",
                },
            ),
            "spec": {
                "taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
            },
            "status": {
                "conditions": conditions,
                "addresses": [
                    {"type": "InternalIP", "address": node.address},
                    {"type": "Hostname", "address": node.name},
                ],
                "nodeInfo": {
                    "machineID": node.name,
                    "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_DNS, node.name)),
                    "bootID": str(uuid.uuid5(uuid.NAMESPACE_URL, str(self.created))),
                    "kernelVersion": "lab",
                    "osImage": "kcockpit lab node",
                    "containerRuntimeVersion": "lab://processes",
                    "kubeletVersion": LAB_KUBELET_VERSION,
                    "kubeProxyVersion": LAB_KUBELET_VERSION,
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                },
            },
        }

    def mirror_pods(self) -> list[dict[str, Any]]:
        pods = []
        for node in self.spec.nodes:
            try:
                state = json.loads(self.paths.kubelet_state(node.name).read_text())["pods"]
            except (OSError, ValueError, KeyError):
                continue
            for entry in state:
                if entry.get("component") in RUN_COMPONENTS:
                    pods.append(self._mirror_pod(node, entry))
        return pods

    def _mirror_pod(self, node: LabNode, entry: dict[str, Any]) -> dict[str, Any]:
        component = entry["component"]
        manifest = self.paths.manifests(node.name) / entry["file"]
        try:
            document, _ = load_yaml(manifest.read_bytes())
            container = document["spec"]["containers"][0]
            image = str(container["image"])
        except (OSError, KeyError, IndexError, TypeError):
            image = component
        running = entry.get("state") == "running"
        started = entry.get("started_at")
        restarts = int(entry.get("restarts") or 0)
        note = entry.get("note") or ""
        if running:
            state = {"running": {"startedAt": started}}
        else:
            reason = "CrashLoopBackOff" if restarts else "ContainerCreating"
            state = {"waiting": {"reason": reason, "message": note or "not running"}}
        generation = self.mirror_generation.get((node.name, component), 0)
        name = f"{component}-{node.name}"
        metadata = self._meta(
            name,
            dt.datetime.fromisoformat(started) if started else dt.datetime.now(dt.UTC),
            namespace=KUBE_SYSTEM,
            labels={"component": component, "tier": "control-plane"},
            annotations={
                "kubernetes.io/config.mirror": entry.get("file", ""),
                "kubernetes.io/config.source": "file",
            },
            ownerReferences=[
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "name": node.name,
                    "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.paths.root}/{node.name}")),
                    "controller": True,
                }
            ],
        )
        metadata["uid"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{metadata['uid']}/{generation}"))
        return self._pod(
            metadata,
            node,
            component,
            image,
            running,
            state,
            restarts,
            priority="system-node-critical",
        )

    def daemonset_pod(self, pod: DaemonSetPod) -> dict[str, Any]:
        kind = DAEMONSET_KINDS[pod.daemonset]
        node = self.spec.node(pod.node)
        if pod.running:
            state: dict[str, Any] = {
                "running": {"startedAt": timestamp(pod.started or pod.created)}
            }
        else:
            state = {"waiting": {"reason": "ContainerCreating", "message": "starting"}}
        metadata = self._meta(
            pod.name,
            pod.created,
            namespace=KUBE_SYSTEM,
            labels={**kind.labels, "controller-revision-hash": "lab"},
            ownerReferences=[
                {
                    "apiVersion": "apps/v1",
                    "kind": "DaemonSet",
                    "name": pod.daemonset,
                    "uid": self._meta(pod.daemonset, self.created)["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        )
        metadata["uid"] = pod.uid
        return self._pod(
            metadata,
            node,
            pod.daemonset,
            kind.image,
            pod.ready,
            state,
            pod.restarts,
            priority="system-node-critical",
            unready_reason=pod.unready_reason,
        )

    def _pod(
        self,
        metadata: dict[str, Any],
        node: LabNode,
        container: str,
        image: str,
        ready: bool,
        state: dict[str, Any],
        restarts: int,
        priority: str,
        unready_reason: str = "",
    ) -> dict[str, Any]:
        running = "running" in state
        now = timestamp(dt.datetime.now(dt.UTC))
        condition = "True" if ready else "False"
        conditions = [
            {"type": kind, "status": condition, "lastTransitionTime": now}
            for kind in ("Ready", "ContainersReady")
        ]
        if not ready and unready_reason:
            for item in conditions:
                item.update(reason="ContainersNotReady", message=unready_reason)
        conditions.append({"type": "PodScheduled", "status": "True", "lastTransitionTime": now})
        return {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": metadata,
            "spec": {
                "nodeName": node.name,
                "hostNetwork": True,
                "priorityClassName": priority,
                "containers": [{"name": container, "image": image}],
            },
            "status": {
                # Pending, not Running, whenever the process is not running: the lab never
                # reports a pod running without its process.
                "phase": "Running" if running else "Pending",
                "conditions": conditions,
                "hostIP": node.address,
                "podIP": node.address,
                "podIPs": [{"ip": node.address}],
                "startTime": metadata["creationTimestamp"],
                "containerStatuses": [
                    {
                        "name": container,
                        "image": image,
                        "imageID": "lab-placeholder://" + container,
                        "ready": ready,
                        "started": running,
                        "restartCount": restarts,
                        "state": state,
                    }
                ],
            },
        }

    def kube_system_pods(self) -> list[dict[str, Any]]:
        pods = self.mirror_pods() + [self.daemonset_pod(p) for p in self.pods.values()]
        return sorted(pods, key=lambda p: p["metadata"]["name"])

    def daemonset_objects(self) -> list[dict[str, Any]]:
        objects = []
        nodes = len(self.spec.nodes)
        for name, created in sorted(self.daemonsets.items()):
            kind = DAEMONSET_KINDS[name]
            pods = [p for p in self.pods.values() if p.daemonset == name]
            ready = sum(1 for p in pods if p.ready)
            template = {
                "metadata": {"labels": dict(kind.labels)},
                "spec": {
                    "hostNetwork": True,
                    "containers": [{"name": name, "image": kind.image}],
                },
            }
            objects.append(
                {
                    "kind": "DaemonSet",
                    "apiVersion": "apps/v1",
                    "metadata": self._meta(
                        name, created, namespace=KUBE_SYSTEM, labels=dict(kind.labels), generation=1
                    ),
                    "spec": {
                        "selector": {"matchLabels": dict(kind.labels)},
                        "template": template,
                        "updateStrategy": {"type": "RollingUpdate"},
                    },
                    "status": {
                        "desiredNumberScheduled": nodes,
                        "currentNumberScheduled": len(pods),
                        "numberReady": ready,
                        "numberAvailable": ready,
                        "numberUnavailable": nodes - ready,
                        "updatedNumberScheduled": len(pods),
                        "numberMisscheduled": 0,
                        "observedGeneration": 1,
                    },
                }
            )
        return objects

    def kubernetes_service(self) -> dict[str, Any]:
        return {
            "kind": "Service",
            "apiVersion": "v1",
            "metadata": self._meta(
                "kubernetes",
                self.created,
                namespace="default",
                labels={"component": "apiserver", "provider": "kubernetes"},
            ),
            "spec": {
                "type": "ClusterIP",
                "clusterIP": SERVICE_IP,
                "clusterIPs": [SERVICE_IP],
                "ports": [
                    {"name": "https", "port": 443, "protocol": "TCP", "targetPort": KUBE_API_PORT}
                ],
            },
            "status": {"loadBalancer": {}},
        }

    def kubernetes_endpoints(self, serving: list[str]) -> dict[str, Any]:
        """The endpoints of the API: the addresses this stand-in serves on right now."""
        return {
            "kind": "Endpoints",
            "apiVersion": "v1",
            "metadata": self._meta(
                "kubernetes",
                self.created,
                namespace="default",
                labels={"endpointslice.kubernetes.io/skip-mirror": "true"},
            ),
            "subsets": [
                {
                    "addresses": [{"ip": address} for address in serving],
                    "ports": [{"name": "https", "port": KUBE_API_PORT, "protocol": "TCP"}],
                }
            ]
            if serving
            else [],
        }
