"""The cockpit on real non-root logins: the lab's nodes run OpenSSH with an operator `ops`
who has NOPASSWD sudo, and kubeadm's modes (manifests/ 0700 root, kubeconfigs 0600).

With `sudo = true` everything is read, as root, through one `sudo -n sh -s` per connection.
Without it the manifests are permission denied (never missing: no manifest-missing finding,
one node.permission-denied) and the certificates are still shown. `sudo = "auto"` turns to root
at the first refused read. A sudo that wants a password is node.sudo-failed with sudo's own
words, and the node is still read as `ops`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Callable

import pytest

from cluster.config import Config, Sudo
from cluster.findings import Context, evaluate
from cluster.model import EtcdCluster, Finding, Snapshot
from cluster.nodes.model import KUBERNETES_DIR, MANIFESTS_DIR, PKI_DIR, NodeState
from cluster.nodes.pool import NodePool
from cluster.nodes.source import NodeSource
from cluster.nodes.ssh import SshNodeAccess
from lab.control import Lab

RESTORE_SUDOERS = (
    "echo 'ops ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/ops && chmod 440 /etc/sudoers.d/ops"
)
ADMIN_CONF = f"{KUBERNETES_DIR}/admin.conf"


@dataclasses.dataclass
class NodeRead:
    state: NodeState
    access: SshNodeAccess
    findings: dict[str, Finding]


def with_sudo(config: Config, sudo: Sudo) -> Config:
    return dataclasses.replace(
        config, nodes=tuple(dataclasses.replace(node, sudo=sudo) for node in config.nodes)
    )


class Reader:
    """Reads nodes of the lab with `sudo` set for every node, as the node source does."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.pool = NodePool(config)
        self.source = NodeSource(self.pool)

    async def read(self, name: str) -> NodeRead:
        """The node read once, and the findings about it alone."""
        access = self.pool.access(name)
        assert isinstance(access, SshNodeAccess)
        state = await self.source.collect_node(access)
        now = dt.datetime.now(dt.UTC)
        snapshot = Snapshot("lab", now, EtcdCluster(), nodes=(state,))
        found = evaluate(snapshot, Context(now=now, config=self.config))
        return NodeRead(state, access, {f.id: f for f in found if f.subject.split(":")[0] == name})


@pytest.fixture
async def readers(lab: Lab) -> AsyncIterator[Callable[[Sudo], Reader]]:
    """Readers on the lab's config with `sudo` set, their connections closed after the test."""
    opened: list[Reader] = []

    def reader(sudo: Sudo) -> Reader:
        opened.append(Reader(with_sudo(lab.config(), sudo)))
        return opened[-1]

    yield reader
    for made in opened:
        await made.pool.close()


def certificate_errors(state: NodeState) -> dict[str, str | None]:
    return {cert.path: cert.error for cert in state.certificates}


async def test_with_sudo_every_file_is_read_as_root_through_one_shell(
    lab: Lab, readers: Callable[[Sudo], Reader]
) -> None:
    reader = readers(True)
    name = lab.spec.nodes[0].name
    first = await reader.read(name)
    state = first.state
    assert state.reachable, state.error
    assert {pod.state for pod in state.static_pods} == {"present"}
    assert state.denied == () and state.sudo_refused is None
    errors = certificate_errors(state)
    assert errors[f"{PKI_DIR}/ca.crt"] is None and errors[ADMIN_CONF] is None
    assert not {"node.permission-denied", "node.sudo-failed"} & set(first.findings)

    shell = first.access._shell
    again = await reader.read(name)  # the next refresh: the same root shell, no new sudo
    assert again.access._shell is shell and again.access._shell_as_root
    assert (await first.access.run(["id", "-u"])).stdout.strip() == "0"


async def test_without_sudo_the_manifests_are_permission_denied_never_missing(
    lab: Lab, readers: Callable[[Sudo], Reader]
) -> None:
    name = lab.spec.nodes[1].name
    node = await readers(False).read(name)
    state = node.state
    assert state.reachable, state.error
    assert {pod.state for pod in state.static_pods} == {"denied"}
    assert MANIFESTS_DIR in state.denied and ADMIN_CONF in state.denied
    errors = certificate_errors(state)
    assert errors[f"{PKI_DIR}/ca.crt"] is None  # 0644 in a 0755 pki/: still read
    assert errors[f"{PKI_DIR}/apiserver.crt"] is None
    assert errors[ADMIN_CONF] == "permission denied"
    denied = node.findings["node.permission-denied"]
    assert "static pod manifests (permission denied)" in denied.summary
    assert MANIFESTS_DIR in denied.evidence and "sudo = true" in denied.next
    assert not any(f.startswith("static-pod.") for f in node.findings)
    assert "cert.unreadable" not in node.findings
    assert (await node.access.run(["id", "-un"])).stdout.strip() == "ops"


async def test_auto_turns_to_root_at_the_first_refused_read(
    lab: Lab, readers: Callable[[Sudo], Reader]
) -> None:
    reader = readers("auto")
    name = lab.spec.nodes[2].name
    access = reader.pool.access(name)
    assert isinstance(access, SshNodeAccess) and not access.sudo
    node = await reader.read(name)
    assert node.access.sudo  # remembered for the access's life
    assert {pod.state for pod in node.state.static_pods} == {"present"}
    assert node.state.denied == () and node.state.sudo_refused is None


@pytest.mark.parametrize("sudo", [True, "auto"])
async def test_a_sudo_that_wants_a_password_is_a_finding_with_sudos_words(
    lab: Lab, readers: Callable[[Sudo], Reader], sudo: Sudo
) -> None:
    name = lab.spec.nodes[2].name
    lab.node_exec(name, ["rm", "/etc/sudoers.d/ops"])
    try:
        node = await readers(sudo).read(name)
    finally:
        lab.node_exec(name, ["sh", "-c", RESTORE_SUDOERS])
    state = node.state
    assert state.reachable, state.error  # read as ops: reached, not unreachable
    assert state.sudo_refused and "sudo: a password is required" in state.sudo_refused
    assert {pod.state for pod in state.static_pods} == {"denied"}
    assert certificate_errors(state)[f"{PKI_DIR}/ca.crt"] is None
    failed = node.findings["node.sudo-failed"]
    assert "sudo: a password is required" in failed.evidence
    assert failed.command and "visudo -cf" in failed.command and "ops" in failed.command
    assert "node.unreachable" not in node.findings
    assert "node.permission-denied" not in node.findings  # the refusal says it, with its fix
    assert not any(f.startswith("static-pod.") for f in node.findings)
