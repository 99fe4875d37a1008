"""Issue 17 acceptance for learner progress on a real lab: a learner added with member-add and
cut off from its peers (blackhole routes in its node) shows how far it is, the promote guard
refuses it and the finding calls it syncing; once it may reach them again it catches up, and
the row, the finding and the guard all say so at once (one predicate, one threshold)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from actions.base import VerdictKind
from actions.registry import build_action
from cluster.collect import Collector
from cluster.config import Thresholds
from cluster.model import Snapshot
from lab.control import Lab
from tests.helpers import config_with_thresholds, eventually, kcockpit, running_lab, wait_until
from widgets.rows import etcd as etcd_rows

LAG = 20  # raft entries: a few puts put the cut-off learner behind


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_lab(tmp_path_factory.mktemp("learner-lab"), control_plane=False) as lab:
        yield lab


def act(lab: Lab, state: Path, *args: str) -> tuple[int, str]:
    config = config_with_thresholds(lab, "small-lag.toml", raft_lag_entries=LAG)
    result = kcockpit(
        "act", "--config", str(config), *args, env={"KCOCKPIT_STATE_DIR": str(state)}, timeout=90
    )
    return result.returncode, result.stdout + result.stderr


def judged(snapshot: Snapshot, name: str) -> tuple[str, bool, VerdictKind]:
    """What the row, the finding and the promote guard say of the learner, from one snapshot."""
    row = dict(etcd_rows.rows(snapshot, Thresholds(raft_lag_entries=LAG)))[name]
    learner_cell = str(row[7])
    (finding,) = [
        f for f in snapshot.findings if f.id == "etcd.learner-not-promoted" and f.subject == name
    ]
    promote = build_action("member-promote", name, thresholds=Thresholds(raft_lag_entries=LAG))
    return learner_cell, "promotable" in finding.summary, promote.guard(snapshot).kind


def add_learner(lab: Lab, state: Path, name: str) -> tuple[int, str]:
    """member-add, tried again while etcd refuses membership changes for a few seconds after
    a leader change (the test's patience, not the product's)."""

    def attempt() -> tuple[int, str] | None:
        code, out = act(lab, state, "member-add", name, "--yes")
        return None if "unhealthy cluster" in out else (code, out)

    return wait_until(attempt, 30, "etcd to accept the learner")


def blackhole(lab: Lab, node: str, peers: list[str], on: bool) -> None:
    for address in peers:
        verb = "add" if on else "del"
        lab.node_exec(node, ["ip", "route", verb, "blackhole", f"{address}/32"])


async def test_a_learner_is_promotable_exactly_when_it_has_caught_up(
    lab: Lab, tmp_path: Path
) -> None:
    newcomer = f"cp-{len(lab.spec.nodes) + 1}"
    code, out = await asyncio.to_thread(add_learner, lab, tmp_path, newcomer)
    assert code == 0, out
    config = dataclasses.replace(lab.config(), thresholds=Thresholds(raft_lag_entries=LAG))
    collector = Collector(config)
    peers = [n.address for n in lab.spec.nodes if n.name != newcomer]

    async def answering() -> Snapshot | None:
        s = await collector.collect(fresh=True)
        learner = s.etcd.member(newcomer)
        return s if learner and learner.reachable and s.etcd.leader else None

    try:
        snapshot = await eventually(answering, 30, f"{newcomer} answering")
        leader = snapshot.etcd.leader
        assert leader is not None and leader.endpoint
        blackhole(lab, newcomer, peers, on=True)
        try:
            for n in range(5 * LAG):
                await collector.etcd_client.put(leader.endpoint, f"/learner/{n}".encode(), b"x")
            snapshot = await eventually(answering, 30, f"{newcomer} answering while cut off")
            cell, promotable, verdict = judged(snapshot, newcomer)
            assert cell.startswith("learner ") and "%" in cell, cell  # its progress, shown
            assert not promotable and verdict is VerdictKind.REFUSED
            code, out = await asyncio.to_thread(
                act, lab, tmp_path, "member-promote", newcomer, "--yes"
            )
            assert code == 3 and "not in sync with the leader" in out, out
        finally:
            blackhole(lab, newcomer, peers, on=False)

        async def caught_up() -> Snapshot | None:
            s = await collector.collect(fresh=True)
            return s if "caught up" in judged(s, newcomer)[0] else None

        snapshot = await eventually(caught_up, 60, f"{newcomer} caught up")
        cell, promotable, verdict = judged(snapshot, newcomer)
        assert "promotable" in cell and promotable and verdict is not VerdictKind.REFUSED
    finally:
        await collector.close()
    code, out = await asyncio.to_thread(act, lab, tmp_path, "member-promote", newcomer, "--yes")
    assert code == 0 and "verified" in out, out
