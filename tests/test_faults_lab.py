"""Issue 7 fault suite on one real lab: frozen, killed and partitioned members, slow and dropped
SSH servers, and many refreshes under random freezes. Each test restores what it breaks.

Related faults tested elsewhere, not repeated here: a stopped member's row and the refresh going
on (tests/test_app_etcd.py), the report with a SIGSTOPped member and quorum loss by stopping
manifests (tests/test_etcd_lab.py), every membership action refused without quorum through the
CLI (tests/test_actions_lab.py::test_no_membership_change_without_quorum).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import signal
import ssl
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from rich.text import Text

from actions.audit import AuditLog, timeline
from actions.base import VerdictKind
from actions.registry import build_action, context_for
from actions.runner import Result, Status, perform
from cluster.collect import Collector
from cluster.config import SLOW_ANSWER_SECONDS, Config, load_config
from cluster.etcd.client import EtcdClient
from cluster.etcd.source import EtcdSource
from cluster.model import Snapshot
from cluster.nodes.model import NodeState
from lab.control import Lab
from tests.helpers import (
    break_ssh,
    eventually,
    fds_back_to,
    open_fds,
    process_state,
    wait_until,
)
from tests.test_app_etcd import row_texts, until
from tui.app import CockpitApp
from widgets.etcd_pane import EtcdPane
from widgets.header import ClusterHeader
from widgets.table_pane import node_cell

MEMBERSHIP_ACTIONS = ("member-add", "member-remove", "member-promote", "move-leader")
RANDOM_CYCLES = 1000
FREEZE_DEADLINE = 0.3  # seconds: the etcd deadline of the many-refreshes test


@pytest.fixture()
def config(lab: Lab) -> Config:
    return lab.config()


@pytest.fixture()
def frozen(lab: Lab) -> Iterator[list[int]]:
    """Pids a test SIGSTOPs; every one is SIGCONTed afterwards, whatever happened."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        os.kill(pid, signal.SIGCONT)


async def healthy_snapshot(collector: Collector, voting: int = 3) -> Snapshot:
    async def probe() -> Snapshot | None:
        snapshot = await collector.collect()
        etcd = snapshot.etcd
        return snapshot if etcd.leader and etcd.healthy_voting == voting else None

    return await eventually(probe, 30, f"{voting} healthy voting members and a leader")


def settled(app: CockpitApp) -> bool:
    """Three healthy voting members and a leader: an earlier test may have left an election
    in progress (members answering, none leading yet)."""
    return bool(app.snapshot and app.snapshot.etcd.healthy_voting == 3 and leader_name(app))


def leader_name(app: CockpitApp) -> str | None:
    leader = app.snapshot.etcd.leader if app.snapshot else None
    return leader.name if leader else None


async def test_frozen_member_is_flagged_while_the_other_rows_keep_refreshing(
    lab: Lab, config: Config, frozen: list[int]
) -> None:
    app = CockpitApp(config, refresh=0.5)
    client = EtcdClient(config.etcd.tls, config.etcd.timeout)
    async with app.run_test(size=(160, 30)) as pilot:
        table = app.query_one(EtcdPane)
        await until(pilot, lambda: settled(app))
        leader = leader_name(app)
        target = next(m for m in app.snapshot.etcd.members if m.name != leader)
        others = [m.name for m in app.snapshot.etcd.members if m.name != target.name]
        pid = lab.freeze(target.name)
        frozen.append(pid)
        await until(pilot, lambda: "✗ down" in row_texts(table)[target.name][0])
        flagged = {(f.id, f.subject) for f in app.snapshot.findings}
        assert ("etcd.member-unreachable", target.name) in flagged

        before = {name: app.snapshot.etcd.member(name).raft_index for name in others}
        count = app.refresh_count
        leader_endpoint = app.snapshot.etcd.member(leader).endpoint
        for i in range(5):  # writes move the live members' raft index on
            await client.put(leader_endpoint, b"kcockpit-fault/frozen", str(i).encode())
        await until(
            pilot,
            lambda: (
                app.refresh_count >= count + 3
                and all(app.snapshot.etcd.member(n).raft_index > before[n] for n in others)
            ),
        )
        assert not app.snapshot.etcd.member(target.name).reachable

        os.kill(frozen.pop(), signal.SIGCONT)
        await until(pilot, lambda: "● up" in row_texts(table)[target.name][0])
        assert lab.etcd_pid(target.name) == pid  # the same process: healthy without a restart
    await client.delete(leader_endpoint, b"kcockpit-fault/frozen")
    await client.close()


