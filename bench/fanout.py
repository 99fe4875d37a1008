"""Prints the time of one fresh read of every node (all panes' data) for 3 and for 30 lab nodes.

The 3 nodes are a real lab's; the 27 more are SSH-only lab nodes (`lab.sshfarm`, same
files and SSH server, no etcd). Connections are opened once and kept, as in the cockpit, so
the figures are warm reads: the median of --runs. Every node is read in parallel, so the ratio
shows what 10x the nodes cost on this machine, where the SSH servers share its cores with the
client. The cockpit's refresh does not wait for these reads (it shows each node's latest one):
bench/run_all.py measures the refresh. Usage: python bench/fanout.py [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cluster.config import Config, NodeConfig
from cluster.nodes.pool import NodePool
from cluster.nodes.source import NodeSource
from lab.control import Lab, lab_down, lab_up
from lab.layout import LabPaths

EXTRA_NODES = 27


async def refresh_ms(config: Config, runs: int) -> tuple[float, float]:
    """(first refresh incl. connecting, median warm refresh) in milliseconds."""
    pool = NodePool(config)
    source = NodeSource(pool)
    try:
        started = time.perf_counter()
        nodes = await source.read(fresh=True)
        cold = (time.perf_counter() - started) * 1000
        unreachable = [n.error for n in nodes if not n.reachable]
        assert not unreachable, unreachable
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            await source.read(fresh=True)
            samples.append((time.perf_counter() - started) * 1000)
        return cold, statistics.median(samples)
    finally:
        await pool.close()


def start_farm(root: Path, lab: LabPaths) -> tuple[subprocess.Popen[bytes], LabPaths]:
    farm = LabPaths(root / "farm")
    command = [sys.executable, "-m", "lab.sshfarm", str(farm.root)]
    command += [
        "--nodes",
        str(EXTRA_NODES),
        "--authorized-key",
        str(lab.cockpit / "id_ed25519.pub"),
    ]
    process = subprocess.Popen(command, cwd=Path(__file__).resolve().parents[1])
    deadline = time.monotonic() + 60
    while not (farm.pid.exists() and farm.spec.exists()):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the SSH farm did not start")
        time.sleep(0.1)
    for node in farm.load_spec().nodes:  # each node's sshd listens once the node is shaped
        while True:
            try:
                socket.create_connection((node.address, node.ssh_port), timeout=5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"the SSH farm's {node.name} did not listen") from None
                time.sleep(0.05)
    return process, farm


def farm_nodes(farm: LabPaths, lab: LabPaths) -> tuple[NodeConfig, ...]:
    return tuple(
        NodeConfig(
            name=node.name,
            address=node.address,
            port=node.ssh_port,
            user="ops",
            sudo=True,  # as the lab logs in: the survey under `sudo -n sh -s`
            identity=lab.cockpit / "id_ed25519",
            known_hosts=farm.cockpit / "known_hosts",
            ssh_config=(),
            agent=False,
        )
        for node in farm.load_spec().nodes
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kcockpit-fanout-") as tmp:
        root = Path(tmp)
        lab_up(root / "lab", nodes=3)
        lab = LabPaths(root / "lab")
        farm_process = None
        try:
            farm_process, farm = start_farm(root, lab)
            small = Lab(lab.root).config()
            large = dataclasses.replace(small, nodes=small.nodes + farm_nodes(farm, lab))
            cold3, warm3 = asyncio.run(refresh_ms(small, args.runs))
            cold30, warm30 = asyncio.run(refresh_ms(large, args.runs))
        finally:
            if farm_process is not None:
                os.kill(farm_process.pid, signal.SIGTERM)
                farm_process.wait(timeout=20)
            lab_down(root / "lab")
    print(f"cpus: {os.cpu_count()}, runs: {args.runs}")
    print(f" 3 nodes: first refresh (connecting) {cold3:7.1f} ms, warm refresh {warm3:7.1f} ms")
    print(f"30 nodes: first refresh (connecting) {cold30:7.1f} ms, warm refresh {warm30:7.1f} ms")
    print(f"ratio 30/3 (warm): {warm30 / warm3:.2f}  (10x the nodes)")


if __name__ == "__main__":
    main()
