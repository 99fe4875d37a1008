"""The refresh scheduler (tui/refresh.py) on real collectors: a slow refresh delays the next one
instead of overlapping it, the wait doubles while no etcd member answers and comes back on the
first answer, and a refresh asked for runs at once whatever the back-off.

Intervals are asserted as the scheduler chose them, never as wall-clock time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from itertools import pairwise
from pathlib import Path

import pytest

from cluster.collect import Collector
from cluster.config import Config, parse_config
from tests.helpers import eventually
from tui.refresh import RefreshScheduler

WAIT_SECONDS = 15.0


async def answered(collector: Collector, fresh: bool) -> bool:
    """The cockpit's refresh, as the scheduler sees it: did any etcd member answer?"""
    snapshot = await collector.collect(fresh)
    return any(member.reachable for member in snapshot.etcd.members)


def unreachable_config(tmp_path: Path) -> Config:
    """A cluster nobody answers for: a port nothing listens on, certificates that do not exist."""
    return parse_config(
        {
            "name": "unreachable",
            "etcd": {
                "endpoints": ["https://127.0.0.1:1"],
                "ca": "missing-ca.crt",
                "cert": "missing.crt",
                "key": "missing.key",
            },
        },
        base=tmp_path,
    )


@pytest.fixture()
async def unreachable(tmp_path: Path) -> AsyncIterator[Collector]:
    collector = Collector(unreachable_config(tmp_path))
    yield collector
    await collector.close()


@pytest.fixture()
async def silent_endpoint() -> AsyncIterator[str]:
    """An etcd endpoint that accepts connections and never says a word: every call to it
    lasts until its deadline."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    server.close()


async def test_a_slow_refresh_delays_the_next_instead_of_overlapping_it(
    config: Config, silent_endpoint: str
) -> None:
    etcd = replace(config.etcd, endpoints=(silent_endpoint,), timeout=0.3)
    collector = Collector(replace(config, etcd=etcd, nodes=(), kube=None))
    spans: list[tuple[float, float, bool]] = []
    busy = most_at_once = 0
    errors: list[Exception] = []
    three = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def refresh(fresh: bool) -> bool:
        nonlocal busy, most_at_once
        started = loop.time()
        busy += 1
        most_at_once = max(most_at_once, busy)
        if not spans:  # the operator's `r` during the slow one: after it, never beside it
            scheduler.now(fresh=True)
        try:
            return await answered(collector, fresh)
        finally:
            busy -= 1
            spans.append((started, loop.time(), fresh))
            if len(spans) == 3:
                three.set()

    scheduler = RefreshScheduler(refresh, interval=0.01, on_error=errors.append)
    scheduler.start()
    try:
        await asyncio.wait_for(three.wait(), WAIT_SECONDS)
    finally:
        await scheduler.stop()
        await collector.close()
    assert not errors
    assert most_at_once == 1, "two refreshes ran at once"
    assert all(end <= start for (_, end, _), (start, _, _) in pairwise(spans))
    assert spans[0][1] - spans[0][0] > scheduler.interval  # slow indeed: the timer came due
    assert [fresh for _, _, fresh in spans[:2]] == [False, True]


async def test_the_wait_doubles_while_no_member_answers_and_resets_on_the_first_answer(
    collector: Collector, unreachable: Collector
) -> None:
    """Four refreshes nobody answers, then the lab answers: each refresh notes the wait that
    came before it."""
    answers = [unreachable] * 4 + [collector] * 2
    waits: list[float] = []
    errors: list[Exception] = []
    seventh = asyncio.Event()

    async def refresh(fresh: bool) -> bool:
        waits.append(scheduler.delay)
        if len(waits) == 7:
            seventh.set()
        return await answered(answers[min(len(waits), len(answers)) - 1], fresh)

    scheduler = RefreshScheduler(refresh, interval=0.02, on_error=errors.append, cap=0.08)
    scheduler.start()
    try:
        await asyncio.wait_for(seventh.wait(), WAIT_SECONDS)
    finally:
        await scheduler.stop()
    assert not errors
    assert waits[:7] == [0.02, 0.04, 0.08, 0.08, 0.08, 0.02, 0.02]


async def test_a_refresh_asked_for_runs_at_once_during_back_off(unreachable: Collector) -> None:
    calls: list[tuple[bool, float]] = []
    errors: list[Exception] = []
    second = asyncio.Event()

    async def refresh(fresh: bool) -> bool:
        calls.append((fresh, scheduler.delay))
        if len(calls) == 2:
            second.set()
        return await answered(unreachable, fresh)

    async def backed_off_to(seconds: float) -> bool:
        return scheduler.delay == seconds

    scheduler = RefreshScheduler(refresh, interval=30, on_error=errors.append, cap=600)
    scheduler.start()
    try:
        await eventually(lambda: backed_off_to(60), what="the first back-off")
        scheduler.now(fresh=True)  # the operator's `r`: a minute before the timer is due
        await asyncio.wait_for(second.wait(), WAIT_SECONDS)
        await eventually(lambda: backed_off_to(120), what="the back-off kept")
    finally:
        await scheduler.stop()
    assert not errors
    assert calls == [(False, 30), (True, 60)]
