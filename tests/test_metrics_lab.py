"""etcd's own /metrics on the real lab: read from every member, quiet on a clean lab, and the
mixin's findings raised by incidents staged for real (leaders moved, a database fragmented,
a database growing toward a small quota).

Each test has its own Collector (its own scrape history), scraping every second so windows
fill quickly; the module's lab is shared and every test leaves it healthy.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from actions.audit import AuditLog, leader_log
from cluster.collect import Collector
from cluster.config import Config, Thresholds
from cluster.model import Severity, Snapshot
from lab import running_scenarios
from lab.control import Lab
from tests.helpers import eventually, report_json, running_lab
from tests.test_app_etcd import until
from tui.app import CockpitApp
from widgets.base import QuietStatic

pytestmark = pytest.mark.lab

METRICS_IDS = {
    "etcd.slow-fsync",
    "etcd.slow-commit",
    "etcd.slow-peer",
    "etcd.leader-changes",
    "etcd.failed-proposals",
    "etcd.grpc-errors",
    "etcd.db-fragmented",
    "etcd.db-growth",
    "etcd.no-leader",
}
QUIET_SECONDS = 30.0


def scraping_every_second(config: Config, **thresholds: float) -> Config:
    return replace(
        config,
        etcd=replace(config.etcd, metrics_interval=1.0),
        thresholds=replace(Thresholds(), **thresholds),
    )


async def open_collector(config: Config) -> Collector:
    collector = Collector(config)
    await collector.collect(fresh=True)
    return collector


@pytest.fixture()
async def metrics_collector(config: Config) -> AsyncIterator[Collector]:
    collector = await open_collector(scraping_every_second(config))
    yield collector
    await collector.close()


async def showing(
    collector: Collector,
    finding_id: str,
    timeout: float = 60.0,
    at_least: Severity = Severity.INFO,
) -> Snapshot:
    async def probe() -> Snapshot | None:
        snapshot = await collector.collect()
        found = [f for f in snapshot.findings if f.id == finding_id and f.severity >= at_least]
        return snapshot if found else None

    return await eventually(probe, timeout, f"finding {finding_id}")


@pytest.mark.fresh_lab
async def test_a_clean_lab_is_read_from_every_member_and_raises_no_metrics_warning(
    metrics_collector: Collector,
) -> None:
    loud: list[str] = []

    async def probe() -> bool:
        snapshot = await metrics_collector.collect()
        loud.extend(
            f"{f.id} {f.subject}: {f.evidence}"
            for f in snapshot.findings
            if f.id in METRICS_IDS and f.severity >= Severity.WARNING
        )
        read = snapshot.metrics
        return len(read) == 3 and all(
            m.error is None and m.long_window >= QUIET_SECONDS for m in read
        )

    await eventually(probe, 3 * QUIET_SECONDS, f"{QUIET_SECONDS:g} s of scrapes")
    assert loud == []
    snapshot = await metrics_collector.collect()
    for m in snapshot.metrics:
        assert m.has_leader and m.db_size and m.db_in_use and m.quota == 2 * 1024**3
        assert m.applied_per_second is not None and m.leader_changes == 0


def test_report_json_has_every_members_metrics(lab: Lab) -> None:
    report = report_json(lab.paths.config)
    read = {m["member"]: m for m in report["metrics"]}
    assert set(read) == {n.name for n in lab.spec.nodes}
    for m in read.values():
        assert m["error"] is None and m["scrape_age_seconds"] >= 0 and m["has_leader"] is True
        assert m["db_size"] and m["quota_backend_bytes"] == 2 * 1024**3
        assert m["proposals_applied_per_second"] is None  # one scrape: no rate yet
    assert isinstance(report["etcd"]["leader_changes"], list)


async def test_moved_leaders_raise_leader_changes_and_fill_the_timeline(
    metrics_collector: Collector, lab: Lab
) -> None:
    client = metrics_collector.etcd_client
    moves = []
    for _ in range(4):
        snapshot = await metrics_collector.collect(fresh=True)
        leader = snapshot.etcd.leader
        assert leader is not None and leader.endpoint
        target = next(m for m in snapshot.etcd.members if m.id != leader.id)
        await client.move_leader(leader.endpoint, target.id)
        moves.append((leader.name, target.name))

        async def moved(name: str = target.name) -> bool:
            led = (await metrics_collector.collect(fresh=True)).etcd.leader
            return led is not None and led.name == name

        await eventually(moved, 20, f"{target.name} leading")
    found = await showing(metrics_collector, "etcd.leader-changes")
    [finding] = [f for f in found.findings if f.id == "etcd.leader-changes"]
    assert finding.severity is Severity.WARNING and "rose by 4" in finding.evidence
    timeline = found.leader_changes[-4:]
    assert [(c.old, c.new) for c in timeline] == moves
    terms = [c.term for c in timeline]
    assert all(t is not None for t in terms) and terms == sorted(set(terms))


async def test_a_fragmented_database_raises_db_fragmented(config: Config, lab: Lab) -> None:
    collector = await open_collector(scraping_every_second(config, db_fragmented_min_bytes=1e6))
    try:
        defragmented = await running_scenarios.fragment_one_member(collector.etcd_client, lab.spec)
        found = await showing(collector, "etcd.db-fragmented")
        fragmented = {f.subject for f in found.findings if f.id == "etcd.db-fragmented"}
        names = {m.endpoint: m.name for m in found.etcd.members}
        assert fragmented and names[defragmented] not in fragmented
        [finding] = [f for f in found.findings if f.id == "etcd.db-fragmented"][:1]
        assert finding.action == "rolling-defragment" and "etcd_mvcc_db" in finding.evidence
    finally:
        for node in lab.spec.nodes:  # leaves the lab as it found it: no file mostly free
            await collector.etcd_client.defragment(node.client_url)
        await collector.close()


@pytest.fixture(scope="module")
def small_quota_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A one-member lab whose etcd runs with a 64 MiB backend quota."""
    quota_lab = running_lab(
        tmp_path_factory.mktemp("quota"), nodes=1, scenarios=("small-quota",), control_plane=False
    )
    with quota_lab as lab:
        yield lab


