"""Rules over etcd's own `/metrics`: the signs the runbooks' incidents gave before they hit.

Each rule is one of the community's alert rules (etcd's mixin, as kube-prometheus ships it)
read on the figures the metrics source computed per member (cluster.etcd.rates): WAL fsync
and backend commit p99 (etcdHighFsyncDurations, etcdHighCommitDurations), peer round trips
(etcdMemberCommunicationSlow), leader changes (etcdHighNumberOfLeaderChanges), failed
proposals (etcdHighNumberOfFailedProposals), failed gRPC calls
(etcdHighNumberOfFailedGRPCRequests), fragmentation (etcdDatabaseHighFragmentationRatio),
growth toward the quota (etcdExcessiveDatabaseGrowth) and a member without a leader
(etcdNoLeader). Thresholds and windows are `Thresholds` fields with the mixin's numbers,
except that failed proposals are counted per minute, as issue 16 asks (the mixin's
`rate(...[15m]) > 5` is per second). The evidence names the figure, its window and the member.
"""

from __future__ import annotations

from collections.abc import Iterator

from cluster.findings.etcd import defragment_finding, status_command
from cluster.findings.registry import Context, finding, rule
from cluster.model import EtcdMember, FailedCalls, Finding, MemberMetrics, Severity, Snapshot

MIXIN = "etcd mixin (kube-prometheus)"
HARDWARE = "etcd docs: hardware recommendations (disks: p99 fsync under 10 ms)"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _mib(size: float) -> str:
    return f"{size / 1024**2:.1f} MiB"


def _window(seconds: float) -> str:
    return f"over the last {seconds:.0f} s"


def scraped(snapshot: Snapshot) -> Iterator[MemberMetrics]:
    """The members whose page was read at least once."""
    return (m for m in snapshot.metrics if m.scraped_at is not None)


def _finding(
    id: str, severity: Severity, metrics: MemberMetrics, summary: str, evidence: str, next: str
) -> Finding:
    return Finding(
        id=id,
        severity=severity,
        subject=metrics.member,
        summary=f"{metrics.member}: {summary}",
        evidence=f"{evidence} (member {metrics.member}, {metrics.endpoint}/metrics)",
        next=next,
    )


@rule(
    finding(
        "etcd.slow-fsync",
        (Severity.INFO, Severity.WARNING, Severity.CRITICAL),
        "WAL fsync p99 above fsync_note_seconds (10 ms: a healthy disk's limit), "
        "fsync_warning_seconds or fsync_critical_seconds",
        f"{MIXIN}: etcdHighFsyncDurations; {HARDWARE}",
    )
)
def slow_fsync_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    t = ctx.thresholds
    findings = []
    for m in scraped(snapshot):
        p99 = m.fsync_p99
        if p99 is None or p99 <= t.fsync_note_seconds:
            continue
        severity = (
            Severity.CRITICAL
            if p99 > t.fsync_critical_seconds
            else Severity.WARNING
            if p99 > t.fsync_warning_seconds
            else Severity.INFO
        )
        findings.append(
            _finding(
                "etcd.slow-fsync",
                severity,
                m,
                f"WAL fsync p99 {_ms(p99)}: the disk is slow for etcd",
                f"etcd_disk_wal_fsync_duration_seconds p99 {_ms(p99)} {_window(m.window)}",
                "Every write waits for this fsync, and a leader whose fsync stalls misses its "
                "heartbeats: find what else writes to the disk (`iostat -x 1` on the node), "
                "give /var/lib/etcd a dedicated SSD; check the trends tab for when it began.",
            )
        )
    return findings


@rule(
    finding(
        "etcd.slow-commit",
        Severity.WARNING,
        "backend commit p99 above commit_warning_seconds",
        f"{MIXIN}: etcdHighCommitDurations",
    )
)
def slow_commit_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    limit = ctx.thresholds.commit_warning_seconds
    return [
        _finding(
            "etcd.slow-commit",
            Severity.WARNING,
            m,
            f"backend commit p99 {_ms(m.commit_p99)}",
            f"etcd_disk_backend_commit_duration_seconds p99 {_ms(m.commit_p99)} "
            f"{_window(m.window)}",
            "The database file's commits are slow: the disk (see the WAL fsync figure) or a "
            "very large, fragmented database; check the disk first, then the DB size.",
        )
        for m in scraped(snapshot)
        if m.commit_p99 is not None and m.commit_p99 > limit
    ]


