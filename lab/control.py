"""Creating, starting and stopping a lab; the `kcockpit lab up/down` contract lives here."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import asyncssh

from cluster.config import Config, TlsFiles, load_config_with_table
from cluster.etcd.client import EtcdClient
from cluster.etcd.source import EtcdSource
from lab import network, pki
from lab.addons import NODE_READERS
from lab.kubeapi import API_ERRORS, Rest
from lab.layout import (
    KUBE_API_PORT,
    KUBE_BINARIES,
    MAX_NODES,
    LabError,
    LabNeedsRoot,
    LabNode,
    LabPaths,
    LabSpec,
    find_etcd,
    find_kube_bin,
)
from lab.loadbalancer import endpoint_address, endpoint_url, stopped_marker
from lab.manifests import render_manifests, write_manifests
from lab.network import LabNetwork, choose_network
from lab.node import OPS_USER
from lab.plugin import plugged
from lab.scenarios import (
    apply_scenarios,
    check_scenarios,
    stage_running_scenarios,
    stopped_nodes,
)

DEFAULT_UP_TIMEOUT = 120.0  # the full control plane takes 15-30 s of two busy cores
KUBE_COMPONENTS = frozenset({"etcd", *KUBE_BINARIES})
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


def create_lab(
    paths: LabPaths, node_count: int, scenarios: tuple[str, ...] = (), control_plane: bool = True
) -> LabSpec:
    """Writes a fresh lab: PKI, manifests, CNI config, SSH keys, spec and cockpit config."""
    if not 1 <= node_count <= MAX_NODES:
        raise LabError(f"--nodes must be 1 to {MAX_NODES} (got {node_count})")
    find_etcd()
    if control_plane:
        find_kube_bin()
    net = choose_network()
    spec = LabSpec(
        nodes=tuple(LabNode(f"cp-{i + 1}", net.address(i)) for i in range(node_count)),
        subnet=net.subnet,
        scenarios=scenarios,
        control_plane=control_plane,
    )
    check_scenarios(spec)
    paths.root.mkdir(parents=True, exist_ok=True)
    cas = pki.make_cas()
    initial_cluster = ",".join(f"{n.name}={n.peer_url}" for n in spec.nodes)
    for node in spec.nodes:
        provision_node(paths, cas, spec, node, initial_cluster, "new")
    _write_cockpit_credentials(paths, cas, spec)
    apply_scenarios(paths, spec)
    paths.spec.write_text(spec.to_json())
    write_cockpit_config(paths, spec)
    return spec


def provision_node(
    paths: LabPaths,
    cas: pki.ClusterCAs,
    spec: LabSpec,
    node: LabNode,
    initial_cluster: str,
    state: str,
) -> None:
    """One node's files, with kubeadm's modes: PKI, static pod manifests, CNI config, an empty
    etcd data dir."""
    endpoint = endpoint_address(spec)
    pki.write_node_pki(paths.kubernetes_dir(node.name), cas, node.name, node.address, endpoint)
    manifests = render_manifests(node, initial_cluster, state, spec.control_plane)
    write_manifests(paths.manifests(node.name), manifests)
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
    (cockpit / "id_ed25519").chmod(0o600)
    user_key.write_public_key(str(cockpit / "id_ed25519.pub"))
    (cockpit / "known_hosts").write_text("")
    for node in spec.nodes:
        write_host_key(paths, node)
    write_lab_kubeconfigs(paths, cas.kubernetes, spec)


def kubeconfig_path(paths: LabPaths, limited: bool = False) -> Path:
    return paths.cockpit / ("kubeconfig-node-reader" if limited else "kubeconfig")


def write_lab_kubeconfigs(paths: LabPaths, ca: pki.Issued, spec: LabSpec) -> None:
    """The cockpit's kubeconfig (a cluster admin, as kubeadm's admin.conf) and one for a user
    who may only read nodes (lab/addons.py binds its group), to see a real 403. Both talk to
    the control-plane endpoint, the load balancer."""
    users = {
        False: ("kcockpit", ("kubeadm:cluster-admins",)),
        True: ("kcockpit-nodes-only", (NODE_READERS,)),
    }
    for limited, (user, groups) in users.items():
        issued = pki.issue(user, issuer=ca, client=True, organizations=groups)
        pki.write_kubeconfig(
            kubeconfig_path(paths, limited),
            endpoint_url(spec),
            ca.cert,
            issued,
            user,
            "kcockpit-lab",
        )


def write_host_key(paths: LabPaths, node: LabNode) -> None:
    """A fresh host key for the node's sshd, trusted in the cockpit's known_hosts."""
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    key_path = paths.host_key(node.name)
    key_path.parent.mkdir(parents=True, exist_ok=True)
    host_key.write_private_key(str(key_path))
    key_path.chmod(0o600)
    public = host_key.export_public_key("openssh").decode().strip()
    with (paths.cockpit / "known_hosts").open("a") as known_hosts:
        known_hosts.write(f"{node.address} {public}\n")


def ssh_config_path(paths: LabPaths) -> Path:
    return paths.cockpit / "ssh_config"


def write_ssh_config(paths: LabPaths, spec: LabSpec) -> None:
    """The ssh_config an operator would write for a control plane behind a bastion: cp-1 is
    the jump host, every other node of the lab's /24 is reached through it, as `ops`, with the
    lab's key and known_hosts only. kcockpit and the system `ssh -F` read the same file."""
    jump = spec.nodes[0]
    cockpit = paths.cockpit
    prefix = jump.address.rpartition(".")[0]
    paths_block = (
        f"    User {OPS_USER}\n"
        f"    IdentityFile {cockpit / 'id_ed25519'}\n"
        "    IdentitiesOnly yes\n"
        "    IdentityAgent none\n"
        f"    UserKnownHostsFile {cockpit / 'known_hosts'}\n"
        "    StrictHostKeyChecking yes\n"
    )
    ssh_config_path(paths).write_text(
        "# Written by `kcockpit lab up`: cp-1 is the jump host (ProxyJump) for the others.\n"
        f"Host {prefix}.* !{jump.address}\n"
        f"    ProxyJump {OPS_USER}@{jump.address}\n"
        f"Host {prefix}.*\n" + paths_block
    )


