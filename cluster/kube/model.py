"""The Kubernetes API's part of a snapshot: plain, immutable data read from the API server.

Some incidents are only visible through the API (the etcd-rollback runbook: pods Pending,
Endpoints empty, calico-node not Ready, kube-proxy rules gone), so the API's view sits beside
what etcd and the nodes say. Every read can fail on its own: a 403 on pods must not hide the
nodes, so the view carries what was read plus what was denied or failed, and `error` only when
the API server itself could not be talked to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

CONTROL_PLANE_ROLE = "control-plane"
KUBE_PROXY = "kube-proxy"
# DaemonSets of the CNI plugins a kubeadm cluster commonly runs (kube-system names).
CNI_DAEMONSETS = frozenset(
    {
        "calico-node",
        "cilium",
        "kube-flannel-ds",
        "canal",
        "weave-net",
        "antrea-agent",
        "kube-router",
        "kube-ovn-cni",
    }
)


@dataclass(frozen=True)
class KubeNode:
    """A Node object: its Ready condition, roles (from node-role labels), version, addresses."""

    name: str
    ready: bool | None  # None: the Ready condition is Unknown or absent
    ready_reason: str = ""
    ready_message: str = ""
    roles: tuple[str, ...] = ()
    kubelet_version: str = ""
    addresses: tuple[tuple[str, str], ...] = ()  # (type, address): InternalIP, Hostname…
    unschedulable: bool = False

    @property
    def is_control_plane(self) -> bool:
        return CONTROL_PLANE_ROLE in self.roles or "master" in self.roles

    def address(self, kind: str = "InternalIP") -> str | None:
        return next((value for key, value in self.addresses if key == kind), None)


@dataclass(frozen=True)
class KubePod:
    """A kube-system pod: a mirror pod of a static pod, or a DaemonSet's pod."""

    namespace: str
    name: str
    node: str | None
    phase: str
    ready: bool
    restarts: int = 0
    status: str = ""  # what `kubectl get pods` shows in STATUS (Running, CrashLoopBackOff…)
    message: str = ""  # the waiting/terminated container's message, when there is one
    component: str | None = None  # static pods' `component` label (etcd, kube-apiserver…)
    mirror: bool = False
    owner_kind: str | None = None
    owner_name: str | None = None
    ip: str | None = None
    uid: str = ""

    @property
    def running(self) -> bool:
        return self.phase == "Running" and self.ready


@dataclass(frozen=True)
class KubeDaemonSet:
    namespace: str
    name: str
    desired: int
    current: int
    ready: int
    updated: int
    available: int
    selector: tuple[tuple[str, str], ...] = ()  # matchLabels, for `kubectl -l`

    @property
    def is_ready(self) -> bool:
        return self.ready >= self.desired and self.updated >= self.desired

    @property
    def label_selector(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.selector)


@dataclass(frozen=True)
class KubeEndpoints:
    """The `kubernetes` Service's Endpoints: the API servers in-cluster clients reach."""

    ready: tuple[str, ...] = ()  # "address:port"
    not_ready: tuple[str, ...] = ()
    exists: bool = True


@dataclass(frozen=True)
class KubeEvent:
    namespace: str
    type: str
    reason: str
    object: str  # kind/name
    message: str
    count: int = 1
    last_seen: datetime | None = None


@dataclass(frozen=True)
class KubeReadError:
    """One read that the API answered with an error (403 included): what was asked, and the answer."""

    verb: str
    resource: str
    namespace: str | None
    status: int | None
    reason: str
    message: str

    @property
    def request(self) -> str:
        scope = f" -n {self.namespace}" if self.namespace else ""
        return f"{self.verb} {self.resource}{scope}"


@dataclass(frozen=True)
class KubeView:
    """What the Kubernetes API said during one collection (None parts were not read)."""

    server: str
    collected_at: datetime
    context: str | None = None
    user: str | None = None
    kubeconfig: str | None = None
    error: str | None = None  # the API server could not be talked to: verbatim, with the address
    failed_checks: tuple[str, ...] = ()  # then: its /readyz?verbose failures (`[-]etcd failed…`)
    config_error: str | None = None  # the kubeconfig could not be used
    nodes: tuple[KubeNode, ...] | None = None
    pods: tuple[KubePod, ...] | None = None
    resource_version: int | None = None  # of the pods list: the etcd revision it was read at
    daemonsets: tuple[KubeDaemonSet, ...] | None = None
    endpoints: KubeEndpoints | None = None
    events: tuple[KubeEvent, ...] | None = None
    read_errors: tuple[KubeReadError, ...] = field(default=())
    slow_for: float | None = None  # seconds a newer read has gone unanswered (this one is older)

    @property
    def reachable(self) -> bool:
        return self.error is None and self.config_error is None

    @property
    def denied(self) -> tuple[KubeReadError, ...]:
        return tuple(e for e in self.read_errors if e.status == 403)

    @property
    def mirror_pods(self) -> tuple[KubePod, ...]:
        return tuple(p for p in self.pods or () if p.mirror)

    def mirror_pod(self, node: str, component: str) -> KubePod | None:
        return next(
            (p for p in self.mirror_pods if p.node == node and p.component == component), None
        )

    def daemonset(self, name: str, namespace: str = "kube-system") -> KubeDaemonSet | None:
        return next(
            (d for d in self.daemonsets or () if d.name == name and d.namespace == namespace),
            None,
        )

    def daemonset_pods(self, daemonset: KubeDaemonSet) -> tuple[KubePod, ...]:
        return tuple(
            p
            for p in self.pods or ()
            if p.namespace == daemonset.namespace
            and p.owner_kind == "DaemonSet"
            and p.owner_name == daemonset.name
        )

    @property
    def cni_daemonsets(self) -> tuple[KubeDaemonSet, ...]:
        return tuple(d for d in self.daemonsets or () if d.name in CNI_DAEMONSETS)