async def test_frozen_member_list_answerer_the_others_answer_it_next_time(
    lab: Lab, config: Config, frozen: list[int]
) -> None:
    """A warm refresh asks MemberList of the member that answered it last; frozen, that
    member must not cost the cluster its member list."""
    client = EtcdClient(config.etcd.tls, config.etcd.timeout)
    source = EtcdSource(client, config.etcd.endpoints)
    try:
        first = await source.read(fresh=False)
        answerer = next(m for m in first.members if m.endpoint == source._member_list_from)
        pid = lab.freeze(answerer.name)
        frozen.append(pid)
        wait_until(lambda: process_state(pid) == "T", 5, f"etcd {pid} stopped")
        cluster = await source.read(fresh=False)
        assert cluster.error is None and len(cluster.members) == len(first.members)
        assert source._member_list_from != answerer.endpoint
    finally:
        source.close()
        await client.close()


async def test_leader_partitioned_a_new_leader_is_elected_and_shown(
    lab: Lab, config: Config, frozen: list[int]
) -> None:
    app = CockpitApp(config, refresh=0.5)
    async with app.run_test(size=(160, 30)) as pilot:
        await until(pilot, lambda: settled(app))
        old = leader_name(app)
        frozen.append(lab.freeze(old))
        # The others elect a new leader within an election timeout; the frozen member's read
        # may still be within its deadline then (its last answer shown, marked slow), so the
        # test waits for both rather than racing the two clocks.
        await until(
            pilot,
            lambda: (
                leader_name(app) not in (None, old) and not app.snapshot.etcd.member(old).reachable
            ),
            timeout=30,
        )
        new = leader_name(app)
        assert f"★ {new}" in str(app.query_one(ClusterHeader).render())
        os.kill(frozen.pop(), signal.SIGCONT)
        await until(pilot, lambda: app.snapshot.etcd.healthy_voting == 3, timeout=30)


async def test_two_of_three_frozen_quorum_lost_reads_shown_membership_refused(
    lab: Lab, config: Config, frozen: list[int]
) -> None:
    app = CockpitApp(config, refresh=0.5)
    async with app.run_test(size=(160, 30)) as pilot:
        table = app.query_one(EtcdPane)
        await until(pilot, lambda: settled(app))
        names = sorted(m.name for m in app.snapshot.etcd.members)
        survivor, stopped = names[0], names[1:]
        frozen.extend(lab.freeze(name) for name in stopped)
        await until(pilot, lambda: "QUORUM LOST" in str(app.query_one(ClusterHeader).render()))
        row = app.snapshot.etcd.member(survivor)
        assert row.reachable and row.version and row.raft_index > 0  # reads still shown
        assert "● up" in row_texts(table)[survivor][0]
        for name in MEMBERSHIP_ACTIONS:
            action = build_action(name, stopped[0], peer_url="https://127.0.0.1:1")
            verdict = action.guard(app.snapshot)
            assert verdict.kind is VerdictKind.REFUSED, (name, verdict)
            assert any("quorum" in reason for reason in verdict.reasons), (name, verdict)
        while frozen:
            os.kill(frozen.pop(), signal.SIGCONT)
        await until(pilot, lambda: app.snapshot.etcd.healthy_voting == 3, timeout=30)


@dataclasses.dataclass
class KilledRun:
    result: Result
    audit: list[dict]
    before: Snapshot
    after: Snapshot


def gone(pid: int) -> bool:
    """The process has exited (a zombie not yet reaped counts as gone)."""
    try:
        return process_state(pid) == "Z"
    except FileNotFoundError:
        return True


