"""Runs the fleet headless on lab directories and reports, as one JSON line, its idle CPU share
and RSS once every cluster has been read: what watching N clusters costs.

Used by bench/run_all.py in a child process, once with ten labs and once with one.
Usage: python bench/fleet_probe.py LAB_DIR... [--window SECONDS]
"""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import replace
from pathlib import Path

from app_probe import cpu_percent_over, rss_bytes, run_headless

from cluster.config import DEFAULT_FLEET_ETCD_INTERVAL, DEFAULT_FLEET_READS
from lab.control import Lab
from tui.fleet import FleetApp

POLL_SECONDS = 0.1


async def probe(labs: list[Path], window: float) -> dict[str, float]:
    configs = [replace(Lab(root).config(), name=f"lab-{i}") for i, root in enumerate(labs)]
    app = FleetApp(configs, DEFAULT_FLEET_READS)
    figures: dict[str, float] = {}

    async def measure() -> None:
        while not all(row.read_at for row in app.fleet.rows()):
            await asyncio.sleep(POLL_SECONDS)
        await asyncio.sleep(2 * DEFAULT_FLEET_ETCD_INTERVAL)  # settle: channels, first findings
        figures["cpu_percent"] = await cpu_percent_over(window)
        figures["rss_mib"] = rss_bytes() / 2**20
        figures["verdicts_ok"] = sum(row.verdict.word == "OK" for row in app.fleet.rows())
        app.exit()

    await run_headless(app, measure)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("labs", type=Path, nargs="+")
    parser.add_argument("--window", type=float, default=60.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(probe(args.labs, args.window))))


if __name__ == "__main__":
    main()
