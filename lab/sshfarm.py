"""SSH-only lab nodes, for measuring the node fan-out at scale without running more etcds.

A farm is a directory shaped like a lab (node roots with kubeadm files, host keys, a
known_hosts) whose nodes have an SSH server each and nothing else: `python -m
lab.sshfarm DIR --nodes 27 --authorized-key KEY.pub` creates it on first use and serves
until SIGTERM. `kcockpit lab up` and its labs are untouched by it.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
from pathlib import Path

from lab import pki
from lab.control import provision_node, write_host_key
from lab.layout import LabNode, LabPaths, LabSpec, choose_addresses
from lab.sshd import start_sshd


def create_farm(root: Path, count: int, authorized_key: Path) -> LabSpec:
    paths = LabPaths(root.resolve())
    spec = LabSpec(
        nodes=tuple(LabNode(f"ssh-{i + 1}", a) for i, a in enumerate(choose_addresses(count)))
    )
    paths.cockpit.mkdir(parents=True, exist_ok=True)
    shutil.copy(authorized_key, paths.cockpit / "id_ed25519.pub")
    (paths.cockpit / "known_hosts").write_text("")
    cas = pki.make_cas()
    initial_cluster = ",".join(f"{n.name}={n.peer_url}" for n in spec.nodes)
    for node in spec.nodes:
        provision_node(paths, cas, node, initial_cluster, "new")
        write_host_key(paths, node)
    paths.spec.write_text(spec.to_json())
    return spec


async def serve(paths: LabPaths) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    servers = [await start_sshd(node, paths) for node in paths.load_spec().nodes]
    paths.pid.write_text("serving\n")
    try:
        await stop.wait()
    finally:
        for server in servers:
            server.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m lab.sshfarm")
    parser.add_argument("farm_dir", type=Path)
    parser.add_argument("--nodes", type=int, required=True)
    parser.add_argument("--authorized-key", type=Path, required=True)
    args = parser.parse_args()
    paths = LabPaths(args.farm_dir.resolve())
    if not paths.spec.exists():
        create_farm(paths.root, args.nodes, args.authorized_key)
    asyncio.run(serve(paths))


if __name__ == "__main__":
    main()
