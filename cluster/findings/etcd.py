"""Rules over etcd's membership, raft progress and database: the runbook's core incidents.

Quorum lost and the leader gone (mock scenarios §2.1, §2.2), a dead member to remove before
its replacement joins (§2.6, §3.2), learners left unpromoted after `kubeadm join` (§2.4),
diverging database files (§2.7). Each finding carries the etcdctl line an operator would type,
with the cockpit's real endpoints and certificate flags, and names the guarded action that
repairs it. `caught_up` is shared with the promote and move-leader guards, so a finding never
calls a learner promotable that the guard would refuse.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cluster.commands import command_line
from cluster.config import EtcdConfig, Thresholds
from cluster.findings.registry import CATALOG, MAINTENANCE, MOCK, Context, finding, rule
from cluster.model import CLUSTER_TARGET, EtcdCluster, EtcdMember, Finding, Severity, Snapshot
from cluster.nodes.model import NodeState


def etcdctl(etcd: EtcdConfig | None, *args: str, endpoints: Iterable[str] | None = None) -> str:
    """The equivalent etcdctl command line, with the cockpit's real endpoints and cert flags."""
    flags: list[str] = []
    if etcd is not None:
        flags.append(f"--endpoints={','.join(endpoints or etcd.endpoints)}")
        flags += [f"--cacert={etcd.tls.ca}", f"--cert={etcd.tls.cert}", f"--key={etcd.tls.key}"]
    return command_line("etcdctl", *args, *flags)


def _etcdctl(ctx: Context, *args: str, member: EtcdMember | None = None) -> str:
    endpoints = [member.endpoint] if member is not None and member.endpoint else None
    return etcdctl(ctx.etcd, *args, endpoints=endpoints)


def status_command(ctx: Context) -> str:
    return _etcdctl(ctx, "endpoint", "status", "--cluster", "-w", "table")


def reachable_members(cluster: EtcdCluster) -> list[EtcdMember]:
    return [m for m in cluster.members if m.reachable]


@rule(
    finding(
        "etcd.quorum-lost",
        Severity.CRITICAL,
        "healthy voting members < quorum: writes and membership changes fail",
        f"{MOCK} §2.1, §2.2, §2.5",
    ),
    finding(
        "etcd.no-fault-tolerance",
        Severity.WARNING,
        "healthy voting members == quorum: one more failure is an outage",
        f"{MOCK} §2.1",
    ),
)
def quorum_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    """Runbook §2.1/2.2: one of three stopped is survivable, two of three is an outage."""
    cluster = snapshot.etcd
    if cluster.error or not cluster.voting:
        return []  # membership unknown: the per-endpoint errors say why
    evidence = (
        f"healthy voting members {cluster.healthy_voting} of {len(cluster.voting)}, "
        f"quorum {cluster.quorum}"
    )
    down = ", ".join(m.display_name for m in cluster.voting if not m.healthy) or "none"
    if not cluster.has_quorum:
        return [
            Finding(
                id="etcd.quorum-lost",
                severity=Severity.CRITICAL,
                subject="etcd",
                summary="QUORUM LOST: etcd cannot commit writes; the cluster is read-only",
                evidence=f"{evidence}; down: {down}",
                next=(
                    "Bring members back (restore their static pod manifests, e.g. "
                    "`cd /etc/kubernetes && rsync -av manifests-20230310/ manifests/`), then "
                    "re-check. Do not attempt member add/remove: they need quorum too "
                    "(runbook §2.4, §2.5)."
                ),
                command=status_command(ctx),
            )
        ]
    if cluster.tolerance == 0 and len(cluster.voting) > 1:
        return [
            Finding(
                id="etcd.no-fault-tolerance",
                severity=Severity.WARNING,
                subject="etcd",
                summary="no fault tolerance: one more member failure is an outage",
                evidence=f"{evidence}; tolerance 0 of {cluster.design_tolerance}; down: {down}",
                next="Restore the down member before any maintenance on the others.",
                command=status_command(ctx),
            )
        ]
    return []


