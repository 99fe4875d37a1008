"""One place that turns a Config into Snapshots: sources are opened once and reused."""

from __future__ import annotations

import asyncio
import datetime as dt

from cluster.config import Config
from cluster.etcd.client import EtcdClient
from cluster.etcd.source import EtcdSource
from cluster.findings import evaluate_etcd
from cluster.kube.findings import evaluate_kube
from cluster.kube.model import KubeView
from cluster.kube.source import KubeSource
from cluster.model import Snapshot
from cluster.nodes.findings import evaluate_nodes
from cluster.nodes.pool import NodePool
from cluster.nodes.source import NodeSource

KUBE_GRACE = 0.2  # seconds a slow API server may delay a refresh before its last view is used


class Collector:
    """Keeps the etcd channels and node connections open between collections; close() when done.

    etcd and all nodes are read concurrently, so a refresh takes as long as the slowest source.
    `nodes` is the pool guarded actions borrow connections from.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.etcd_client = EtcdClient(config.etcd.tls, timeout=config.etcd.timeout)
        self.etcd = EtcdSource(self.etcd_client, config.etcd.endpoints)
        self.nodes = NodePool(config)
        self.node_source = NodeSource(self.nodes)
        self.kube = KubeSource(config.kube) if config.kube else None
        self._kube_task: asyncio.Task[KubeView] | None = None
        self._kube_view: KubeView | None = None

    async def collect(self) -> Snapshot:
        if self.kube is not None and self._kube_task is None:
            self._kube_task = asyncio.create_task(self.kube.collect())
        etcd, nodes = await asyncio.gather(self.etcd.collect(), self.node_source.collect())
        kube = await self._kube_result()
        collected_at = dt.datetime.now(dt.UTC)
        findings = [
            *evaluate_etcd(etcd, self.config.etcd),
            *evaluate_nodes(nodes, collected_at),
            *evaluate_kube(kube, nodes),
        ]
        return Snapshot(
            cluster_name=self.config.name,
            collected_at=collected_at,
            etcd=etcd,
            findings=tuple(sorted(findings, key=lambda f: (-f.severity, f.id, f.subject))),
            nodes=nodes,
            kube=kube,
        )

    async def _kube_result(self) -> KubeView | None:
        """The API's view without holding etcd back: a slow API server gets a short grace,
        then the previous view is used while its call runs on to its own deadline (the first
        collection, having no previous view, waits for it up to a few deadlines)."""
        task = self._kube_task
        if task is None or self.kube is None:
            return None
        first_wait = 3 * self.kube.config.timeout
        await asyncio.wait({task}, timeout=first_wait if self._kube_view is None else KUBE_GRACE)
        if task.done():
            self._kube_task = None
            self._kube_view = task.result()
        return self._kube_view

    async def close(self) -> None:
        if self._kube_task is not None:
            self._kube_task.cancel()
        if self.kube is not None:
            self.kube.close()
        await asyncio.gather(self.etcd_client.close(), self.nodes.close())
