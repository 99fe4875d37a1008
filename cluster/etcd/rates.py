"""Rates and quantiles over a window of consecutive scrapes, as Prometheus computes them.

A counter's increase over a window adds the differences of consecutive samples, and a sample
lower than the one before is a restart (the counter began again at 0), so it counts whole.
A histogram's p99 is `histogram_quantile(0.99, rate(x_bucket[w]))`: every bucket's increase
over the window, then the rank's bucket found and interpolated linearly inside it, the lowest
bucket starting at 0 and a rank in the +Inf bucket answered with the highest finite bound.
No extrapolation to the window's edges: the window is the span of the samples it holds.
Everything here is pure, for unit tests on real parsed pages.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Sequence

from cluster.etcd.metrics import (
    COMMIT,
    DB_IN_USE,
    DB_SIZE,
    FSYNC,
    HAS_LEADER,
    LEADER_CHANGES,
    PROPOSALS_APPLIED,
    PROPOSALS_FAILED,
    QUOTA,
    Buckets,
    MetricsSample,
)
from cluster.model import FailedCalls, MemberMetrics, MetricsTrend

TREND_POINTS = 60  # points a sparkline draws: 5 minutes at the default 5 s metrics interval
MIN_GROWTH_SPAN = 30.0  # seconds of DB sizes before a growth rate is told


def increase(values: Sequence[float]) -> float:
    """How much a counter rose across `values` (consecutive samples), restarts included."""
    return sum(b - a if b >= a else b for a, b in itertools.pairwise(values))


def bucket_increase(histograms: Sequence[Buckets]) -> Buckets:
    """Every bucket's increase across consecutive samples of one histogram; a bucket missing
    from a sample (the member restarted with other buckets) counts from that sample on."""
    if not histograms:
        return ()
    bounds = [bound for bound, _ in histograms[-1]]
    series: dict[float, list[float]] = {bound: [] for bound in bounds}
    for histogram in histograms:
        for bound, count in histogram:
            if bound in series:
                series[bound].append(count)
    return tuple((bound, increase(series[bound])) for bound in bounds)


def quantile(q: float, buckets: Buckets) -> float | None:
    """`histogram_quantile(q, …)` over cumulative buckets sorted by bound; None with no
    observation or without a +Inf bucket (Prometheus answers NaN)."""
    if len(buckets) < 2 or not math.isinf(buckets[-1][0]):
        return None
    counts = list(itertools.accumulate((c for _, c in buckets), max))  # made monotonic
    observations = counts[-1]
    if observations <= 0:
        return None
    rank = q * observations
    b = next(i for i, count in enumerate(counts) if count >= rank)
    if b == len(buckets) - 1:
        return buckets[-2][0]
    if b == 0 and buckets[0][0] <= 0:
        return buckets[0][0]
    start, end, count = 0.0, buckets[b][0], counts[b]
    if b > 0:
        start = buckets[b - 1][0]
        count -= counts[b - 1]
        rank -= counts[b - 1]
    return start + (end - start) * (rank / count)


def p99(samples: Sequence[MetricsSample], key: str) -> float | None:
    """The p99 of one histogram over the samples' span."""
    return quantile(
        0.99, bucket_increase([s.histograms[key] for s in samples if key in s.histograms])
    )


def peer_p99s(samples: Sequence[MetricsSample]) -> tuple[tuple[str, float], ...]:
    """(peer ID, p99 of its round trips) over the samples' span, for every peer with one."""
    found = []
    for peer in sorted({peer for s in samples for peer in s.peers}):
        value = quantile(0.99, bucket_increase([s.peers[peer] for s in samples if peer in s.peers]))
        if value is not None:
            found.append((peer, value))
    return tuple(found)


def rate(samples: Sequence[MetricsSample], name: str) -> float | None:
    """Per second over the samples' span; None under two samples."""
    points = [(s.at, s.scalars[name]) for s in samples if name in s.scalars]
    if len(points) < 2 or points[-1][0] <= points[0][0]:
        return None
    return increase([v for _, v in points]) / (points[-1][0] - points[0][0])


def slope(points: Sequence[tuple[float, float]]) -> float | None:
    """The least-squares slope of (time, value) points, as `deriv`/`predict_linear` fit it."""
    if len(points) < 2:
        return None
    mean_t = sum(t for t, _ in points) / len(points)
    mean_v = sum(v for _, v in points) / len(points)
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return None
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / spread