async def fault_at_intent(
    lab: Lab,
    collector: Collector,
    action_name: str,
    tmp: Path,
    target: str | None = None,
    frozen: list[int] | None = None,
) -> KilledRun:
    """Performs the action and breaks a follower's etcd the moment the intent is recorded,
    before anything is sent: with `frozen` it is SIGSTOPped (and stays so until the test's
    `frozen` fixture thaws it, so the action meets a member that cannot answer); otherwise
    it is SIGKILLed and the leader has seen it go before the request (the lab kubelet
    restarts it after a back-off of at least a second). The follower is the target unless
    one is given."""
    before = await healthy_snapshot(collector)
    victim = next(m.name for m in before.etcd.members if m is not before.etcd.leader)
    target = target or victim
    peer_url = lab.peer_url_for(target).replace(":2380", ":2390")
    action = build_action(action_name, target, peer_url=peer_url)
    pid = lab.etcd_pid(victim)
    assert pid is not None

    def progress(line: str) -> None:
        if not line.startswith("intent recorded"):
            return
        if frozen is not None:
            frozen.append(lab.freeze(victim))
            return
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: gone(pid), 5, f"{victim}'s etcd gone")
        wait_until(  # the leader's peer streams saw the closed connections
            lambda: not peer_active(lab, before, victim), 5, f"the leader sees {victim} gone"
        )

    audit = AuditLog(tmp / "audit.jsonl")
    result = await perform(
        action, before, context_for(collector, tmp), audit, yes=True, progress=progress
    )
    entry = timeline(audit.read())[-1]
    assert entry["action"] == action_name and entry["phase"] == "intent"  # both records
    assert entry["outcome"]["result"] == {"status": result.status.value, "message": result.message}
    while frozen:
        os.kill(frozen.pop(), signal.SIGCONT)
    return KilledRun(result, timeline(audit.read()), before, await healthy_snapshot(collector))


def peer_active(lab: Lab, snapshot: Snapshot, name: str) -> bool:
    """Whether the leader still counts a stream to member `name` as active, from its own
    `etcd_network_active_peers` gauge (read over TLS with the cockpit's client certificate)."""
    leader, member = snapshot.etcd.leader, snapshot.etcd.member(name)
    assert leader is not None and leader.endpoint and member is not None
    tls = lab.config().etcd.tls
    context = ssl.create_default_context(cafile=str(tls.ca))
    context.load_cert_chain(str(tls.cert), str(tls.key))
    with urllib.request.urlopen(f"{leader.endpoint}/metrics", context=context, timeout=2) as r:
        metrics = r.read().decode()
    remote = f'Remote="{member.id:x}"'
    return any(
        line.startswith("etcd_network_active_peers{") and remote in line and not line.endswith(" 0")
        for line in metrics.splitlines()
    )


@pytest.fixture()
async def outside_lab(lab: Lab) -> AsyncIterator[Collector]:
    """A collector on the lab's config without the lab's seams (as on a real cluster), so a
    member-add only registers the member and starts no new lab node: the test removes it again."""
    collector = Collector(load_config(lab.paths.config))
    yield collector
    await collector.close()


async def test_target_frozen_during_move_leader_is_unknown_never_verified(
    lab: Lab, outside_lab: Collector, tmp_path: Path, frozen: list[int]
) -> None:
    """The target freezes between the intent and the request: the leader's transfer cannot
    complete, etcd answers nothing within the deadline, and the re-read does not show the
    target leading. The outcome is unknown (the request went out), never failed or verified."""
    run = await fault_at_intent(lab, outside_lab, "move-leader", tmp_path, frozen=frozen)
    target = run.audit[-1]["target"]
    assert run.result.status is Status.UNKNOWN, run.result
    assert f"not verified within 15 s: {target} is the leader" in run.result.message, run.result
    assert run.before.etcd.leader is not None
    assert run.after.etcd.leader is not None  # thawed: someone leads again


async def test_member_killed_before_member_add_is_refused_by_etcd_and_nothing_added(
    lab: Lab, outside_lab: Collector, tmp_path: Path
) -> None:
    """A voting member dies between the intent and the request: etcd's strict reconfiguration
    check refuses the add ('unhealthy cluster'), the outcome is failed and no member appears."""
    run = await fault_at_intent(lab, outside_lab, "member-add", tmp_path, target="cp-9")
    known = {m.id for m in run.before.etcd.members}
    added = [m for m in run.after.etcd.members if m.id not in known]
    try:
        assert run.result.status is Status.FAILED, run.result
        assert "unhealthy cluster" in run.result.message, run.result.message
        assert not added, (run.result, added)
    finally:
        for member in added:
            await outside_lab.etcd_client.member_remove(run.after.etcd.leader.endpoint, member.id)


