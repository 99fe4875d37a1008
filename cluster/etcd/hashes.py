"""HashKV across members: asked only when DB sizes diverge, to tell fragmentation from corruption.

Every member hashes its keyspace at the same revision (the lowest current one, which all of them
have applied), so equal hashes mean equal data whatever the files' sizes.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from cluster.etcd.client import EtcdClient, EtcdError
from cluster.model import EtcdCluster, MemberHash


async def with_hashes(client: EtcdClient, cluster: EtcdCluster) -> EtcdCluster:
    """The cluster with the HashKV of every reachable member at a common revision."""
    members = [m for m in cluster.members if m.reachable and m.endpoint and m.revision]
    if len(members) < 2:
        return cluster
    revision = min(m.revision or 0 for m in members)

    async def one(member_id: int, endpoint: str) -> MemberHash | None:
        try:
            answer = await client.hash_kv(endpoint, revision)
        except EtcdError:
            return None
        return MemberHash(member_id, revision, answer.hash, answer.compact_revision)

    answers = await asyncio.gather(*(one(m.id, m.endpoint or "") for m in members))
    return replace(cluster, hashes=tuple(h for h in answers if h is not None))
