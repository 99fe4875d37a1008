"""The lab's SSH server per node: real asyncssh, its own host key, SFTP rooted at the node root.

Only the cockpit's lab key may log in; host keys live outside the node roots so SFTP never
serves them. Commands are the few read-only ones the cockpit runs on a node, answered from the
node's own files (the lab has no separate kernel per node to ask).
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import stat
import time
from pathlib import Path

import asyncssh

from cluster.nodes.access import MAX_READ_BYTES, Survey, Tree
from cluster.nodes.local import entry_kind
from cluster.nodes.parse import SIMULATED_MARK
from cluster.nodes.survey import (
    NOT_REGULAR_WORDS,
    find_record,
    finished,
    read_request,
    section,
)
from lab.layout import LabNode, LabPaths
from lab.plugin import LAB_PODS_COMMAND


def _make_sftp_factory(root: Path) -> type[asyncssh.SFTPServer]:
    class NodeSFTP(asyncssh.SFTPServer):
        def __init__(self, chan: asyncssh.SSHServerChannel) -> None:
            super().__init__(chan, chroot=str(root).encode())

    return NodeSFTP


def drill_file(paths: LabPaths, node: str) -> Path:
    """A drill's shifts for one node's answers, e.g. {"clock_offset": 45, "disk_percent": 97}.

    Kept outside the node root: a drill changes what the node *says*, not the node's files."""
    return paths.root / "drills" / f"{node}.json"


