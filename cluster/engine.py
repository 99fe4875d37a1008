"""The findings engine: every rule of the catalog in one place, over a snapshot and its past.

Rules are pure: they read the current snapshot, a bounded history of earlier ones (for trends
such as elections) and the per-cluster state file (for facts that outlive the process, such as
the highest revision seen). The Collector owns one engine, so the live cockpit and one-shot
`report` diagnose the same way; `report` simply has a history of one.

Where each rule comes from (ids and severities: shared/FINDINGS.md; runbooks: shared/runbooks/):

| id | rule | incident |
|---|---|---|
| etcd.quorum-lost, etcd.no-fault-tolerance | findings.quorum_rules | mock scenarios §2.1, §2.2 |
| etcd.leader-missing | findings.leader_rule | mock scenarios §2.1 step 2 |
| etcd.member-unreachable | findings.unreachable_rule | mock scenarios §2.1 |
| etcd.stale-member | stale_member_rule | mock scenarios §2.6 (re-join needs the old member removed) |
| etcd.even-member-count | membership_size_rule | maintenance notes: odd member counts |
| etcd.too-many-members | membership_size_rule | maintenance notes: quorum write cost |
| etcd.learner-not-promoted | learner_rule | mock scenarios §2.4 (join adds a learner) |
| etcd.raft-lag | raft_lag_rule | `endpoint status` raft index columns (§一) |
| etcd.db-size-divergence, etcd.hash-mismatch | db_divergence_rule | `endpoint status` db size column |
| etcd.alarm | alarm_rule | NOSPACE / CORRUPT stop every write (§2.5 read-only symptom) |
| etcd.db-near-quota | db_quota_rule | precursor of NOSPACE |
| etcd.revision-regressed | revision_rule | troubleshooting-case-etcd-rollback |
| etcd.frequent-elections | elections_rule | maintenance notes: leader elections |
| etcd.version-skew | version_skew_rule | maintenance notes: upgrades one node at a time |
| node.disk-pressure | disk_rule | rollback case: image GC removed the apiserver image |
| static-pod.port-conflict | port_conflict_rule | notes: a hostPort 6443 mapping blocks the API |
| node.*, cert.*, cni.*, static-pod.* | cluster.nodes.findings | mock scenarios §2.1, §2.3, §3.3 |
| kube.* | cluster.kube.findings | troubleshooting notes |
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from cluster.commands import ssh_line
from cluster.config import Config, Thresholds
from cluster.findings import etcdctl, evaluate_etcd
from cluster.kube.findings import evaluate_kube
from cluster.model import EtcdCluster, EtcdMember, Finding, Severity, Snapshot
from cluster.nodes.findings import evaluate_nodes
from cluster.nodes.model import NodeState
from cluster.state import ClusterState

HISTORY_LIMIT = 900  # snapshots kept for trends: 15 min at the default 1 s refresh


@dataclass(frozen=True)
class Context:
    """What a rule may read besides the snapshot: the past, the thresholds, the config."""

    config: Config
    history: tuple[Snapshot, ...]
    max_revision: int | None
    state_path: str

    @property
    def thresholds(self) -> Thresholds:
        return self.config.thresholds

    def etcdctl(self, *args: str, member: EtcdMember | None = None) -> str:
        endpoints = [member.endpoint] if member is not None and member.endpoint else None
        return etcdctl(self.config.etcd, *args, endpoints=endpoints)


Rule = Callable[[Snapshot, Context], list[Finding]]


def _reachable(cluster: EtcdCluster) -> list[EtcdMember]:
    return [m for m in cluster.members if m.reachable]


def _finding(
    id: str,
    severity: Severity,
    subject: str,
    summary: str,
    *,
    evidence: str,
    next: str,
    command: str | None = None,
    action: str | None = None,
) -> Finding:
    return Finding(id, severity, subject, summary, evidence, next, command, action)


def _member_node(member: EtcdMember, nodes: tuple[NodeState, ...]) -> NodeState | None:
    hosts = {url.split("//")[-1].rsplit(":", 1)[0] for url in member.peer_urls}
    for node in nodes:
        if member.name and member.name in (node.name, node.hostname):
            return node
        if node.address in hosts or hosts & set(node.addresses):
            return node
    return None


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
        node = _member_node(member, snapshot.nodes)
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
            _finding(
                "etcd.stale-member",
                Severity.ERROR,
                member.ref,
                f"etcd member {member.display_name} is stale: {why}",
                evidence=f"id {member.id_hex}, peer URLs {', '.join(member.peer_urls) or '-'}; {why}",
                next="Remove the stale member before adding a replacement (runbook §2.6).",
                command=ctx.etcdctl("member", "remove", member.id_hex),
                action="member-remove",
            )
        )
    return findings


def membership_size_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    """Even counts tolerate no more failures than one less; big clusters slow every write."""
    if snapshot.etcd.error:
        return []
    n = len(snapshot.etcd.voting)
    findings = []
    listing = ctx.etcdctl("member", "list", "-w", "table")
    if n and n % 2 == 0:
        findings.append(
            _finding(
                "etcd.even-member-count",
                Severity.WARNING,
                "etcd",
                f"{n} voting members: no more fault tolerance than {n - 1}",
                evidence=f"{n} voting members, quorum {n // 2 + 1}, tolerates {(n - 1) // 2}",
                next="Add or remove one member to reach an odd count (remove a dead one first).",
                command=listing,
            )
        )
    if n > ctx.thresholds.max_voting_members:
        findings.append(
            _finding(
                "etcd.too-many-members",
                Severity.WARNING,
                "etcd",
                f"{n} voting members: every write waits for {n // 2 + 1} of them",
                evidence=f"{n} voting members > {ctx.thresholds.max_voting_members}",
                next="Keep 3 or 5 voting members; remove the extra ones one at a time.",
                command=listing,
            )
        )
    return findings


def _leader_index(cluster: EtcdCluster) -> int | None:
    leader = cluster.leader
    return leader.raft_applied_index if leader is not None else None


def learner_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    """`kubeadm join` adds etcd members as learners; one left unpromoted never votes."""
    findings = []
    leader_index = _leader_index(snapshot.etcd)
    for learner in snapshot.etcd.learners:
        applied = learner.raft_applied_index
        caught_up = (
            learner.reachable
            and leader_index is not None
            and applied is not None
            and leader_index - applied <= ctx.thresholds.raft_lag_entries
        )
        state = "caught up: promotable" if caught_up else "still syncing (or unreachable)"
        findings.append(
            _finding(
                "etcd.learner-not-promoted",
                Severity.INFO,
                learner.ref,
                f"learner {learner.display_name} not promoted ({state})",
                evidence=f"applied index {applied if applied is not None else '?'}, "
                f"leader's {leader_index if leader_index is not None else '?'}",
                next="Promote it once caught up" if caught_up else "Wait for it to catch up",
                command=ctx.etcdctl("member", "promote", learner.id_hex),
                action="member-promote",
            )
        )
    return findings


def raft_lag_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    """A voting member far behind the leader's applied index: slow disk or network."""
    leader_index = _leader_index(snapshot.etcd)
    if leader_index is None:
        return []
    findings = []
    for member in snapshot.etcd.voting:
        if not member.reachable or member.raft_applied_index is None or member.is_leader:
            continue
        lag = leader_index - member.raft_applied_index
        if lag > ctx.thresholds.raft_lag_entries:
            findings.append(
                _finding(
                    "etcd.raft-lag",
                    Severity.WARNING,
                    member.ref,
                    f"{member.display_name} trails the leader by {lag} raft entries",
                    evidence=f"applied {member.raft_applied_index}, leader {leader_index}, "
                    f"threshold {ctx.thresholds.raft_lag_entries}",
                    next="Check the member's disk latency and network to the leader.",
                    command=ctx.etcdctl("endpoint", "status", "--cluster", "-w", "table"),
                )
            )
    return findings


