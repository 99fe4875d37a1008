"""Collects the etcd part of a snapshot: MemberList from whoever answers first, Status from each.

All calls of one collection run concurrently under the client's deadline, so a collection takes
as long as the slowest member (at most the deadline), not the sum; a frozen or dead member
becomes an unreachable row carrying its error, never a stall.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import replace

from cluster.etcd.client import EtcdClient, EtcdError
from cluster.etcd.proto import etcd_rpc_pb2 as pb
from cluster.model import EtcdCluster, EtcdMember

NOT_STARTED = "not started: registered, but the member never joined (no name, no client URL)"


class EtcdSource:
    """Reads the etcd cluster through configured endpoints plus every member's own client URL."""

    def __init__(self, client: EtcdClient, endpoints: Iterable[str]) -> None:
        self.client = client
        self.endpoints = tuple(endpoints)

    async def collect(self) -> EtcdCluster:
        endpoints = list(self.endpoints)
        statuses = {e: asyncio.ensure_future(self._status(e)) for e in endpoints}
        members_answer, list_error = await self._first_member_list(endpoints)
        if members_answer is None:
            results = {e: await task for e, task in statuses.items()}
            return EtcdCluster(
                members=tuple(
                    _member_without_list(endpoint, results[endpoint]) for endpoint in endpoints
                ),
                error=f"no endpoint answered MemberList: {list_error}",
            )
        for member in members_answer.members:
            endpoint = _client_url(member)
            if endpoint and endpoint not in statuses:
                statuses[endpoint] = asyncio.ensure_future(self._status(endpoint))
        results = {e: await task for e, task in statuses.items()}
        members = tuple(
            _merge(member, results.get(_client_url(member) or ""))
            for member in members_answer.members
        )
        alarms = await self._alarms(members)
        return EtcdCluster(
            members=tuple(sorted(members, key=lambda m: (m.name == "", m.name, m.id))),
            cluster_id=members_answer.header.cluster_id,
            alarms=alarms,
        )

    async def _status(self, endpoint: str) -> pb.StatusResponse | EtcdError:
        try:
            return await self.client.status(endpoint)
        except EtcdError as exc:
            return exc

    async def _first_member_list(
        self, endpoints: list[str]
    ) -> tuple[pb.MemberListResponse | None, str | None]:
        """Asks every endpoint at once and takes the first answer; the rest are cancelled."""
        pending = {asyncio.ensure_future(self.client.member_list(e)) for e in endpoints}
        errors: list[str] = []
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                answers = []
                for task in done:
                    if (exc := task.exception()) is None:
                        answers.append(task.result())
                    else:
                        errors.append(str(exc))
                if answers:
                    return answers[0], None
        finally:
            for task in pending:
                task.cancel()
                task.add_done_callback(_consume_outcome)
        return None, "; ".join(errors) or "no endpoints configured"

    async def _alarms(self, members: tuple[EtcdMember, ...]) -> tuple[tuple[int, str], ...]:
        for member in members:
            if member.reachable and member.endpoint:
                try:
                    answer = await self.client.alarms(member.endpoint)
                except EtcdError:
                    continue
                return tuple((a.memberID, pb.AlarmType.Name(a.alarm)) for a in answer.alarms)
        return ()


def _consume_outcome(task: asyncio.Future) -> None:
    """A call raced out by a faster answer: its result or error is of no interest."""
    if not task.cancelled():
        task.exception()


def _client_url(member: pb.Member) -> str | None:
    urls = [u for u in member.clientURLs if u.startswith("https://")] or list(member.clientURLs)
    return urls[0] if urls else None


def _merge(member: pb.Member, status: pb.StatusResponse | EtcdError | None) -> EtcdMember:
    endpoint = _client_url(member)
    base = EtcdMember(
        id=member.ID,
        name=member.name,
        endpoint=endpoint,
        peer_urls=tuple(member.peerURLs),
        is_learner=member.isLearner,
    )
    if status is None:
        return replace(base, error=NOT_STARTED)
    if isinstance(status, EtcdError):
        return replace(base, error=status.short)
    return _with_status(base, status)


def _member_without_list(endpoint: str, status: pb.StatusResponse | EtcdError) -> EtcdMember:
    """A row for a configured endpoint when no MemberList answer is available."""
    if isinstance(status, EtcdError):
        return EtcdMember(id=0, name="", endpoint=endpoint, error=status.short)
    base = EtcdMember(
        id=status.header.member_id, name="", endpoint=endpoint, is_learner=status.isLearner
    )
    return _with_status(base, status)


def _with_status(base: EtcdMember, status: pb.StatusResponse) -> EtcdMember:
    return replace(
        base,
        reachable=True,
        version=status.version,
        db_size=status.dbSize,
        db_size_in_use=status.dbSizeInUse,
        leader_id=status.leader,
        raft_term=status.raftTerm,
        raft_index=status.raftIndex,
        raft_applied_index=status.raftAppliedIndex,
        revision=status.header.revision,
        errors=tuple(status.errors),
        is_learner=status.isLearner or base.is_learner,
    )
