"""etcd's own /metrics under drills staged for real on the lab: a frozen member, a slow peer
path (a delaying TCP relay, lab/relay.py) and a slow disk (a FUSE passthrough delaying fsync,
lab/slowdisk.py). Each drill is taken away at its end and the next test waits until every
member is healthy again; a module of its own, so no other test reads their aftermath.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from cluster.collect import Collector
from cluster.config import Config
from cluster.model import Severity
from lab.control import Lab
from lab.relay import delayed_peer
from lab.slowdisk import slow_fsync
from tests.helpers import eventually
from tests.test_metrics_lab import open_collector, scraping_every_second, showing, write_steadily

pytestmark = pytest.mark.lab


@pytest.fixture(autouse=True)
async def healthy_after(config: Config) -> AsyncIterator[None]:
    yield
    await eventually(lambda: all_healthy(config), 60, "every member healthy again")


async def test_a_frozen_members_metrics_never_hold_a_refresh(config: Config, lab: Lab) -> None:
    """SIGSTOP one member's etcd: its scrape hangs to the deadline, and refreshes go on
    meanwhile (each returns while that scrape is still in flight)."""
    collector = await open_collector(scraping_every_second(config))
    frozen_node = lab.spec.nodes[-1]
    pid = lab.freeze(frozen_node.name)
    try:
        during = 0

        async def timed_out() -> bool:
            nonlocal during
            snapshot = await collector.collect()
            during += collector.metrics.scraping(frozen_node.client_url)
            [frozen] = [m for m in snapshot.metrics if m.endpoint == frozen_node.client_url]
            return frozen.error is not None and "no answer within" in frozen.error

        await eventually(timed_out, 30, "the frozen member's scrape to meet its deadline")
        assert during >= 2
        snapshot = await collector.collect()
        assert {m.name for m in snapshot.etcd.members if m.reachable} >= {
            n.name for n in lab.spec.nodes[:-1]
        }
    finally:
        lab.thaw(pid)
        await collector.close()


async def test_a_delayed_peer_path_raises_slow_peer(config: Config, lab: Lab) -> None:
    """cp-3's peers reach it through a relay holding every byte 0.15 s each way (lab/relay.py):
    the other members' round trips to it, in etcd's own histogram, cross 0.15 s."""
    slow = lab.spec.nodes[-1]
    with delayed_peer(lab, slow.name, 0.15):
        collector = await open_collector(scraping_every_second(config))
        try:
            found = await showing(collector, "etcd.slow-peer", timeout=90)
            slowed = [f for f in found.findings if f.id == "etcd.slow-peer"]
            assert {f.subject for f in slowed} <= {n.name for n in lab.spec.nodes[:-1]}
            assert all(f"to {slow.name} are slow" in f.summary for f in slowed)
        finally:
            await collector.close()
    await eventually(lambda: all_healthy(config), 60, "the member back on its own port")


async def all_healthy(config: Config) -> bool:
    collector = Collector(config)
    try:
        snapshot = await collector.collect(fresh=True)
    finally:
        await collector.close()
    return len(snapshot.etcd.members) == 3 and all(m.healthy for m in snapshot.etcd.members)


async def test_a_slow_disk_raises_slow_fsync_on_its_member_only(config: Config, lab: Lab) -> None:
    """cp-3's /var/lib/etcd on a FUSE passthrough whose fsync sleeps 0.6 s (lab/slowdisk.py):
    its own WAL fsync histogram, read over /metrics, crosses 0.5 s while writes go on."""
    slow = lab.spec.nodes[-1]
    with slow_fsync(lab, slow.name, 0.6):
        collector = await open_collector(scraping_every_second(config))
        writing = asyncio.ensure_future(write_steadily(collector, lab.spec.nodes[0].client_url))
        try:
            found = await showing(collector, "etcd.slow-fsync", 90, Severity.WARNING)
        finally:
            writing.cancel()
            await collector.close()
        loud = [
            f
            for f in found.findings
            if f.id == "etcd.slow-fsync" and f.severity >= Severity.WARNING
        ]
        assert loud and {f.subject for f in loud} == {slow.name}
        assert "etcd_disk_wal_fsync_duration_seconds p99" in loud[0].evidence