def sizes_diverge(cluster: EtcdCluster, thresholds: Thresholds) -> bool:
    """DB sizes differ by more than the threshold while raft indexes agree (the Collector then
    asks HashKV, which it does only in this case so a normal refresh stays cheap)."""
    sized = [m for m in _reachable(cluster) if m.db_size and m.raft_applied_index is not None]
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


def db_divergence_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    """Same data, different file sizes is fragmentation; different HashKV is corruption."""
    cluster = snapshot.etcd
    if not sizes_diverge(cluster, ctx.thresholds):
        return []
    by_id = {m.id: m for m in cluster.members}
    hashes = {h.member_id: h for h in cluster.hashes}
    sizes = ", ".join(f"{m.display_name} {m.db_size}" for m in _reachable(cluster) if m.db_size)
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
            _finding(
                "etcd.hash-mismatch",
                Severity.CRITICAL,
                "etcd",
                "members hold different data at the same revision",
                evidence=f"HashKV at revision {next(iter(distinct))[0]}: {listing}",
                next="Data inconsistency: take a snapshot from the member you trust, stop "
                "writes, and rebuild the divergent member from it. Do not defragment first.",
                command=ctx.etcdctl("endpoint", "hashkv", "--cluster", "-w", "table"),
            )
        ]
    largest = max(_reachable(cluster), key=lambda m: m.db_size or 0)
    checked = len(hashes) > 1 and len(distinct) == 1
    verdict = "HashKV agrees: fragmentation" if checked else "HashKV not comparable yet"
    summary = f"etcd DB sizes differ by more than {ctx.thresholds.db_size_divergence:.0%}"
    return [
        _defragment(
            "etcd.db-size-divergence",
            largest,
            ctx,
            f"{summary} ({verdict})",
            f"db sizes: {sizes}; raft indexes agree; {verdict}",
        )
    ]


