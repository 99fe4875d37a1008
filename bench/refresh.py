"""Prints the cost of one full etcd refresh by kcockpit (warm) vs one `etcdctl endpoint status`.

kcockpit keeps one TLS channel per member open; etcdctl pays process start and TLS set-up on
every call. Both run against the same 3-node lab, in one run, so the ratio is what counts on a
noisy machine. Usage: python bench/refresh.py [--runs N] [--nodes N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from cluster.config import load_config
from cluster.etcd.client import EtcdClient
from cluster.etcd.source import EtcdSource
from lab.control import lab_down, lab_up
from lab.layout import LabPaths, etcdctl_for, find_etcd


async def kcockpit_refresh_ms(config_path: Path, runs: int) -> float:
    config = load_config(config_path)
    client = EtcdClient(config.etcd.tls, config.etcd.timeout)
    source = EtcdSource(client, config.etcd.endpoints)
    try:
        for _ in range(5):
            await source.read(fresh=False)  # warm the channels
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            cluster = await source.read(fresh=False)
            samples.append((time.perf_counter() - started) * 1000)
            assert all(m.reachable for m in cluster.members), "lab not healthy"
        return statistics.median(samples)
    finally:
        await client.close()


def etcdctl_ms(config_path: Path, runs: int) -> float:
    config = load_config(config_path)
    etcdctl = etcdctl_for(find_etcd())
    if etcdctl is None:
        raise SystemExit("etcdctl not found next to etcd or on PATH")
    command = [
        str(etcdctl),
        f"--endpoints={config.etcd.endpoints[0]}",
        f"--cacert={config.etcd.tls.ca}",
        f"--cert={config.etcd.tls.cert}",
        f"--key={config.etcd.tls.key}",
        "endpoint",
        "status",
        "--cluster",
    ]
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--nodes", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kcockpit-bench-") as tmp:
        root = Path(tmp)
        lab_up(root, nodes=args.nodes)
        try:
            config = LabPaths(root).config
            ours = asyncio.run(kcockpit_refresh_ms(config, args.runs))
            theirs = etcdctl_ms(config, args.runs)
        finally:
            lab_down(root)
    print(f"lab nodes: {args.nodes}, runs: {args.runs}")
    print(f"kcockpit full etcd refresh (warm), median: {ours:.2f} ms")
    print(f"etcdctl endpoint status --cluster, median: {theirs:.2f} ms")
    print(f"ratio kcockpit/etcdctl: {ours / theirs:.3f} (target <= 0.333)")


if __name__ == "__main__":
    main()
