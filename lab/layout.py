"""Where everything of a lab lives on disk, and its spec (lab.json).

A lab directory holds the spec, one directory per node (`nodes/cp-i/`, holding the node's own
kubeadm-shaped `/etc/kubernetes`, `/etc/cni/net.d`, `/var/lib/etcd`, bind-mounted into the
node, so the runbooks' moves work from this machine too), the cockpit's own client credentials
and SSH setup (`cockpit/`), the nodes' SSH host keys (`hostkeys/`, outside what a node
mounts), per-node drills and pid files (`drills/`, `run/`), the daemon's pid file and log.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380
SSH_PORT = 22  # every node has its own address: the standard ports, as on a real node
KUBE_API_PORT = 6443  # each node's kube-apiserver, and the lab's load balancer on the bridge
KUBE_VERSION = "v1.20.2"  # what scripts/install-kubernetes.sh builds
KUBE_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
MAX_NODES = 7
PROJECT_ROOT = Path(__file__).resolve().parents[1]


class LabError(Exception):
    """A lab problem with a message meant for the operator."""


class LabNeedsRoot(LabError):
    """Run as a user who cannot make namespaces: a usage error, not a broken lab."""


@dataclass(frozen=True)
class LabNode:
    name: str
    address: str
    ssh_port: int = SSH_PORT

    @property
    def client_url(self) -> str:
        return f"https://{self.address}:{ETCD_CLIENT_PORT}"

    @property
    def peer_url(self) -> str:
        return f"https://{self.address}:{ETCD_PEER_PORT}"


@dataclass(frozen=True)
class LabSpec:
    nodes: tuple[LabNode, ...]
    subnet: str  # the lab's /24 (lab/network.py); the bridge is its .1
    scenarios: tuple[str, ...] = field(default=())
    # False: etcd-only nodes (kubeadm's external etcd topology: a kubelet running etcd's
    # static pod alone, standalone), for tests that need no Kubernetes API.
    control_plane: bool = True

    def node(self, name: str) -> LabNode:
        for node in self.nodes:
            if node.name == name:
                return node
        raise LabError(f"no node {name!r} in this lab ({', '.join(n.name for n in self.nodes)})")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> LabSpec:
        raw = json.loads(text)
        return cls(
            nodes=tuple(LabNode(**n) for n in raw["nodes"]),
            subnet=str(raw["subnet"]),
            scenarios=tuple(raw.get("scenarios", ())),
            control_plane=bool(raw.get("control_plane", True)),
        )


@dataclass(frozen=True)
class LabPaths:
    root: Path

    @property
    def spec(self) -> Path:
        return self.root / "lab.json"

    @property
    def config(self) -> Path:
        return self.root / "kcockpit.toml"

    @property
    def pid(self) -> Path:
        return self.root / "lab.pid"

    @property
    def log(self) -> Path:
        return self.root / "lab.log"

    @property
    def cockpit(self) -> Path:
        return self.root / "cockpit"

    def node_root(self, name: str) -> Path:
        return self.root / "nodes" / name

    def kubernetes_dir(self, name: str) -> Path:
        return self.node_root(name) / "etc" / "kubernetes"

    def manifests(self, name: str) -> Path:
        return self.kubernetes_dir(name) / "manifests"

    def host_key(self, name: str) -> Path:
        return self.root / "hostkeys" / name

    def layers(self, name: str) -> Path:
        """Where the node mounts the tmpfs holding its /etc and /var overlays' upper layers
        (empty seen from this machine: the mount is the node's own)."""
        return self.root / "layers" / name

    def node_pid(self, name: str) -> Path:
        """The host pid of the node's first process (its init): `nsenter -t PID` enters it."""
        return self.root / "run" / f"{name}.pid"

    def node_log(self, name: str) -> Path:
        return self.root / "run" / f"{name}.log"

    def drill(self, name: str) -> Path:
        """A drill the node stages for real when it starts (lab/node.py), e.g. a skewed clock."""
        return self.root / "drills" / f"{name}.json"

    def load_spec(self) -> LabSpec:
        try:
            return LabSpec.from_json(self.spec.read_text())
        except FileNotFoundError:
            raise LabError(f"no lab in {self.root} (no lab.json)") from None

    def daemon_pid(self) -> int | None:
        """The pid of this lab's running daemon, or None when none runs."""
        try:
            pid = int(self.pid.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        cmdline = Path(f"/proc/{pid}/cmdline")
        if cmdline.exists() and b"\0lab.daemon\0" not in cmdline.read_bytes():
            return None
        return pid


def find_etcd() -> Path:
    """etcd for the lab: $KCOCKPIT_ETCD, then the project-local install, then PATH."""
    candidates = [os.environ.get("KCOCKPIT_ETCD"), str(PROJECT_ROOT / ".local/etcd/usr/bin/etcd")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    on_path = shutil.which("etcd")
    if on_path:
        return Path(on_path)
    raise LabError(
        "etcd not found: run `make setup` (installs etcd 3.5 into .local/etcd), "
        "or set KCOCKPIT_ETCD to an etcd 3.5 binary"
    )


def etcdctl_for(etcd: Path) -> Path | None:
    sibling = etcd.with_name("etcdctl")
    return sibling if sibling.exists() else (Path(p) if (p := shutil.which("etcdctl")) else None)


def find_kube_bin() -> Path:
    """The directory holding the lab's Kubernetes control-plane binaries: $KCOCKPIT_KUBE_BIN,
    else the build scripts/install-kubernetes.sh cached for this machine."""
    wanted = os.environ.get("KCOCKPIT_KUBE_BIN")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    directory = Path(wanted) if wanted else cache / "kcockpit" / f"kubernetes-{KUBE_VERSION[1:]}"
    missing = [b for b in KUBE_BINARIES if not os.access(directory / b, os.X_OK)]
    if missing:
        raise LabError(
            f"no {', '.join(missing)} in {directory}: run `make setup` (builds Kubernetes "
            f"{KUBE_VERSION} once and caches it there), or set KCOCKPIT_KUBE_BIN to a directory "
            f"holding {', '.join(KUBE_BINARIES)}"
        )
    return directory