def write_cockpit_config(paths: LabPaths, spec: LabSpec) -> None:
    endpoints = ", ".join(f'"{n.client_url}"' for n in spec.nodes)
    lines = [
        "# Written by `kcockpit lab up`: a cockpit config pointing at this lab.",
        f'name = "lab-{spec.subnet.split(".")[2]}"',
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
    if spec.control_plane:
        # real API servers sharing two cores with everything else: 2 s is too tight at times
        lines += ["", "[kube]", 'kubeconfig = "cockpit/kubeconfig"', "timeout = 5.0"]
    write_ssh_config(paths, spec)
    for node in spec.nodes:
        lines += [
            "",
            "[[nodes]]",
            f'name = "{node.name}"',
            f'address = "{node.address}"',
            f'user = "{OPS_USER}"',
            "sudo = true",
            *([] if spec.control_plane else ['role = "etcd"  # an external etcd node']),
            'identity = "cockpit/id_ed25519"',
            'known_hosts = "cockpit/known_hosts"',
            'ssh_config = ["cockpit/ssh_config"]  # ProxyJump through cp-1; nothing of ~/.ssh',
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
    control_plane: bool = True,
) -> LabSpec:
    """Starts the lab in `root` (creating it unless it exists) and waits until etcd is healthy
    and, with the control plane, until the API has every running node and its static pods.

    `scenarios` are staged when the lab is created (those needing a running cluster once it is
    healthy); members they stop are not waited for. `control_plane=False` makes etcd-only
    nodes (no Kubernetes API), for what needs only etcd and the nodes.
    """
    require_root()
    paths = LabPaths(root.resolve())
    running = paths.daemon_pid()
    if running:
        raise LabError(
            f"a lab already runs in {paths.root} (pid {running}); `kcockpit lab down --dir {root}` first"
        )
    # Held from choosing a subnet until the bridge carries it (etcd answering on it says so),
    # so two labs started at the same time (parallel test runs) never pick the same /24.
    with _address_lock():
        network.sweep(lambda lab_dir: LabPaths(lab_dir).daemon_pid() is not None)
        created = not paths.spec.exists()
        spec = create_lab(paths, nodes, scenarios, control_plane) if created else paths.load_spec()
        if scenarios and set(scenarios) != set(spec.scenarios):
            raise LabError(
                f"scenarios are staged when a lab is created: use a new --dir, not {root}"
            )
        pid = start_daemon(paths, owner=owner, remove_dir=remove_dir)
        started = time.monotonic()
        healthy = _or_terminate(pid, lambda: asyncio.run(wait_healthy(paths, spec, timeout, pid)))

    def settle() -> None:
        if spec.control_plane:
            wait_api(paths, spec, healthy, timeout - (time.monotonic() - started), pid)
        if created:
            asyncio.run(stage_running_scenarios(spec, tls_of(paths)))

    _or_terminate(pid, settle)
    return spec


T = TypeVar("T")


def _or_terminate(pid: int, step: Callable[[], T]) -> T:
    """The step's result; if it fails (or is interrupted), the half-started lab is stopped."""
    try:
        return step()
    except BaseException:
        _terminate(pid)
        raise


def require_root() -> None:
    """The lab makes network namespaces, mounts and sshds: it needs root, and says so."""
    if os.geteuid() != 0:
        raise LabNeedsRoot(
            "the lab needs root (network namespaces, mounts, sshd): run `sudo make lab`, "
            "or `sudo .venv/bin/kcockpit lab`"
        )


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
) -> set[str]:
    """Waits until every member answers, a leader exists, and the daemon is up; returns the
    names of the members that are healthy then (a scenario or drill may keep some down)."""
    client = EtcdClient(tls_of(paths), timeout=1.0)
    source = EtcdSource(client, [n.client_url for n in spec.nodes])
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    try:
        while time.monotonic() < deadline:
            _still_running(paths, pid)
            if not paths.daemon_pid():  # no bridge yet: the nodes' addresses lead off-machine
                await asyncio.sleep(0.05)
                continue
            cluster = await source.read(fresh=False)
            expected = len(cluster.members) - len(stopped_nodes(spec))
            voting_healthy = cluster.voting and cluster.healthy_voting >= expected
            sshd_up = all(_accepts(n.address, n.ssh_port) for n in spec.nodes)
            if voting_healthy and cluster.leader and sshd_up and paths.daemon_pid():
                return {m.name for m in cluster.members if m.healthy}
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


