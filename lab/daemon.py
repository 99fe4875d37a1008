"""The lab daemon: one background process that owns the lab's network and nodes, runs the
control-plane endpoint's load balancer on the bridge's address (loadbalancer.py) and adds what
an installer adds once the API answers (addons.py).

`kcockpit lab up` starts it detached (its own session) and returns; `kcockpit lab down` sends it
SIGTERM, on which it stops every node (each node's first process stops its kubelet, which stops
etcd, SIGCONT first in case a test froze it; see Nodes.stop_all for the order), then removes the
nodes' namespaces and the bridge.
Each node's `unshare` dies with the daemon (PDEATHSIG) and takes its node with it, even if the
daemon is SIGKILLed. It also stops when its directory is deleted, and with --owner PID when
that process is gone (the foreground `kcockpit lab`, killed with its terminal); with
--remove-dir it then deletes the lab directory it was given. A part of it that fails (the load
balancer cannot listen, say) stops it too, with the error in its log.
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
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab import network
from lab.addons import Addons
from lab.kubelet import _die_with_parent
from lab.layout import LabNode, LabPaths
from lab.loadbalancer import LoadBalancer
from lab.network import LabNetwork

OWNER_POLL_SECONDS = 0.5
NODE_STOP_SECONDS = 15.0


@dataclass(frozen=True)
class RunningNode:
    """What the daemon keeps of a node it started: enough to stop it and take its network
    down even when the lab directory (lab.json, the pid files) is gone."""

    unshare: subprocess.Popen[bytes]
    first: int  # the host pid of the node's first process
    address: str


class Nodes:
    """The running nodes: each an `unshare` (in the node's network namespace) whose child is
    the node's first process (lab/node.py)."""

    def __init__(
        self, paths: LabPaths, net: LabNetwork, control_plane: bool, sshd_only: bool = False
    ) -> None:
        self.paths = paths
        self.net = net
        self.control_plane = control_plane and not sshd_only
        self.sshd_only = sshd_only
        self.running: dict[str, RunningNode] = {}

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
        first = _first_child(process.pid)
        self.running[node.name] = RunningNode(process, first, node.address)
        self.paths.node_pid(node.name).write_text(f"{first}\n")
        logging.info("node %s (%s) started", node.name, node.address)

    def stop_all(self) -> None:
        """Stops the nodes: nodes that run only etcd one at a time, control-plane nodes together.

        A stopping etcd leader first hands its leadership to a connected peer; were every peer
        stopping too, it would wait out etcd's request timeout (5 s and more) for a transfer that
        cannot happen, so etcd-only nodes go one by one. Control-plane nodes go together: one by
        one, the last nodes' API servers would lose their etcd quorum mid-shutdown and hang
        until their grace ends, which costs more than the leader's wait."""
        names = list(self.running)
        if self.control_plane:
            self._stop(names)
        else:
            for name in names:
                self._stop([name])
        for node in self.running.values():
            network.remove_node(self.net, node.address)

    def _stop(self, names: list[str]) -> None:
        """SIGTERM to each node's first process (it stops its kubelet and etcd), SIGKILL to one
        that outlives the grace: either way the kernel ends everything in the node."""
        for name in names:
            if _exists(self.running[name].first):
                os.kill(self.running[name].first, signal.SIGTERM)
        deadline = time.monotonic() + NODE_STOP_SECONDS
        for name in names:
            node = self.running[name]
            while _exists(node.first) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _exists(node.first):
                os.kill(node.first, signal.SIGKILL)
            node.unshare.wait()  # unshare exits with its child
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
    nodes = Nodes(paths, net, spec.control_plane, sshd_only)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    # SIGUSR1: a node was added to lab.json (member add in the lab).
    loop.add_signal_handler(signal.SIGUSR1, nodes.start_new)

    def keep(what: str, coroutine: Coroutine[Any, Any, None]) -> None:
        """Runs a part of the lab until `stop`; a part that fails stops the whole lab, with
        its error in the log (which `lab up` shows): a lab without it is not the lab."""

        def done(task: asyncio.Task[None]) -> None:
            if not task.cancelled() and (error := task.exception()) is not None:
                logging.error("%s failed: %s; stopping the lab", what, error)
                stop.set()

        tasks.append(asyncio.create_task(coroutine))
        tasks[-1].add_done_callback(done)

    try:
        nodes.start_new()
        if nodes.control_plane:  # sshd-only farm nodes run no control plane
            keep("the load balancer", LoadBalancer(paths, net.gateway).run(stop))
            keep("the addons", Addons(paths).run(stop))
        if owner:
            keep("the owner watch", _stop_when(lambda: not _exists(owner), f"owner {owner}", stop))
        gone = f"the lab directory {paths.root}"
        keep("the directory watch", _stop_when(lambda: not paths.root.is_dir(), gone, stop))
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


async def _stop_when(gone: Callable[[], bool], what: str, stop: asyncio.Event) -> None:
    """Sets `stop` once `what`, which the lab lives by, is gone: the foreground `kcockpit lab`
    that owns it, or its directory (deleted with the daemon still running, the lab would keep
    its address and port 6443 with nothing left to manage it)."""
    while not stop.is_set():
        if gone():
            logging.info("%s is gone: tearing the lab down", what)
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
