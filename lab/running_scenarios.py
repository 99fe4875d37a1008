"""Incidents that need a running cluster: staged through etcd's own API once the lab is healthy.

File-only scenarios (lab/scenarios.py) are staged before the kubelet starts; these go
on after, because what they reproduce is something an operator or a workload did to a live
cluster: a member added whose node never came, a learner never promoted, a database filled to
its quota, one member defragmented and not the others. Tests call the same functions on their
shared lab, so what `kcockpit lab up --scenario NAME` shows is what the tests assert.
"""

from __future__ import annotations

import asyncio
import time

from cluster.etcd.client import EtcdClient, EtcdError
from lab.layout import LabError, LabNode, LabSpec

MEMBER_ADD_PATIENCE = 20.0  # etcd refuses MemberAdd for ~5 s after a (re)start
COMPACTION_PATIENCE = 10.0
BULK_VALUE = b"x" * 200_000
BULK_PREFIX = b"/kcockpit-lab/bulk/"
QUOTA_VALUE = b"q" * 64_000


async def leader_endpoint(client: EtcdClient, spec: LabSpec) -> str:
    for node in spec.nodes:
        try:
            status = await client.status(node.client_url)
        except EtcdError:
            continue
        if status.leader and status.leader == status.header.member_id:
            return node.client_url
    raise LabError("no lab member reports itself leader")


def ghost_peer_url(spec: LabSpec, offset: int) -> str:
    """A peer URL in the lab's address block that no lab node serves."""
    prefix = spec.nodes[0].address.rpartition(".")[0]
    host = max(int(n.address.rpartition(".")[2]) for n in spec.nodes) + offset
    return LabNode(f"ghost-{offset}", f"{prefix}.{host}").peer_url


async def add_unstarted_member(client: EtcdClient, spec: LabSpec, learner: bool) -> int:
    """MemberAdd for an address no lab node serves: the member is registered, never starts.

    Voting ghosts and learner ghosts get different addresses, so both scenarios can combine."""
    peer_url = ghost_peer_url(spec, 2 if learner else 1)
    deadline = time.monotonic() + MEMBER_ADD_PATIENCE
    while True:
        try:
            endpoint = await leader_endpoint(client, spec)
            answer = await client.member_add(endpoint, [peer_url], learner=learner)
            return answer.member.ID
        except (EtcdError, LabError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def fragment_every_member(client: EtcdClient, spec: LabSpec) -> str:
    """Bulk writes, deleted and compacted: every member's file keeps the freed pages. Each
    member compacts in the background once it applied the request, and its Status counts the
    freed pages only from its next commit, so a small write follows until every member shows
    them free. Returns the leader's endpoint."""
    leader = await leader_endpoint(client, spec)
    for n in range(40):
        await client.put(leader, BULK_PREFIX + str(n).encode(), BULK_VALUE)
    deleted = await client.delete(leader, BULK_PREFIX, prefix=True)
    await client.compact(leader, deleted.header.revision)
    deadline = time.monotonic() + COMPACTION_PATIENCE
    while True:
        await client.put(leader, b"/kcockpit-lab/after-compaction", b"1")
        statuses = [await client.status(n.client_url) for n in spec.nodes]
        if all(s.dbSizeInUse < s.dbSize / 2 for s in statuses):
            return leader
        if time.monotonic() > deadline:
            sizes = [(s.dbSize, s.dbSizeInUse) for s in statuses]
            raise LabError(f"the deleted data is still in use: (size, in use) {sizes}")
        await asyncio.sleep(0.2)


async def fragment_one_member(client: EtcdClient, spec: LabSpec) -> str:
    """Every member fragmented, then only one follower defragmented: the others' files keep
    the freed pages, so DB sizes diverge while the data (HashKV) is the same. Returns the
    defragmented member's endpoint."""
    leader = await fragment_every_member(client, spec)
    follower = next(n.client_url for n in spec.nodes if n.client_url != leader)
    # A follower compacts in the background after applying the request: a defragment before
    # that keeps the data, so defragment until its file really is the smaller one.
    deadline = time.monotonic() + COMPACTION_PATIENCE
    while True:
        await client.defragment(follower)
        sizes = [(await client.status(e)).dbSize for e in (follower, leader)]
        if sizes[0] < sizes[1] / 2:
            return follower
        if time.monotonic() > deadline:
            raise LabError(f"{follower} still holds the deleted data: db sizes {sizes}")
        await asyncio.sleep(0.2)


async def fill_to_nospace(client: EtcdClient, spec: LabSpec, limit: int = 400) -> None:
    """Writes until etcd raises NOSPACE (members run with a tiny --quota-backend-bytes)."""
    leader = await leader_endpoint(client, spec)
    for n in range(limit):
        try:
            await client.put(leader, f"/kcockpit-lab/quota/{n}".encode(), QUOTA_VALUE)
        except EtcdError as exc:
            if "space exceeded" in str(exc):
                return
            raise
    raise LabError(f"{limit} writes did not reach the backend quota")
