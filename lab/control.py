"""Creating, starting and stopping a lab; the `kcockpit lab up/down` contract lives here."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncssh

from cluster.config import Config, TlsFiles, load_config_with_table
from cluster.etcd.client import EtcdClient
from cluster.etcd.source import EtcdSource
from lab import pki
from lab.apiserver import api_url, kubeconfig_path, stopped_marker, write_lab_kubeconfigs
from lab.layout import (
    KUBE_API_PORT,
    MAX_NODES,
    LabError,
    LabNode,
    LabPaths,
    LabSpec,
    choose_addresses,
    find_etcd,
)
from lab.manifests import render_manifests, write_manifests
from lab.plugin import plugged
from lab.scenarios import (
    apply_scenarios,
    check_scenarios,
    stage_running_scenarios,
    stopped_nodes,
)

DEFAULT_UP_TIMEOUT = 60.0
DOWN_TIMEOUT = 20.0

CALICO_CONFLIST = {
    "name": "k8s-pod-network",
    "cniVersion": "0.3.1",
    "plugins": [
        {
            "type": "calico",
            "datastore_type": "kubernetes",
            "ipam": {"type": "calico-ipam"},
            "kubernetes": {"kubeconfig": "/etc/cni/net.d/calico-kubeconfig"},
        },
        {"type": "portmap", "snat": True, "capabilities": {"portMappings": True}},
    ],
}


def create_lab(paths: LabPaths, node_count: int, scenarios: tuple[str, ...] = ()) -> LabSpec:
    """Writes a fresh lab: PKI, manifests, CNI config, SSH keys, spec and cockpit config."""
    if not 1 <= node_count <= MAX_NODES:
        raise LabError(f"--nodes must be 1 to {MAX_NODES} (got {node_count})")
    find_etcd()
    addresses = choose_addresses(node_count)
    spec = LabSpec(
        nodes=tuple(LabNode(f"cp-{i + 1}", a) for i, a in enumerate(addresses)),
        scenarios=scenarios,
    )
    check_scenarios(spec)
    paths.root.mkdir(parents=True, exist_ok=True)
    cas = pki.make_cas()
    initial_cluster = ",".join(f"{n.name}={n.peer_url}" for n in spec.nodes)
    for node in spec.nodes:
        provision_node(paths, cas, node, initial_cluster, "new")
    _write_cockpit_credentials(paths, cas, spec)
    apply_scenarios(paths, spec)
    paths.spec.write_text(spec.to_json())
    write_cockpit_config(paths, spec)
    return spec


def provision_node(
    paths: LabPaths, cas: pki.ClusterCAs, node: LabNode, initial_cluster: str, state: str
) -> None:
    """One node's filesystem: PKI, static pod manifests, CNI config, an empty etcd data dir."""
    pki.write_node_pki(paths.kubernetes_dir(node.name), cas, node.name, node.address)
    write_manifests(paths.manifests(node.name), render_manifests(node, initial_cluster, state))
    write_cni(paths.node_root(node.name), node.address)
    data_dir = paths.node_root(node.name) / "var" / "lib" / "etcd"
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)


def write_cni(node_root: Path, address: str) -> None:
    net_d = node_root / "etc" / "cni" / "net.d"
    net_d.mkdir(parents=True, exist_ok=True)
    (net_d / "10-calico.conflist").write_text(json.dumps(CALICO_CONFLIST, indent=2))
    (net_d / "calico-kubeconfig").write_text(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n"
        f"    server: https://{address}:6443\n"
        "users:\n- name: calico\ncontexts:\n- name: calico-context\n  context:\n"
        "    cluster: local\n    user: calico\ncurrent-context: calico-context\n"
    )


def _write_cockpit_credentials(paths: LabPaths, cas: pki.ClusterCAs, spec: LabSpec) -> None:
    cockpit = paths.cockpit
    cockpit.mkdir(parents=True, exist_ok=True)
    (cockpit / "etcd-ca.crt").write_bytes(pki.cert_pem(cas.etcd.cert))
    pki.write_pair(cockpit, "etcd-client", pki.issue("kcockpit", issuer=cas.etcd, client=True))
    user_key = asyncssh.generate_private_key("ssh-ed25519", comment="kcockpit-lab")
    user_key.write_private_key(str(cockpit / "id_ed25519"))
    user_key.write_public_key(str(cockpit / "id_ed25519.pub"))
    (cockpit / "known_hosts").write_text("")
    for node in spec.nodes:
        write_host_key(paths, node)
    write_lab_kubeconfigs(paths, cas.kubernetes, spec)


def write_host_key(paths: LabPaths, node: LabNode) -> None:
    """A fresh host key for the node's SSH server, trusted in the cockpit's known_hosts."""
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    key_path = paths.host_key(node.name)
    key_path.parent.mkdir(parents=True, exist_ok=True)
    host_key.write_private_key(str(key_path))
    public = host_key.export_public_key("openssh").decode().strip()
    with (paths.cockpit / "known_hosts").open("a") as known_hosts:
        known_hosts.write(f"[{node.address}]:{node.ssh_port} {public}\n")