async def test_steady_writes_toward_a_small_quota_raise_db_growth(small_quota_lab: Lab) -> None:
    collector = await open_collector(scraping_every_second(small_quota_lab.config()))
    try:
        leader = small_quota_lab.spec.nodes[0].client_url
        writing = asyncio.ensure_future(write_steadily(collector, leader))
        try:
            found = await showing(collector, "etcd.db-growth", timeout=90)
        finally:
            writing.cancel()
        [finding] = [f for f in found.findings if f.id == "etcd.db-growth"]
        assert "64.0 MiB" in finding.evidence and finding.subject == "cp-1"
    finally:
        await collector.close()


async def write_steadily(collector: Collector, endpoint: str) -> None:
    """About 100 kB a second, until cancelled: a 64 MiB quota is ten minutes away."""
    n = 0
    started = time.monotonic()
    while True:
        await collector.etcd_client.put(endpoint, f"/growth/{n}".encode(), b"g" * 20_000)
        n += 1
        await asyncio.sleep(max(0.0, started + n * 0.2 - time.monotonic()))


async def test_the_cockpit_shows_a_moved_leader_in_trends_and_keeps_it_for_audit(
    config: Config, tmp_path: Path
) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")
    app = CockpitApp(scraping_every_second(config), refresh=0.5, audit=audit)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.snapshot is not None and app.snapshot.etcd.leader)
        assert app.snapshot is not None and app.snapshot.etcd.leader is not None
        leader = app.snapshot.etcd.leader
        target = next(m for m in app.snapshot.etcd.members if m.id != leader.id)
        assert leader.endpoint
        client = app.collector.etcd_client
        await app.background.run(client.move_leader(leader.endpoint, target.id))
        await pilot.press(str(app.pane_ids.index("pane-trends") + 1))
        shown = f"{leader.name} → {target.name}"
        timeline = lambda: str(app.query_one("#leader-timeline", QuietStatic).content)  # noqa: E731
        await until(pilot, lambda: shown in timeline(), timeout=20)
    [kept] = leader_log(audit).read()
    assert kept["target"] == shown and kept["phase"] == "observed" and audit.read() == []


async def test_a_page_over_the_size_cap_is_refused_unread(
    metrics_collector: Collector,
) -> None:
    metrics_collector.metrics.max_bytes = 10_000  # etcd's page is ~160 kB

    async def refused() -> bool:
        snapshot = await metrics_collector.collect()
        return all(m.error and "larger than 10000 bytes" in m.error for m in snapshot.metrics)

    await eventually(refused, 20, "every scrape refused")
    snapshot = await metrics_collector.collect()
    assert all(m.reachable for m in snapshot.etcd.members)
    assert not [f for f in snapshot.findings if f.id in METRICS_IDS]
