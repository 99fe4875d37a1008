"""The lab daemon: one background process that hosts every node's kubelet and SSH server,
and the lab's stand-in Kubernetes API (apiserver.py).

`kcockpit lab up` starts it detached (its own session) and returns; `kcockpit lab down` sends
it SIGTERM, on which it stops every etcd it runs (SIGCONT first, in case a test froze one) and
exits. Its etcd children die with it (PDEATHSIG) even if it is SIGKILLed. With --owner PID it
also stops when that process is gone (the foreground `kcockpit lab`, killed with its terminal),
and with --remove-dir it then deletes the lab directory it was given.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import signal
from pathlib import Path

import asyncssh

from lab.apiserver import LabApiServer
from lab.kubelet import LabKubelet
from lab.layout import LabPaths, find_etcd
from lab.sshd import start_sshd

OWNER_POLL_SECONDS = 0.5


async def serve(paths: LabPaths, owner: int | None) -> None:
    etcd = find_etcd()
    stop = asyncio.Event()
    servers: list[asyncssh.SSHAcceptor] = []
    tasks: list[asyncio.Task[None]] = []
    served: set[str] = set()

    async def serve_new_nodes() -> None:
        """Starts the SSH server and kubelet of every node in lab.json not served yet."""
        for node in paths.load_spec().nodes:
            if node.name in served:
                continue
            served.add(node.name)
            servers.append(await start_sshd(node, paths))
            kubelet = LabKubelet(
                node.name, paths.node_root(node.name), etcd, paths.kubelet_state(node.name)
            )
            tasks.append(asyncio.create_task(kubelet.run(stop)))
            logging.info("serving node %s (%s)", node.name, node.address)

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    # SIGUSR1: a node was added to lab.json (member add in the lab).
    loop.add_signal_handler(
        signal.SIGUSR1, lambda: tasks.append(asyncio.create_task(serve_new_nodes()))
    )
    await serve_new_nodes()
    tasks.append(asyncio.create_task(LabApiServer(paths).run(stop)))
    if owner:
        tasks.append(asyncio.create_task(_watch_owner(owner, stop)))
    paths.pid.write_text(f"{os.getpid()}\n")
    logging.info("lab daemon %s serving %d nodes", os.getpid(), len(served))
    try:
        await stop.wait()
    finally:
        logging.info("lab daemon stopping")
        for server in servers:
            server.close()
        await asyncio.gather(*tasks, return_exceptions=True)
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
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    paths = LabPaths(args.lab_dir.resolve())
    try:
        asyncio.run(serve(paths, args.owner))
    finally:
        if args.remove_dir:
            shutil.rmtree(paths.root, ignore_errors=True)


if __name__ == "__main__":
    main()