def _peer_name(snapshot: Snapshot, peer: str) -> str:
    member: EtcdMember | None = snapshot.etcd.member(peer)
    return member.ref if member is not None else peer


@rule(
    finding(
        "etcd.slow-peer",
        Severity.WARNING,
        "peer round-trip p99 above peer_rtt_warning_seconds",
        f"{MIXIN}: etcdMemberCommunicationSlow",
    )
)
def slow_peer_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    limit = ctx.thresholds.peer_rtt_warning_seconds
    findings = []
    for m in scraped(snapshot):
        slow = [(p99, peer) for peer, p99 in m.peer_rtt_p99 if p99 > limit]
        if not slow:
            continue
        p99, peer = max(slow)
        name = _peer_name(snapshot, peer)
        findings.append(
            _finding(
                "etcd.slow-peer",
                Severity.WARNING,
                m,
                f"round trips to {name} are slow (p99 {_ms(p99)})",
                f"etcd_network_peer_round_trip_time_seconds{{To={peer}}} p99 {_ms(p99)} "
                f"{_window(m.window)}",
                f"Check the network between {m.member} and {name} (latency, loss, MTU, a "
                "saturated link) and whether that peer itself is slow (its disk, its CPU).",
            )
        )
    return findings


@rule(
    finding(
        "etcd.leader-changes",
        Severity.WARNING,
        "leader_changes or more leader changes within metrics_long_window "
        "(etcd_server_leader_changes_seen_total)",
        f"{MIXIN}: etcdHighNumberOfLeaderChanges",
    )
)
def leader_changes_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    counted = [(m.leader_changes, m) for m in scraped(snapshot) if m.leader_changes is not None]
    if not counted:
        return []
    changes, m = max(counted, key=lambda pair: pair[0])
    if changes < ctx.thresholds.leader_changes:
        return []
    seen = snapshot.leader_changes[-changes:]
    timeline = "; ".join(f"{c.old or '-'} → {c.new or '-'} (term {c.term})" for c in seen)
    return [
        Finding(
            id="etcd.leader-changes",
            severity=Severity.WARNING,
            subject="etcd",
            summary=f"{changes} leader changes {_window(m.long_window)}",
            evidence=f"etcd_server_leader_changes_seen_total rose by {changes} "
            f"{_window(m.long_window)} on {m.member}" + (f"; seen: {timeline}" if seen else ""),
            next="Every change stalls writes for an election: look at the WAL fsync and peer "
            "round-trip figures (trends tab) and the members' CPU; a leader moved on purpose "
            "(move-leader, a rolling restart) explains some.",
            command=status_command(ctx),
        )
    ]


@rule(
    finding(
        "etcd.failed-proposals",
        Severity.WARNING,
        "more than failed_proposals_per_minute proposals failed per minute "
        "over metrics_long_window",
        f"{MIXIN}: etcdHighNumberOfFailedProposals",
    )
)
def failed_proposals_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    limit = ctx.thresholds.failed_proposals_per_minute
    return [
        _finding(
            "etcd.failed-proposals",
            Severity.WARNING,
            m,
            f"{m.failed_per_minute:.1f} failed proposals a minute",
            f"etcd_server_proposals_failed_total: {m.failed_per_minute:.1f}/min "
            f"{_window(m.long_window)}",
            "Proposals fail during elections and without quorum: check the leader changes "
            "and the members' health.",
        )
        for m in scraped(snapshot)
        if m.failed_per_minute is not None and m.failed_per_minute > limit
    ]


