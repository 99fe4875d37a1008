"""LatestRead, the one slow-answer policy of every source, on real coroutines: the test answers
each read itself, so "slow" is a read not yet answered, never a timed sleep."""

import asyncio

from cluster.sources import LatestRead, next_wait


class Peer:
    """Something read again and again; every read waits until the test answers it."""

    def __init__(self) -> None:
        self.asks: list[asyncio.Future[str]] = []
        self._asked = asyncio.Condition()

    async def read(self) -> str:
        answer = asyncio.get_running_loop().create_future()
        async with self._asked:
            self.asks.append(answer)
            self._asked.notify_all()
        return await answer

    async def asked(self, times: int) -> None:
        """Until `times` reads have begun."""
        async with self._asked:
            await self._asked.wait_for(lambda: len(self.asks) >= times)

    def answer(self, ask: int, value: str | Exception) -> None:
        if isinstance(value, Exception):
            self.asks[ask].set_exception(value)
        else:
            self.asks[ask].set_result(value)


def reads_of(peer: Peer, slow_after: float = 0.0) -> LatestRead[str]:
    return LatestRead(
        peer.read,
        failed=lambda exc: f"failed: {exc}",
        slow=lambda value, waited: f"{value} (slow)",
        slow_after=slow_after,
    )


async def first_read(peer: Peer, reads: LatestRead[str], answer: str) -> None:
    """The first read of `reads`, answered with `answer` (a never-read value is waited for)."""
    reads.start()
    latest = asyncio.ensure_future(reads.latest(fresh=False))
    await peer.asked(len(peer.asks) + 1)
    peer.answer(len(peer.asks) - 1, answer)
    assert await latest == answer


async def test_a_read_slower_than_its_grace_shows_the_previous_value_marked_slow() -> None:
    peer = Peer()
    marked, patient = reads_of(peer), reads_of(peer, slow_after=3600.0)
    await first_read(peer, marked, "one")
    await first_read(peer, patient, "one")
    marked.start()  # the next reads, unanswered
    patient.start()
    await peer.asked(4)
    assert await marked.latest(fresh=False, grace=0.0) == "one (slow)"
    assert await patient.latest(fresh=False, grace=0.0) == "one"  # slow, not for long yet
    peer.answer(2, "two")
    await marked.settled()
    assert await marked.latest(fresh=False) == "two"  # nothing in flight: not slow
    patient.close()


async def test_a_fresh_read_waits_for_a_read_begun_after_it_was_asked() -> None:
    peer = Peer()
    reads = reads_of(peer)
    await first_read(peer, reads, "one")
    older = reads.start()  # begun before the question: not the present
    fresh = asyncio.ensure_future(reads.latest(fresh=True))
    await peer.asked(3)  # the fresh read made its own call
    peer.answer(1, "before")
    assert await older == "before"
    assert not fresh.done()
    peer.answer(2, "now")
    assert await fresh == "now"


async def test_an_old_read_ending_late_never_hides_a_newer_answer() -> None:
    peer = Peer()
    reads = reads_of(peer)
    older = reads.start()
    newer = asyncio.ensure_future(reads.latest(fresh=True))
    await peer.asked(2)
    peer.answer(1, "new")
    assert await newer == "new"
    peer.answer(0, "old")
    assert await older == "old"  # its own caller still gets it
    assert await reads.latest(fresh=False) == "new"


async def test_a_failed_read_keeps_its_error_as_the_latest() -> None:
    peer = Peer()
    reads = reads_of(peer)
    await first_read(peer, reads, "one")
    read = reads.start()
    await peer.asked(2)
    peer.answer(1, RuntimeError("the read broke"))
    assert await read == "failed: the read broke"
    assert await reads.latest(fresh=False) == "failed: the read broke"


async def test_a_cancelled_caller_leaves_the_read_running() -> None:
    peer = Peer()
    reads = reads_of(peer)
    waiter = asyncio.ensure_future(reads.latest(fresh=True))
    await peer.asked(1)
    waiter.cancel()
    await asyncio.wait({waiter})
    assert reads.in_flight
    peer.answer(0, "one")
    await reads.settled()
    assert reads.value == "one"


async def test_close_cancels_every_read_and_leaves_no_task() -> None:
    peer = Peer()
    reads = reads_of(peer)
    older = reads.start()
    newer = reads.start(since=reads.began + 1)  # a second read while the first runs on
    await peer.asked(2)
    reads.close()
    await asyncio.wait({older, newer})
    assert older.cancelled() and newer.cancelled()
    assert all(ask.cancelled() for ask in peer.asks)  # the reads themselves were stopped
    assert not reads.in_flight and reads.value is None
    assert not [t for t in asyncio.all_tasks() if t in (older, newer)]
    await reads.settled()  # nothing left to wait for


def test_a_cluster_that_does_not_answer_is_read_less_and_less_often_until_it_answers() -> None:
    waits, wait = [], 5.0
    for _ in range(5):
        wait = next_wait(wait, 5.0, answered=False)
        waits.append(wait)
    assert waits == [10.0, 20.0, 30.0, 30.0, 30.0]  # doubled, up to the cap
    assert next_wait(wait, 5.0, answered=True) == 5.0  # the first answer: the usual pace
    assert next_wait(60.0, 60.0, answered=False) == 60.0  # a pace above the cap stays
