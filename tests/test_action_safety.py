"""Issue items 6, 8b and 9 on a real lab: snapshots are private and never half-written or put
over a file, one action at a time per cluster across processes, and an audit trail that cannot
record the intent stops the action while one that cannot record the outcome says so; a
deadline passed after the request went out is `unknown` until the cluster is re-read."""

from __future__ import annotations

import asyncio
import os
import selectors
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from actions.audit import ActionLock, AuditLog
from actions.base import Action, ActionContext, Plan, QuorumView, Verdict, Verification
from actions.registry import build_action, context_for
from actions.runner import Status, perform
from cluster.collect import Collector
from cluster.config import Config
from cluster.etcd.client import EtcdClient, EtcdError
from cluster.model import Snapshot
from lab.control import Lab
from tests.helpers import PROJECT, eventually, fill_etcd, kcockpit, report_json
from tests.test_faults_lab import healthy_snapshot

ANOTHER_ACTION = "another action is running"
FILL_MEGABYTES = 40  # a snapshot stream long enough to freeze its member mid-stream


@pytest.fixture()
async def client(config: Config) -> AsyncIterator[EtcdClient]:
    client = EtcdClient(config.etcd.tls, timeout=config.etcd.timeout)
    yield client
    await client.close()


@pytest.fixture()
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)  # the usual default: files 0644 unless created private
    yield
    os.umask(previous)


