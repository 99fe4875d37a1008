"""Regenerates screenshots/*.svg: the cockpit on a lab that shows a real incident.

Run with `make screenshots` (not in CI). It starts a 3-node lab with the cni-conflict and
cert-expiring scenarios, drives the app headless (App.run_test + Pilot) at a fixed terminal
size, and saves the main screen, every pane (tab), a confirmation dialog, the help screen, a
rolling defragment's progress (every member fragmented first) and the preflight list; and the
fleet screen at 80x24: the lab beside a cluster nothing answers for (`screenshots.py fleet`
makes that one alone).
For the trends tab it scrapes every second, moves the etcd leader twice for the timeline and
refreshes, writing a little, until every member's sparklines have TREND_POINTS points.
Textual is pinned in pyproject.toml so the SVGs only change when the cockpit does; the operator
shown in the incident bar and the lab's /24 are masked; dates, pod names and the
API's event times still change between runs.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from actions.audit import AuditLog
from cluster.config import Config
from cluster.etcd.client import EtcdClient
from lab.control import Lab, LabPaths, lab_down, lab_up
from lab.running_scenarios import fragment_every_member
from tui.app import CockpitApp
from tui.fleet import FleetApp
from widgets.confirm import ConfirmScreen
from widgets.help import HelpScreen
from widgets.preflight import PreflightScreen
from widgets.progress import ActionProgressScreen

PROJECT = Path(__file__).resolve().parents[1]
SIZE = (120, 36)
WIDE = (200, 60)  # a big terminal: findings beside the etcd members
SCENARIOS = ("cni-conflict", "cert-expiring")
OUT = PROJECT / "screenshots"
# A fixed path: the equivalent commands in the dialog name the lab's files.
LAB_ROOT = Path(tempfile.gettempdir()) / "kcockpit-screenshots-lab"
DEADLINE = 60.0
LONE_BLOCK = "10.213.0."
TREND_POINTS = 20


async def stage_trends(app: CockpitApp, pilot: object) -> None:
    """Two leader moves, then refreshes until every member's trend is TREND_POINTS long."""
    collector = app.collector
    for _ in range(2):
        snapshot = await app.background.run(collector.collect(fresh=True))
        leader = snapshot.etcd.leader
        target = next(m for m in snapshot.etcd.members if leader and m.id != leader.id)
        if leader and leader.endpoint:
            await app.background.run(collector.etcd_client.move_leader(leader.endpoint, target.id))
        await pilot.pause(2.0)  # type: ignore[attr-defined]

    def filled() -> bool:
        snapshot = app.snapshot
        return bool(snapshot and snapshot.metrics) and all(
            len(m.trend.db_size) >= TREND_POINTS for m in snapshot.metrics
        )

    deadline = time.monotonic() + DEADLINE
    endpoint = app.config.etcd.endpoints[0]
    writes = 0
    while not filled() and time.monotonic() < deadline:
        for _ in range(writes % 7):  # a little uneven load, so the sparklines have a shape
            key = f"/kcockpit-screenshots/{writes}".encode()
            await app.background.run(collector.etcd_client.put(endpoint, key, b"s" * 20_000))
        writes += 1
        count = app.refresh_count
        app.action_refresh_now()
        await until(pilot, lambda c=count: app.refresh_count > c, "a refresh")
        await pilot.pause(0.5)  # type: ignore[attr-defined]
    app.action_refresh_now()
    await pilot.pause(0.5)  # type: ignore[attr-defined]


async def until(pilot: object, condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"screenshots: timed out waiting for {what}")
        await pilot.pause(0.2)  # type: ignore[attr-defined]