@rule(
    finding(
        "etcd.leader-missing",
        Severity.CRITICAL,
        "no reachable member reports a leader",
        f"{MOCK} §2.1 (second node stopped)",
    )
)
def leader_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    """Runbook §2.1 step 2: with quorum gone the leader disappears."""
    cluster = snapshot.etcd
    if cluster.error or cluster.leader is not None or not cluster.members:
        return []
    reachable = [m.display_name for m in reachable_members(cluster)]
    return [
        Finding(
            id="etcd.leader-missing",
            severity=Severity.CRITICAL,
            subject="etcd",
            summary="no etcd leader",
            evidence=(
                f"no reachable member reports a leader (reachable: {', '.join(reachable) or 'none'})"
            ),
            next="A leader needs a quorum of voting members: bring stopped members back.",
            command=status_command(ctx),
        )
    ]


@rule(
    finding(
        "etcd.member-unreachable",
        Severity.ERROR,
        "a registered member does not answer within the deadline",
        f"{MOCK} §2.1",
    )
)
def member_unreachable_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    membership_unknown = snapshot.etcd.error is not None
    return [
        _unreachable(m, ctx, membership_unknown) for m in snapshot.etcd.members if not m.reachable
    ]


def _unreachable(member: EtcdMember, ctx: Context, membership_unknown: bool) -> Finding:
    error = member.error or "no answer"
    tls_problem = any(word in error.lower() for word in ("ssl", "certificate", "handshake", "tls"))
    if tls_problem and membership_unknown:
        next_step = (
            "The TLS handshake failed: check [etcd] ca/cert/key in the cockpit config against the "
            "cluster's etcd CA (`openssl verify -CAfile <ca> <cert>`)."
        )
    else:
        next_step = (
            "Check the member's node: is its etcd manifest in /etc/kubernetes/manifests and its "
            "process running? If the node is gone for good, remove the member before adding a "
            "replacement (runbook §3.2)."
        )
    subject = member.display_name if member.name else (member.endpoint or member.display_name)
    return Finding(
        id="etcd.member-unreachable",
        severity=Severity.ERROR,
        subject=subject,
        summary=f"etcd member {subject} does not answer",
        evidence=f"{member.endpoint or 'no client URL'}: {error}",
        next=next_step,
        command=_etcdctl(ctx, "endpoint", "status", member=member),
    )


def member_node(member: EtcdMember, nodes: tuple[NodeState, ...]) -> NodeState | None:
    """The configured node an etcd member runs on, by name or by its peer URLs' hosts."""
    hosts = {url.split("//")[-1].rsplit(":", 1)[0] for url in member.peer_urls}
    for node in nodes:
        if member.name and member.name in (node.name, node.hostname):
            return node
        if node.address in hosts or hosts & set(node.addresses):
            return node
    return None


@rule(
    finding(
        "etcd.stale-member",
        Severity.ERROR,
        "an unreachable member whose node, manifest or name is gone: remove it first",
        f"{MOCK} §2.6, §3.2",
        action="member-remove",
    )
)
def stale_member_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    """A member that cannot come back: never started, node gone, or etcd manifest deleted.

    Runbook §2.6: a node removed and re-joined fails until its old member is removed; adding
    first would raise the quorum while a dead member still counts."""
    if snapshot.etcd.error:
        return []  # no MemberList: rows are configured endpoints, not registered members
    findings = []
    for member in snapshot.etcd.members:
        if member.reachable:
            continue
        node = member_node(member, snapshot.nodes)
        etcd_pod = (
            next((p for p in node.static_pods if p.component == "etcd"), None) if node else None
        )
        if not member.name:
            why = "registered but never started (no name)"
        elif snapshot.nodes and node is None:
            why = "no configured node matches its peer URLs"
        elif etcd_pod is not None and etcd_pod.state == "missing":
            why = f"its node {node.name if node else '?'} has no etcd manifest (nor a moved copy)"
        else:
            continue
        findings.append(
            Finding(
                id="etcd.stale-member",
                severity=Severity.ERROR,
                subject=member.ref,
                summary=f"etcd member {member.display_name} is stale: {why}",
                evidence=f"id {member.id_hex}, peer URLs {', '.join(member.peer_urls) or '-'}; {why}",
                next="Remove the stale member before adding a replacement (runbook §2.6).",
                command=_etcdctl(ctx, "member", "remove", member.id_hex),
                action="member-remove",
            )
        )
    return findings