def _defragment(id: str, member: EtcdMember, ctx: Context, summary: str, evidence: str) -> Finding:
    """A warning whose cure is defragmenting `member` (the guarded action checks the order)."""
    return _finding(
        id,
        Severity.WARNING,
        member.ref,
        summary,
        evidence=evidence,
        next="Compact, then defragment one member at a time, followers before the leader, "
        "before etcd raises NOSPACE and refuses writes.",
        command=ctx.etcdctl("defrag", member=member),
        action="defragment",
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
            _finding(
                "etcd.alarm",
                Severity.CRITICAL,
                subject,
                f"etcd alarm {alarm} on {subject}",
                evidence=f"alarm list: {alarm} raised by member {member_id:016x}",
                next=advice,
                command=ctx.etcdctl("alarm", "list"),
            )
        )
    return findings


def member_quota(member: EtcdMember, nodes: tuple[NodeState, ...], default: int) -> int:
    """The member's `--quota-backend-bytes` from its node's manifest, else etcd's default."""
    node = _member_node(member, nodes)
    for pod in node.static_pods if node else ():
        if pod.component == "etcd":
            value = dict(pod.flags).get("quota-backend-bytes", "")
            if value.isdigit() and int(value) > 0:
                return int(value)
    return default


def db_quota_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    findings = []
    for member in _reachable(snapshot.etcd):
        quota = member_quota(member, snapshot.nodes, ctx.thresholds.default_quota_bytes)
        if member.db_size and member.db_size > ctx.thresholds.db_quota_ratio * quota:
            findings.append(
                _defragment(
                    "etcd.db-near-quota",
                    member,
                    ctx,
                    f"{member.display_name}: DB at {member.db_size / quota:.0%} of its quota",
                    f"db size {member.db_size} bytes, quota {quota} bytes",
                )
            )
    return findings


def cluster_revision(cluster: EtcdCluster) -> int | None:
    return max((m.revision for m in cluster.members if m.revision), default=None)


def revision_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    """The rollback case: etcd restored from an old snapshot, Kubernetes went back in time."""
    revision = cluster_revision(snapshot.etcd)
    if revision is None or ctx.max_revision is None or revision >= ctx.max_revision:
        return []
    return [
        _finding(
            "etcd.revision-regressed",
            Severity.CRITICAL,
            "etcd",
            f"etcd revision went back from {ctx.max_revision} to {revision}: restored from an "
            "old snapshot?",
            evidence=f"highest revision seen {ctx.max_revision} (state file {ctx.state_path}), "
            f"now {revision}",
            next="Kubernetes objects, resourceVersions and Endpoints went back in time: restart "
            "kube-apiserver, check Deployments' rollout history, recreate kube-proxy and CNI "
            "pods (troubleshooting-case-etcd-rollback). Once handled, delete the state file.",
            command="kubectl -n kube-system delete pod -l k8s-app=kube-proxy",
        )
    ]


def raft_term(cluster: EtcdCluster) -> int | None:
    return max((m.raft_term for m in cluster.members if m.raft_term), default=None)


def elections_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    term = raft_term(snapshot.etcd)
    since = snapshot.collected_at - dt.timedelta(seconds=ctx.thresholds.election_window)
    earlier = [
        t for s in ctx.history if s.collected_at >= since and (t := raft_term(s.etcd)) is not None
    ]
    if term is None or not earlier or term - min(earlier) < ctx.thresholds.election_terms:
        return []
    return [
        _finding(
            "etcd.frequent-elections",
            Severity.WARNING,
            "etcd",
            f"raft term rose by {term - min(earlier)} within {ctx.thresholds.election_window:g} s",
            evidence=f"raft term {min(earlier)} → {term}",
            next="Leaders keep changing: check disk fsync latency and the network between members.",
            command=ctx.etcdctl("endpoint", "status", "--cluster", "-w", "table"),
        )
    ]