def write_cockpit_config(paths: LabPaths, spec: LabSpec) -> None:
    endpoints = ", ".join(f'"{n.client_url}"' for n in spec.nodes)
    lines = [
        "# Written by `kcockpit lab up`: a cockpit config pointing at this lab.",
        f'name = "lab-{spec.nodes[0].address.split(".")[2]}"',
        "refresh = 1.0",
        "",
        "[etcd]",
        f"endpoints = [{endpoints}]",
        'ca = "cockpit/etcd-ca.crt"',
        'cert = "cockpit/etcd-client.crt"',
        'key = "cockpit/etcd-client.key"',
        "timeout = 2.0",
        "",
        "[lab]",
        'dir = "."',
    ]
    if kubeconfig_path(paths).exists():
        lines += ["", "[kube]", 'kubeconfig = "cockpit/kubeconfig"', "timeout = 2.0"]
    for node in spec.nodes:
        lines += [
            "",
            "[[nodes]]",
            f'name = "{node.name}"',
            f'address = "{node.address}"',
            f"port = {node.ssh_port}",
            'user = "kcockpit"',
            'identity = "cockpit/id_ed25519"',
            'known_hosts = "cockpit/known_hosts"',
            "ssh_config = []  # the lab ignores ~/.ssh/config and the agent",
            "agent = false",
        ]
    paths.config.write_text("\n".join(lines) + "\n")


def tls_of(paths: LabPaths) -> TlsFiles:
    cockpit = paths.cockpit
    return TlsFiles(
        cockpit / "etcd-ca.crt", cockpit / "etcd-client.crt", cockpit / "etcd-client.key"
    )


def start_daemon(paths: LabPaths, owner: int | None = None, remove_dir: bool = False) -> int:
    command = [sys.executable, "-m", "lab.daemon", str(paths.root)]
    if owner:
        command += ["--owner", str(owner)]
    if remove_dir:
        command.append("--remove-dir")
    with paths.log.open("ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            cwd=paths.root,
            env={**os.environ, "PYTHONPATH": _pythonpath()},
        )
    return process.pid


def _pythonpath() -> str:
    project = str(Path(__file__).resolve().parents[1])
    existing = os.environ.get("PYTHONPATH")
    return f"{project}{os.pathsep}{existing}" if existing else project


def lab_up(
    root: Path,
    nodes: int = 3,
    timeout: float = DEFAULT_UP_TIMEOUT,
    owner: int | None = None,
    remove_dir: bool = False,
    scenarios: tuple[str, ...] = (),
) -> LabSpec:
    """Starts the lab in `root` (creating it unless it exists) and waits until etcd is healthy.

    `scenarios` are staged when the lab is created (those needing a running cluster once it is
    healthy); members they stop are not waited for.
    """
    paths = LabPaths(root.resolve())
    running = paths.daemon_pid()
    if running:
        raise LabError(
            f"a lab already runs in {paths.root} (pid {running}); `kcockpit lab down --dir {root}` first"
        )
    # Held from choosing addresses until the members listen, so two labs started at the same
    # time (parallel test runs) never pick the same loopback block.
    with _address_lock():
        created = not paths.spec.exists()
        spec = create_lab(paths, nodes, scenarios) if created else paths.load_spec()
        if scenarios and set(scenarios) != set(spec.scenarios):
            raise LabError(
                f"scenarios are staged when a lab is created: use a new --dir, not {root}"
            )
        pid = start_daemon(paths, owner=owner, remove_dir=remove_dir)
        try:
            asyncio.run(wait_healthy(paths, spec, timeout, pid))
            if created:
                asyncio.run(stage_running_scenarios(spec, tls_of(paths)))
        except BaseException:
            _terminate(pid)
            raise
    return spec


@contextlib.contextmanager
def _address_lock() -> Iterator[None]:
    lock_path = Path(tempfile.gettempdir()) / f"kcockpit-lab-{os.getuid()}.lock"
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


async def wait_healthy(
    paths: LabPaths, spec: LabSpec, timeout: float, pid: int | None = None
) -> None:
    """Waits until every member answers, a leader exists, and the daemon is up."""
    client = EtcdClient(tls_of(paths), timeout=1.0)
    source = EtcdSource(client, [n.client_url for n in spec.nodes])
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    try:
        while time.monotonic() < deadline:
            if pid and not _alive(pid):
                raise LabError(
                    f"the lab daemon exited; its log ({paths.log}) ends with:\n{_tail(paths.log)}"
                )
            cluster = await source.read(fresh=False)
            expected = len(cluster.members) - len(stopped_nodes(spec))
            voting_healthy = cluster.voting and cluster.healthy_voting >= expected
            if voting_healthy and cluster.leader and paths.daemon_pid():
                return
            last = (
                cluster.error
                or "; ".join(f"{m.display_name}: {m.error}" for m in cluster.members if m.error)
                or "no leader yet"
            )
            await asyncio.sleep(0.2)
    finally:
        source.close()
        await client.close()
    raise LabError(f"the lab did not become healthy within {timeout:g} s: {last}")


