"""One place that turns a Config into Snapshots: sources are opened once and reused."""

from __future__ import annotations

import datetime as dt

from cluster.config import Config
from cluster.etcd.client import EtcdClient
from cluster.etcd.source import EtcdSource
from cluster.findings import evaluate_etcd
from cluster.model import Snapshot


class Collector:
    """Keeps the etcd channels open between collections; close() when done."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.etcd_client = EtcdClient(config.etcd.tls, timeout=config.etcd.timeout)
        self.etcd = EtcdSource(self.etcd_client, config.etcd.endpoints)

    async def collect(self) -> Snapshot:
        etcd = await self.etcd.collect()
        return Snapshot(
            cluster_name=self.config.name,
            collected_at=dt.datetime.now(dt.UTC),
            etcd=etcd,
            findings=tuple(evaluate_etcd(etcd, self.config.etcd)),
        )

    async def close(self) -> None:
        await self.etcd_client.close()
