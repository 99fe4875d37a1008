"""Every cluster of the config at a glance, at a cost bounded by design: each cluster is read
on its own, at a slow pace, and only a few at once.

A fleet holds one paced `Collector` per cluster (`Collector.paced`: the nodes and the API at
the cluster's `[fleet]` pace, every source under its own deadline and `LatestRead` policy, as
in the cockpit), and a gate (a semaphore of `fleet_reads`) that bounds how many clusters are
being read at the same moment. Each cluster has its own loop: read, hand the row over, wait
`[fleet] etcd_interval`. A dead or frozen cluster therefore holds only its own row, and only
until its deadlines pass; the others' loops go on. A `FleetRow` is plain data: the cluster's
latest snapshot, when it was read, and what went wrong if the read itself failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import enum
from collections.abc import Iterable
from dataclasses import dataclass

from cluster.collect import Collector
from cluster.config import DEFAULT_FLEET_READS, Config
from cluster.model import Severity, Snapshot
from cluster.sources import next_wait

QUORUM_LOST_ID = "etcd.quorum-lost"


class Verdict(enum.Enum):
    """A cluster in one word; `rank` orders the fleet worst first."""

    QUORUM_LOST = ("QUORUM LOST", 4)
    UNREACHABLE = ("unreachable", 3)
    DEGRADED = ("degraded", 2)
    CONNECTING = ("connecting", 1)
    OK = ("OK", 0)

    @property
    def word(self) -> str:
        return self.value[0]

    @property
    def rank(self) -> int:
        return self.value[1]


@dataclass(frozen=True)
class CertExpiry:
    """The certificate that expires first, of every node the snapshot read."""

    days: float
    node: str


@dataclass(frozen=True)
class FleetRow:
    """One cluster's latest read: its snapshot (None before the first), when the read ended,
    and the read's own failure (a defect or a config problem, not the cluster's state)."""

    name: str
    snapshot: Snapshot | None = None
    read_at: dt.datetime | None = None
    error: str | None = None

    @property
    def verdict(self) -> Verdict:
        snapshot = self.snapshot
        if snapshot is None:
            return Verdict.UNREACHABLE if self.error else Verdict.CONNECTING
        if any(f.id == QUORUM_LOST_ID for f in snapshot.findings):
            return Verdict.QUORUM_LOST
        if self.error or not any(m.reachable for m in snapshot.etcd.members):
            return Verdict.UNREACHABLE
        worst = snapshot.worst
        return Verdict.OK if worst is None or worst <= Severity.INFO else Verdict.DEGRADED

    @property
    def counts(self) -> dict[Severity, int]:
        """How many findings of each severity, worst first (a severity with none left out)."""
        counts: dict[Severity, int] = {}
        for finding in self.snapshot.findings if self.snapshot else ():
            counts[finding.severity] = counts.get(finding.severity, 0) + 1
        return dict(sorted(counts.items(), reverse=True))

    @property
    def soonest_expiry(self) -> CertExpiry | None:
        if self.snapshot is None:
            return None
        now = self.snapshot.collected_at
        expiries = [
            CertExpiry(days, node.name)
            for node in self.snapshot.nodes
            for cert in node.certificates
            if (days := cert.days_left(now)) is not None
        ]
        return min(expiries, key=lambda e: e.days, default=None)

    def fails(self, severity: Severity) -> bool:
        """Whether the cluster crosses `severity`: a finding at or above it, or no answer at
        all (a cluster that cannot be read counts as critical)."""
        if self.verdict in (Verdict.UNREACHABLE, Verdict.CONNECTING):
            return True
        assert self.snapshot is not None
        return any(f.severity >= severity for f in self.snapshot.findings)


def sort_key(row: FleetRow) -> tuple[int, int, str]:
    """Worst first: by verdict, then by the worst finding, then by name."""
    worst = row.snapshot.worst if row.snapshot else None
    return (-row.verdict.rank, -(worst if worst is not None else -1), row.name)


class FleetCluster:
    """One cluster of the fleet: its paced collector (opened at the first read) and its
    latest row."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.row = FleetRow(config.name)
        self._collector: Collector | None = None

    async def read(self, gate: asyncio.Semaphore, fresh: bool = False) -> FleetRow:
        """A read through the gate; the row keeps the previous snapshot if the read fails."""
        async with gate:
            try:
                if self._collector is None:
                    self._collector = Collector.paced(self.config)
                snapshot = await self._collector.collect(fresh)
            except Exception as exc:  # a defect or a config problem: this row says so
                error = f"{type(exc).__name__}: {exc}"
                self.row = FleetRow(self.config.name, self.row.snapshot, now(), error)
            else:
                self.row = FleetRow(self.config.name, snapshot, now())
        return self.row

    async def watch(self, gate: asyncio.Semaphore) -> None:
        """Reads the cluster every `[fleet] etcd_interval` seconds, less often while none of
        its etcd members answers (`next_wait`); `row` is the latest."""
        wait = interval = self.config.fleet.etcd
        while True:
            row = await self.read(gate)
            answered = (
                row.snapshot is not None
                and row.error is None
                and any(m.reachable for m in row.snapshot.etcd.members)
            )
            wait = next_wait(wait, interval, answered)
            await asyncio.sleep(wait)

    async def close(self) -> None:
        if self._collector is not None:
            collector, self._collector = self._collector, None
            await collector.close()


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Fleet:
    """Every cluster of a config; at most `reads` of them are being read at once.

    Lives on one event loop (the collectors' connections are bound to it)."""

    def __init__(self, configs: Iterable[Config], reads: int = DEFAULT_FLEET_READS) -> None:
        self.clusters = {config.name: FleetCluster(config) for config in configs}
        self.reads = reads
        self._gate: asyncio.Semaphore | None = None
        self._watching: asyncio.Future[list[None]] | None = None

    @property
    def gate(self) -> asyncio.Semaphore:
        if self._gate is None:
            self._gate = asyncio.Semaphore(self.reads)
        return self._gate

    def rows(self) -> list[FleetRow]:
        """Every cluster's latest row, worst first."""
        return sorted((c.row for c in self.clusters.values()), key=sort_key)

    async def read_all(self, fresh: bool = True) -> list[FleetRow]:
        """One read of every cluster (a report), worst first."""
        await asyncio.gather(*(c.read(self.gate, fresh) for c in self.clusters.values()))
        return self.rows()

    def watch(self) -> None:
        """Starts every cluster's loop (on the running loop); `rows` shows their latest."""
        if self._watching is None:
            loops = (c.watch(self.gate) for c in self.clusters.values())
            self._watching = asyncio.ensure_future(asyncio.gather(*loops))

    async def close(self) -> None:
        if self._watching is not None:
            self._watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watching
        await asyncio.gather(*(c.close() for c in self.clusters.values()))