def lab_down(root: Path, timeout: float = DOWN_TIMEOUT) -> None:
    paths = LabPaths(root.resolve())
    pid = paths.daemon_pid()
    if pid is None:
        raise LabError(f"no lab runs in {paths.root}")
    _terminate(pid, timeout)


def _terminate(pid: int, timeout: float = DOWN_TIMEOUT) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().split(") ")[-1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


@dataclass
class Lab:
    """A running lab, as tests and scripts drive it: stop and start nodes the runbook way."""

    root: Path

    @property
    def paths(self) -> LabPaths:
        return LabPaths(self.root)

    @property
    def spec(self) -> LabSpec:
        return self.paths.load_spec()

    def config(self) -> Config:
        """The cockpit config this lab wrote, read as `kcockpit --config` reads it: with the
        lab's seams plugged in (its node provisioner, kubelet evidence and state dir)."""
        return plugged(*load_config_with_table(self.paths.config))

    def pods(self, node: str) -> list[dict]:
        try:
            return json.loads(self.paths.kubelet_state(node).read_text())["pods"]
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            return []

    def etcd_pid(self, node: str) -> int | None:
        for pod in self.pods(node):
            if pod["component"] == "etcd" and pod["state"] == "running":
                return pod["pid"]
        return None

    def stop_node(self, node: str, suffix: str = "20230310") -> Path:
        """`mv manifests manifests-<suffix>`, as runbook §2.1 does."""
        manifests = self.paths.manifests(node)
        moved = manifests.with_name(f"manifests-{suffix}")
        manifests.rename(moved)
        return moved

    def start_node(self, node: str, suffix: str = "20230310") -> None:
        moved = self.paths.manifests(node).with_name(f"manifests-{suffix}")
        moved.rename(self.paths.manifests(node))

    def add_node(self, name: str, peer_url: str, initial_cluster: str) -> LabNode:
        """Provisions a node for a member just added with MemberAdd and has the daemon start it.

        The lab acts as kubeadm here: it signs the new node's certificates with the cluster CAs
        it created, and its manifest joins the existing cluster.
        """
        paths = self.paths
        spec = paths.load_spec()
        address = urlsplit(peer_url).hostname or ""
        node = LabNode(name, address)
        if node.peer_url != peer_url:
            raise LabError(f"lab nodes use {node.peer_url}, not {peer_url}")
        if any(n.name == name or n.address == address for n in spec.nodes):
            raise LabError(f"the lab already has a node {name} or address {address}")
        cas = pki.load_cas(paths.kubernetes_dir(spec.nodes[0].name))
        provision_node(paths, cas, node, initial_cluster, "existing")
        write_host_key(paths, node)
        grown = LabSpec(nodes=(*spec.nodes, node), scenarios=spec.scenarios)
        paths.spec.write_text(grown.to_json())
        write_cockpit_config(paths, grown)
        pid = paths.daemon_pid()
        if pid is None:
            raise LabError(f"no lab daemon runs in {paths.root} to start {name}")
        os.kill(pid, signal.SIGUSR1)
        return node

    def peer_url_for(self, name: str) -> str:
        """The peer URL a new lab node gets: the next free address of the lab's block."""
        spec = self.spec
        prefix = spec.nodes[0].address.rpartition(".")[0]
        used = {int(n.address.rpartition(".")[2]) for n in spec.nodes}
        host = next(h for h in range(11, 255) if h not in used)
        return LabNode(name, f"{prefix}.{host}").peer_url

    @property
    def kubeconfig(self) -> Path:
        return kubeconfig_path(self.paths)

    @property
    def node_reader_kubeconfig(self) -> Path:
        """A kubeconfig whose user may only read nodes: the lab API answers 403 to the rest."""
        return kubeconfig_path(self.paths, limited=True)

    def stop_apiserver(self, timeout: float = 10.0) -> str:
        """Stops the lab's API server (the lab keeps running); returns its URL."""
        stopped_marker(self.paths).touch()
        return self._await_apiserver(listening=False, timeout=timeout)

    def start_apiserver(self, timeout: float = 10.0) -> str:
        stopped_marker(self.paths).unlink(missing_ok=True)
        return self._await_apiserver(listening=True, timeout=timeout)

    def _await_apiserver(self, listening: bool, timeout: float) -> str:
        url = api_url(self.spec)
        address = (self.spec.nodes[0].address, KUBE_API_PORT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                probe.settimeout(0.5)
                if (probe.connect_ex(address) == 0) == listening:
                    return url
            time.sleep(0.05)
        raise LabError(f"the lab API at {url} did not {'start' if listening else 'stop'}")

    def freeze(self, node: str) -> int:
        pid = self.etcd_pid(node)
        if pid is None:
            raise LabError(f"{node}: etcd is not running")
        os.kill(pid, signal.SIGSTOP)
        return pid

    def thaw(self, pid: int) -> None:
        os.kill(pid, signal.SIGCONT)
