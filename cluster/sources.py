"""The one protocol a snapshot's parts are read under, and the one policy for a slow answer.

Each part (etcd, the nodes, the Kubernetes API) is a `Source`: `read(fresh)` gives the part,
`close()` stops whatever reads are still running. A refresh must never wait for a slow or
frozen peer it has heard from before, yet must never call a slow peer down either: only a
deadline does that. `LatestRead` holds that policy for one thing read again and again (a node,
the API, one etcd member's Status): the latest completed read is shown while a new read runs,
that value is marked slow once the read in flight has taken `slow_after` seconds, and the read
itself ends by its own deadline with an answer saying so (the peer's row then shows
unreachable). A read that raises is a defect, not the peer: it is kept as the latest value the
way `failed` words it, so one bad read never takes down a collection. `fresh` asks for a read
begun now and waits for it: a guard or a verification must not judge by an older answer.

While nothing of a cluster answers, the reads themselves space out (`next_wait`): a cockpit or
a fleet left open on a cluster that is down neither burns CPU nor keeps dialling a network that
is failing, and the first answer brings the usual pace back.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

from cluster.config import SLOW_ANSWER_SECONDS

BACKOFF_CAP_SECONDS = 30.0


def next_wait(
    waited: float, interval: float, answered: bool, cap: float = BACKOFF_CAP_SECONDS
) -> float:
    """The wait before the next read of a cluster: `interval` while it answers, twice the last
    wait for each read it did not, up to `cap` (never below `interval`)."""
    return interval if answered else min(max(waited, interval) * 2, max(cap, interval))


T = TypeVar("T")
Part = TypeVar("Part", covariant=True)


class Source(Protocol[Part]):
    """One part of a snapshot; Collector.collect assembles the parts."""

    async def read(self, fresh: bool) -> Part:
        """The part now; `fresh`: only answers given after this call began."""
        ...

    def close(self) -> None:
        """Stops the reads still running (before their connections are closed)."""
        ...


class LatestRead(Generic[T]):
    """One thing read again and again: its latest completed read and the newest read in flight.

    A read's answer becomes the latest unless a read begun after it has already answered, so an
    old call that ends late never hides a newer answer. `value` is None until a read completed.
    """

    def __init__(
        self,
        read: Callable[[], Awaitable[T]],
        failed: Callable[[Exception], T],
        slow: Callable[[T, float], T] | None = None,
        slow_after: float = SLOW_ANSWER_SECONDS,
    ) -> None:
        self._read = read
        self._failed = failed
        self._slow = slow  # None: the value has no way to say it is old
        self._slow_after = slow_after
        self._newest: asyncio.Task[T] | None = None
        self._running: set[asyncio.Task[T]] = set()  # every read not over, for close()
        self.value: T | None = None
        self._value_began = -math.inf  # when the read that gave `value` began
        self.began = -math.inf  # monotonic time the newest read began

    @property
    def in_flight(self) -> bool:
        return self._newest is not None and not self._newest.done()

    def start(self, since: float | None = None) -> asyncio.Task[T]:
        """The read in flight, or a new one. With `since`, a read begun before it is not
        joined; it is not cancelled either (someone may be waiting for it): it runs on to its
        own deadline while a new read is made."""
        task = self._newest
        if task is None or task.done() or (since is not None and self.began < since):
            began = time.monotonic()
            task = asyncio.ensure_future(self._keep(began))
            self._newest, self.began = task, began
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        return task

    async def _keep(self, began: float) -> T:
        try:
            value = await self._read()
        except Exception as exc:  # a defect, not the peer: its row says so, the others go on
            value = self._failed(exc)
        if began >= self._value_began:  # set before the task is seen done
            self.value, self._value_began = value, began
        return value

    async def latest(
        self, fresh: bool, grace: float = 0.0, patience: float | None = None
    ) -> T | None:
        """The latest value. `fresh`: a read begun now, waited for; never read: the read in
        flight waited for; otherwise the read in flight gets `grace` seconds before the
        previous value is shown (marked slow past `slow_after`). `patience` caps the waits
        (None: until the read ends, by its own deadline); cancelling the caller leaves the
        read running."""
        if fresh:
            self.start(since=time.monotonic())
        task = self._newest
        if task is not None and not task.done():
            timeout = patience if fresh or self.value is None else grace
            if timeout is None or timeout > 0:
                await asyncio.wait({task}, timeout=timeout)
        return self.shown()

    def shown(self) -> T | None:
        """The latest value, marked slow when a newer read has been awaited for long."""
        if self.value is None or self._slow is None or not self.in_flight:
            return self.value
        waited = time.monotonic() - self.began
        return self._slow(self.value, waited) if waited >= self._slow_after else self.value

    async def settled(self) -> None:
        """Until every read under way has ended (each ends by its own deadline)."""
        if self._running:
            await asyncio.wait(set(self._running))

    def close(self) -> None:
        """Cancels every read still running."""
        for task in self._running:
            task.cancel()
