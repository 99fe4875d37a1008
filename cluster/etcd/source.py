"""Collects the etcd part of a snapshot: MemberList from whoever answers first, Status from each.

All calls of one collection run concurrently under the client's deadline. A collection does not
wait for the slowest member up to that deadline: once the others have answered, a member still
silent gets a short grace (`STATUS_GRACE`, or twice as long as the first answer took); after it,
the member's row keeps its previous answer while its call runs on in the background to its own
deadline (the next collection joins that call instead of piling up another). So one frozen member
never slows the other rows, it is flagged as soon as its deadline passes, and a member that is
merely slower than the rest is never reported down: only a deadline makes a member unreachable.
A member never heard from before is waited for up to the deadline. Each member's Status calls are
a `LatestRead` (cluster.sources); only the grace is collective here, because the members are
sampled as one instant (MemberList's hedging below is its own policy).

A fresh collection (`read(fresh=True)`: guards, verifications, `act`, `report`) shows no
previous answer: every member's Status is awaited until it answers or its deadline passes, and a
call joined from an earlier collection only if it started after the fresh one began (an older
one is left to run out and a new call is made), so a guard never counts a member healthy on
what it said before it froze.

A member's error is its own: a client URL that cannot be dialled (etcd accepts port 237900 or an
empty port) is that member's BAD_URL error, and the other rows update as usual.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable
from dataclasses import replace

from cluster.etcd.client import EtcdClient, EtcdError, target_of
from cluster.etcd.proto import etcd_rpc_pb2 as pb
from cluster.model import EtcdCluster, EtcdMember
from cluster.sources import LatestRead

NOT_STARTED = "not started: registered, but the member never joined (no name, no client URL)"
STATUS_GRACE = 0.4  # seconds a silent member may hold a collection once another answered
ALARM_ERROR = re.compile(r"memberID:(\d+) alarm:([A-Z]+)")
MEMBER_LIST_HEDGE = 0.1  # seconds the last MemberList answerer gets before all are asked

Status = pb.StatusResponse | EtcdError


class EtcdSource:
    """Reads the etcd cluster through configured endpoints plus every member's own client URL;
    a `Source` (cluster.sources) of the etcd part."""

    def __init__(
        self, client: EtcdClient, endpoints: Iterable[str], grace: float = STATUS_GRACE
    ) -> None:
        self.client = client
        self.endpoints = tuple(endpoints)
        self.grace = grace
        self._status: dict[str, LatestRead[Status]] = {}  # endpoint -> its Status calls
        self._member_list_from: str | None = None  # who answered MemberList last time

    async def read(self, fresh: bool) -> EtcdCluster:
        """The cluster as the members report it; `fresh`: only answers given during this
        collection (see the module docstring)."""
        endpoints = list(self.endpoints)
        started = time.monotonic()
        since = started if fresh else None
        statuses = {e: self._status_call(e, since) for e in endpoints}
        members_answer, list_error = await self._first_member_list(endpoints)
        if members_answer is None:
            results = await self._answers(statuses, started, fresh)
            return EtcdCluster(
                members=tuple(
                    _member_without_list(endpoint, results[endpoint]) for endpoint in endpoints
                ),
                error=f"no endpoint answered MemberList: {list_error}",
            )
        for member in members_answer.members:
            endpoint = _client_url(member)
            if endpoint and endpoint not in statuses:
                statuses[endpoint] = self._status_call(endpoint, since)
        results = await self._answers(statuses, started, fresh)
        members = tuple(
            _merge(member, results.get(_client_url(member) or ""))
            for member in members_answer.members
        )
        alarms = _alarms(statuses.values())
        return EtcdCluster(
            members=tuple(sorted(members, key=lambda m: (m.name == "", m.name, m.id))),
            cluster_id=members_answer.header.cluster_id,
            alarms=alarms,
        )

    def _status_call(self, endpoint: str, since: float | None = None) -> asyncio.Task[Status]:
        """The member's Status call still running from an earlier collection, or a new one;
        with `since`, only a call started at or after it is joined (see LatestRead.start)."""
        calls = self._status.get(endpoint)
        if calls is None:
            calls = LatestRead(
                lambda: self.client.status(endpoint), lambda exc: _status_error(endpoint, exc)
            )
            self._status[endpoint] = calls
        return calls.start(since)

    async def _answers(
        self, statuses: dict[str, asyncio.Task[Status]], started: float, fresh: bool
    ) -> dict[str, Status]:
        """Every member's latest answer: a still-silent member only gets a grace beyond the
        first answer, then shows its previous answer until its own call ends (deadline).
        `fresh`: every call is awaited, each ends by the client's deadline."""
        unknown = [
            t
            for e, t in statuses.items()
            if not t.done() and (fresh or self._status[e].value is None)
        ]
        if unknown:
            await asyncio.wait(unknown)  # each call ends by the client's deadline
        pending = {t for t in statuses.values() if not t.done()}
        if pending and len(pending) == len(statuses):
            _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        if pending:
            grace = max(self.grace, 2 * (time.monotonic() - started))
            await asyncio.wait(pending, timeout=grace)
        for endpoint in [e for e in self._status if e not in statuses]:
            self._status.pop(endpoint).close()  # a member no longer listed
        answers: dict[str, Status] = {}
        for endpoint, task in statuses.items():
            # A call another collection has since replaced is still this collection's own answer.
            answer = task.result() if task.done() else self._status[endpoint].value
            assert answer is not None  # a member never heard from was waited for
            answers[endpoint] = answer
        return answers

    def close(self) -> None:
        """Stops the calls still running in the background (before closing the client)."""
        for calls in self._status.values():
            calls.close()
        self._status.clear()

    async def _first_member_list(
        self, endpoints: list[str]
    ) -> tuple[pb.MemberListResponse | None, str | None]:
        """The first answer; the rest are cancelled. The endpoint that answered last time is
        asked alone first (a warm refresh then costs one call, not one per member), and every
        endpoint is asked as soon as it fails or has not answered within MEMBER_LIST_HEDGE."""
        asked: dict[asyncio.Future[pb.MemberListResponse], str] = {}

        def ask(chosen: Iterable[str]) -> None:
            for endpoint in chosen:
                if endpoint not in asked.values():
                    asked[asyncio.ensure_future(self.client.member_list(endpoint))] = endpoint

        preferred = self._member_list_from if self._member_list_from in endpoints else None
        ask([preferred] if preferred else endpoints)
        heard: set[asyncio.Future[pb.MemberListResponse]] = set()
        errors: list[str] = []
        try:
            while pending := set(asked) - heard:
                hedging = len(asked) < len(endpoints)
                done, _ = await asyncio.wait(
                    pending,
                    timeout=MEMBER_LIST_HEDGE if hedging else None,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                heard |= done
                for task in done:
                    if (exc := task.exception()) is None:
                        self._member_list_from = asked[task]
                        return task.result(), None
                    errors.append(str(exc))
                if hedging:
                    ask(endpoints)
        finally:
            for task in heard:  # answered in the same round as the winner: errors read too
                _consume_outcome(task)
            for task in set(asked) - heard:  # raced out: cancelled, their outcome consumed
                task.cancel()
                task.add_done_callback(_consume_outcome)
        return None, "; ".join(errors) or "no endpoints configured"


def _alarms(statuses: Iterable[asyncio.Task[Status]]) -> tuple[tuple[int, str], ...]:
    """(member ID, alarm) as the members that answered just now list them in their Status
    errors ("memberID:… alarm:NOSPACE"), from their own alarm store. Asking AlarmList instead
    would cost a raft proposal (an entry in every member's log) per refresh, and get no answer
    without a leader."""
    answered = [
        status
        for task in statuses
        if task.done() and isinstance(status := task.result(), pb.StatusResponse)
    ]
    found = {
        (int(match[1]), match[2])
        for status in answered
        for error in status.errors
        if (match := ALARM_ERROR.search(error))
    }
    return tuple(sorted(found))


def _status_error(endpoint: str, exc: Exception) -> EtcdError:
    """A Status call's failure as the member's row shows it: etcd's own error as it is, a
    defect under gRPC's UNKNOWN code (that member's row, the others go on)."""
    if isinstance(exc, EtcdError):
        return exc
    return EtcdError(endpoint, "UNKNOWN", f"reading the member failed: {exc!r}")


def _consume_outcome(task: asyncio.Future) -> None:
    """A call raced out by a faster answer: its result or error is of no interest."""
    if not task.cancelled():
        task.exception()


def _client_url(member: pb.Member) -> str | None:
    """The client URL to ask: the first https one that can be dialled, else the one whose
    error the member's row shows (etcd accepts URLs kcockpit cannot dial, see target_of)."""
    urls = [u for u in member.clientURLs if u.startswith("https://")] or list(member.clientURLs)
    return next((u for u in urls if _dialable(u)), urls[0] if urls else None)


def _dialable(url: str) -> bool:
    try:
        target_of(url)
    except EtcdError:
        return False
    return True


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
