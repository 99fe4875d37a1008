"""When the cockpit reads the cluster next.

One task waits, refreshes, and only then waits again: a one-shot timer re-armed when the
refresh it fired has finished, not an interval. Refreshes therefore never overlap, however
slowly the cluster answers, and a slow one is not followed by a burst of catch-up ticks. While
no etcd member answers, the waits back off (`cluster.sources.next_wait`, as the fleet's
clusters do); the first answer brings the operator's interval back. A refresh asked for (the operator's `r`, the re-read after an
action) waits for none of that: it runs at once, or right after the one under way.

The scheduler knows nothing of snapshots or screens: it is handed a refresh that says whether
the cluster answered, so it runs the same under the app and in a test.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from cluster.sources import BACKOFF_CAP_SECONDS, next_wait

# One refresh: `fresh` asks every source anew instead of taking its latest read; the answer
# says whether any etcd member answered (False backs the next wait off).
Refresh = Callable[[bool], Awaitable[bool]]


class RefreshScheduler:
    """Runs `refresh` now and then every `interval` seconds, backing off while unanswered.

    `delay` is the wait chosen for before the next timed refresh: `interval` while the cluster
    answers, doubled per unanswered refresh up to `cap` (never below `interval`). A refresh
    that raises is handed to `on_error` and counts as unanswered; the next one is still due.
    """

    def __init__(
        self,
        refresh: Refresh,
        interval: float,
        on_error: Callable[[Exception], None],
        cap: float = BACKOFF_CAP_SECONDS,
    ) -> None:
        self.interval = interval
        self.cap = max(cap, interval)
        self.delay = interval
        self._refresh = refresh
        self._on_error = on_error
        self._asked = asyncio.Event()
        self._fresh = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """The first refresh at once, the next ones on the timer (on the running loop)."""
        if self._task is None:
            self.now()
            self._task = asyncio.create_task(self._run(), name="kcockpit-refresh")

    async def stop(self) -> None:
        """No more refreshes; one under way is cancelled."""
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def now(self, fresh: bool = False) -> None:
        """A refresh at once, whatever the back-off; if one is under way, right after it."""
        self._fresh = self._fresh or fresh
        self._asked.set()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.delay):
                    await self._asked.wait()
            self._asked.clear()
            fresh, self._fresh = self._fresh, False
            try:
                answered = await self._refresh(fresh)
            except Exception as exc:
                self._on_error(exc)
                answered = False
            self.delay = next_wait(self.delay, self.interval, answered, self.cap)
