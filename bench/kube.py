"""Prints what reading the Kubernetes API costs kcockpit per refresh, against the lab's API.

One warm KubeSource.collect() (five reads over one kept-alive TLS connection: nodes, pods,
DaemonSets, Endpoints, events) beside one `kubectl get pods -n kube-system` process, which pays
process start, discovery and a TLS handshake each time. Both run on the same lab in one run.
Usage: python bench/kube.py [--runs N] [--kubectl PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from cluster.kube.source import KubeSource
from lab.control import Lab, lab_down, lab_up

DEBIAN_KUBECTL = Path(__file__).resolve().parents[1] / ".local/kubectl/usr/bin/kubectl"


async def kcockpit_ms(lab: Lab, runs: int) -> float:
    config = lab.config().kube
    assert config is not None, "the lab config has no [kube] table"
    source = KubeSource(config)
    try:
        await source.collect()  # load the kubeconfig, open the connection
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            view = await source.collect()
            samples.append((time.perf_counter() - started) * 1000)
            assert view.reachable and not view.read_errors, view
        return statistics.median(samples)
    finally:
        source.close()


def kubectl_ms(lab: Lab, kubectl: Path, runs: int, cache: Path) -> float:
    command = [str(kubectl), f"--kubeconfig={lab.kubeconfig}", f"--cache-dir={cache}"]
    command += ["get", "pods", "-n", "kube-system"]

    def one_run_ms() -> float:
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        return (time.perf_counter() - started) * 1000

    one_run_ms()  # fills the discovery cache
    return statistics.median([one_run_ms() for _ in range(runs)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--kubectl", type=Path, default=DEBIAN_KUBECTL)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kcockpit-bench-") as tmp:
        root = Path(tmp) / "lab"
        lab_up(root, nodes=3)
        try:
            lab = Lab(root)
            ours = asyncio.run(kcockpit_ms(lab, args.runs))
            print(f"kcockpit API refresh (5 reads, warm): median {ours:.1f} ms")
            if args.kubectl.exists():
                theirs = kubectl_ms(lab, args.kubectl, args.runs, Path(tmp) / "cache")
                print(f"kubectl get pods -n kube-system:      median {theirs:.1f} ms")
        finally:
            lab_down(root)


if __name__ == "__main__":
    main()