def _drill(paths: LabPaths, node: str) -> dict[str, float]:
    try:
        raw = json.loads(drill_file(paths, node).read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return {k: float(v) for k, v in raw.items() if isinstance(v, int | float)}


def _df(root: Path, path: str, disk_percent: float | None) -> tuple[str, int]:
    """`df -P PATH` from the node root's real filesystem, or a drill's fill level (marked)."""
    target = root / path.lstrip("/")
    if not target.exists():
        return f"df: {path}: No such file or directory\n", 1
    usage = shutil.disk_usage(target)
    size, used, available = usage.total // 1024, usage.used // 1024, usage.free // 1024
    percent = -(-used * 100 // (used + available)) if used + available else 0  # as df rounds
    mark = ""
    if disk_percent is not None:
        percent, mark = round(disk_percent), f"{SIMULATED_MARK}\n"
        used, available = size * percent // 100, size - size * percent // 100
    return (
        "Filesystem     1024-blocks      Used Available Capacity Mounted on\n"
        f"labfs {size} {used} {available} {percent}% /\n{mark}"
    ), 0


def _ss(node: LabNode, paths: LabPaths, conflict: float | None) -> str:
    """The node's listening etcd ports from the lab kubelet's state; a drill adds a stranger
    (docker-proxy, as a hostPort mapping would) on a control-plane port."""
    try:
        pods = json.loads(paths.kubelet_state(node.name).read_text())["pods"]
    except (FileNotFoundError, ValueError, KeyError):
        pods = []
    lines = []
    for pod in pods:
        if pod.get("component") == "etcd" and pod.get("state") == "running":
            for url in (node.client_url, node.peer_url):
                lines.append(f"{url.removeprefix('https://')} etcd {pod.get('pid')}")
    if conflict is not None:
        lines.append(f"0.0.0.0:{int(conflict)} docker-proxy 4242")
    return "".join(
        f'LISTEN 0 4096 {local} 0.0.0.0:* users:(("{name}",pid={pid},fd=3))\n'
        for local, name, pid in (line.split() for line in lines)
    )


def _command_output(node: LabNode, paths: LabPaths, command: str) -> tuple[str, int]:
    argv = shlex.split(command)
    drill = _drill(paths, node.name)
    if argv == ["hostname"]:
        return node.name + "\n", 0
    if argv[:1] == ["date"] and argv[1:] in ([], ["+%s.%N"]):
        return f"{time.time() + drill.get('clock_offset', 0.0):.9f}\n", 0
    if argv == ["ss", "-Hltnp"]:
        return _ss(node, paths, drill.get("port_conflict")), 0
    if argv[:2] == ["df", "-P"] and len(argv) == 3:
        return _df(paths.node_root(node.name), argv[2], drill.get("disk_percent"))
    if argv == ["ip", "-o", "addr", "show"]:
        return (
            f"1: lo    inet 127.0.0.1/8 scope host lo\n"
            f"2: lab0    inet {node.address}/32 scope global lab0\n"
        ), 0
    if argv == list(LAB_PODS_COMMAND):
        try:
            return paths.kubelet_state(node.name).read_text(), 0
        except FileNotFoundError:
            return json.dumps({"node": node.name, "pods": []}), 0
    return f"lab: command not available on a lab node: {command}\n", 127


def _find(root: Path, tree: Tree) -> tuple[bytes, int, bytes]:
    """What `find -printf` prints for the tree below the node root: (stdout, status, stderr)."""
    start = os.path.join(root, tree.path.lstrip("/"))
    try:
        info = os.lstat(start)
    except FileNotFoundError:
        return b"", 1, f"find: '{tree.path}': No such file or directory\n".encode()
    if tree.depth == 0:
        record = find_record(entry_kind(info.st_mode), info.st_size, info.st_mtime, tree.path)
        return record, 0, b""
    records: list[bytes] = []

    def visit(directory: str, node_path: str, depth: int) -> None:
        with os.scandir(directory) as found:
            children = sorted(found, key=lambda child: child.name)
        for child in children:
            info = child.stat(follow_symlinks=False)
            child_path = f"{node_path}/{child.name}"
            records.append(
                find_record(entry_kind(info.st_mode), info.st_size, info.st_mtime, child_path)
            )
            if depth < tree.depth and child.is_dir(follow_symlinks=False):
                visit(child.path, child_path, depth + 1)

    if os.path.isdir(start) and not os.path.islink(start):
        visit(start, tree.path, 1)
    return b"".join(records), 0, b""


def _survey_output(node: LabNode, paths: LabPaths, nonce: str, survey: Survey) -> bytes:
    """The survey script's answer, from the node root and the lab's command emulation."""
    root = paths.node_root(node.name)
    sections = []
    for tree in survey.trees:
        sections.append(_find(root, tree))
    for argv in survey.commands:
        output, status = _command_output(node, paths, shlex.join(argv))
        stdout, stderr = (output, "") if status == 0 else ("", output)
        sections.append((stdout.encode(), status, stderr.encode()))
    sections += [_head(root, path) for path in survey.reads]
    return b"".join(section(nonce, i, *answer) for i, answer in enumerate(sections))


def _head(root: Path, path: str) -> tuple[bytes, int, bytes]:
    """What the survey's read of PATH prints for a file below the node root: a regular file's
    first LIMIT+1 bytes, anything else refused unopened (a FIFO would hold this server)."""
    try:
        descriptor = os.open(os.path.join(root, path.lstrip("/")), os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        return b"", 1, f"head: cannot open '{path}' for reading: {exc.strerror}\n".encode()
    with open(descriptor, "rb") as file:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return b"", 1, f"{path}: {NOT_REGULAR_WORDS}\n".encode()
        return file.read(MAX_READ_BYTES + 1), 0, b""


async def _survey_shell(process: asyncssh.SSHServerProcess, node: LabNode, paths: LabPaths) -> None:
    """The session a cockpit keeps open for surveys: each script's first line says all it
    asks (the shell lines after it are what a real node runs, the lab answers from files).
    Drill {"no_shell": 1}: a node whose login shell cannot start `sh` (e.g. a restricted one)."""
    if _drill(paths, node.name).get("no_shell"):
        process.stderr.write(b"sh: not allowed on this node\n")
        process.exit(127)
        return
    while line := await process.stdin.readline():
        request = read_request(line.decode(errors="replace"))
        if request is None:
            continue
        drill = _drill(paths, node.name)
        if drill.get("drop_connection"):
            process.channel.get_connection().abort()
            return
        await asyncio.sleep(drill.get("answer_delay", 0.0))
        nonce, survey = request
        process.stdout.write(_survey_output(node, paths, nonce, survey) + finished(nonce))
    process.exit(0)


async def start_sshd(node: LabNode, paths: LabPaths) -> asyncssh.SSHAcceptor:
    """Listens on the node's own address; returns the acceptor (close() to stop)."""
    root = paths.node_root(node.name)

    async def handle(process: asyncssh.SSHServerProcess) -> None:
        # Fault drills: {"answer_delay": S} answers every command S seconds late (a node
        # that answers slowly); {"drop_connection": 1} cuts the link instead (sshd killed).
        drill = _drill(paths, node.name)
        if drill.get("drop_connection"):
            process.channel.get_connection().abort()
            return
        if process.command == "sh -s":
            await _survey_shell(process, node, paths)
            return
        await asyncio.sleep(drill.get("answer_delay", 0.0))
        output, status = _command_output(node, paths, process.command or "")
        (process.stdout if status == 0 else process.stderr).write(output.encode())
        process.exit(status)

    return await asyncssh.create_server(
        asyncssh.SSHServer,
        host=node.address,
        port=node.ssh_port,
        server_host_keys=[str(paths.host_key(node.name))],
        authorized_client_keys=str(paths.cockpit / "id_ed25519.pub"),
        sftp_factory=_make_sftp_factory(root),
        process_factory=handle,
        encoding=None,  # bytes: file names need not be UTF-8
        allow_scp=False,
        agent_forwarding=False,
        x11_forwarding=False,
        allow_pty=False,
    )