@rule(
    finding(
        "etcd.grpc-errors",
        (Severity.WARNING, Severity.CRITICAL),
        "a gRPC method's failed share (Unavailable, Internal, DeadlineExceeded…) above "
        "grpc_failed_warning_ratio or grpc_failed_critical_ratio",
        f"{MIXIN}: etcdHighNumberOfFailedGRPCRequests",
    )
)
def grpc_errors_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    t = ctx.thresholds
    findings = []
    for m in scraped(snapshot):
        calls = m.grpc_failed
        if calls is None or calls.share <= t.grpc_failed_warning_ratio:
            continue
        critical = calls.share > t.grpc_failed_critical_ratio
        counts = ", ".join(f"{code} {n}" for code, n in calls.codes)
        findings.append(
            _finding(
                "etcd.grpc-errors",
                Severity.CRITICAL if critical else Severity.WARNING,
                m,
                f"{calls.share:.1%} of {calls.method} calls fail{_dominant(calls)}",
                f"grpc_server_handled_total{{grpc_method={calls.method}}}: {calls.failed} of "
                f"{calls.handled} calls failed ({calls.share:.1%}) {_window(m.window)}: {counts}",
                f"Read the member's log for {calls.method}'s errors; Unavailable usually means "
                "no leader or a member shutting down, DeadlineExceeded a slow disk or network.",
            )
        )
    return findings


def _dominant(calls: FailedCalls) -> str:
    """` (all X)` or ` (mostly X)` when one code is more than half the failures, else ``."""
    if not calls.codes:
        return ""
    code, n = calls.codes[0]
    if n == calls.failed:
        return f" (all {code})"
    return f" (mostly {code})" if 2 * n > calls.failed else ""


@rule(
    finding(
        "etcd.db-fragmented",
        Severity.WARNING,
        "in use below db_fragmented_in_use_ratio of the DB file, and the file above "
        "db_fragmented_min_bytes: next, the rolling defragment",
        f"{MIXIN}: etcdDatabaseHighFragmentationRatio",
        action="rolling-defragment",
    )
)
def db_fragmented_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    t = ctx.thresholds
    findings = []
    for m in scraped(snapshot):
        member = snapshot.etcd.member(m.member)
        if member is None or not m.db_size or m.db_in_use is None:
            continue
        if (
            m.db_in_use < t.db_fragmented_in_use_ratio * m.db_size
            and m.db_size > t.db_fragmented_min_bytes
        ):
            findings.append(
                defragment_finding(
                    "etcd.db-fragmented",
                    member,
                    ctx,
                    f"{m.member}: only {m.db_in_use / m.db_size:.0%} of the DB file is in use",
                    f"etcd_mvcc_db_total_size_in_use_in_bytes {_mib(m.db_in_use)} of "
                    f"etcd_mvcc_db_total_size_in_bytes {_mib(m.db_size)}",
                    rolling=True,
                )
            )
    return findings


@rule(
    finding(
        "etcd.db-growth",
        Severity.WARNING,
        "at its growth rate over metrics_long_window the DB reaches its quota within "
        "db_growth_horizon_seconds",
        f"{MIXIN}: etcdExcessiveDatabaseGrowth",
    )
)
def db_growth_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    horizon = ctx.thresholds.db_growth_horizon_seconds
    findings = []
    for m in scraped(snapshot):
        growth, size, quota = m.growth_per_second, m.db_size, m.quota
        if not growth or growth <= 0 or size is None or not quota:
            continue
        left = max(quota - size, 0) / growth
        if left <= horizon:
            findings.append(
                _finding(
                    "etcd.db-growth",
                    Severity.WARNING,
                    m,
                    f"the DB reaches its quota in about {left / 60:.0f} min at this rate",
                    f"etcd_mvcc_db_total_size_in_bytes {_mib(size)}, growing "
                    f"{_mib(growth * 3600)}/h {_window(m.long_window)}; "
                    f"etcd_server_quota_backend_bytes {_mib(quota)}",
                    "At the quota etcd raises NOSPACE and refuses every write: find what writes "
                    "(events, a runaway controller), compact and defragment, or raise "
                    "--quota-backend-bytes before it is reached.",
                )
            )
    return findings


@rule(
    finding(
        "etcd.no-leader",
        Severity.CRITICAL,
        "a member reports etcd_server_has_leader 0",
        f"{MIXIN}: etcdNoLeader",
    )
)
def no_leader_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    return [
        _finding(
            "etcd.no-leader",
            Severity.CRITICAL,
            m,
            "sees no leader",
            "etcd_server_has_leader 0",
            "The member cannot serve writes or linearizable reads: check its network to the "
            "other members; when most members say so, quorum is lost (etcd.quorum-lost).",
        )
        for m in scraped(snapshot)
        if m.has_leader is False
    ]
