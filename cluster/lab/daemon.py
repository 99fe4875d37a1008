"""The lab daemon: one background process that hosts every node's kubelet and SSH server.

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

from cluster.lab.kubelet import LabKubelet
from cluster.lab.layout import LabPaths, find_etcd
from cluster.lab.sshd import start_sshd

OWNER_POLL_SECONDS = 0.5


async def serve(paths: LabPaths, owner: int | None) -> None:
    spec = paths.load_spec()
    etcd = find_etcd()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    servers = [await start_sshd(node, paths) for node in spec.nodes]
    kubelets = [
        LabKubelet(node.name, paths.node_root(node.name), etcd, paths.kubelet_state(node.name))
        for node in spec.nodes
    ]
    tasks = [asyncio.create_task(k.run(stop)) for k in kubelets]
    if owner:
        tasks.append(asyncio.create_task(_watch_owner(owner, stop)))
    paths.pid.write_text(f"{os.getpid()}\n")
    logging.info("lab daemon %s serving %d nodes", os.getpid(), len(spec.nodes))
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
    parser = argparse.ArgumentParser(prog="python -m cluster.lab.daemon")
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
