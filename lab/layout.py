"""Where everything of a lab lives on disk, and its spec (lab.json).

A lab directory holds the spec, one filesystem root per node (`nodes/cp-i/`, with a
kubeadm-shaped `/etc/kubernetes`, `/etc/cni/net.d`, `/var/lib/etcd`), the cockpit's own client
credentials (`cockpit/`), SSH host keys kept outside the node roots (`hostkeys/`, so SFTP never
serves them), the daemon's pid file and log.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path

ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380
SSH_PORT = 2222
KUBE_API_PORT = 6443  # the lab's stand-in API server, on the first node's address
MAX_NODES = 7
PROJECT_ROOT = Path(__file__).resolve().parents[1]


class LabError(Exception):
    """A lab problem with a message meant for the operator."""


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
    scenarios: tuple[str, ...] = field(default=())

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
            scenarios=tuple(raw.get("scenarios", ())),
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

    def kubelet_state(self, name: str) -> Path:
        return self.node_root(name) / "var" / "lib" / "kubelet" / "lab-pods.json"

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


def choose_addresses(count: int) -> list[str]:
    """Loopback addresses 127.0.X.11.. for the nodes, the first block whose ports are free.

    Each node gets its own address so every member listens on the standard ports, as on a real
    control plane; a second lab on the same machine simply takes the next block.
    """
    for block in range(0, 250):
        addresses = [f"127.0.{block}.{11 + i}" for i in range(count)]
        if all(_ports_free(a) for a in addresses):
            return addresses
    raise LabError("no free loopback block for the lab (127.0.0-249.11+ all busy)")


def _ports_free(address: str) -> bool:
    for port in (ETCD_CLIENT_PORT, ETCD_PEER_PORT, SSH_PORT, KUBE_API_PORT):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((address, port))
            except OSError:
                return False
    return True
