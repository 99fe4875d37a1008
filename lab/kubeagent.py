"""The lab kubelet's side facing the API server: what a kubelet tells Kubernetes, for real.

With the node's own identity from `/etc/kubernetes/kubelet.conf` (`system:node:<name>`, so the
API server's Node authorizer and NodeRestriction admission judge every call), talking to the
node's own API server as kubeadm sets it up, it
- registers its Node (addresses, capacity, kubelet version) and posts its conditions: Ready
  only with a valid CNI config in /etc/cni/net.d, as a real kubelet's NetworkPluginNotReady;
- renews its Lease in `kube-node-lease` (a node whose API server is gone stops renewing, and
  the controller-manager's node lifecycle controller marks it NotReady after its grace);
- keeps one mirror pod per static pod, with the mirror annotation and its Node as controller
  owner, carrying the pod's real status (Running/Ready from the process and its probe,
  CrashLoopBackOff while it is restarted), and deletes it when the manifest goes away;
- runs the pods bound to the node (the DaemonSets' kube-proxy and CNI agent) as placeholder
  processes (`sleep`: the lab has no images), reports their status (a CNI agent is Ready only
  when the node's active CNI config is its plugin's), and when such a pod is deleted ends its
  process and then confirms the deletion with a zero grace period, as a kubelet does.

The official client is synchronous: each sync runs in a worker thread, every call with a
deadline; processes are started and stopped on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException

from lab.addons import CNI_AGENTS
from lab.kubeapi import API_ERRORS, MERGE_PATCH, STRATEGIC_PATCH, Rest
from lab.kubelet import (
    LabKubelet,
    PodState,
    _die_with_parent,
    now_utc,
    stop_process,
)
from lab.layout import KUBE_VERSION

log = logging.getLogger("kcockpit.lab.kubeagent")

SYNC_SECONDS = 1.0
STATUS_SECONDS = 10.0  # a kubelet's nodeStatusUpdateFrequency
LEASE_SECONDS = 40  # a kubelet's nodeLeaseDurationSeconds; renewed every quarter of it
KUBECONFIG = "/etc/kubernetes/kubelet.conf"
CNI_DIR = Path("/etc/cni/net.d")
CNI_CONFIG_SUFFIXES = (".conf", ".conflist", ".json")
KUBELET_VERSION = f"{KUBE_VERSION}-lab"
MIRROR = "kubernetes.io/config.mirror"
NETWORK_NOT_READY = (
    "container runtime network not ready: NetworkReady=false "
    "reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized"
)
# The CNI plugin type whose config makes a DaemonSet's agent Ready.
CNI_TYPES = {agent.name: agent.cni_type for agent in CNI_AGENTS}


def timestamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def active_cni(net_d: Path = CNI_DIR) -> tuple[str | None, str]:
    """(plugin type, file) of the config a kubelet would use: the lexicographically first
    parseable primary config in /etc/cni/net.d; (None, why) when there is none."""
    try:
        files = sorted(p for p in net_d.iterdir() if p.suffix in CNI_CONFIG_SUFFIXES)
    except (FileNotFoundError, NotADirectoryError):
        return None, f"no {net_d} directory"
    for path in files:
        try:
            parsed = json.loads(path.read_text())
            plugins = parsed.get("plugins") or [parsed]
            plugin_type = plugins[0]["type"]
        except (OSError, ValueError, AttributeError, KeyError, IndexError, TypeError):
            continue
        if plugin_type != "loopback":
            return str(plugin_type), path.name
    return None, f"no valid CNI config in {net_d}"


@dataclass
class BoundPod:
    """A pod the scheduler bound to this node, and the placeholder process running it."""

    uid: str
    namespace: str
    name: str
    owner: str  # the DaemonSet's name, or ""
    container: str
    process: asyncio.subprocess.Process | None = None
    started: dt.datetime | None = None
    deleting: bool = False
    confirmed: bool = False

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None


@dataclass
class KubeAgent:
    """Reports one lab kubelet's node and pods to the API server."""

    kubelet: LabKubelet
    address: str
    bound: dict[str, BoundPod] = field(default_factory=dict)
    _rest: Rest | None = None
    _node_uid: str = ""
    _mirrors: dict[str, str] = field(default_factory=dict)  # pod name -> manifest digest
    _posted: dict[str, str] = field(default_factory=dict)  # pod name -> status last posted
    _learned: bool = False
    _last_status: float = float("-inf")
    _last_lease: float = float("-inf")

    @property
    def name(self) -> str:
        return self.kubelet.name

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    listed = await asyncio.to_thread(self._list_bound)
                    await self._run_bound(listed)
                    await asyncio.to_thread(self._report, self._static_view())
                except API_ERRORS as exc:
                    log.warning("%s: API: %s", self.name, _short(exc))
                    self._posted.clear()
                    # as a kubelet retries: status and Lease again at the first answer
                    self._last_status = self._last_lease = float("-inf")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), SYNC_SECONDS)
        finally:
            await asyncio.gather(
                *(stop_process(p.process) for p in self.bound.values() if p.process)
            )

    # -- the API calls (in a worker thread) ------------------------------------------------

    @property
    def rest(self) -> Rest:
        if self._rest is None:
            self._rest = Rest(KUBECONFIG)
        return self._rest

    def _list_bound(self) -> list[dict[str, Any]]:
        """The non-mirror pods bound to this node, as the API has them."""
        query = {"fieldSelector": f"spec.nodeName={self.name}"}
        items = self.rest.call("GET", "/api/v1/pods", query=query)["items"]
        return [p for p in items if MIRROR not in (p["metadata"].get("annotations") or {})]

    def _report(self, static: list[PodState]) -> None:
        now = time.monotonic()
        if not self._node_uid or now - self._last_status >= STATUS_SECONDS:
            self._register_and_post_status()
            self._last_status = now
        if now - self._last_lease >= LEASE_SECONDS / 4:
            self._renew_lease()
            self._last_lease = now
        self._sync_mirrors(static)
        for pod in list(self.bound.values()):
            if pod.deleting and not pod.running and not pod.confirmed:
                self._confirm_deletion(pod)
            elif not pod.deleting:
                self._patch_status(pod.namespace, pod.name, self._bound_status(pod))

    def _register_and_post_status(self) -> None:
        path = f"/api/v1/nodes/{self.name}"
        try:
            node = self.rest.call("GET", path)
        except ApiException as exc:
            if exc.status != 404:
                raise
            labels = {
                "kubernetes.io/hostname": self.name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
            }
            body = {"metadata": {"name": self.name, "labels": labels}}
            node = self.rest.call("POST", "/api/v1/nodes", body)
            log.info("%s: registered its Node", self.name)
        self._node_uid = node["metadata"]["uid"]
        self.rest.call("PATCH", f"{path}/status", self._node_status(), content_type=STRATEGIC_PATCH)

    def _node_status(self) -> dict[str, Any]:
        now = timestamp(now_utc())
        plugin, where = active_cni()

        def condition(kind: str, ok: bool, reason: str, message: str) -> dict[str, str]:
            return {
                "type": kind,
                "status": "True" if ok else "False",
                "reason": reason,
                "message": message,
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            }

        pressure = [
            condition(kind, False, f"KubeletHasSufficient{what}", f"kubelet has sufficient {text}")
            for kind, what, text in (
                ("MemoryPressure", "Memory", "memory available"),
                ("DiskPressure", "Disk", "disk space available"),
                ("PIDPressure", "PID", "PID available"),
            )
        ]
        ready = (
            condition("Ready", True, "KubeletReady", f"kubelet is posting ready status ({where})")
            if plugin
            else condition("Ready", False, "KubeletNotReady", f"{NETWORK_NOT_READY} ({where})")
        )
        resources = {"cpu": str(os.cpu_count() or 1), "memory": _memory(), "pods": "110"}
        return {
            "status": {
                "addresses": [
                    {"type": "InternalIP", "address": self.address},
                    {"type": "Hostname", "address": self.name},
                ],
                "capacity": resources,
                "allocatable": resources,
                "conditions": [*pressure, ready],
                "nodeInfo": {
                    "architecture": "amd64",
                    "bootID": _read("/proc/sys/kernel/random/boot_id"),
                    "containerRuntimeVersion": "lab://placeholder-processes",
                    "kernelVersion": platform.release(),
                    "kubeProxyVersion": KUBE_VERSION,
                    "kubeletVersion": KUBELET_VERSION,
                    "machineID": _read("/etc/machine-id"),
                    "operatingSystem": "linux",
                    "osImage": _os_image(),
                    "systemUUID": self.name,
                },
            }
        }

    def _renew_lease(self) -> None:
        body = {
            "metadata": {
                "name": self.name,
                "namespace": "kube-node-lease",
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "Node", "name": self.name, "uid": self._node_uid}
                ],
            },
            "spec": {
                "holderIdentity": self.name,
                "leaseDurationSeconds": LEASE_SECONDS,
                "renewTime": now_utc().strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            },
        }
        leases = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
        try:
            spec = {"spec": body["spec"]}
            self.rest.call("PATCH", f"{leases}/{self.name}", spec, content_type=MERGE_PATCH)
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.rest.call("POST", leases, body)

    def _sync_mirrors(self, static: list[PodState]) -> None:
        wanted = {f"{pod.component}-{self.name}": pod for pod in static}
        if not self._learned:  # first sync (the kubelet restarted): what the API has already
            query = {"fieldSelector": f"spec.nodeName={self.name}"}
            listed = self.rest.call("GET", "/api/v1/namespaces/kube-system/pods", query=query)
            for item in listed["items"]:
                annotations = item["metadata"].get("annotations") or {}
                if MIRROR in annotations:
                    self._mirrors[item["metadata"]["name"]] = annotations[MIRROR]
            self._learned = True
        for name, digest in list(self._mirrors.items()):
            pod = wanted.get(name)
            if pod is None or pod.digest[:32] != digest:
                self._delete("kube-system", name, None)
                del self._mirrors[name]
                log.info(
                    "%s: mirror pod %s deleted (its manifest changed or left)", self.name, name
                )
        for name, pod in wanted.items():
            if name not in self._mirrors:
                self._create_mirror(name, pod)
            if name in self._mirrors:
                self._patch_status("kube-system", name, _static_status(pod, self.address))

    def _create_mirror(self, name: str, pod: PodState) -> None:
        """The mirror pod NodeRestriction admits: the mirror annotation, and this node as its
        one controller owner."""
        metadata = pod.document.get("metadata") or {}
        digest = pod.digest[:32]
        namespace = metadata.get("namespace") or "kube-system"
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": metadata.get("labels") or {},
                "annotations": {
                    "kubernetes.io/config.hash": digest,
                    MIRROR: digest,
                    "kubernetes.io/config.seen": now_utc().isoformat(),
                    "kubernetes.io/config.source": "file",
                },
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "Node",
                        "name": self.name,
                        "uid": self._node_uid,
                        "controller": True,
                    }
                ],
            },
            "spec": {**pod.document["spec"], "nodeName": self.name},
        }
        if self.rest.create(f"/api/v1/namespaces/{namespace}/pods", body) is None:
            self._delete(namespace, name, None)  # a stale one (another manifest's): replace it
            return
        self._mirrors[name] = digest
        self._posted.pop(name, None)
        log.info("%s: mirror pod %s created", self.name, name)

    def _patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Posts a pod's status when it changed (times aside), as a kubelet's status manager."""
        signature = json.dumps(_timeless(status), sort_keys=True)
        if self._posted.get(name) == signature:
            return
        path = f"/api/v1/namespaces/{namespace}/pods/{name}/status"
        try:
            self.rest.call("PATCH", path, {"status": status}, content_type=STRATEGIC_PATCH)
        except ApiException as exc:
            if exc.status != 404:
                raise
            self._mirrors.pop(name, None)  # deleted by someone: made again at the next sync
            return
        self._posted[name] = signature

    def _delete(self, namespace: str, name: str, uid: str | None) -> None:
        body: dict[str, Any] = {"gracePeriodSeconds": 0}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            self.rest.call("DELETE", f"/api/v1/namespaces/{namespace}/pods/{name}", body)
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise
        self._posted.pop(name, None)

    def _confirm_deletion(self, pod: BoundPod) -> None:
        """Its process is gone: the kubelet's zero-grace delete that lets the pod object go."""
        self._delete(pod.namespace, pod.name, pod.uid)
        pod.confirmed = True
        log.info("%s: pod %s/%s deleted (process ended)", self.name, pod.namespace, pod.name)

    def _bound_status(self, pod: BoundPod) -> dict[str, Any]:
        plugin, where = active_cni()
        wanted_plugin = CNI_TYPES.get(pod.owner)
        if not pod.running:
            unready = "the placeholder process is not running"
        elif wanted_plugin and plugin != wanted_plugin:
            unready = f"readiness probe failed: the node's active CNI config is {where!r}, not {wanted_plugin}'s"
        else:
            unready = ""
        return _status(
            self.address,
            pod.container,
            pod.started,
            pod.process.pid if pod.process and pod.running else None,
            ready=pod.running and not unready,
            note=unready,
            restarts=0,
            last_exit=None,
        )

    # -- processes (on the event loop) -----------------------------------------------------

    def _static_view(self) -> list[PodState]:
        return list(self.kubelet.pods.values())

    async def _run_bound(self, listed: list[dict[str, Any]]) -> None:
        seen = set()
        for item in listed:
            metadata = item["metadata"]
            uid = metadata["uid"]
            seen.add(uid)
            pod = self.bound.get(uid)
            if pod is None:
                owners = metadata.get("ownerReferences") or [{}]
                pod = self.bound[uid] = BoundPod(
                    uid,
                    metadata["namespace"],
                    metadata["name"],
                    str(owners[0].get("name", "")),
                    str(item["spec"]["containers"][0]["name"]),
                )
            if metadata.get("deletionTimestamp"):
                pod.deleting = True
                if pod.running and pod.process:
                    await stop_process(pod.process)
            elif pod.process is None:
                pod.process = await asyncio.create_subprocess_exec(
                    "sleep",
                    "infinity",
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                    preexec_fn=_die_with_parent,
                )
                pod.started = now_utc()
                log.info(
                    "%s: runs pod %s/%s (pid %s)",
                    self.name,
                    pod.namespace,
                    pod.name,
                    pod.process.pid,
                )
        for uid in set(self.bound) - seen:  # gone from the API: nothing to report any more
            gone = self.bound.pop(uid)
            if gone.running and gone.process:
                await stop_process(gone.process)