def version_skew_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    versions = {m.display_name: m.version for m in _reachable(snapshot.etcd) if m.version}
    if len(set(versions.values())) < 2:
        return []
    return [
        _finding(
            "etcd.version-skew",
            Severity.INFO,
            "etcd",
            f"members run {len(set(versions.values()))} etcd versions",
            evidence=", ".join(f"{name} {v}" for name, v in versions.items()),
            next="Finish the rolling upgrade one member at a time.",
            command=ctx.etcdctl("endpoint", "status", "--cluster", "-w", "table"),
        )
    ]


def disk_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    findings = []
    for node in snapshot.nodes:
        for fs in node.filesystems:
            if fs.percent <= ctx.thresholds.disk_warning_percent:
                continue
            severity = (
                Severity.ERROR
                if fs.percent > ctx.thresholds.disk_error_percent
                else Severity.WARNING
            )
            findings.append(
                _finding(
                    "node.disk-pressure",
                    severity,
                    node.name,
                    f"{node.name}: {fs.path} {fs.percent:.0f}% full",
                    evidence=f"{fs.path} on {fs.mount}: {fs.used} of {fs.size} KiB used"
                    + (" (simulated by a lab drill)" if fs.simulated else ""),
                    next="Free space before the kubelet's image GC deletes control-plane images "
                    "and etcd runs out of room.",
                    command=ssh_line(node.address, "df", "-h", fs.path),
                )
            )
    return findings


CONTROL_PLANE_PORTS = {
    6443: "kube-apiserver",
    2379: "etcd",
    2380: "etcd",
    10257: "kube-controller-manager",
    10259: "kube-scheduler",
}
COMM_LENGTH = 15  # ss shows the kernel's process name: "kube-controller" for the manager


def port_conflict_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    """A stranger on a control-plane port (a hostPort 6443 mapping, a stray haproxy): the
    component's static pod then crash-loops with "address already in use"."""
    findings = []
    for node in snapshot.nodes:
        for listener in node.listeners:
            component = CONTROL_PLANE_PORTS.get(listener.port)
            if component is None or not listener.process:
                continue
            if listener.process[:COMM_LENGTH] == component[:COMM_LENGTH]:
                continue
            findings.append(
                _finding(
                    "static-pod.port-conflict",
                    Severity.ERROR,
                    node.name,
                    f"{node.name}: port {listener.port} ({component}) held by {listener.process}",
                    evidence=f"{listener.address}:{listener.port} listened on by "
                    f"{listener.process} (pid {listener.pid})",
                    next=f"Free the port for {component}: remove the hostPort mapping or stop "
                    f"the process holding it, then let the kubelet restart {component}.",
                    command=ssh_line(
                        node.address, "ss", "-ltnp", "sport", "=", f":{listener.port}"
                    ),
                )
            )
    return findings


ENGINE_RULES: tuple[Rule, ...] = (
    stale_member_rule,
    membership_size_rule,
    learner_rule,
    raft_lag_rule,
    db_divergence_rule,
    alarm_rule,
    db_quota_rule,
    revision_rule,
    elections_rule,
    version_skew_rule,
    disk_rule,
    port_conflict_rule,
)


def sort_findings(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    return tuple(sorted(findings, key=lambda f: (-f.severity, f.id, f.subject)))


class FindingsEngine:
    """Runs every rule on each new snapshot; keeps the history and the state file up to date."""

    def __init__(self, config: Config, state: ClusterState | None = None) -> None:
        self.config = config
        self.state = state or ClusterState.for_cluster(config.name)
        self.history: deque[Snapshot] = deque(maxlen=HISTORY_LIMIT)

    def evaluate(self, snapshot: Snapshot) -> Snapshot:
        """The snapshot with its findings; then remembers it (and its revision) for next time."""
        cluster_id = snapshot.etcd.cluster_id
        ctx = Context(
            config=self.config,
            history=tuple(self.history),
            max_revision=self.state.max_revision(cluster_id) if cluster_id else None,
            state_path=str(self.state.path),
        )
        findings = [
            *evaluate_etcd(snapshot.etcd, self.config.etcd),
            *evaluate_nodes(snapshot.nodes, snapshot.collected_at),
            *evaluate_kube(snapshot.kube, snapshot.nodes),
            *(finding for rule in ENGINE_RULES for finding in rule(snapshot, ctx)),
        ]
        evaluated = replace(snapshot, findings=sort_findings(findings))
        # Trends read only etcd: keep the history small (no nodes, no API view).
        self.history.append(replace(snapshot, nodes=(), kube=None))
        revision = cluster_revision(snapshot.etcd)
        if cluster_id and revision is not None:
            self.state.see_revision(cluster_id, revision)
        return evaluated