def _still_running(paths: LabPaths, pid: int | None) -> None:
    """A wait for the lab ends at once if its daemon has exited (it logged why)."""
    if pid and not _alive(pid):
        raise LabError(
            f"the lab daemon exited; its log ({paths.log}) ends with:\n{_tail(paths.log)}"
        )


def wait_api(
    paths: LabPaths, spec: LabSpec, healthy: set[str], timeout: float, pid: int | None = None
) -> None:
    """Waits until the API, through the load balancer, has every node whose API server can
    serve (its manifest is in place and its own etcd member, the one it uses, is `healthy`: a
    node whose API server cannot serve cannot register, its kubelet talks to it), a mirror pod
    for each static pod such a node's manifests name, Ready, and the DaemonSets' pods on it."""
    deadline = time.monotonic() + timeout
    rest, last = None, "no answer yet"
    while time.monotonic() < deadline:
        _still_running(paths, pid)
        try:
            rest = rest or Rest(str(kubeconfig_path(paths)))
            missing = _missing_from_api(paths, spec, healthy, rest)
        except API_ERRORS as exc:
            missing = [str(exc).splitlines()[0][:200]]
        if not missing:
            return
        last = "; ".join(missing)
        time.sleep(0.25)
    raise LabError(f"the lab's API did not settle within {timeout:g} s: {last}")


def _missing_from_api(paths: LabPaths, spec: LabSpec, healthy: set[str], rest: Rest) -> list[str]:
    serving = [
        n.name
        for n in spec.nodes
        if n.name in healthy and (paths.manifests(n.name) / "kube-apiserver.yaml").exists()
    ]
    nodes = {n["metadata"]["name"] for n in rest.call("GET", "/api/v1/nodes")["items"]}
    pods = rest.call("GET", "/api/v1/namespaces/kube-system/pods")["items"]
    ready = {(p["spec"].get("nodeName"), p["metadata"]["name"]) for p in pods if _ready(p)}
    daemonset_pods = {
        (p["spec"].get("nodeName"), (p["metadata"].get("ownerReferences") or [{}])[0].get("name"))
        for p in pods
        if (p.get("status") or {}).get("phase") == "Running"
    }
    missing = [f"node {name} not registered" for name in serving if name not in nodes]
    for name in serving:
        for manifest in sorted(paths.manifests(name).glob("*.yaml")):
            pod = f"{manifest.stem}-{name}"
            if manifest.stem in KUBE_COMPONENTS and (name, pod) not in ready:
                missing.append(f"mirror pod {pod} not there or not Ready")
        if (name, "kube-proxy") not in daemonset_pods:
            missing.append(f"no kube-proxy pod running on {name}")
    return missing


