"""An event loop of its own, on its own thread, for everything that talks to the cluster.

SSH packet handling, TLS and JSON parsing of a refresh would otherwise run on the UI's loop,
where a key pressed during a refresh waits for them. The collector (and every action, which
borrows its connections) lives on this loop; the app awaits results across threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class BackgroundLoop:
    def __init__(self, name: str = "kcockpit-collector") -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    async def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Runs `coroutine` on the background loop and awaits its result from the caller's loop;
        cancelling the caller cancels it there too."""
        return await asyncio.wrap_future(self.submit(coroutine))

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Starts `coroutine` on the background loop now; its result is for later."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def stop(self, timeout: float = 3.0) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout)
