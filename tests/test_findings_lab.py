"""The findings catalog staged for real on one shared lab: each test stages, checks, restores.

The clean-lab test runs first (`fresh_lab`) so it sees the lab before anything is staged.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cluster.collect import Collector
from cluster.config import Config
from cluster.etcd.proto import etcd_rpc_pb2 as pb
from cluster.model import Severity, Snapshot
from lab.control import Lab
from lab.layout import find_etcd
from lab.running_scenarios import add_unstarted_member, fragment_one_member
from tests.helpers import PROJECT, eventually, kcockpit, loud, settled, wait_until
from tests.test_app_etcd import until
from tui.app import CockpitApp
from widgets.confirm import ConfirmScreen
from widgets.findings_pane import FindingsPane, FindingsTable, finding_key

LAB_CONTROL_PLANE = True  # the module reads the Kubernetes API or its static pods

CLEAN_SECONDS = 30.0


@pytest.fixture
def config(lab: Lab) -> Config:
    return lab.config()


@pytest.fixture
async def collector(config: Config, tmp_path: Path) -> AsyncIterator[Collector]:
    collector = Collector(config, state_dir=tmp_path)
    yield collector
    await collector.close()


def ids(snapshot: Snapshot) -> set[str]:
    return {f.id for f in snapshot.findings}


async def showing(
    collector: Collector, wanted: set[str], timeout: float = 20.0, says: str = ""
) -> Snapshot:
    """The first snapshot with all `wanted` findings (one of them mentioning `says`)."""
    seen: list[str] = []

    async def probe() -> Snapshot | None:
        snapshot = await collector.collect()
        seen[:] = [f"{f.id}: {f.summary}" for f in snapshot.findings]
        found = wanted <= ids(snapshot) and any(says in f.summary for f in snapshot.findings)
        return snapshot if found else None

    try:
        return await eventually(probe, timeout, f"findings {sorted(wanted)}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last findings: {seen}") from None


@pytest.mark.fresh_lab
async def test_clean_lab_has_no_warnings_across_30_seconds(collector: Collector) -> None:
    await settled(collector)
    deadline = time.monotonic() + CLEAN_SECONDS
    refreshes = 0
    while time.monotonic() < deadline:
        snapshot = await collector.collect()
        assert loud(snapshot) == [], f"refresh {refreshes}: {loud(snapshot)}"
        refreshes += 1
        await asyncio.sleep(collector.config.refresh)
    assert refreshes >= 10
    assert (
        kcockpit(
            "report", "--config", str(collector.config.source), "--fail-on", "warning"
        ).returncode
        == 0
    )


async def test_alarm_is_critical_and_fails_the_report(collector: Collector) -> None:
    snapshot = await collector.collect()
    member = snapshot.etcd.members[0]
    endpoint = member.endpoint or ""

    async def alarm(active: bool) -> None:
        await collector.etcd_client.set_alarm(endpoint, member.id, pb.NOSPACE, active)

    await alarm(True)
    try:
        found = await showing(collector, {"etcd.alarm"})
        (finding,) = [f for f in found.findings if f.id == "etcd.alarm"]
        assert (finding.severity, finding.subject) == (Severity.CRITICAL, member.name)
        assert "NOSPACE" in finding.summary
        config = str(collector.config.source)
        assert kcockpit("report", "--config", config, "--fail-on", "critical").returncode == 1
        human = kcockpit("report", "--config", config)
        assert "etcd.alarm" in human.stdout
    finally:
        await alarm(False)
    await eventually(lambda: _without(collector, "etcd.alarm"), 20, "the alarm cleared")


async def _without(collector: Collector, finding_id: str) -> bool:
    return finding_id not in ids(await collector.collect())


async def test_db_divergence_after_defragmenting_one_member_is_fragmentation(
    lab: Lab, collector: Collector
) -> None:
    client = collector.etcd_client
    try:
        follower = await fragment_one_member(client, lab.spec)
        found = await showing(collector, {"etcd.db-size-divergence"}, says="fragmentation")
        (finding,) = [f for f in found.findings if f.id == "etcd.db-size-divergence"]
        assert "HashKV agrees: fragmentation" in finding.summary
        assert (finding.action, finding.target) == ("rolling-defragment", "etcd")
        # the largest file, the subject, is never the one just defragmented
        assert finding.subject != next(n.name for n in lab.spec.nodes if n.client_url == follower)
        assert "etcd.hash-mismatch" not in ids(found)
    finally:
        for node in lab.spec.nodes:
            await client.defragment(node.client_url)
    await eventually(lambda: _without(collector, "etcd.db-size-divergence"), 20, "sizes agree")


async def test_stale_voting_member_and_unpromoted_learner(collector: Collector, lab: Lab) -> None:
    client = collector.etcd_client
    voting = await add_unstarted_member(client, lab.spec, learner=False)
    try:
        found = await showing(collector, {"etcd.stale-member", "etcd.even-member-count"})
        (stale,) = [f for f in found.findings if f.id == "etcd.stale-member"]
        assert stale.action == "member-remove" and stale.target == f"{voting:016x}"
    finally:
        await client.member_remove(lab.spec.nodes[0].client_url, voting)

    learner = await add_unstarted_member(client, lab.spec, learner=True)
    try:
        await showing(collector, {"etcd.learner-not-promoted"})
        await _pane_opens_the_promote_dialog(collector.config)
    finally:
        await client.member_remove(lab.spec.nodes[0].client_url, learner)


async def _pane_opens_the_promote_dialog(config: Config) -> None:
    """Pilot: selecting the finding shows its next command; `a` opens the guarded dialog."""
    app = CockpitApp(config, refresh=0.5)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press(str(app.pane_ids.index("pane-findings") + 1))  # kept current shown
        pane = app.query_one(FindingsPane)
        table = app.query_one(FindingsTable)
        await until(
            pilot, lambda: any(f.id == "etcd.learner-not-promoted" for f in table.findings.values())
        )
        key = next(k for k, f in table.findings.items() if f.id == "etcd.learner-not-promoted")
        table.move_cursor(row=table.get_row_index(key))
        detail = pane.query_one("#finding-detail")
        await until(pilot, lambda: "member promote" in str(detail.render()))
        assert finding_key(table.findings[key]) == key
        table.focus()
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        title = app.screen.title_text  # type: ignore[attr-defined]
        assert title.startswith(f"{config.name} · Promote"), title  # the cluster, then the action
        await pilot.press("escape")


async def test_three_leader_moves_are_frequent_elections(collector: Collector) -> None:
    before = await collector.collect()
    assert "etcd.frequent-elections" not in ids(before)
    for _ in range(3):  # each transfer is an election: the raft term rises by one
        snapshot = await collector.collect()
        leader = snapshot.etcd.leader
        assert leader is not None and leader.endpoint
        follower = next(m for m in snapshot.etcd.voting if not m.is_leader and m.healthy)
        await collector.etcd_client.move_leader(leader.endpoint, follower.id)
    found = await showing(collector, {"etcd.frequent-elections"})
    (finding,) = [f for f in found.findings if f.id == "etcd.frequent-elections"]
    assert finding.severity == Severity.WARNING and "raft term" in finding.evidence


def restore_snapshot(lab: Lab, snapshot: Path) -> None:
    """The rollback case's fatal move: every etcd member stopped (its manifest moved out; the
    API servers keep running), restored from an old snapshot, started again (same names, peer
    URLs and token, as a kubeadm operator would)."""
    spec = lab.spec
    initial_cluster = ",".join(f"{n.name}={n.peer_url}" for n in spec.nodes)
    parked = {n.name: lab.paths.kubernetes_dir(n.name) / "etcd.yaml.restoring" for n in spec.nodes}
    for node in spec.nodes:
        (lab.paths.manifests(node.name) / "etcd.yaml").rename(parked[node.name])
    wait_until(lambda: all(lab.etcd_pid(n.name) is None for n in spec.nodes), 20, "etcd stopped")
    assert all(lab.processes(n.name, "kube-apiserver") for n in spec.nodes)
    etcdutl = find_etcd().with_name("etcdutl")
    for node in spec.nodes:
        # The data dir is bind-mounted into the node: empty it, never replace it.
        data_dir = lab.paths.node_root(node.name) / "var/lib/etcd"
        restored = data_dir.with_name("etcd-restored")
        for child in data_dir.iterdir():
            shutil.rmtree(child)
        subprocess.run(
            [
                str(etcdutl), "snapshot", "restore", str(snapshot),
                f"--name={node.name}",
                f"--initial-cluster={initial_cluster}",
                "--initial-cluster-token=kcockpit-lab",
                f"--initial-advertise-peer-urls={node.peer_url}",
                f"--data-dir={restored}",
            ],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        for child in restored.iterdir():
            child.rename(data_dir / child.name)
        restored.rmdir()
        parked[node.name].rename(lab.paths.manifests(node.name) / "etcd.yaml")


async def test_an_old_snapshot_restored_under_running_api_servers_is_a_rollback_with_api_evidence(
    lab: Lab, config: Config, tmp_path: Path
) -> None:
    """The rollback incident: a snapshot, changes through the API, the old snapshot restored
    while every kube-apiserver keeps running. The API then serves the old data (what was made
    since is gone), and kcockpit, even restarted, says so with the API's resourceVersion."""
    kubectl = [str(PROJECT / ".local/kubectl/usr/bin/kubectl"), f"--kubeconfig={lab.kubeconfig}"]
    before = Collector(config, state_dir=tmp_path)
    try:
        snapshot = await before.collect()
        leader = snapshot.etcd.leader
        assert leader is not None and leader.endpoint
        await before.etcd_client.snapshot(leader.endpoint, tmp_path / "old.db")
        made = subprocess.run(
            [*kubectl, "create", "configmap", "made-after-the-backup", "--from-literal=a=b"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        # The cluster moves on after the backup, far enough that the control plane's own
        # writes (leases, statuses: a few a second) do not catch up during the test.
        for n in range(500):
            await before.etcd_client.put(leader.endpoint, f"/kcockpit-test/new/{n}".encode(), b"v")
        assert "etcd.revision-regressed" not in ids(await before.collect())
    finally:
        await before.close()  # kcockpit exits; only its state file remembers

    restore_snapshot(lab, tmp_path / "old.db")
    after = Collector(config, state_dir=tmp_path)
    try:

        async def with_api_evidence() -> Snapshot | None:
            found = await after.collect()
            regressed = [f for f in found.findings if f.id == "etcd.revision-regressed"]
            return found if regressed and "resourceVersion" in regressed[0].evidence else None

        found = await eventually(with_api_evidence, 60, "revision-regressed with the API's view")
        (finding,) = [f for f in found.findings if f.id == "etcd.revision-regressed"]
        assert finding.severity == Severity.CRITICAL and "kube-apiserver" in finding.next
        assert "the API servers serve the restored data" in finding.evidence
        gone = subprocess.run(
            [*kubectl, "get", "configmap", "made-after-the-backup"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert gone.returncode != 0 and "NotFound" in gone.stderr  # the API went back in time
    finally:
        await after.close()