def act(lab: Lab, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return kcockpit(
        "act",
        "--config",
        str(lab.paths.config),
        *args,
        env={"KCOCKPIT_STATE_DIR": str(state)},
        timeout=90,
    )


def followers(lab: Lab) -> list[dict]:
    etcd = report_json(lab.paths.config)["etcd"]
    return [m for m in etcd["members"] if not m["is_leader"]]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_snapshot_is_0600_in_new_0700_directories_under_umask_022(
    lab: Lab, tmp_path: Path, umask_022: None
) -> None:
    fresh = tmp_path / "backups" / "today"
    snapshot = fresh / "etcd.db"
    result = act(lab, tmp_path / "state", "snapshot-save", "cp-1", "--yes", "--file", str(snapshot))
    assert result.returncode == 0, result.stdout + result.stderr
    assert mode(snapshot) == 0o600 and snapshot.stat().st_size > 0
    assert mode(fresh) == 0o700 and mode(fresh.parent) == 0o700
    assert os.listdir(fresh) == ["etcd.db"]  # no partial file left beside it


async def test_an_existing_file_is_never_overwritten(
    lab: Lab, client: EtcdClient, config: Config, tmp_path: Path
) -> None:
    existing = tmp_path / "only-good-backup.db"
    existing.write_bytes(b"yesterday's snapshot")
    result = await asyncio.to_thread(
        act, lab, tmp_path / "state", "snapshot-save", "cp-1", "--yes", "--file", str(existing)
    )
    assert result.returncode == 3 and "exists: name a new file" in result.stderr, result.stderr
    # The client refuses too, for a file that appears after the guard looked.
    with pytest.raises(FileExistsError, match="never overwrites"):
        await client.snapshot(config.etcd.endpoints[0], existing)
    assert existing.read_bytes() == b"yesterday's snapshot"
    assert sorted(os.listdir(tmp_path)) == ["only-good-backup.db", "state"]


async def test_a_failed_or_cancelled_snapshot_leaves_no_file(
    lab: Lab, client: EtcdClient, tmp_path: Path
) -> None:
    follower = (await asyncio.to_thread(followers, lab))[0]
    await client.status(follower["endpoint"])  # connected: the request goes out
    pid = lab.freeze(follower["name"])  # and its stream never starts: the deadline passes
    try:
        with pytest.raises(EtcdError, match="DEADLINE_EXCEEDED"):
            await client.snapshot(follower["endpoint"], tmp_path / "deadline.db", timeout=1.0)
        assert os.listdir(tmp_path) == []

        cancelled = asyncio.create_task(client.snapshot(follower["endpoint"], tmp_path / "c.db"))

        async def partial_file() -> list[str]:
            return os.listdir(tmp_path)

        assert (await eventually(partial_file, 10, "the partial file"))[0].endswith(".part")
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert os.listdir(tmp_path) == []
    finally:
        lab.thaw(pid)


def test_an_act_while_the_lock_is_held_is_refused_at_once(
    lab: Lab, config: Config, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    audit = AuditLog(state / "audit.jsonl")
    lock = ActionLock.beside(audit, config.name)
    lock.acquire(f"alice move-leader cp-2 on {config.name} (the test holds it)")
    try:
        result = act(lab, state, "snapshot-save", "cp-1", "--yes", "--file", str(tmp_path / "a"))
    finally:
        lock.release()
    assert result.returncode == 3, result.stdout + result.stderr
    assert f"{ANOTHER_ACTION}: alice move-leader cp-2" in result.stderr
    assert not (tmp_path / "a").exists()
    refusal = audit.read()[-1]
    assert refusal["phase"] == "refused" and refusal["refused_by"] == "another action"
    assert ANOTHER_ACTION in refusal["verdict"]["reasons"][0]
    result = act(lab, state, "snapshot-save", "cp-1", "--yes", "--file", str(tmp_path / "a"))
    assert result.returncode == 0, result.stdout + result.stderr  # released: the next one runs


def first_intent(processes: list[subprocess.Popen[str]], timeout: float = 60) -> int:
    """Which process printed "intent recorded" first (it holds the lock now)."""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        for index, process in enumerate(processes):
            assert process.stdout is not None
            selector.register(process.stdout, selectors.EVENT_READ, index)
        while time.monotonic() < deadline:
            for key, _ in selector.select(deadline - time.monotonic()):
                line = key.fileobj.readline()  # type: ignore[union-attr]
                if line.startswith("intent recorded"):
                    return key.data
                if not line:
                    selector.unregister(key.fileobj)
    raise AssertionError("no process recorded an intent")


def snapshot_process(lab: Lab, state: Path, member: str, into: Path) -> subprocess.Popen[str]:
    """`kcockpit act snapshot-save MEMBER` started in the background, saving to INTO/MEMBER.db."""
    config, file = str(lab.paths.config), str(into / f"{member}.db")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tui",
            "act",
            "--config",
            config,
            "snapshot-save",
            member,
            "--yes",
            "--file",
            file,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=PROJECT,
        env={**os.environ, "KCOCKPIT_STATE_DIR": str(state)},
    )


def test_two_act_processes_racing_exactly_one_runs(
    lab: Lab, config: Config, tmp_path: Path
) -> None:
    """Both start together; the first to record its intent has its member frozen mid-stream,
    so it holds the lock while the other, whenever it gets there, must be refused."""
    members = followers(lab)
    asyncio.run(fill_etcd(lab.paths.config, members[0]["endpoint"], FILL_MEGABYTES))
    state = tmp_path / "state"
    processes = [snapshot_process(lab, state, m["name"], tmp_path) for m in members[:2]]
    try:
        winner = first_intent(processes)
        pid = lab.freeze(members[winner]["name"])
        try:
            _, refused = processes[1 - winner].communicate(timeout=60)
        finally:
            lab.thaw(pid)
        out, err = processes[winner].communicate(timeout=60)
    finally:
        for process in processes:
            process.kill()
        asyncio.run(_empty(config, members[0]["endpoint"]))
    assert processes[1 - winner].returncode == 3 and ANOTHER_ACTION in refused, refused
    assert processes[winner].returncode == 0, out + err
    assert mode(tmp_path / f"{members[winner]['name']}.db") == 0o600
    assert not (tmp_path / f"{members[1 - winner]['name']}.db").exists()


async def _empty(config: Config, endpoint: str) -> None:
    """Takes back what `fill_etcd` wrote."""
    client = EtcdClient(config.etcd.tls, timeout=10)
    try:
        await client.delete(endpoint, b"/kcockpit-test/", prefix=True)
    finally:
        await client.close()


@pytest.mark.parametrize("broken", ["a directory", "a full disk"])
def test_an_intent_that_cannot_be_recorded_refuses_the_action(
    lab: Lab, tmp_path: Path, broken: str
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    if broken == "a directory":
        (state / "audit.jsonl").mkdir()
    else:
        (state / "audit.jsonl").symlink_to("/dev/full")
    before = report_json(lab.paths.config)["etcd"]["leader"]
    target = followers(lab)[0]["name"]
    result = act(lab, state, "move-leader", target, "--yes")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "the intent could not be recorded, so nothing was sent to the cluster" in result.stderr
    assert report_json(lab.paths.config)["etcd"]["leader"] == before


async def test_an_outcome_that_cannot_be_recorded_is_said_in_the_result(
    lab: Lab, collector: Collector, tmp_path: Path
) -> None:
    snapshot = await healthy_snapshot(collector)
    audit = AuditLog(tmp_path / "audit.jsonl")
    recorded = tmp_path / "intent-only.jsonl"

    def audit_breaks_after_the_intent(line: str) -> None:
        if line.startswith("intent recorded"):
            audit.path.rename(recorded)
            audit.path.mkdir()  # every outcome write now fails: EISDIR

    action = build_action("snapshot-save", "cp-1", file=tmp_path / "etcd.db")
    result = await perform(
        action,
        snapshot,
        context_for(collector, tmp_path),
        audit,
        yes=True,
        progress=audit_breaks_after_the_intent,
    )
    assert result.status is Status.VERIFIED, result.message
    assert "the outcome could not be recorded in the audit trail" in result.message
    assert "Is a directory" in result.message
    (intent,) = AuditLog(recorded).read()
    assert intent["phase"] == "intent"
    assert intent["cluster_id"] == f"{snapshot.etcd.cluster_id:016x}"


class PutPastTheDeadline(Action):
    """Puts a key through `via`, then asks a frozen member for its status: the answer that
    would end `execute` never comes within the deadline, whether or not the put was made."""

    name = "test-put"
    title = "Put a key (test)"
    key = ""
    deadline = 0.5  # shorter than the client's per-call timeout on the frozen member

    def __init__(self, target: str, via: str, frozen: str, read_from: str) -> None:
        super().__init__(target)
        self.via, self.frozen, self.read_from = via, frozen, read_from

    def guard(self, snapshot: Snapshot) -> Verdict:
        return Verdict.allowed("a test key")

    def plan(self, snapshot: Snapshot, ctx: ActionContext) -> Plan:
        view = QuorumView.of(snapshot.etcd)
        return Plan(f"put {self.target}", (), (), view, view)

    async def execute(self, snapshot: Snapshot, ctx: ActionContext) -> str:
        await ctx.etcd.put(self.via, self.target.encode(), b"set")
        await ctx.etcd.status(self.frozen)
        return f"put {self.target}"

    async def verify(self, snapshot: Snapshot, ctx: ActionContext) -> Verification:
        found = (await ctx.etcd.get(self.read_from, self.target.encode())).kvs
        return Verification(bool(found), f"{self.target} {'is' if found else 'is not'} set")


@pytest.mark.parametrize(("put_through", "status"), [("leader", "verified"), ("frozen", "unknown")])
async def test_a_deadline_after_sending_is_unknown_until_the_cluster_is_reread(
    lab: Lab, collector: Collector, tmp_path: Path, put_through: str, status: str
) -> None:
    snapshot = await healthy_snapshot(collector)
    leader = snapshot.etcd.leader
    assert leader and leader.endpoint
    frozen = next(m for m in snapshot.etcd.members if m is not leader)
    assert frozen.endpoint
    key = f"/kcockpit-test/deadline-{put_through}"
    via = leader.endpoint if put_through == "leader" else frozen.endpoint
    action = PutPastTheDeadline(key, via, frozen.endpoint, leader.endpoint)
    audit = AuditLog(tmp_path / "audit.jsonl")
    pid = lab.freeze(frozen.name)
    try:
        result = await perform(action, snapshot, context_for(collector, tmp_path), audit, yes=True)
    finally:
        lab.thaw(pid)
        await collector.etcd_client.delete(leader.endpoint, key.encode())
    assert "no answer within the 0.5 s deadline" in result.message
    assert result.status is (Status.VERIFIED if status == "verified" else Status.UNKNOWN)
    outcome = audit.read()[-1]
    assert outcome["phase"] == "outcome" and outcome["result"]["status"] == result.status.value
    assert outcome["result"]["status"].startswith(status)
