"""SSH-only lab nodes, for measuring the node fan-out at scale without running more etcds.

A farm is a directory shaped like a lab (node directories with kubeadm files, host keys, a
known_hosts) whose nodes are real lab nodes (lab/node.py: namespaces, its own address, OpenSSH,
the `ops` user) running sshd and nothing else: `python -m lab.sshfarm DIR --nodes 27
--authorized-key KEY.pub` creates it on first use and serves until SIGTERM. It logs in
directly, with no jump host. `kcockpit lab up` and its labs are untouched by it.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
from pathlib import Path

from lab import pki
from lab.control import provision_node, require_root, write_host_key
from lab.daemon import serve
from lab.layout import LabNode, LabPaths, LabSpec
from lab.network import choose_network


def create_farm(root: Path, count: int, authorized_key: Path) -> LabSpec:
    paths = LabPaths(root.resolve())
    net = choose_network()
    spec = LabSpec(
        nodes=tuple(LabNode(f"ssh-{i + 1}", net.address(i)) for i in range(count)),
        subnet=net.subnet,
        control_plane=False,  # the farm's nodes serve files over SSH: no API
    )
    paths.cockpit.mkdir(parents=True, exist_ok=True)
    shutil.copy(authorized_key, paths.cockpit / "id_ed25519.pub")
    (paths.cockpit / "known_hosts").write_text("")
    cas = pki.make_cas()
    initial_cluster = ",".join(f"{n.name}={n.peer_url}" for n in spec.nodes)
    for node in spec.nodes:
        provision_node(paths, cas, spec, node, initial_cluster, "new")
        write_host_key(paths, node)
    paths.spec.write_text(spec.to_json())
    return spec


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m lab.sshfarm")
    parser.add_argument("farm_dir", type=Path)
    parser.add_argument("--nodes", type=int, required=True)
    parser.add_argument("--authorized-key", type=Path, required=True)
    args = parser.parse_args()
    require_root()
    paths = LabPaths(args.farm_dir.resolve())
    if not paths.spec.exists():
        create_farm(paths.root, args.nodes, args.authorized_key)
    asyncio.run(serve(paths, owner=None, sshd_only=True))


if __name__ == "__main__":
    main()