async def test_slow_and_dropped_ssh_nodes_leave_the_others_current(
    lab: Lab, config: Config
) -> None:
    nodes = tuple(dataclasses.replace(n, timeout=1.0) for n in config.nodes)
    collector = Collector(dataclasses.replace(config, nodes=nodes))
    fresh, slow, dropped = (n.name for n in nodes)
    marker = lab.paths.node_root(fresh) / "etc/cni/net.d/99-fault-suite.conflist"
    try:
        snapshot = await collector.collect()
        assert all(n.reachable for n in snapshot.nodes)
        undo = [break_ssh(lab, slow, "slow"), break_ssh(lab, dropped, "down")]
        marker.write_text('{"cniVersion": "1.0.0", "name": "fault", "plugins": [{"type": "x"}]}')
        # The slow node's read now under way can only end unreachable (past its deadline):
        # a refresh that still shows it reachable did not wait for it.
        during = {n.name: n for n in (await collector.collect()).nodes}
        assert during[slow].reachable, "a refresh waited for the slow node"

        async def others_current() -> Snapshot | None:
            snapshot = await collector.collect()
            states = {n.name: n for n in snapshot.nodes}
            files = {f.name for f in states[fresh].cni.files}
            faulty = not states[slow].reachable and not states[dropped].reachable
            return snapshot if faulty and "99-fault-suite.conflist" in files else None

        snapshot = await eventually(others_current, 30, "fresh node current, faulty ones flagged")
        states = {n.name: n for n in snapshot.nodes}
        assert states[fresh].reachable and states[fresh].static_pods
        assert states[slow].error and states[dropped].error
    finally:
        for put_back in undo:
            put_back()
        marker.unlink(missing_ok=True)
    try:

        async def all_back() -> bool:
            return all(n.reachable for n in (await collector.collect()).nodes)

        await eventually(all_back, 30, "every node reachable again")
    finally:
        await collector.close()


async def test_a_slow_node_keeps_its_rows_and_says_how_long_it_has_been_awaited(
    lab: Lab, config: Config
) -> None:
    """Slower than a refresh but within its deadline: its previous read stays on screen,
    marked, while the other nodes are read as usual; once it answers the mark is gone."""
    slow = config.nodes[1].name
    collector = Collector(config)  # node timeout 3 s: thawed once marked, within the deadline
    undo = None
    try:
        await collector.collect()
        undo = break_ssh(lab, slow, "slow")

        async def marked() -> NodeState | None:
            state = {n.name: n for n in (await collector.collect()).nodes}[slow]
            return state if state.slow_for is not None else None

        state = await eventually(marked, 10, f"{slow} marked slow")
        assert state.reachable and state.slow_for >= SLOW_ANSWER_SECONDS
        assert node_cell(state) == Text(f"{slow} ⌛ {state.slow_for:.0f}s", style="yellow")
        undo()
        undo = None

        async def current() -> bool:
            state = {n.name: n for n in (await collector.collect()).nodes}[slow]
            return state.reachable and state.slow_for is None

        await eventually(current, 10, f"{slow} current again")
    finally:
        if undo:
            undo()
        await collector.close()


async def test_a_fresh_collection_sees_a_change_made_while_reads_were_under_way(
    lab: Lab, config: Config
) -> None:
    """A refresh takes each node's latest read and starts new ones; a guard or verification
    (`fresh`) must see what changed even after those reads began."""
    collector = Collector(config)
    node = config.nodes[0].name
    marker = lab.paths.node_root(node) / "etc/cni/net.d/98-fresh.conflist"
    try:
        await collector.collect()
        await collector.collect()  # reads of every node under way, begun before the change
        marker.write_text('{"cniVersion": "1.0.0", "name": "fresh", "plugins": [{"type": "x"}]}')
        snapshot = await collector.collect(fresh=True)
        states = {n.name: n for n in snapshot.nodes}
        assert "98-fresh.conflist" in {f.name for f in states[node].cni.files}
    finally:
        marker.unlink(missing_ok=True)
        await collector.close()