def within(samples: Sequence[MetricsSample], seconds: float) -> Sequence[MetricsSample]:
    """The samples of the last `seconds` before the newest one."""
    if not samples:
        return samples
    since = samples[-1].at - seconds
    return [s for s in samples if s.at >= since]


def figures(
    member: str,
    endpoint: str,
    samples: Sequence[MetricsSample],
    rate_window: float,
    long_window: float,
    error: str | None = None,
) -> MemberMetrics:
    """A member's figures from its scrapes (oldest first): gauges from the newest, rates and
    p99s over `rate_window`, leader changes, failed proposals and growth over `long_window`."""
    if not samples:
        return MemberMetrics(member, endpoint, error=error or "not scraped yet")
    last = samples[-1]
    short, long = within(samples, rate_window), within(samples, long_window)

    def gauge(name: str) -> int | None:
        value = last.scalars.get(name)
        return None if value is None else int(value)

    failed = rate(long, PROPOSALS_FAILED)
    changes = [s.scalars[LEADER_CHANGES] for s in long if LEADER_CHANGES in s.scalars]
    sizes = [(s.at, s.scalars[DB_SIZE]) for s in long if DB_SIZE in s.scalars]
    growing = len(sizes) > 2 and sizes[-1][0] - sizes[0][0] >= MIN_GROWTH_SPAN
    has_leader = last.scalars.get(HAS_LEADER)
    return MemberMetrics(
        member=member,
        endpoint=endpoint,
        scraped_at=dt.datetime.fromtimestamp(last.at, dt.UTC),
        error=error,
        window=short[-1].at - short[0].at,
        long_window=long[-1].at - long[0].at,
        has_leader=None if has_leader is None else has_leader > 0,
        db_size=gauge(DB_SIZE),
        db_in_use=gauge(DB_IN_USE),
        quota=gauge(QUOTA),
        leader_changes=int(increase(changes)) if len(changes) > 1 else None,
        applied_per_second=rate(short, PROPOSALS_APPLIED),
        failed_per_minute=None if failed is None else failed * 60,
        fsync_p99=p99(short, FSYNC),
        commit_p99=p99(short, COMMIT),
        peer_rtt_p99=peer_p99s(short),
        grpc_failed=_grpc_failed(short),
        growth_per_second=slope(sizes) if growing else None,
        trend=trend(samples[-TREND_POINTS - 1 :]),
    )


def _grpc_failed(samples: Sequence[MetricsSample]) -> FailedCalls | None:
    """The calls of the method with the largest share of failed calls over the samples
    (`sum without (grpc_type, grpc_code)` per method, as the mixin divides), each failing
    code's increase counted on its own, as the mixin's `rate` is."""
    if len(samples) < 2:
        return None
    found = []
    for method in samples[-1].grpc:
        calls = [s.grpc.get(method, (0.0, {})) for s in samples]
        handled = round(increase([h for h, _ in calls]))
        if handled <= 0:
            continue
        codes = [
            (code, round(increase([failed.get(code, 0.0) for _, failed in calls])))
            for code in {code for _, failed in calls for code in failed}
        ]
        ranked = sorted(((c, n) for c, n in codes if n > 0), key=lambda cn: (-cn[1], cn[0]))
        found.append(FailedCalls(method, handled, sum(n for _, n in ranked), tuple(ranked)))
    return max(found, key=lambda calls: (calls.share, calls.method), default=None)


def trend(samples: Sequence[MetricsSample]) -> MetricsTrend:
    """One point per scrape: rates and p99s between it and the scrape before, sizes as read."""
    pairs = list(itertools.pairwise(samples))
    return MetricsTrend(
        applied_per_second=tuple(rate(pair, PROPOSALS_APPLIED) or 0.0 for pair in pairs),
        db_size=tuple(s.scalars.get(DB_SIZE, 0.0) for s in samples[1:]),
        db_in_use=tuple(s.scalars.get(DB_IN_USE, 0.0) for s in samples[1:]),
        fsync_p99=tuple(p99(pair, FSYNC) or 0.0 for pair in pairs),
        peer_rtt_p99=tuple(max((v for _, v in peer_p99s(p)), default=0.0) for p in pairs),
    )