@rule(
    finding(
        "etcd.even-member-count",
        Severity.WARNING,
        "an even number of voting members tolerates no more failures than one less",
        f"{MOCK} §3.1",
    ),
    finding(
        "etcd.too-many-members",
        Severity.WARNING,
        "more voting members than max_voting_members: every write waits for a larger quorum",
        f"{MOCK} §3.1",
    ),
)
def membership_size_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    """Even counts tolerate no more failures than one less; big clusters slow every write."""
    if snapshot.etcd.error:
        return []
    n = len(snapshot.etcd.voting)
    limit = ctx.thresholds.max_voting_members
    findings = []
    listing = _etcdctl(ctx, "member", "list", "-w", "table")
    if n and n % 2 == 0:
        findings.append(
            Finding(
                id="etcd.even-member-count",
                severity=Severity.WARNING,
                subject="etcd",
                summary=f"{n} voting members: no more fault tolerance than {n - 1}",
                evidence=f"{n} voting members, quorum {n // 2 + 1}, tolerates {(n - 1) // 2}",
                next="Add or remove one member to reach an odd count (remove a dead one first).",
                command=listing,
            )
        )
    if n > limit:
        findings.append(
            Finding(
                id="etcd.too-many-members",
                severity=Severity.WARNING,
                subject="etcd",
                summary=f"{n} voting members: every write waits for {n // 2 + 1} of them",
                evidence=f"{n} voting members > {limit}",
                next="Keep 3 or 5 voting members; remove the extra ones one at a time.",
                command=listing,
            )
        )
    return findings


def caught_up(member: EtcdMember, leader: EtcdMember | None, thresholds: Thresholds) -> bool:
    """A member answering and within `raft_lag_entries` of the leader's raft index.

    The leader's raft index (its last log entry), not its applied index, is what etcd itself
    compares a learner with before promoting it; the `etcd.learner-not-promoted` finding, the
    member-promote guard and the move-leader guard all ask this one function."""
    if (
        not member.reachable
        or leader is None
        or leader.raft_index is None
        or member.raft_applied_index is None
    ):
        return False
    return leader.raft_index - member.raft_applied_index <= thresholds.raft_lag_entries


@dataclass(frozen=True)
class LearnerProgress:
    """How far a learner's log has come towards the leader's: what the etcd pane shows and
    what `caught_up` (the one predicate) judges."""

    applied: int | None
    leader_index: int | None
    caught_up: bool

    @property
    def behind(self) -> int | None:
        if self.applied is None or self.leader_index is None:
            return None
        return max(0, self.leader_index - self.applied)

    @property
    def percent(self) -> float | None:
        if self.applied is None or not self.leader_index:
            return None
        return min(100.0, 100.0 * self.applied / self.leader_index)


def learner_progress(
    learner: EtcdMember, leader: EtcdMember | None, thresholds: Thresholds
) -> LearnerProgress:
    """A learner's applied index against the leader's raft index, judged by `caught_up`."""
    return LearnerProgress(
        learner.raft_applied_index if learner.reachable else None,
        leader.raft_index if leader is not None else None,
        caught_up(learner, leader, thresholds),
    )


def fragmented(member: EtcdMember, thresholds: Thresholds) -> bool:
    """Enough of the backend file is free space that a defragment would return it (the
    defragment guard keeps the leader for last while a follower is still like this)."""
    if member.db_size is None or member.db_size_in_use is None:
        return False
    free = member.db_size - member.db_size_in_use
    return (
        free > thresholds.fragmented_free_min_bytes
        and free > thresholds.fragmented_free_ratio * member.db_size
    )


@rule(
    finding(
        "etcd.learner-not-promoted",
        Severity.INFO,
        "a learner exists: caught up (promotable) or still syncing",
        f"{MOCK} §2.4 (kubeadm join adds a learner)",
        action="member-promote",
    )
)
def learner_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    """`kubeadm join` adds etcd members as learners; one left unpromoted never votes."""
    leader = snapshot.etcd.leader
    findings = []
    for learner in snapshot.etcd.learners:
        progress = learner_progress(learner, leader, ctx.thresholds)
        applied, leader_index = progress.applied, progress.leader_index
        promotable = progress.caught_up
        state = "caught up: promotable" if promotable else "still syncing (or unreachable)"
        findings.append(
            Finding(
                id="etcd.learner-not-promoted",
                severity=Severity.INFO,
                subject=learner.ref,
                summary=f"learner {learner.display_name} not promoted ({state})",
                evidence=f"applied index {applied if applied is not None else '?'}, "
                f"leader's raft index {leader_index if leader_index is not None else '?'}",
                next="Promote it once caught up" if promotable else "Wait for it to catch up",
                command=_etcdctl(ctx, "member", "promote", learner.id_hex),
                action="member-promote",
            )
        )
    return findings