def _static_status(pod: PodState, address: str) -> dict[str, Any]:
    return _status(
        address,
        pod.component,
        pod.started_at,
        pod.pid,
        ready=pod.running and pod.ready,
        note=pod.note,
        restarts=pod.restarts,
        last_exit=pod.last_exit,
    )


def _status(
    address: str,
    container: str,
    started: dt.datetime | None,
    pid: int | None,
    *,
    ready: bool,
    note: str,
    restarts: int,
    last_exit: int | None,
) -> dict[str, Any]:
    """A pod's status as a kubelet posts it, for one container running as process `pid`."""
    now = timestamp(now_utc())
    running = pid is not None
    if running:
        state: dict[str, Any] = {"running": {"startedAt": timestamp(started or now_utc())}}
    else:
        state = {"waiting": {"reason": "CrashLoopBackOff", "message": note}}
    container_status: dict[str, Any] = {
        "name": container,
        "ready": ready,
        "started": running,
        "restartCount": restarts,
        "image": container,
        "imageID": "",
        "containerID": f"lab://{pid}" if running else "",
        "state": state,
    }
    if last_exit is not None:
        container_status["lastState"] = {"terminated": {"exitCode": last_exit, "reason": "Error"}}

    def condition(kind: str, ok: bool) -> dict[str, Any]:
        found: dict[str, Any] = {
            "type": kind,
            "status": "True" if ok else "False",
            "lastTransitionTime": now,
        }
        if not ok:
            found["reason"] = "ContainersNotReady"
            found["message"] = note or f"containers with unready status: [{container}]"
        return found

    return {
        "phase": "Running",
        "hostIP": address,
        "podIP": address,
        "podIPs": [{"ip": address}],
        "startTime": timestamp(started or now_utc()),
        "conditions": [
            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
            condition("Ready", ready),
            condition("ContainersReady", ready),
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
        ],
        "containerStatuses": [container_status],
    }


def _timeless(value: Any) -> Any:
    """`value` without its timestamps: what decides whether a status changed."""
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if not k.endswith(("Time", "At"))}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


def _short(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"{exc.status} {exc.reason}: {str(exc.body)[:200]}"
    return str(exc)[:300]


def _memory() -> str:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return f"{line.split()[1]}Ki"
    return "0"


def _os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.partition("=")[2].strip('"')
    return "Linux"


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""