def _ready(pod: dict) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _accepts(address: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((address, port)) == 0


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
        lab's seams plugged in (its node provisioner and state dir)."""
        return plugged(*load_config_with_table(self.paths.config))

    def node_pid(self, node: str) -> int:
        """The host pid of the node's first process."""
        try:
            return int(self.paths.node_pid(node).read_text())
        except (FileNotFoundError, ValueError):
            raise LabError(f"{node} is not running") from None

    def processes(self, node: str, name: str | None = None) -> list[int]:
        """Host pids of the node's processes (those in the node's PID namespace) called
        `name`, or all of them, oldest first."""
        namespace = os.readlink(f"/proc/{self.node_pid(node)}/ns/pid")
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if name is not None and (entry / "comm").read_text().strip() != name:
                    continue
                if os.readlink(entry / "ns" / "pid") == namespace:
                    found.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue  # gone meanwhile
        return sorted(found)

    def etcd_pid(self, node: str) -> int | None:
        """The host pid of the node's running etcd (for SIGSTOP drills)."""
        return next(iter(self.processes(node, "etcd")), None)

    def node_exec(
        self, node: str, argv: list[str], check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Runs `argv` as root inside the node (its mounts, hostname, network and processes),
        as an operator at the node's console would (with `env`, else this process's)."""
        command = ["nsenter", "-t", str(self.node_pid(node)), "-m", "-u", "-n", "-p", "--"]
        done = subprocess.run(
            [*command, *argv], capture_output=True, text=True, check=False, timeout=60, env=env
        )
        if check and done.returncode != 0:
            raise LabError(f"{node}: {shlex.join(argv)}: {done.stderr.strip() or done.returncode}")
        return done

    def freeze_sshd(self, node: str) -> list[int]:
        """SIGSTOPs the node's sshd and its sessions: a node that accepts and never answers."""
        frozen = []
        for pid in self.processes(node, "sshd"):
            with contextlib.suppress(ProcessLookupError):  # a session that just ended
                os.kill(pid, signal.SIGSTOP)
                frozen.append(pid)
        return frozen

    def thaw_all(self, pids: list[int]) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def stop_sshd(self, node: str) -> None:
        """Kills the node's sshd and every session: links drop, new ones are refused."""
        for pid in self.processes(node, "sshd"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def start_sshd(self, node: str) -> None:
        self.node_exec(node, ["/usr/sbin/sshd"])

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
        provision_node(paths, cas, spec, node, initial_cluster, "existing")
        write_host_key(paths, node)
        grown = dataclasses.replace(spec, nodes=(*spec.nodes, node))
        paths.spec.write_text(grown.to_json())
        write_cockpit_config(paths, grown)
        pid = paths.daemon_pid()
        if pid is None:
            raise LabError(f"no lab daemon runs in {paths.root} to start {name}")
        os.kill(pid, signal.SIGUSR1)
        return node

    def peer_url_for(self, name: str) -> str:
        """The peer URL a new lab node gets: the next free address of the lab's /24."""
        spec = self.spec
        net = LabNetwork(spec.subnet)
        used = {n.address for n in spec.nodes}
        index = next(i for i in range(MAX_NODES * 4) if net.address(i) not in used)
        return LabNode(name, net.address(index)).peer_url

    @property
    def kubeconfig(self) -> Path:
        return kubeconfig_path(self.paths)

    @property
    def node_reader_kubeconfig(self) -> Path:
        """A kubeconfig whose user may only read nodes: the lab API answers 403 to the rest."""
        return kubeconfig_path(self.paths, limited=True)

    def stop_endpoint(self, timeout: float = 10.0) -> str:
        """Stops the control-plane endpoint's load balancer (the API servers keep running):
        the API unreachable for everyone who goes through it. Returns its URL."""
        stopped_marker(self.paths).touch()
        return self._await_endpoint(listening=False, timeout=timeout)

    def start_endpoint(self, timeout: float = 10.0) -> str:
        stopped_marker(self.paths).unlink(missing_ok=True)
        return self._await_endpoint(listening=True, timeout=timeout)

    def _await_endpoint(self, listening: bool, timeout: float) -> str:
        url = endpoint_url(self.spec)
        address = (endpoint_address(self.spec), KUBE_API_PORT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                probe.settimeout(0.5)
                if (probe.connect_ex(address) == 0) == listening:
                    return url
            time.sleep(0.05)
        raise LabError(f"the lab endpoint {url} did not {'start' if listening else 'stop'}")

    def freeze(self, node: str) -> int:
        pid = self.etcd_pid(node)
        if pid is None:
            raise LabError(f"{node}: etcd is not running")
        os.kill(pid, signal.SIGSTOP)
        return pid

    def thaw(self, pid: int) -> None:
        os.kill(pid, signal.SIGCONT)
