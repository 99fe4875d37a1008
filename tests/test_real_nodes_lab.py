"""Lab nodes are Linux nodes as an operator meets them: their own hostname, address, users and
sudoers, a real OpenSSH that takes `ops` by key (never root), kubeadm's root-only manifests,
and cp-1 as the bastion the others are reached through. Nothing of it lands on this machine."""

from __future__ import annotations

import dataclasses
import json
import pwd
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from cluster.config import NodeConfig
from cluster.nodes.access import ErrorKind, NodeError
from cluster.nodes.ssh import SshNodeAccess
from lab.control import Lab, lab_up
from lab.layout import LabError, LabPaths
from lab.network import SUBNET_ENV, LabNetwork
from tests.helpers import kcockpit, open_sockets, process_ended, running_lab, wait_until

IP_FREEBIND = 15  # <linux/in.h>: bind to an address this machine does not have (yet)


def ssh(lab: Lab, target: str, command: str, *options: str) -> subprocess.CompletedProcess[str]:
    """The system OpenSSH client with the ssh_config the lab wrote (ProxyJump through cp-1)."""
    config = lab.paths.cockpit / "ssh_config"
    return subprocess.run(
        ["ssh", "-F", str(config), "-o", "BatchMode=yes", *options, target, command],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def lab_node(lab: Lab, name: str) -> NodeConfig:
    return next(n for n in lab.config().nodes if n.name == name)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_ops_logs_in_and_needs_sudo_for_what_kubeadm_keeps_to_root(lab: Lab, index: int) -> None:
    node = lab.spec.nodes[index]
    manifest = "/etc/kubernetes/manifests/etcd.yaml"
    seen = ssh(lab, node.address, f"hostname; id -un; cat {manifest}")
    assert seen.stdout.splitlines()[:2] == [node.name, "ops"], seen
    assert "Permission denied" in seen.stderr
    root_only = ssh(lab, node.address, f"sudo -n cat {manifest}; sudo -n ss -Hltnp")
    assert root_only.returncode == 0, root_only.stderr
    assert "kind: Pod" in root_only.stdout
    assert f"{node.address}:2379 " in root_only.stdout and '(("etcd",pid=' in root_only.stdout
    refused = ssh(lab, f"root@{node.address}", "true")
    assert refused.returncode == 255 and "Permission denied (publickey)" in refused.stderr


def test_kubeadm_modes_on_the_nodes_files(lab: Lab) -> None:
    kubernetes = lab.paths.kubernetes_dir("cp-1")
    modes = {
        "manifests": 0o700,
        "manifests/etcd.yaml": 0o600,
        "admin.conf": 0o600,
        "pki/ca.key": 0o600,
        "pki/ca.crt": 0o644,
        "pki/etcd/server.key": 0o600,
    }
    for path, mode in modes.items():
        info = (kubernetes / path).stat()
        assert (info.st_mode & 0o777, info.st_uid) == (mode, 0), path
    data = lab.paths.node_root("cp-1") / "var/lib/etcd"
    assert data.stat().st_mode & 0o777 == 0o700


async def test_kcockpit_logs_in_as_ops_and_reads_root_files_with_sudo(lab: Lab) -> None:
    node = lab_node(lab, "cp-2")
    assert node.user == "ops" and node.sudo is True
    plain = SshNodeAccess(dataclasses.replace(node, sudo=False))
    elevated = SshNodeAccess(node)
    as_root = SshNodeAccess(dataclasses.replace(node, user="root"))
    try:
        with pytest.raises(NodeError) as refused:
            await as_root.run(["true"])
        assert refused.value.kind is ErrorKind.AUTH
        assert (await plain.run(["id", "-un"])).stdout.strip() == "ops"
        assert (await elevated.run(["id", "-un"])).stdout.strip() == "root"
        with pytest.raises(NodeError) as denied:
            await plain.read_file("/etc/kubernetes/manifests/etcd.yaml")
        assert denied.value.kind is ErrorKind.PERMISSION
    finally:
        for access in (plain, elevated, as_root):
            await access.close()


async def test_the_other_nodes_are_reached_only_through_the_jump_host(lab: Lab) -> None:
    jump, target = lab.spec.nodes[0], lab.spec.nodes[1]
    direct = ssh(lab, target.address, "true", "-o", "ProxyJump=none")
    assert direct.returncode == 255 and "Permission denied" in direct.stderr
    through = ssh(lab, target.address, "hostname")
    assert through.stdout.strip() == target.name, through.stderr
    node = lab_node(lab, target.name)
    unjumped = SshNodeAccess(dataclasses.replace(node, ssh_config=()))
    jumped = SshNodeAccess(node)
    try:
        with pytest.raises(NodeError) as refused:
            await unjumped.run(["hostname"])
        assert refused.value.kind is ErrorKind.AUTH
        assert (await jumped.run(["hostname"])).stdout.strip() == target.name
    finally:
        await unjumped.close()
        await jumped.close()
    log = lab.paths.node_log(target.name).read_text(errors="replace")
    assert f"Accepted publickey for ops from {jump.address} " in log  # the tunnel's far end


def host_mounts() -> dict[str, str]:
    """This machine's mounts by mount ID (/proc/self/mountinfo): an ID names one mount, so a
    lab's namespaces are told from another lab's that took the same /24 and names later."""
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return {line.split()[0]: line.split()[4] for line in lines}


def test_nothing_of_a_lab_lands_on_this_machine(tmp_path: Path) -> None:
    lab_namespace = re.compile(r"/run/netns/kcl\d+-\d+")  # any lab's, another worker's too
    before = host_mounts()
    with running_lab(tmp_path / "lab", nodes=1) as lab:
        assert lab.node_exec("cp-1", ["id", "-un", "ops"]).stdout.strip() == "ops"
        with pytest.raises(KeyError):
            pwd.getpwnam("ops")
        assert not Path("/etc/kubernetes").exists()
        assert not Path("/etc/sudoers.d/ops").exists()
        tag = LabNetwork(lab.spec.subnet).tag
        ours = {i for i, point in host_mounts().items() if point.startswith(f"/run/netns/{tag}-")}
        assert ours
    after = host_mounts()
    assert not ours & after.keys()  # the lab's own namespaces are gone
    changed = {(i, p) for i, p in before.items() ^ after.items() if not lab_namespace.fullmatch(p)}
    assert not changed


def test_without_root_the_lab_refuses_in_one_line(tmp_path: Path) -> None:
    tmp_path.chmod(0o777)
    as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    result = kcockpit("lab", "up", "--dir", str(tmp_path / "lab"), wrapper=as_nobody)
    assert result.returncode == 2, result
    assert len(result.stderr.strip().splitlines()) == 1
    assert "needs root" in result.stderr and "sudo make lab" in result.stderr


async def test_a_node_behind_the_jump_host_that_never_answers_leaves_no_link_open(
    lab: Lab,
) -> None:
    """The jump host's channel towards a silent address is still opening when the node's
    deadline passes: the connection to the jump host made for it is closed with the attempt
    (asyncssh's own ProxyJump left it open, one socket per refresh)."""
    node = lab_node(lab, lab.spec.nodes[1].name)
    prefix = node.address.rpartition(".")[0]
    silent = dataclasses.replace(node, address=f"{prefix}.99", timeout=0.3)  # nobody's there
    access = SshNodeAccess(silent)
    before = open_sockets()
    try:
        for _ in range(5):
            with pytest.raises(NodeError) as failed:
                await access.run(["true"])
            assert failed.value.kind is ErrorKind.TIMEOUT
    finally:
        await access.close()
    left = open_sockets() - before
    assert not left, f"sockets left open: {sorted(left)}"


def bridges() -> set[str]:
    links = subprocess.run(["ip", "-j", "link", "show", "type", "bridge"], capture_output=True)
    return {link["ifname"] for link in json.loads(links.stdout or b"[]")}


def test_a_deleted_lab_directory_takes_its_lab_down(tmp_path: Path) -> None:
    """Deleted under a running daemon, a lab would keep its address (and a control plane's
    port 6443 on it) with nothing left to manage it: the daemon notices and tears it down."""
    root = tmp_path / "lab"
    spec = lab_up(root, nodes=1, control_plane=False)
    daemon = LabPaths(root).daemon_pid()
    assert daemon and LabNetwork(spec.subnet).bridge in bridges()
    shutil.rmtree(root)
    wait_until(lambda: process_ended(daemon), 30, "the daemon gone")
    assert LabNetwork(spec.subnet).bridge not in bridges()


def test_a_load_balancer_that_cannot_listen_fails_lab_up_saying_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holds the API endpoint's address and port: the lab does not come up
    without its load balancer (as it once did, silently, behind a stale one); it stops, and
    `lab up` fails with the daemon's own words."""
    subnet = "10.213.254.0/24"  # beyond what parallel labs take, picked from 10.213.0.0/24 up
    monkeypatch.setenv(SUBNET_ENV, subnet)
    holder = socket.socket()
    holder.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)  # the bridge has no address yet
    holder.bind((LabNetwork(subnet).gateway, 6443))
    holder.listen()
    try:
        with pytest.raises(
            LabError, match=r"the load balancer failed: .*[Aa]ddress already in use"
        ):
            lab_up(tmp_path / "lab", nodes=1, control_plane=True)
    finally:
        holder.close()
    assert LabNetwork(subnet).bridge not in bridges()
