"""Issue 7 on real lab nodes: the user's ssh_config cannot weaken kcockpit's SSH.

Host keys are always checked against the known_hosts kcockpit names (the node's, else
~/.ssh/known_hosts); a config asking for no checking is refused, naming its file and line; the
agent is never forwarded to a node. The node here is the lab's jump host, cp-1, a real OpenSSH
that takes direct logins (the others take them from cp-1 only).
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncssh
import pytest

from cluster.config import NodeConfig
from cluster.nodes.access import ErrorKind, NodeError
from cluster.nodes.ssh import SshNodeAccess
from lab.control import Lab
from lab.layout import LabNode
from tests.helpers import wait_until

WEAKENING = [
    ("UserKnownHostsFile none", "UserKnownHostsFile none"),
    ("UserKnownHostsFile /dev/null", "UserKnownHostsFile /dev/null"),
    ("StrictHostKeyChecking no", "StrictHostKeyChecking no"),
    ("StrictHostKeyChecking=off", "StrictHostKeyChecking off"),
    ("StrictHostKeyChecking accept-new", "StrictHostKeyChecking accept-new"),
]


@pytest.fixture
def target(lab: Lab) -> LabNode:
    return lab.spec.nodes[0]


@pytest.fixture
def node(lab: Lab, target: LabNode) -> NodeConfig:
    """The lab's own config for the target node: its known_hosts, identity, `ssh_config = []`."""
    return next(n for n in lab.config().nodes if n.name == target.name)


@pytest.fixture
async def opened() -> AsyncIterator[list[SshNodeAccess]]:
    """Accesses a test opens, closed after it whatever it asserted."""
    accesses: list[SshNodeAccess] = []
    yield accesses
    for access in accesses:
        await access.close()


@pytest.fixture
def ssh_agent(tmp_path: Path) -> Iterator[Path]:
    """A real ssh-agent on its own socket, for a config that asks to forward it."""
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        wait_until(sock.exists, what="ssh-agent's socket")
        yield sock
    finally:
        agent.terminate()
        agent.wait(timeout=10)