@rule(
    finding(
        "etcd.raft-lag",
        Severity.WARNING,
        "a voting member's applied index trails the leader's by more than raft_lag_entries",
        f"{MOCK} §一 (endpoint status raft index columns)",
    )
)
def raft_lag_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    """A voting member far behind the leader's applied index: slow disk or network."""
    leader = snapshot.etcd.leader
    leader_index = leader.raft_applied_index if leader is not None else None
    if leader_index is None:
        return []
    limit = ctx.thresholds.raft_lag_entries
    findings = []
    for member in snapshot.etcd.voting:
        if not member.reachable or member.raft_applied_index is None or member.is_leader:
            continue
        lag = leader_index - member.raft_applied_index
        if lag > limit:
            findings.append(
                Finding(
                    id="etcd.raft-lag",
                    severity=Severity.WARNING,
                    subject=member.ref,
                    summary=f"{member.display_name} trails the leader by {lag} raft entries",
                    evidence=f"applied {member.raft_applied_index}, leader {leader_index}, "
                    f"threshold {limit}",
                    next="Check the member's disk latency and network to the leader.",
                    command=status_command(ctx),
                )
            )
    return findings


def sizes_diverge(cluster: EtcdCluster, thresholds: Thresholds) -> bool:
    """DB sizes differ by more than the threshold while raft indexes agree (the Collector then
    asks HashKV, which it does only in this case so a normal refresh stays cheap)."""
    sized = [
        m for m in reachable_members(cluster) if m.db_size and m.raft_applied_index is not None
    ]
    if len(sized) < 2:
        return False
    sizes = [m.db_size or 0 for m in sized]
    indexes = [m.raft_applied_index or 0 for m in sized]
    spread = max(sizes) - min(sizes)
    return (
        spread >= thresholds.db_size_divergence_min_bytes  # a few pages on a tiny DB is noise
        and spread / max(sizes) > thresholds.db_size_divergence
        and max(indexes) - min(indexes) <= thresholds.raft_lag_entries
    )


@rule(
    finding(
        "etcd.db-size-divergence",
        Severity.WARNING,
        "DB sizes differ by > db_size_divergence while raft indexes agree: fragmentation",
        f"{CATALOG} etcd; {MOCK} §一 (endpoint status db size column)",
        action="rolling-defragment",
    ),
    finding(
        "etcd.hash-mismatch",
        Severity.CRITICAL,
        "HashKV differs between members at the same revision: data inconsistency",
        f"{MOCK} §2.7",
    ),
)
def db_divergence_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    """Same data, different file sizes is fragmentation; different HashKV is corruption."""
    cluster = snapshot.etcd
    if not sizes_diverge(cluster, ctx.thresholds):
        return []
    by_id = {m.id: m for m in cluster.members}
    hashes = {h.member_id: h for h in cluster.hashes}
    reachable = reachable_members(cluster)
    sizes = ", ".join(f"{m.display_name} {m.db_size}" for m in reachable if m.db_size)
    distinct = {(h.revision, h.hash) for h in hashes.values()}
    # Hashes cover compact_revision..revision: comparable only over the same range (a member
    # still compacting would otherwise look corrupt).
    comparable = len({(h.revision, h.compact_revision) for h in hashes.values()}) == 1
    if len(distinct) > 1 and comparable:
        listing = ", ".join(
            f"{by_id[i].display_name if i in by_id else i}: {h.hash:#010x}"
            for i, h in hashes.items()
        )
        return [
            Finding(
                id="etcd.hash-mismatch",
                severity=Severity.CRITICAL,
                subject="etcd",
                summary="members hold different data at the same revision",
                evidence=f"HashKV at revision {next(iter(distinct))[0]}: {listing}",
                next="Data inconsistency: take a snapshot from the member you trust, stop "
                "writes, and rebuild the divergent member from it. Do not defragment first.",
                command=_etcdctl(ctx, "endpoint", "hashkv", "--cluster", "-w", "table"),
            )
        ]
    largest = max(reachable, key=lambda m: m.db_size or 0)
    checked = len(hashes) > 1 and len(distinct) == 1
    verdict = "HashKV agrees: fragmentation" if checked else "HashKV not comparable yet"
    summary = f"etcd DB sizes differ by more than {ctx.thresholds.db_size_divergence:.0%}"
    # Every member's file is rewritten, the leader last: the rolling defragment's whole job.
    return [
        defragment_finding(
            "etcd.db-size-divergence",
            largest,
            ctx,
            f"{summary} ({verdict})",
            f"db sizes: {sizes}; raft indexes agree; {verdict}",
            rolling=True,
        )
    ]


