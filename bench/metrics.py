"""Prints what reading etcd's own /metrics costs: one member's scrape and parse by kcockpit
(warm HTTPS session) beside a plain fetch of the same page, in process and by `curl`.

The parse figure is the part kcockpit adds to a fetch: the page cut to the series the rules
read, then `prometheus_client`'s parser. With `--idle SECONDS` it also runs the cockpit
headless on the lab (bench/app_probe.py) and prints its idle CPU at 1 s refresh, metrics
scraped every `[etcd] metrics_interval` (5 s). Usage: python bench/metrics.py [--runs N]
[--idle SECONDS]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from cluster.config import Config, Thresholds
from cluster.etcd.metrics import parse_page
from cluster.etcd.metrics_source import MetricsSource
from lab.control import Lab, lab_down, lab_up


async def scrape_ms(config: Config, runs: int) -> dict[str, float]:
    """Medians over `runs` of one member's fetch alone and of fetch + parse, the parse alone,
    and the page's size."""
    source = MetricsSource(config.etcd, Thresholds())
    endpoint = config.etcd.endpoints[0]
    try:
        for _ in range(3):
            await source.fetch(endpoint)  # warm the session
        fetches, scrapes, parses = [], [], []
        size = 0
        for _ in range(runs):
            started = time.perf_counter()
            await source.fetch(endpoint)
            fetches.append(time.perf_counter() - started)
            started = time.perf_counter()
            page = await source.fetch(endpoint)
            fetched = time.perf_counter()
            parse_page(page, time.time())
            scrapes.append(time.perf_counter() - started)
            parses.append(time.perf_counter() - fetched)
            size = len(page)
        return {
            "fetch_ms": 1000 * statistics.median(fetches),
            "scrape_ms": 1000 * statistics.median(scrapes),
            "parse_ms": 1000 * statistics.median(parses),
            "page_bytes": size,
        }
    finally:
        await source.aclose()


def curl_ms(config: Config, runs: int) -> float:
    """The median of one `curl` of the member's page, with the same client certificate."""
    tls = config.etcd.tls
    command = ["curl", "-sf", "--cacert", str(tls.ca), "--cert", str(tls.cert)]
    command += ["--key", str(tls.key), "-o", "/dev/null", f"{config.etcd.endpoints[0]}/metrics"]
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        samples.append(time.perf_counter() - started)
    return 1000 * statistics.median(samples)


def scrape_line(config: Config, runs: int) -> str:
    ours = asyncio.run(scrape_ms(config, runs))
    theirs = curl_ms(config, runs)
    return (
        f"one member's /metrics ({ours['page_bytes'] / 1000:.0f} kB): kcockpit scrape + parse "
        f"{ours['scrape_ms']:.1f} ms (fetch {ours['fetch_ms']:.1f} ms, parse "
        f"{ours['parse_ms']:.1f} ms) vs curl {theirs:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--idle", type=float, default=0.0, help="idle CPU window, seconds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kcockpit-bench-metrics-") as tmp:
        root = Path(tmp)
        lab_up(root, nodes=3)
        try:
            print(f"INFO  {scrape_line(Lab(root).config(), args.runs)}", flush=True)
            if args.idle:
                from run_all import app_probe  # bench/ is on sys.path when run as a script

                _, idle = app_probe(Lab(root).paths.config, args.idle)
                print(
                    f"idle CPU at 1 s refresh, metrics every 5 s, 3-node lab, over "
                    f"{args.idle:g} s: {idle['cpu_percent']:.2f} % of one core "
                    f"({idle['refreshes']:g} refreshes; target <= 2 %)"
                )
        finally:
            lab_down(root)


if __name__ == "__main__":
    main()
