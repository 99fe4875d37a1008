"""Scrapes every member's `/metrics` on its client URL and keeps a bounded history of each.

etcd serves its Prometheus page on every client URL, behind the same client-certificate check
as its gRPC API, so the cockpit reads it with the certificate it already has: one HTTPS
session kept open, one GET per member every `[etcd] metrics_interval` seconds, each under the
etcd deadline and a size cap (a page past `MAX_PAGE_BYTES` is refused unread, not parsed).

A member's scrapes are a `LatestRead` (cluster.sources) and a collection never waits for one:
it starts the scrapes that are due and shows the figures of the history it has, so a member
whose page is slow or huge never holds the etcd pane. Only a fresh collection (`report`,
guards) waits, and only for a member never scraped that answered its Status, up to the
deadline. A member's figures (cluster.etcd.rates) are computed again only when its history or
its error changed, not on every refresh.
"""

from __future__ import annotations

import asyncio
import math
import ssl
import time
from collections import deque
from dataclasses import dataclass

import aiohttp

from cluster.config import EtcdConfig, Thresholds
from cluster.etcd.metrics import MetricsSample, parse_page
from cluster.etcd.rates import figures
from cluster.model import EtcdCluster, MemberMetrics
from cluster.sources import LatestRead

MAX_PAGE_BYTES = 2 * 1024**2  # etcd's page is ~160 kB; ten times that is not a metrics page
MAX_HISTORY = 2000  # samples per member, whatever the interval and window
KEEPALIVE_SECONDS = 60.0


class MetricsError(Exception):
    """A scrape that gave no page: the member's figures say why."""


@dataclass(frozen=True)
class Scrape:
    """How a member's latest scrape ended: None, or what went wrong."""

    error: str | None = None


class MetricsSource:
    """Every member's `/metrics` (see the module docstring); `read` gives the figures of each
    member of the etcd part just read, `close` (awaited) stops the scrapes and the session."""

    def __init__(
        self, config: EtcdConfig, thresholds: Thresholds, max_bytes: int = MAX_PAGE_BYTES
    ) -> None:
        self.config = config
        self.thresholds = thresholds
        self.max_bytes = max_bytes
        span = max(thresholds.metrics_long_window, thresholds.metrics_rate_window)
        self.history_limit = min(MAX_HISTORY, math.ceil(span / config.metrics_interval) + 2)
        self._session: aiohttp.ClientSession | None = None
        self._reads: dict[str, LatestRead[Scrape]] = {}
        self._history: dict[str, deque[MetricsSample]] = {}
        self._figures: dict[str, tuple[tuple[object, ...], MemberMetrics]] = {}

    async def read(self, etcd: EtcdCluster, fresh: bool) -> tuple[MemberMetrics, ...]:
        """The figures of every member with a client URL; the scrapes that are due start now.
        `fresh`: a member never scraped is waited for (up to the deadline), unless its Status
        just went unanswered: a frozen member must not cost a report a second deadline."""
        members = [(m.ref, m.endpoint) for m in etcd.members if m.endpoint]
        reachable = {m.endpoint for m in etcd.members if m.reachable}
        now = time.monotonic()
        never = []
        for _, endpoint in members:
            reads = self._reads_of(endpoint)
            if now - reads.began >= self.config.metrics_interval:
                task = reads.start()
                if reads.value is None and endpoint in reachable:
                    never.append(task)
        if fresh and never:
            await asyncio.wait(never)  # each ends by its own deadline
        for endpoint in [e for e in self._reads if e not in {e for _, e in members}]:
            self._reads.pop(endpoint).close()  # a member no longer listed
            self._history.pop(endpoint, None)
            self._figures.pop(endpoint, None)
        return tuple(self._member_figures(ref, endpoint) for ref, endpoint in members)

    def scraping(self, endpoint: str) -> bool:
        """Whether a scrape of the member is under way (a refresh never waits for it)."""
        reads = self._reads.get(endpoint)
        return reads is not None and reads.in_flight

    def _reads_of(self, endpoint: str) -> LatestRead[Scrape]:
        reads = self._reads.get(endpoint)
        if reads is None:
            reads = LatestRead(lambda: self._scrape(endpoint), lambda exc: Scrape(repr(exc)))
            self._reads[endpoint] = reads
            self._history[endpoint] = deque(maxlen=self.history_limit)
        return reads

    def _member_figures(self, ref: str, endpoint: str) -> MemberMetrics:
        history = self._history[endpoint]
        latest = self._reads[endpoint].value
        error = latest.error if latest is not None else None
        key = (ref, error, history[-1] if history else None)
        known = self._figures.get(endpoint)
        if known is not None and known[0] == key:
            return known[1]
        t = self.thresholds
        result = figures(
            ref, endpoint, list(history), t.metrics_rate_window, t.metrics_long_window, error
        )
        self._figures[endpoint] = (key, result)
        return result

    async def _scrape(self, endpoint: str) -> Scrape:
        try:
            page = await self.fetch(endpoint)
            sample = parse_page(page, time.time())
        except MetricsError as exc:
            return Scrape(str(exc))
        except ValueError as exc:  # the parser's words: not a Prometheus page
            return Scrape(f"not a metrics page: {exc}")
        self._history[endpoint].append(sample)
        return Scrape()

    async def fetch(self, endpoint: str) -> str:
        """The member's page, whole, within the deadline and the size cap; MetricsError else."""
        url = f"{endpoint.rstrip('/')}/metrics"
        timeout = self.config.timeout
        try:
            async with asyncio.timeout(timeout), self._client().get(url) as response:
                if response.status != 200:
                    raise MetricsError(f"{url}: HTTP {response.status} {response.reason or ''}")
                if (response.content_length or 0) > self.max_bytes:
                    raise MetricsError(f"{url}: page of {response.content_length} bytes refused")
                chunks, size = [], 0
                async for chunk in response.content.iter_chunked(64 * 1024):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise MetricsError(f"{url}: page larger than {self.max_bytes} bytes")
                    chunks.append(chunk)
        except TimeoutError:
            raise MetricsError(f"{url}: no answer within {timeout:g} s") from None
        except (aiohttp.ClientError, OSError, ssl.SSLError) as exc:
            raise MetricsError(f"{url}: {exc}") from None
        return b"".join(chunks).decode("utf-8", errors="replace")

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            tls = self.config.tls
            context = ssl.create_default_context(cafile=str(tls.ca))  # OSError: fetch says
            context.load_cert_chain(str(tls.cert), str(tls.key))
            # One connection per member, kept from one scrape to the next (the interval is
            # under the keep-alive), and a TLS connection the peer dropped is aborted rather
            # than left waiting for its close_notify: a long-running cockpit holds no more.
            connector = aiohttp.TCPConnector(
                ssl=context,
                limit_per_host=1,
                keepalive_timeout=KEEPALIVE_SECONDS,
                enable_cleanup_closed=True,
            )
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def settled(self) -> None:
        """Until every scrape under way has ended (each ends by its own deadline)."""
        await asyncio.gather(*(reads.settled() for reads in self._reads.values()))

    def close(self) -> None:
        """Stops the scrapes still running (the session is closed by `aclose`)."""
        for reads in self._reads.values():
            reads.close()

    async def aclose(self) -> None:
        self.close()
        if self._session is not None:
            await self._session.close()
            self._session = None
