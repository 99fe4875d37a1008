"""One place that turns a Config into Snapshots: sources are opened once and reused."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
from dataclasses import replace
from pathlib import Path

from cluster.config import SLOW_ANSWER_SECONDS, Config
from cluster.etcd.client import EtcdClient
from cluster.etcd.hashes import with_hashes
from cluster.etcd.source import EtcdSource
from cluster.findings import FindingsEngine, sizes_diverge
from cluster.kube.model import KubeView
from cluster.kube.source import KubeSource
from cluster.model import Snapshot
from cluster.nodes.pool import NodePool
from cluster.nodes.source import NodeSource
from cluster.state import ClusterState
from cluster.untrusted import neutralized

KUBE_GRACE = 0.2  # seconds a slow API server may delay a refresh before its last view is used


class Collector:
    """Keeps the etcd channels and node connections open between collections; close() when done.

    etcd's members are all asked at once, so a refresh takes as long as the slowest member
    (within its deadline); nodes and the API are read on their own and never hold a refresh
    once known (see `collect`). `nodes` is the pool guarded actions borrow connections from.
    The findings `engine` keeps the history and the per-cluster state file (under
    `state_dir`, else the config's seams' (a lab's own directory for a lab, since every lab
    reuses the same etcd cluster ID), else cluster.state's default).
    """

    def __init__(self, config: Config, state_dir: Path | None = None) -> None:
        self.config = config
        self.etcd_client = EtcdClient(config.etcd.tls, timeout=config.etcd.timeout)
        self.etcd = EtcdSource(self.etcd_client, config.etcd.endpoints)
        self.nodes = NodePool(config)
        self.node_source = NodeSource(self.nodes, config.seams.pod_probes)
        self.kube = KubeSource(config.kube) if config.kube else None
        self._kube_task: asyncio.Task[KubeView] | None = None
        self._kube_view: KubeView | None = None
        self._kube_started = -math.inf  # monotonic time the last API read began
        state_dir = state_dir or config.seams.state_dir  # a lab's memory goes with the lab
        self.engine = FindingsEngine(config, ClusterState.for_cluster(config.name, state_dir))

    async def collect(self, fresh: bool = False) -> Snapshot:
        """A snapshot. etcd is read now, every member at once (a member silent past a short
        grace keeps its previous answer until its deadline); the nodes as `NodeSource.collect`
        has it (each node's latest read; their new reads start once etcd has answered, so they
        never slow its sampling) and the API every `[kube] interval` seconds, unless `fresh`:
        then all three are read now and waited for, every etcd member until it answers or its
        deadline passes (a guard or a verification must not judge by an older view)."""
        if self.kube is not None and self._kube_task is None:
            due = time.monotonic() - self._kube_started >= self.kube.config.interval
            if fresh or due:
                self._kube_started = time.monotonic()
                self._kube_task = asyncio.create_task(self.kube.collect())
        if fresh or not self.node_source.all_read:  # the nodes are waited for: beside etcd
            etcd, nodes = await asyncio.gather(
                self.etcd.collect(fresh), self.node_source.collect(fresh)
            )
        else:  # etcd's members are sampled as one instant, the new node reads start after it
            etcd = await self.etcd.collect()
            nodes = await self.node_source.collect(fresh=False)
        if sizes_diverge(etcd, self.config.thresholds):
            etcd = await with_hashes(self.etcd_client, etcd)
        kube = await self._kube_result(fresh)
        snapshot = Snapshot(
            cluster_name=self.config.name,
            collected_at=dt.datetime.now(dt.UTC),
            etcd=neutralized(etcd),  # member names, URLs and etcd's own words are data
            nodes=nodes,
            kube=kube,
        )
        return self.engine.evaluate(snapshot)

    async def _kube_result(self, fresh: bool) -> KubeView | None:
        """The API's view without holding etcd back: a slow API server gets a short grace,
        then the previous view is used while its call runs on to its own deadline (the first
        collection, having no previous view, and a fresh one wait up to a few deadlines)."""
        task = self._kube_task
        if task is None or self.kube is None:
            return self._kube_view
        patient = self._kube_view is None or fresh
        await asyncio.wait({task}, timeout=3 * self.kube.config.timeout if patient else KUBE_GRACE)
        if task.done():
            self._kube_task = None
            self._kube_view = task.result()
            return self._kube_view
        waited = time.monotonic() - self._kube_started
        if self._kube_view is not None and waited >= SLOW_ANSWER_SECONDS:
            return replace(self._kube_view, slow_for=waited)
        return self._kube_view

    async def close(self) -> None:
        if self._kube_task is not None:
            self._kube_task.cancel()
        if self.kube is not None:
            self.kube.close()
        self.etcd.cancel_pending()
        self.node_source.close()
        self.engine.state.flush()
        await asyncio.gather(self.etcd_client.close(), self.nodes.close())