async def test_many_refreshes_under_random_freezes_leak_nothing(
    lab: Lab, config: Config, frozen: list[int]
) -> None:
    """Seeded freezes and thaws (one member at most, so quorum holds) across many refreshes:
    no exception, and tasks, channels and file descriptors back to where they started. A
    freeze is held until a refresh has flagged it (a short deadline keeps that quick)."""
    rng = random.Random(7)
    client = EtcdClient(config.etcd.tls, FREEZE_DEADLINE)
    source = EtcdSource(client, config.etcd.endpoints, grace=0.02)
    names = [m.name for m in (await source.read(fresh=False)).members]
    await source.read(fresh=False)
    tasks, fds = len(asyncio.all_tasks()), open_fds()
    frozen_name: str | None = None
    seen_frozen = 0
    flagged = False
    for _ in range(RANDOM_CYCLES):
        if frozen_name is None and rng.random() < 0.03:
            frozen_name = rng.choice(names)
            frozen.append(lab.freeze(frozen_name))
        elif frozen_name is not None and flagged and rng.random() < 0.5:
            os.kill(frozen.pop(), signal.SIGCONT)
            frozen_name = None
        cluster = await source.read(fresh=False)
        assert cluster.error is None and len(cluster.members) == len(names)
        flagged = any(not m.reachable for m in cluster.members)
        seen_frozen += flagged
    while frozen:
        os.kill(frozen.pop(), signal.SIGCONT)

    async def all_reachable() -> bool:
        return all(m.reachable for m in (await source.read(fresh=False)).members)

    await eventually(all_reachable, 30, "every member answering again")
    source.close()

    async def tasks_settled() -> bool:
        return len(asyncio.all_tasks()) <= tasks

    await eventually(tasks_settled, 5, "no task left behind")
    assert seen_frozen > 0  # the freezes happened and were seen
    assert len(open_fds()) <= len(fds) + 2, "file descriptors leaked"  # gRPC may reopen one
    await client.close()


NODE_DRILLS = 8  # node faults, each held until a refresh has flagged its node
NODE_CHURN_TIMEOUT = 0.3  # seconds: a node's read deadline is twice this


async def test_many_refreshes_under_random_node_faults_leak_nothing(
    lab: Lab, config: Config
) -> None:
    """The nodes' side of the same: every refresh starts reads that run on behind it, while
    seeded faults freeze a node's sshd or kill it, each held until a refresh flagged it. No exception, every node back again, and no task or file descriptor
    left behind (a node whose connection dropped reconnects on the same slot)."""
    rng = random.Random(11)
    nodes = tuple(dataclasses.replace(n, timeout=NODE_CHURN_TIMEOUT) for n in config.nodes)
    collector = Collector(dataclasses.replace(config, nodes=nodes, kube=None))
    names = [n.name for n in nodes]
    faults = ("slow", "down")

    async def all_reachable() -> bool:
        return all(n.reachable for n in (await collector.collect(fresh=True)).nodes)

    # The baseline: every node connected (one SFTP session each), whatever the last test did.
    await eventually(all_reachable, 30, "every node answering")
    await collector.node_source.reads_done()
    await collector.metrics.settled()
    tasks, fds = len(asyncio.all_tasks()), open_fds()
    drilled: str | None = None
    undo: Callable[[], None] | None = None
    seen = 0
    deadline = time.monotonic() + 60
    try:
        while seen < NODE_DRILLS:
            assert time.monotonic() < deadline, f"{seen} of {NODE_DRILLS} node faults flagged"
            if drilled is None and rng.random() < 0.05:
                drilled = rng.choice(names)
                undo = break_ssh(lab, drilled, rng.choice(faults))
            snapshot = await collector.collect()
            assert [n.name for n in snapshot.nodes] == names
            down = {n.name for n in snapshot.nodes if not n.reachable}
            if drilled is not None and undo and drilled in down and rng.random() < 0.3:
                undo()
                drilled, undo, seen = None, None, seen + 1
    finally:
        if undo:
            undo()

    await eventually(all_reachable, 30, "every node answering again")
    await collector.node_source.reads_done()
    await collector.metrics.settled()  # the /metrics scrapes a refresh started, done too

    async def tasks_back() -> bool:  # an aborted link's SFTP reader ends a moment after it
        return len(asyncio.all_tasks()) <= tasks

    await eventually(tasks_back, 10, f"tasks back to {tasks} (a read's leak never gets there)")

    await fds_back_to(fds, 10)  # a dropped link's socket closes a moment after it
    await collector.close()
