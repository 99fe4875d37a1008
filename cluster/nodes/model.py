"""What the cockpit knows about one control-plane node: plain immutable data, no I/O.

A `NodeState` is built by the node source from files and read-only commands on the node; the
findings and the panes read only these, so both are testable on hand-built values.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field

EXPECTED_COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
# The static pods a node of each `[[nodes]] role` runs: an "etcd" node is kubeadm's external
# etcd topology (a kubelet running etcd's static pod alone), where no other manifest is missing.
ROLE_COMPONENTS = {"control-plane": EXPECTED_COMPONENTS, "etcd": ("etcd",)}
KUBERNETES_DIR = "/etc/kubernetes"
MANIFESTS_DIR = f"{KUBERNETES_DIR}/manifests"
PKI_DIR = f"{KUBERNETES_DIR}/pki"
CNI_DIR = "/etc/cni/net.d"
ETCD_DATA_DIR = "/var/lib/etcd"  # kubeadm's; `df` is asked about it on every node
# The port each component serves on when its manifest's flags do not say (kubeadm's): etcd's
# clients (its peers use 2380), the apiserver's and the others' --secure-port.
COMPONENT_PORTS = {
    "etcd": 2379,
    "kube-apiserver": 6443,
    "kube-controller-manager": 10257,
    "kube-scheduler": 10259,
}
# Every port a control-plane component holds, and whose it is.
CONTROL_PLANE_PORTS = {**{port: c for c, port in COMPONENT_PORTS.items()}, 2380: "etcd"}
COMM_LENGTH = 15  # ss shows the kernel's process name, cut: "kube-controller" for the manager
# A file's error when the user the node is read as may not read it: its content is unknown.
DENIED = "permission denied"


@dataclass(frozen=True)
class StaticPod:
    """One expected control-plane component on one node: its manifest and whether it runs.

    `state` is "present", "missing", "moved" (found in `moved_to` instead), "invalid" or
    "denied" (manifests/ may not be read by the user the node is read as: unknown, not missing).
    `running` is None when nothing could tell; `evidence` always says what was used.
    """

    component: str
    state: str
    file: str | None = None
    moved_to: str | None = None
    image: str | None = None
    version: str | None = None
    flags: tuple[tuple[str, str], ...] = ()
    running: bool | None = None
    evidence: str = ""
    error: str | None = None


@dataclass(frozen=True)
class ManifestFile:
    """A file in `manifests/` that is not an expected component's manifest."""

    name: str
    stray: bool
    pod_name: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Certificate:
    """A certificate from `pki/` or embedded in a kubeconfig; `error` set when unreadable.

    `signed_by_ca` is None when no CA was found beside it to check against.
    """

    path: str
    source: str = "file"
    subject: str = ""
    issuer: str = ""
    sans: tuple[str, ...] = ()
    not_before: dt.datetime | None = None
    not_after: dt.datetime | None = None
    is_ca: bool = False
    serving: bool = False
    ca_path: str | None = None
    signed_by_ca: bool | None = None
    error: str | None = None

    @property
    def name(self) -> str:
        """The path below /etc/kubernetes: `pki/etcd/server.crt`, `admin.conf`."""
        return self.path.removeprefix(KUBERNETES_DIR + "/")

    def days_left(self, now: dt.datetime) -> float | None:
        if self.not_after is None:
            return None
        return (self.not_after - now).total_seconds() / 86400


@dataclass(frozen=True)
class CniFile:
    """One entry of /etc/cni/net.d; `types` are the plugin types a config declares."""

    name: str
    kind: str
    size: int | None = None
    is_config: bool = False
    types: tuple[str, ...] = ()
    error: str | None = None
    server: str | None = None

    @property
    def valid(self) -> bool:
        return self.is_config and self.error is None and bool(self.types)

    @property
    def primary(self) -> bool:
        """A network config the kubelet could use for pods (loopback alone is not one)."""
        return self.valid and any(t != "loopback" for t in self.types)


@dataclass(frozen=True)
class CniState:
    files: tuple[CniFile, ...] = ()
    error: str | None = None

    # Computed once per state (frozen, so they cannot go stale): the CNI pane asks per row.
    @functools.cached_property
    def primaries(self) -> tuple[CniFile, ...]:
        return tuple(f for f in sorted(self.files, key=lambda f: f.name) if f.primary)

    @functools.cached_property
    def active(self) -> CniFile | None:
        """The config the kubelet uses: the lexicographically first valid primary one."""
        return self.primaries[0] if self.primaries else None


@dataclass(frozen=True)
class Filesystem:
    """`df -P` for one path the control plane needs (the etcd data dir, `/`); sizes in KiB."""

    path: str
    mount: str
    size: int
    used: int
    percent: float


@dataclass(frozen=True)
class Listener:
    """A listening TCP socket from `ss -Hltnp`; `process` is empty when ss may not say."""

    address: str
    port: int
    process: str = ""
    pid: int | None = None

    def held_by(self, component: str) -> bool:
        """Whether its process is `component`'s, by the name ss shows (cut to COMM_LENGTH)."""
        return bool(self.process) and self.process[:COMM_LENGTH] == component[:COMM_LENGTH]


@dataclass(frozen=True)
class NodeState:
    """One node as collected; `reachable` False means only `error` is meaningful.

    `denied` are the paths the node is read as may not read (directories and files): their
    content is unknown. `sudo_refused` is sudo's refusal when root was wanted (the node was
    then read as the SSH user)."""

    name: str
    address: str
    reachable: bool
    error: str | None = None
    hostname: str | None = None
    addresses: tuple[str, ...] = ()
    clock_offset: float | None = None
    manifests_dir: bool = True
    static_pods: tuple[StaticPod, ...] = ()
    extra_manifests: tuple[ManifestFile, ...] = ()
    certificates: tuple[Certificate, ...] = ()
    cni: CniState = field(default_factory=CniState)
    local: bool = False
    filesystems: tuple[Filesystem, ...] = ()
    listeners: tuple[Listener, ...] = ()
    read_at: dt.datetime | None = None  # when the node answered what this state shows
    denied: tuple[str, ...] = ()
    sudo_refused: str | None = None
    slow_for: float | None = None  # seconds a newer read has gone unanswered (this one is older)

    def free_bytes(self, path: str) -> int | None:
        """Free space on the filesystem `df` showed for `path`; None when it was not read."""
        found = next((fs for fs in self.filesystems if fs.path == path), None)
        return None if found is None else (found.size - found.used) * 1024

    def age(self, now: dt.datetime) -> float | None:
        """Seconds since the node answered what this state shows."""
        return None if self.read_at is None else (now - self.read_at).total_seconds()
