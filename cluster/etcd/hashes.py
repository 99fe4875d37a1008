"""HashKV across members at one pinned revision: equal hashes mean equal data, whatever the
files' sizes and however many writes land meanwhile.

Every member is asked for its hash at the same revision: the lowest current one (every member
has applied it, so none answers "future revision"), read anew for the check. A hash covers the
keyspace from the member's compact revision to the pinned one, so hashes compare only when
every member reports the same compact revision; a compaction that lands mid-check (one member
applied it, another not yet, or the pinned revision is now below it) is waited out and the
check asked again at a revision pinned after it, a few times within its deadline. Ongoing
writes never make a false mismatch: they are above the pinned revision on every member.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import replace

from cluster.etcd.client import EtcdClient, EtcdError
from cluster.model import EtcdCluster, EtcdMember, MemberHash

PIN_ATTEMPTS = 4  # a compaction racing the check is waited out this many times at most
PIN_PAUSE = 0.2  # seconds between attempts: members apply a compaction within milliseconds


async def pinned_hashes(
    client: EtcdClient, members: Sequence[EtcdMember], timeout: float | None = None
) -> tuple[MemberHash, ...]:
    """Each reachable member's HashKV at one revision pinned for all of them; members that do
    not answer are left out (their rows say why). Bounded by `timeout` (the client's deadline
    per call otherwise, times the attempts)."""
    asked = [m for m in members if m.reachable and m.endpoint]
    if len(asked) < 2:
        return ()
    deadline = time.monotonic() + (timeout or client.timeout * PIN_ATTEMPTS)
    hashes: tuple[MemberHash, ...] = ()
    for _ in range(PIN_ATTEMPTS):
        revision = await _lowest_revision(client, asked)
        if revision is None:
            return hashes
        hashes, compacted = await _hashes_at(client, asked, revision)
        if not compacted and len({h.compact_revision for h in hashes}) <= 1:
            return hashes
        if time.monotonic() + PIN_PAUSE >= deadline:
            break
        await asyncio.sleep(PIN_PAUSE)
    return hashes


async def with_hashes(client: EtcdClient, cluster: EtcdCluster) -> EtcdCluster:
    """The cluster with the HashKV of every reachable member at one pinned revision."""
    return replace(cluster, hashes=await pinned_hashes(client, cluster.members))


async def _lowest_revision(client: EtcdClient, members: Sequence[EtcdMember]) -> int | None:
    """The lowest current revision among the members that answer now: all of them have it."""
    answers = await asyncio.gather(
        *(client.status(m.endpoint or "") for m in members), return_exceptions=True
    )
    revisions = [a.header.revision for a in answers if not isinstance(a, BaseException)]
    return min(revisions) if revisions else None


async def _hashes_at(
    client: EtcdClient, members: Sequence[EtcdMember], revision: int
) -> tuple[tuple[MemberHash, ...], bool]:
    """(the hashes at `revision`, whether a member had already compacted past it)."""

    async def one(member: EtcdMember) -> MemberHash | str | None:
        try:
            answer = await client.hash_kv(member.endpoint or "", revision)
        except EtcdError as exc:
            return "compacted" if "compacted" in exc.detail else None
        return MemberHash(member.id, revision, answer.hash, answer.compact_revision)

    answers = await asyncio.gather(*(one(m) for m in members))
    hashes = tuple(a for a in answers if isinstance(a, MemberHash))
    return hashes, "compacted" in answers