async def shoot(
    config: Config, audit: AuditLog, size: tuple[int, int], every_screen: bool
) -> list[str]:
    app = CockpitApp(config, refresh=600, audit=audit)
    app.operating = "operator@bastion (ssh from 192.0.2.10)"  # stable across machines
    saved: list[str] = []

    # The lab takes the first free 10.213.X.0/24; show the one a lone lab gets (same length).
    block = app.config.etcd.endpoints[0].split("//")[1].rsplit(".", 1)[0] + "."

    def save(name: str) -> None:
        svg = app.export_screenshot()
        if len(block) == len(LONE_BLOCK):
            svg = svg.replace(block, LONE_BLOCK)
        (OUT / f"{name}.svg").write_text(svg, encoding="utf-8")
        saved.append(f"{name}.svg")

    async with app.run_test(size=size) as pilot:
        ready = lambda: app.snapshot is not None and app.snapshot.findings  # noqa: E731
        await until(pilot, ready, "the first snapshot with findings")
        # One more refresh: the API's view (DaemonSets) settles after the first collection.
        count = app.refresh_count
        app.action_refresh_now()
        await until(pilot, lambda: app.refresh_count > count, "a second refresh")
        await pilot.pause()
        if not every_screen:
            save(f"main-{size[0]}x{size[1]}")
            return saved
        save("main")  # the first pane (etcd) with the findings below
        for number, pane_id in enumerate(app.pane_ids[1:], start=2):
            await pilot.press(str(number))
            await until(pilot, lambda p=pane_id: app.query_one("#panes").active == p, pane_id)
            if pane_id == "pane-trends":
                await stage_trends(app, pilot)
            await pilot.pause()
            save(pane_id)
        await pilot.press("1", "down", "down", "x")  # remove the third member: typed confirmation
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the dialog")
        await pilot.pause()
        save("confirm-member-remove")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen), "dialog closed")
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen")
        await pilot.pause()
        save("help")
        await pilot.press("escape")
        await pilot.press("1", "D")  # every member fragmented beforehand (main)
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the dialog")
        await pilot.press("tab", "enter")  # Confirm
        progress = lambda: isinstance(app.screen, ActionProgressScreen) and app.screen.finished  # noqa: E731
        await until(pilot, progress, "the rolling defragment")
        await pilot.pause()
        save("rolling-defragment-progress")
        await pilot.press("enter")
        app.action_preflight()
        await until(pilot, lambda: isinstance(app.screen, PreflightScreen), "the preflight list")
        await pilot.pause()
        save("preflight")
        await pilot.press("escape")
    return saved


async def shoot_fleet(config: Config, audit: AuditLog) -> list[str]:
    """The fleet at 80x24: the lab (as prod-eu1) and a cluster nothing answers for."""
    gone = replace(
        config,
        name="dr-west",
        etcd=replace(config.etcd, endpoints=("https://127.0.0.77:23790",)),
        nodes=(),
        kube=None,
    )
    app = FleetApp([replace(config, name="prod-eu1"), gone], reads=4, audit=audit)
    async with app.run_test(size=(80, 24)) as pilot:
        read = lambda: all(row.read_at for row in app.fleet.rows())  # noqa: E731
        await until(pilot, read, "every cluster read")
        await pilot.pause(1.5)  # type: ignore[attr-defined]  # the table's next redraw
        (OUT / "fleet.svg").write_text(app.export_screenshot(), encoding="utf-8")
    return ["fleet.svg"]


async def fragmented(config: Config, lab: Lab) -> None:
    client = EtcdClient(config.etcd.tls, timeout=10)
    try:
        await fragment_every_member(client, lab.spec)
    finally:
        await client.close()


def main(only_fleet: bool = False) -> int:
    OUT.mkdir(exist_ok=True)
    for old in [] if only_fleet else OUT.glob("*.svg"):
        old.unlink()
    with tempfile.TemporaryDirectory(prefix="kcockpit-shots-") as tmp:
        os.environ["KCOCKPIT_STATE_DIR"] = tmp  # preflight finds no snapshot of this machine's
        audit = AuditLog(Path(tmp) / "audit.jsonl")
        if LAB_ROOT.exists() and not LabPaths(LAB_ROOT).daemon_pid():
            shutil.rmtree(LAB_ROOT)  # left by an interrupted run
        lab_up(LAB_ROOT, nodes=3, scenarios=SCENARIOS, remove_dir=True)
        try:
            config = Lab(LAB_ROOT).config()
            saved = asyncio.run(shoot_fleet(config, audit))
            if only_fleet:
                return 0
            asyncio.run(fragmented(config, Lab(LAB_ROOT)))
            config = replace(config, etcd=replace(config.etcd, metrics_interval=1.0))
            saved += asyncio.run(shoot(config, audit, SIZE, every_screen=True))
            saved += asyncio.run(shoot(config, audit, WIDE, every_screen=False))
        finally:
            lab_down(LAB_ROOT)
    print(f"saved {len(saved)} screenshots in {OUT}: {', '.join(saved)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(only_fleet=sys.argv[1:] == ["fleet"]))