def known_hosts(path: Path, target: LabNode, key: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    host = target.address if target.ssh_port == 22 else f"[{target.address}]:{target.ssh_port}"
    path.write_text(f"{host} {key}\n")
    return path


def served_key(lab: Lab, target: LabNode) -> asyncssh.SSHKey:
    return asyncssh.read_public_key(str(lab.paths.host_key(target.name)))


def ssh_config(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# A node config naming neither a known_hosts file nor ssh_config files: the user's own apply
# (~/.ssh/known_hosts, still checked, and ~/.ssh/config).
USERS_OWN: dict[str, object] = {"known_hosts": None, "ssh_config": None}


def access_for(opened: list[SshNodeAccess], node: NodeConfig, **changes: object) -> SshNodeAccess:
    access = SshNodeAccess(dataclasses.replace(node, **changes))
    opened.append(access)
    return access


async def refusal(access: SshNodeAccess) -> NodeError:
    """The NodeError connecting raises; the node was never connected, so nothing was read."""
    with pytest.raises(NodeError) as refused:
        await access.connect()
    assert access._connection is None
    with pytest.raises(NodeError) as again:  # a read asks again, and is refused the same way
        await access.read_file("/etc/kubernetes/admin.conf")
    assert str(again.value) == str(refused.value)
    return refused.value


async def test_weakening_config_with_a_changed_key_is_refused_before_any_read(
    lab: Lab, target: LabNode, node: NodeConfig, opened: list[SshNodeAccess], tmp_path: Path
) -> None:
    other_key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    changed = known_hosts(tmp_path / "changed_known_hosts", target, other_key)
    config = ssh_config(
        tmp_path / "ssh_config", "Host *\n  UserKnownHostsFile none\n  StrictHostKeyChecking no\n"
    )
    error = await refusal(access_for(opened, node, known_hosts=changed, ssh_config=(config,)))
    assert error.kind is ErrorKind.UNREACHABLE and error.connection
    assert f"{config} line 2: `UserKnownHostsFile none`" in str(error)
    assert "would turn host-key checking off" in str(error) and str(changed) in str(error)
    assert "\n" not in str(error)
    # Without that config the same node is refused for its key, with the offered fingerprint.
    plain = access_for(opened, node, known_hosts=changed)
    with pytest.raises(NodeError) as key_error:
        await plain.connect()
    assert key_error.value.kind is ErrorKind.HOST_KEY_CHANGED
    assert key_error.value.fingerprint == served_key(lab, target).get_fingerprint()


@pytest.mark.parametrize(("line", "named"), WEAKENING)
async def test_weakening_config_is_refused_even_with_the_right_key(
    lab: Lab,
    target: LabNode,
    node: NodeConfig,
    opened: list[SshNodeAccess],
    tmp_path: Path,
    line: str,
    named: str,
) -> None:
    """Refused, not ignored, though kcockpit's own known_hosts would keep checking on: the
    issue asks that a config meant to switch checking off fail loudly, and ignoring it would
    leave the operator believing `ssh` and kcockpit trust hosts the same way."""
    right = known_hosts(
        tmp_path / "known_hosts", target, served_key(lab, target).export_public_key().decode()
    )
    config = ssh_config(tmp_path / "ssh_config", f"# lab\nHost {target.address}\n  {line}\n")
    error = await refusal(access_for(opened, node, known_hosts=right, ssh_config=(config,)))
    assert f"{config} line 3: `{named}`" in str(error)
    assert "refused" in str(error) and "ssh_config = []" in str(error)


async def test_only_the_config_for_this_host_counts(
    lab: Lab, target: LabNode, node: NodeConfig, opened: list[SshNodeAccess], tmp_path: Path
) -> None:
    """asyncssh's own parser decides what applies: another host's block is not this node's.
    Checking kept on is fine, and so is a UserKnownHostsFile naming a real file, which asyncssh
    leaves aside for the known_hosts kcockpit passes (here an empty one)."""
    config = ssh_config(
        tmp_path / "ssh_config",
        "Host elsewhere.example\n  StrictHostKeyChecking no\n"
        f"Host {target.address}\n  StrictHostKeyChecking yes\n"
        f"  UserKnownHostsFile {ssh_config(tmp_path / 'empty', '')}\n",
    )
    access = access_for(opened, node, ssh_config=(config,))
    result = await access.run(["hostname"])
    assert result.ok and result.stdout.strip() == target.name


async def test_default_ssh_config_and_its_includes_are_judged_too(
    lab: Lab,
    target: LabNode,
    node: NodeConfig,
    opened: list[SshNodeAccess],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With no ssh_config in the node config asyncssh reads ~/.ssh/config: so does the check,
    Include and all."""
    monkeypatch.setenv("HOME", str(tmp_path))
    ssh_config(tmp_path / ".ssh/config", "Include work.conf\n")
    work = ssh_config(
        tmp_path / ".ssh/work.conf", f"Host {target.address}\n  UserKnownHostsFile /dev/null\n"
    )
    error = await refusal(access_for(opened, node, ssh_config=None))
    assert f"{work} line 2: `UserKnownHostsFile /dev/null`" in str(error)


async def test_a_block_asyncssh_applies_on_its_second_pass_is_judged(
    node: NodeConfig, opened: list[SshNodeAccess], tmp_path: Path
) -> None:
    """`Match final` blocks apply only when asyncssh rereads the config: judged all the same."""
    config = ssh_config(tmp_path / "ssh_config", "Match final\n  StrictHostKeyChecking off\n")
    error = await refusal(access_for(opened, node, ssh_config=(config,)))
    assert f"{config} line 2: `StrictHostKeyChecking off`" in str(error)


async def test_an_unreadable_ssh_config_is_a_node_error(
    node: NodeConfig, opened: list[SshNodeAccess], tmp_path: Path
) -> None:
    missing = tmp_path / "no_such_config"
    error = await refusal(access_for(opened, node, ssh_config=(missing,)))
    assert (
        error.connection
        and f"ssh_config: [Errno 2] No such file or directory: '{missing}'" in str(error)
    )


async def test_a_jump_host_with_checking_off_is_refused(
    target: LabNode, node: NodeConfig, opened: list[SshNodeAccess], tmp_path: Path
) -> None:
    """asyncssh connects a ProxyJump hop with the config files alone (none of kcockpit's
    known_hosts), so a hop whose block drops checking would be trusted blindly."""
    config = ssh_config(
        tmp_path / "ssh_config",
        f"Host {target.address}\n  ProxyJump ops@bastion.invalid:2222\n"
        "Host bastion.invalid\n  UserKnownHostsFile none\n",
    )
    error = await refusal(access_for(opened, node, ssh_config=(config,)))
    assert f"{config} line 4: `UserKnownHostsFile none` for jump host " in str(error)
    assert "ops@bastion.invalid:2222" in str(error)


async def test_forward_agent_in_ssh_config_does_not_forward_the_agent(
    lab: Lab,
    target: LabNode,
    node: NodeConfig,
    opened: list[SshNodeAccess],
    tmp_path: Path,
    ssh_agent: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSH_AUTH_SOCK", str(ssh_agent))
    config = ssh_config(tmp_path / "ssh_config", "Host *\n  ForwardAgent yes\n")
    assert node.known_hosts is not None and node.identity is not None
    # The config alone would forward this agent: asyncssh's options for it say so.
    asked = asyncssh.SSHClientConnectionOptions(
        config=[str(config)],
        host=target.address,
        port=target.ssh_port,
        known_hosts=str(node.known_hosts),
        client_keys=[str(node.identity)],
    )
    assert asked.agent_forward_path == str(ssh_agent)
    access = access_for(opened, node, agent=True, ssh_config=(config,))
    result = await access.run(["hostname"])
    assert result.ok and result.stdout.strip() == target.name
    assert access._connection is not None
    agent = access._connection._agent
    assert agent is not None and agent._agent_path == str(ssh_agent)  # the agent is in use...
    assert access._connection._agent_forward_path is None  # ...and never offered to the node


async def test_no_known_hosts_in_the_node_config_means_the_users_known_hosts(
    lab: Lab,
    target: LabNode,
    node: NodeConfig,
    opened: list[SshNodeAccess],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """~/.ssh/known_hosts is named to asyncssh explicitly (read at connect time): missing, it
    trusts no key, and the refusal names it; once it lists the node, the node connects."""
    monkeypatch.setenv("HOME", str(tmp_path))
    user_file = tmp_path / ".ssh/known_hosts"
    served = served_key(lab, target)
    error = await refusal(access_for(opened, node, **USERS_OWN))
    assert error.kind is ErrorKind.HOST_KEY_UNKNOWN
    assert f"not in {user_file}" in str(error) and served.get_fingerprint() in str(error)
    known_hosts(user_file, target, served.export_public_key().decode())
    access = access_for(opened, node, **USERS_OWN)
    result = await access.run(["hostname"])
    assert result.ok and result.stdout.strip() == target.name
