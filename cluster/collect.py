"""One place that turns a Config into Snapshots: sources are opened once and reused.

The three parts (etcd, the nodes, the API) are `Source`s (cluster.sources) that share one policy
for a slow answer (`LatestRead`); `Collector.collect` is the one place that orders their reads
and assembles a Snapshot from them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import replace
from pathlib import Path

from cluster.config import Config
from cluster.etcd.client import EtcdClient
from cluster.etcd.hashes import with_hashes
from cluster.etcd.leaders import LeaderTimeline
from cluster.etcd.metrics_source import MetricsSource
from cluster.etcd.source import EtcdSource
from cluster.findings import FindingsEngine, sizes_diverge
from cluster.kube.source import ApiSource, KubeSource
from cluster.model import Snapshot
from cluster.nodes.pool import NodePool
from cluster.nodes.source import NodeSource
from cluster.state import ClusterState
from cluster.untrusted import neutralized


class Collector:
    """Keeps the etcd channels and node connections open between collections; close() when done.

    etcd's members are all asked at once, so a refresh takes as long as the slowest member
    (within its deadline); nodes and the API are read on their own and never hold a refresh
    once known (see `collect`). `nodes` is the pool guarded actions borrow connections from.
    The findings `engine` keeps the history and the per-cluster state file (under
    `state_dir`, else the config's seams' (a lab's own directory for a lab, since every lab
    reuses the same etcd cluster ID), else cluster.state's default).
    """

    def __init__(
        self, config: Config, state_dir: Path | None = None, node_interval: float = 0.0
    ) -> None:
        self.config = config
        self.etcd_client = EtcdClient(config.etcd.tls, timeout=config.etcd.timeout)
        self.etcd = EtcdSource(self.etcd_client, config.etcd.endpoints)
        self.metrics = MetricsSource(config.etcd, config.thresholds)
        self.leaders = LeaderTimeline()
        self.nodes = NodePool(config)
        self.node_source = NodeSource(self.nodes, node_interval)
        self.kube = KubeSource(config.kube) if config.kube else None  # actions' client too
        self.api = ApiSource(self.kube) if self.kube else None
        state_dir = state_dir or config.seams.state_dir  # a lab's memory goes with the lab
        self.engine = FindingsEngine(config, ClusterState.for_cluster(config.name, state_dir))

    @classmethod
    def paced(cls, config: Config) -> Collector:
        """A collector at the fleet's pace for a cluster off screen (`config.fleet`): each node
        read every `nodes` seconds, the API every `api` seconds (etcd at each collect)."""
        if config.kube is not None:
            config = replace(config, kube=replace(config.kube, interval=config.fleet.api))
        return cls(config, node_interval=config.fleet.nodes)

    async def collect(self, fresh: bool = False) -> Snapshot:
        """A snapshot. etcd is read now, every member at once (a member silent past a short
        grace keeps its previous answer until its deadline); the nodes as `NodeSource.read`
        has it (each node's latest read; their new reads start once etcd has answered, so they
        never slow its sampling) and, beside both, the API as `ApiSource.read` has it (every
        `[kube] interval` seconds, with a short grace), unless `fresh`: then all three are read
        now and waited for, every etcd member until it answers or its deadline passes (a guard
        or a verification must not judge by an older view)."""
        api = asyncio.ensure_future(self.api.read(fresh)) if self.api else None  # meanwhile
        try:
            if fresh or not self.node_source.all_read:  # the nodes are waited for: beside etcd
                etcd, nodes = await asyncio.gather(
                    self.etcd.read(fresh), self.node_source.read(fresh)
                )
            else:  # etcd's members are sampled as one instant, the new node reads start after
                etcd = await self.etcd.read(fresh=False)
                nodes = await self.node_source.read(fresh=False)
            if sizes_diverge(etcd, self.config.thresholds):
                etcd = await with_hashes(self.etcd_client, etcd)
            metrics = await self.metrics.read(etcd, fresh)  # never waits once scraped
            kube = await api if api else None
        finally:
            if api is not None:  # a collection cancelled midway leaves no waiter behind
                api.cancel()
        etcd = neutralized(etcd)  # member names, URLs and etcd's own words are data
        now = dt.datetime.now(dt.UTC)
        snapshot = Snapshot(
            cluster_name=self.config.name,
            collected_at=now,
            etcd=etcd,
            nodes=nodes,
            kube=kube,
            metrics=neutralized(metrics),  # label values are the member's words
            leader_changes=self.leaders.observe(etcd, now),
        )
        return self.engine.evaluate(snapshot)

    async def close(self) -> None:
        if self.api is not None:
            self.api.close()
        self.etcd.close()
        self.node_source.close()
        self.engine.state.flush()
        await asyncio.gather(self.etcd_client.close(), self.nodes.close(), self.metrics.aclose())
