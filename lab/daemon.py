"""The lab daemon: one background process that owns the lab's network and nodes, runs the
control-plane endpoint's load balancer on the bridge's address (loadbalancer.py) and adds what
an installer adds once the API answers (addons.py).

`kcockpit lab up` starts it detached (its own session) and returns; `kcockpit lab down` sends it
SIGTERM, on which it stops every node (each node's first process stops its kubelet, which stops
etcd, SIGCONT first in case a test froze it; see Nodes.stop_all for the order), then removes the
nodes' namespaces and the bridge.
Each node's `unshare` dies with the daemon (PDEATHSIG) and takes its node with it, even if the
daemon is SIGKILLed. With --owner PID it also stops when that process is gone (the foreground
`kcockpit lab`, killed with its terminal), and with --remove-dir it then deletes the lab
directory it was given.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from lab import network
from lab.addons import Addons
from lab.kubelet import _die_with_parent
from lab.layout import LabNode, LabPaths
from lab.loadbalancer import LoadBalancer
from lab.network import LabNetwork

OWNER_POLL_SECONDS = 0.5
NODE_STOP_SECONDS = 15.0


class Nodes:
    """The running nodes: each an `unshare` (in the node's network namespace) whose child is
    the node's first process (lab/node.py)."""

    def __init__(self, paths: LabPaths, net: LabNetwork, sshd_only: bool = False) -> None:
        self.paths = paths
        self.net = net
        self.sshd_only = sshd_only
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start_new(self) -> None:
        """Starts every node of lab.json not running yet."""
        for node in self.paths.load_spec().nodes:
            if node.name not in self.running:
                self.start(node)

    def start(self, node: LabNode) -> None:
        namespace = network.add_node(self.net, node.address)
        self.paths.node_log(node.name).parent.mkdir(parents=True, exist_ok=True)
        command = [
            "nsenter", f"--net=/run/netns/{namespace}", "--",
            "unshare", "--mount", "--uts", "--pid", "--mount-proc", "--propagation=private",
            "--kill-child=SIGTERM",
            sys.executable, "-m", "lab.node", str(self.paths.root), node.name,
        ]  # fmt: skip
        if self.sshd_only:
            command.append("--sshd-only")
        with self.paths.node_log(node.name).open("ab") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                preexec_fn=_die_with_parent,  # then unshare's --kill-child stops the node
                cwd=self.paths.root,
            )
        self.running[node.name] = process
        self.paths.node_pid(node.name).write_text(f"{_first_child(process.pid)}\n")
        logging.info("node %s (%s) started", node.name, node.address)

    def stop_all(self) -> None:
        """Stops the nodes: nodes that run only etcd one at a time, control-plane nodes together.

        A stopping etcd leader first hands its leadership to a connected peer; were every peer
        stopping too, it would wait out etcd's request timeout (5 s and more) for a transfer that
        cannot happen, so etcd-only nodes go one by one. Control-plane nodes go together: one by
        one, the last nodes' API servers would lose their etcd quorum mid-shutdown and hang
        until their grace ends, which costs more than the leader's wait."""
        names = list(self.running)
        if self.paths.load_spec().control_plane and not self.sshd_only:
            self._stop(names)
        else:
            for name in names:
                self._stop([name])
        for node in self.paths.load_spec().nodes:
            network.remove_node(self.net, node.address)

    def _stop(self, names: list[str]) -> None:
        """SIGTERM to each node's first process (it stops its kubelet and etcd), SIGKILL to one
        that outlives the grace: either way the kernel ends everything in the node."""
        firsts = {name: _read_pid(self.paths.node_pid(name)) for name in names}
        for first in firsts.values():
            if first and _exists(first):
                os.kill(first, signal.SIGTERM)
        deadline = time.monotonic() + NODE_STOP_SECONDS
        for name, first in firsts.items():
            while first and _exists(first) and time.monotonic() < deadline:
                time.sleep(0.05)
            if first and _exists(first):
                os.kill(first, signal.SIGKILL)
            self.running[name].wait()  # unshare exits with its child
            self.paths.node_pid(name).unlink(missing_ok=True)


def _first_child(pid: int) -> int:
    """The host pid of the node's first process: `unshare`'s only child."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            found = children.read_text().split()
        except FileNotFoundError:
            break
        if found:
            return int(found[0])
        time.sleep(0.005)
    raise RuntimeError(f"unshare {pid} started no node")


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] != "Z"


async def serve(paths: LabPaths, owner: int | None, sshd_only: bool = False) -> None:
    spec = paths.load_spec()
    net = LabNetwork(spec.subnet)
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    network.create_bridge(net, paths.root)
    nodes = Nodes(paths, net, sshd_only)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    # SIGUSR1: a node was added to lab.json (member add in the lab).
    loop.add_signal_handler(signal.SIGUSR1, nodes.start_new)
    try:
        nodes.start_new()
        if spec.control_plane and not sshd_only:
            tasks.append(asyncio.create_task(LoadBalancer(paths, net.gateway).run(stop)))
            tasks.append(asyncio.create_task(Addons(paths).run(stop)))
        if owner:
            tasks.append(asyncio.create_task(_watch_owner(owner, stop)))
        paths.pid.write_text(f"{os.getpid()}\n")
        logging.info("lab daemon %s serving %d nodes", os.getpid(), len(nodes.running))
        await stop.wait()
    finally:
        logging.info("lab daemon stopping")
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.to_thread(nodes.stop_all)
        logging.info("nodes stopped")
        network.remove_bridge(net)
        logging.info("network removed")
        paths.pid.unlink(missing_ok=True)


async def _watch_owner(owner: int, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            logging.info("owner %s is gone: tearing the lab down", owner)
            stop.set()
            return
        await asyncio.sleep(OWNER_POLL_SECONDS)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m lab.daemon")
    parser.add_argument("lab_dir", type=Path)
    parser.add_argument("--owner", type=int, help="stop when this pid is gone")
    parser.add_argument("--remove-dir", action="store_true", help="delete lab_dir on exit")
    parser.add_argument("--sshd-only", action="store_true", help="nodes run sshd only (a farm)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    paths = LabPaths(args.lab_dir.resolve())
    try:
        asyncio.run(serve(paths, args.owner, args.sshd_only))
    finally:
        if args.remove_dir:
            shutil.rmtree(paths.root, ignore_errors=True)


if __name__ == "__main__":
    main()
