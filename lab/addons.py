"""What kubeadm and a cluster's installer add once the API answers, done by the lab daemon.

- RBAC: kubeadm's `kubeadm:cluster-admins` binding (admin.conf's group) to `cluster-admin`, and a
  role that may only read nodes for the lab's `lab:node-readers` (the cockpit's limited
  kubeconfig, so its 403 comes from the real authorizer).
- The control-plane role labels on the lab's nodes (a kubelet may not set them on itself:
  NodeRestriction refuses it; `kubeadm init` adds them as the admin).
- DaemonSets: kube-proxy, and the agent of every CNI plugin the nodes' configs name
  (calico-node, cilium, flannel), as their installers would create them. The real DaemonSet
  controller and scheduler place their pods; the lab kubelets run them (lab/kubeagent.py).

Everything is created through the load balancer with cp-1's `super-admin.conf`
(`system:masters`), idempotently, and retried until it lands: the API may not be up yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException

from lab.kubeapi import API_ERRORS, MERGE_PATCH, Rest
from lab.layout import KUBE_VERSION, LabPaths

log = logging.getLogger("kcockpit.lab.addons")

RETRY_SECONDS = 2.0
RBAC_GROUP = "rbac.authorization.k8s.io"
CONTROL_PLANE_LABELS = {
    "node-role.kubernetes.io/control-plane": "",
    "node-role.kubernetes.io/master": "",
}
NODE_READERS = "lab:node-readers"
CNI_SUFFIXES = (".conf", ".conflist", ".json")


@dataclass(frozen=True)
class Agent:
    """A DaemonSet the lab creates: its name, pod labels, image, and the CNI plugin type whose
    config makes its pods Ready (None: kube-proxy, Ready whenever it runs)."""

    name: str
    labels: dict[str, str]
    image: str
    cni_type: str | None = None


KUBE_PROXY = Agent(
    "kube-proxy", {"k8s-app": "kube-proxy"}, f"registry.k8s.io/kube-proxy:{KUBE_VERSION}"
)
CNI_AGENTS = (
    Agent("calico-node", {"k8s-app": "calico-node"}, "docker.io/calico/node:v3.27.3", "calico"),
    Agent("cilium", {"k8s-app": "cilium"}, "quay.io/cilium/cilium:v1.15.5", "cilium-cni"),
    Agent("kube-flannel-ds", {"app": "flannel"}, "docker.io/flannel/flannel:v0.25.1", "flannel"),
)


def daemonset(agent: Agent) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": agent.name, "namespace": "kube-system", "labels": agent.labels},
        "spec": {
            "selector": {"matchLabels": agent.labels},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": agent.labels},
                "spec": {
                    "hostNetwork": True,
                    "priorityClassName": "system-node-critical",
                    "automountServiceAccountToken": False,
                    "tolerations": [{"operator": "Exists"}],
                    "terminationGracePeriodSeconds": 2,
                    "containers": [{"name": agent.name, "image": agent.image}],
                },
            },
        },
    }


def cni_types(paths: LabPaths) -> set[str]:
    """The plugin types named by any primary config in any lab node's /etc/cni/net.d."""
    found = set()
    for node in paths.load_spec().nodes:
        net_d = paths.node_root(node.name) / "etc" / "cni" / "net.d"
        with contextlib.suppress(OSError):
            for path in net_d.iterdir():
                if path.suffix not in CNI_SUFFIXES:
                    continue
                with contextlib.suppress(
                    OSError, ValueError, AttributeError, KeyError, IndexError, TypeError
                ):
                    parsed = json.loads(path.read_text())
                    found.add(str((parsed.get("plugins") or [parsed])[0]["type"]))
    return found


class Addons:
    """Creates the lab's addons and labels its nodes, until every one of them is there."""

    def __init__(self, paths: LabPaths) -> None:
        self.paths = paths
        self._done: set[str] = set()
        self._rest: Rest | None = None

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.apply)
            except API_ERRORS as exc:
                log.info("addons: API not ready yet (%s)", str(exc).splitlines()[0][:200])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RETRY_SECONDS)

    def apply(self) -> None:
        spec = self.paths.load_spec()
        agents = [KUBE_PROXY, *(a for a in CNI_AGENTS if a.cni_type in cni_types(self.paths))]
        steps: dict[str, Callable[[Rest], bool]] = {"rbac": _rbac}
        steps |= {f"ds/{a.name}": functools.partial(_daemonset, agent=a) for a in agents}
        steps |= {f"node/{n.name}": functools.partial(_label, name=n.name) for n in spec.nodes}
        if steps.keys() <= self._done:
            return
        if self._rest is None:
            kubeconfig = self.paths.kubernetes_dir(spec.nodes[0].name) / "super-admin.conf"
            self._rest = Rest(str(kubeconfig))
        for key, step in steps.items():
            if key not in self._done and step(self._rest):
                self._done.add(key)
                log.info("addons: %s done", key)


def _daemonset(rest: Rest, agent: Agent) -> bool:
    rest.create("/apis/apps/v1/namespaces/kube-system/daemonsets", daemonset(agent))
    return True


def _rbac(rest: Rest) -> bool:
    def binding(name: str, role: str, group: str) -> dict[str, Any]:
        return {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": group}],
        }

    reader = {
        "metadata": {"name": "lab:node-reader"},
        "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]}],
    }
    rbac = f"/apis/{RBAC_GROUP}/v1"
    admins = "kubeadm:cluster-admins"
    rest.create(f"{rbac}/clusterrolebindings", binding(admins, "cluster-admin", admins))
    rest.create(f"{rbac}/clusterroles", reader)
    rest.create(
        f"{rbac}/clusterrolebindings", binding(NODE_READERS, "lab:node-reader", NODE_READERS)
    )
    return True


def _label(rest: Rest, name: str) -> bool:
    """False while the node has not registered yet."""
    labels = {"metadata": {"labels": CONTROL_PLANE_LABELS}}
    try:
        rest.call("PATCH", f"/api/v1/nodes/{name}", labels, content_type=MERGE_PATCH)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True
