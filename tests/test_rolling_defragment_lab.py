"""Issue 17 acceptance for rolling-defragment on a real fragmented lab: followers first and the
old leader last (by the audit's step records and the leader each one names), every file
shrank, one election only (the handover), and a member frozen mid-run (SIGSTOP) stops it with
a truthful report and no further member touched."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from actions.audit import AuditLog, timeline
from actions.registry import build_action, context_for
from actions.runner import Status, run
from cluster.collect import Collector
from cluster.findings.etcd import fragmented
from cluster.model import Snapshot
from lab.control import Lab
from lab.running_scenarios import fragment_every_member
from tests.helpers import eventually, kcockpit, running_lab
from tests.test_app_etcd import screen_up, until
from tui.app import CockpitApp
from widgets.confirm import ConfirmScreen
from widgets.etcd_pane import EtcdPane
from widgets.progress import ActionProgressScreen


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_lab(tmp_path_factory.mktemp("rolling-lab"), control_plane=False) as lab:
        yield lab


@pytest.fixture(scope="module")
async def collector(lab: Lab) -> AsyncIterator[Collector]:
    collector = Collector(lab.config())
    yield collector
    await collector.close()


async def every_member_fragmented(lab: Lab, collector: Collector) -> Snapshot:
    await fragment_every_member(collector.etcd_client, lab.spec)

    async def fragmented_now() -> Snapshot | None:
        snapshot = await collector.collect(fresh=True)
        members = snapshot.etcd.members
        ready = all(fragmented(m, collector.config.thresholds) for m in members)
        healthy = snapshot.etcd.healthy_voting == len(members) and snapshot.etcd.leader
        return snapshot if ready and healthy else None

    return await eventually(fragmented_now, 30, "every member fragmented")


async def healthy(collector: Collector) -> Snapshot:
    async def now() -> Snapshot | None:
        snapshot = await collector.collect(fresh=True)
        all_up = snapshot.etcd.healthy_voting == len(snapshot.etcd.members)
        return snapshot if all_up and snapshot.etcd.leader else None

    return await eventually(now, 30, "every member healthy with a leader")


def steps(state: Path) -> list[dict[str, Any]]:
    """The step records of the last rolling-defragment attempt, in order."""
    entries = [
        e
        for e in timeline(AuditLog(state / "audit.jsonl").read())
        if e["action"] == "rolling-defragment"
    ]
    return entries[-1].get("steps", [])


def defragmenting(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r["detail"] for r in records if r["message"].startswith("defragmenting ")]


async def test_followers_first_then_the_old_leader_and_every_file_shrank(
    lab: Lab, collector: Collector, tmp_path: Path
) -> None:
    before = await every_member_fragmented(lab, collector)
    old_leader = before.etcd.leader
    assert old_leader is not None
    result = kcockpit(
        "act",
        "--config",
        str(lab.paths.config),
        "rolling-defragment",
        "etcd",
        "--yes",
        env={"KCOCKPIT_STATE_DIR": str(tmp_path)},
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    printed = [line for line in result.stdout.splitlines() if line.startswith("step ")]
    records = steps(tmp_path)
    assert len(printed) == len(records) > 0  # act prints one line per audited step
    started = defragmenting(records)
    order = [d["member"] for d in started]
    assert sorted(order) == sorted(m.name for m in before.etcd.members)
    assert order[-1] == old_leader.name  # the old leader last …
    assert all(d["leader"] == old_leader.name for d in started[:-1])  # … the followers under it
    assert started[-1]["leader"] != old_leader.name  # … after leadership moved away
    done = [r["detail"] for r in records if " defragmented: " in r["message"]]
    assert [d["member"] for d in done] == order
    assert all(d["db_after"] < d["db_before"] for d in done), done  # every file shrank
    timeline = kcockpit("audit", "--markdown", env={"KCOCKPIT_STATE_DIR": str(tmp_path)})
    assert "## Steps of multi-step actions" in timeline.stdout
    assert f"rolling-defragment etcd: step 1: defragmenting {order[0]}" in timeline.stdout
    after = await healthy(collector)
    # One election in the whole run: the handover. A leader lost longer than one election
    # would have taken more terms.
    assert after.etcd.leader is not None and after.etcd.leader.raft_term == (
        (old_leader.raft_term or 0) + 1
    )
    assert not any(fragmented(m, collector.config.thresholds) for m in after.etcd.members)


async def test_a_member_frozen_mid_run_stops_it_with_nothing_more_touched(
    lab: Lab, collector: Collector, tmp_path: Path
) -> None:
    before = await every_member_fragmented(lab, collector)
    leader = before.etcd.leader
    assert leader is not None
    followers = [m.name for m in before.etcd.members if m.id != leader.id]
    frozen: list[int] = []

    def progress(line: str) -> None:
        # Right after the first follower is done, before the run reads the cluster again:
        # the next follower stops answering.
        if " defragmented: " in line and not frozen:
            frozen.append(lab.freeze(followers[1]))

    action = build_action("rolling-defragment", "etcd", thresholds=collector.config.thresholds)
    audit = AuditLog(tmp_path / "audit.jsonl")
    try:
        result = await run(
            action,
            collector,
            context_for(collector, tmp_path),
            audit,
            yes=True,
            progress=progress,
        )
    finally:
        for pid in frozen:
            lab.thaw(pid)
    assert frozen, "the first follower was never reported done"
    assert result.status is Status.FAILED, result.message
    assert f"stopped before defragmenting the follower: {followers[1]}" in result.message
    assert f"Not touched: {followers[1]}, {leader.name}" in result.message
    records = steps(tmp_path)
    assert [d["member"] for d in defragmenting(records)] == [followers[0]]  # nothing further
    assert records[-1]["detail"]["aborted"] is True
    after = await healthy(collector)
    untouched = [m for m in after.etcd.members if m.name != followers[0]]
    assert all(fragmented(m, collector.config.thresholds) for m in untouched)
    for name in (followers[1], leader.name):  # tidy up for whoever comes next
        member = after.etcd.member(name)
        assert member is not None and member.endpoint
        await collector.etcd_client.defragment(member.endpoint)


async def test_from_the_etcd_pane_the_progress_screen_shows_each_step(
    lab: Lab, collector: Collector, tmp_path: Path
) -> None:
    await every_member_fragmented(lab, collector)
    audit = AuditLog(tmp_path / "audit.jsonl")
    app = CockpitApp(lab.config(), refresh=0.5, audit=audit)
    async with app.run_test(size=(160, 40)) as pilot:
        table = app.query_one(EtcdPane)
        await until(
            pilot, lambda: table.row_count == 3 and app.snapshot and app.snapshot.etcd.leader
        )
        table.focus()
        await pilot.press("D")
        dialog = await screen_up(pilot, app, ConfirmScreen, "#title")
        assert "ALLOWED" in str(dialog.query_one("#verdict").render())
        await pilot.press("tab", "enter")  # Confirm
        await until(pilot, lambda: isinstance(app.screen, ActionProgressScreen))
        progress = app.screen
        assert isinstance(progress, ActionProgressScreen)
        await until(pilot, lambda: app.last_result is not None, timeout=120)
        assert app.last_result is not None and app.last_result.status is Status.VERIFIED
        await until(pilot, lambda: progress.finished)
        steps = [line for line in progress.lines if line.startswith("step ")]
        assert len(steps) == 8 and len(progress.query(".step")) == len(progress.lines)
        assert "moving leadership" in steps[4] and "old leader" in steps[6]
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, ActionProgressScreen))
