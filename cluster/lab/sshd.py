"""The lab's SSH server per node: real asyncssh, its own host key, SFTP rooted at the node root.

Only the cockpit's lab key may log in; host keys live outside the node roots so SFTP never
serves them. Commands are the few read-only ones the cockpit runs on a node, answered from the
node's own files (the lab has no separate kernel per node to ask).
"""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import asyncssh

from cluster.lab.layout import LabNode, LabPaths


def _make_sftp_factory(root: Path) -> type[asyncssh.SFTPServer]:
    class NodeSFTP(asyncssh.SFTPServer):
        def __init__(self, chan: asyncssh.SSHServerChannel) -> None:
            super().__init__(chan, chroot=str(root).encode())

    return NodeSFTP


def _command_output(node: LabNode, paths: LabPaths, command: str) -> tuple[str, int]:
    argv = shlex.split(command)
    if argv == ["hostname"]:
        return node.name + "\n", 0
    if argv[:1] == ["date"] and argv[1:] in ([], ["+%s.%N"]):
        return f"{time.time():.9f}\n", 0
    if argv == ["ip", "-o", "addr", "show"]:
        return (
            f"1: lo    inet 127.0.0.1/8 scope host lo\n"
            f"2: lab0    inet {node.address}/32 scope global lab0\n"
        ), 0
    if argv == ["kcockpit-lab-pods"]:
        try:
            return paths.kubelet_state(node.name).read_text(), 0
        except FileNotFoundError:
            return json.dumps({"node": node.name, "pods": []}), 0
    return f"lab: command not available on a lab node: {command}\n", 127


async def start_sshd(node: LabNode, paths: LabPaths) -> asyncssh.SSHAcceptor:
    """Listens on the node's own address; returns the acceptor (close() to stop)."""
    root = paths.node_root(node.name)

    async def handle(process: asyncssh.SSHServerProcess) -> None:
        output, status = _command_output(node, paths, process.command or "")
        (process.stdout if status == 0 else process.stderr).write(output)
        process.exit(status)

    return await asyncssh.create_server(
        asyncssh.SSHServer,
        host=node.address,
        port=node.ssh_port,
        server_host_keys=[str(paths.host_key(node.name))],
        authorized_client_keys=str(paths.cockpit / "id_ed25519.pub"),
        sftp_factory=_make_sftp_factory(root),
        process_factory=handle,
        allow_scp=False,
        agent_forwarding=False,
        x11_forwarding=False,
        allow_pty=False,
    )
