"""Runs the cockpit headless on a config and reports, as one JSON line, what an operator feels:
when the first complete screen was up and when every tab's pane was filled too (wall clock, for
the parent to subtract its launch time), then the CPU share and RSS growth of the idle cockpit
over a window of refreshes.

Used by bench/run_all.py in a child process so the launch includes interpreter start and every
import. Usage: python bench/app_probe.py CONFIG [--window SECONDS] [--refresh SECONDS]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from textual.app import App

from tui.cli import cockpit_app, resolve_config

POLL_SECONDS = 0.01


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def cpu_percent_over(window: float) -> float:
    """The share of one core this process used while it waited `window` seconds."""
    cpu, started = cpu_seconds(), time.monotonic()
    await asyncio.sleep(window)
    return 100 * (cpu_seconds() - cpu) / (time.monotonic() - started)


async def run_headless(app: App[Any], measure: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Runs `app` headless at 160x40 while `measure` watches it; `measure` exits the app."""
    watcher = asyncio.create_task(measure())
    await app.run_async(headless=True, size=(160, 40))
    await watcher


async def probe(config_path: Path, window: float, refresh: float) -> dict[str, float]:
    app = cockpit_app(resolve_config(config_path), refresh=refresh)  # as `kcockpit` launches
    figures: dict[str, float] = {}

    async def measure() -> None:
        while app.refresh_count < 1:  # the first snapshot fills every pane on screen
            await asyncio.sleep(POLL_SECONDS)
        figures["first_screen_at"] = time.time()
        await app.later_panes()  # and the other tabs' panes, mounted just after it
        figures["every_pane_at"] = time.time()
        await asyncio.sleep(2 * refresh)  # settle: caches, channels, first findings
        rss, refreshes = rss_bytes(), app.refresh_count
        figures["cpu_percent"] = await cpu_percent_over(window)
        figures["rss_start"] = rss
        figures["rss_end"] = rss_bytes()
        figures["refreshes"] = app.refresh_count - refreshes
        app.exit()

    await run_headless(app, measure)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("config", type=Path)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--refresh", type=float, default=1.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(probe(args.config, args.window, args.refresh))))


if __name__ == "__main__":
    main()