def defragment_finding(
    id: str, member: EtcdMember, ctx: Context, summary: str, evidence: str, rolling: bool = False
) -> Finding:
    """A warning whose cure is defragmenting `member` (the guarded action checks the order), or
    with `rolling`, every member: the rolling defragment, followers first, the leader last."""
    return Finding(
        id=id,
        severity=Severity.WARNING,
        subject=member.ref,
        summary=summary,
        evidence=evidence,
        next="Compact, then defragment one member at a time, followers before the leader, "
        "before etcd raises NOSPACE and refuses writes.",
        command=_etcdctl(ctx, "defrag", member=member),
        action="rolling-defragment" if rolling else "defragment",
        action_target=CLUSTER_TARGET if rolling else None,
    )


@rule(
    finding(
        "etcd.alarm",
        Severity.CRITICAL,
        "an active alarm (NOSPACE, CORRUPT): etcd refuses writes or its data is suspect",
        f"{MOCK} §2.5 (read-only symptom)",
    )
)
def alarm_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    """An active alarm makes etcd refuse writes (NOSPACE) or signals corruption (CORRUPT)."""
    by_id = {m.id: m for m in snapshot.etcd.members}
    findings = []
    for member_id, alarm in snapshot.etcd.alarms:
        member = by_id.get(member_id)
        subject = member.ref if member else f"{member_id:016x}"
        if alarm == "NOSPACE":
            advice = (
                "Compact the history, defragment every member (followers first), then "
                "disarm the alarm; raise --quota-backend-bytes if the data really grew."
            )
        else:
            advice = "Stop writes, compare HashKV across members, restore from a good snapshot."
        findings.append(
            Finding(
                id="etcd.alarm",
                severity=Severity.CRITICAL,
                subject=subject,
                summary=f"etcd alarm {alarm} on {subject}",
                evidence=f"alarm list: {alarm} raised by member {member_id:016x}",
                next=advice,
                command=_etcdctl(ctx, "alarm", "list"),
            )
        )
    return findings


def member_quota(member: EtcdMember, nodes: tuple[NodeState, ...], default: int) -> int:
    """The member's `--quota-backend-bytes` from its node's manifest, else etcd's default."""
    node = member_node(member, nodes)
    for pod in node.static_pods if node else ():
        if pod.component == "etcd":
            value = dict(pod.flags).get("quota-backend-bytes", "")
            if value.isdigit() and int(value) > 0:
                return int(value)
    return default


@rule(
    finding(
        "etcd.db-near-quota",
        Severity.WARNING,
        "DB size above db_quota_ratio of the backend quota: NOSPACE comes next",
        f"{CATALOG} etcd (precursor of the NOSPACE alarm)",
        action="defragment",
    )
)
def db_quota_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    findings = []
    for member in reachable_members(snapshot.etcd):
        quota = member_quota(member, snapshot.nodes, ctx.thresholds.default_quota_bytes)
        if member.db_size and member.db_size > ctx.thresholds.db_quota_ratio * quota:
            findings.append(
                defragment_finding(
                    "etcd.db-near-quota",
                    member,
                    ctx,
                    f"{member.display_name}: DB at {member.db_size / quota:.0%} of its quota",
                    f"db size {member.db_size} bytes, quota {quota} bytes",
                )
            )
    return findings


@rule(
    finding(
        "etcd.version-skew",
        Severity.INFO,
        "members run different etcd versions: a rolling upgrade left half done",
        f"{MAINTENANCE} §一 (endpoint status version column)",
    )
)
def version_skew_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    versions = {m.display_name: m.version for m in reachable_members(snapshot.etcd) if m.version}
    if len(set(versions.values())) < 2:
        return []
    return [
        Finding(
            id="etcd.version-skew",
            severity=Severity.INFO,
            subject="etcd",
            summary=f"members run {len(set(versions.values()))} etcd versions",
            evidence=", ".join(f"{name} {v}" for name, v in versions.items()),
            next="Finish the rolling upgrade one member at a time.",
            command=status_command(ctx),
        )
    ]
