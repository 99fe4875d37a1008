"""The trends tab's figures: per member, what each sparkline draws and the value beside it,
and the leader-change timeline, as pure functions of a snapshot."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from cluster.model import LeaderChange, MemberMetrics, MetricsTrend
from widgets.format import human_bytes

TIMELINE_LINES = 8  # the latest changes shown; `report --json` has them all


def seconds_text(seconds: float | None) -> str:
    """A latency as an operator reads it: 3.6 ms, 0.62 s; '-' when not known."""
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}/s"


def _worst_peer(metrics: MemberMetrics) -> float | None:
    return max((p99 for _, p99 in metrics.peer_rtt_p99), default=None)


@dataclass(frozen=True)
class Figure:
    """One sparkline row: its label, its series in a member's trend, its current value."""

    label: str
    series: Callable[[MetricsTrend], tuple[float, ...]]
    value: Callable[[MemberMetrics], str]


FIGURES = (
    Figure("applied/s", lambda t: t.applied_per_second, lambda m: _rate(m.applied_per_second)),
    Figure("DB size", lambda t: t.db_size, lambda m: human_bytes(m.db_size)),
    Figure("DB in use", lambda t: t.db_in_use, lambda m: human_bytes(m.db_in_use)),
    Figure("fsync p99", lambda t: t.fsync_p99, lambda m: seconds_text(m.fsync_p99)),
    Figure("peer RTT p99", lambda t: t.peer_rtt_p99, lambda m: seconds_text(_worst_peer(m))),
)


def member_heading(metrics: MemberMetrics, now: dt.datetime) -> str:
    """The member's name and how old its figures are (or why there are none)."""
    error = (metrics.error or "").removeprefix(f"{metrics.endpoint}/metrics: ")
    if metrics.scraped_at is None:
        return f"{metrics.member} · ✗ {error or 'not scraped yet'}"
    age = max(0.0, (now - metrics.scraped_at).total_seconds())
    return f"{metrics.member} · {age:.0f} s ago" + (f" · ✗ {error}" if error else "")


def timeline_lines(changes: tuple[LeaderChange, ...]) -> str:
    """The latest leader changes, oldest first: time, old → new leader, term."""
    if not changes:
        return "no leader change since the cockpit started"
    shown = changes[-TIMELINE_LINES:]
    lines = [
        f"{c.at:%H:%M:%S}  {c.old or '(none)'} → {c.new or '(none)'}  term {c.term or '?'}"
        for c in shown
    ]
    if len(changes) > len(shown):
        lines.insert(0, f"… {len(changes) - len(shown)} earlier")
    return "\n".join(lines)
