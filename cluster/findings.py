"""Findings: pure rules that turn a snapshot into "what is wrong, the evidence, what to do next".

Each rule is one function over an EtcdCluster (later: the whole snapshot plus history) and
names the runbook incident it comes from; the ids and severities are the catalog's
(shared/FINDINGS.md). Rules never do I/O, so every one is testable on a hand-built snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from cluster.commands import command_line
from cluster.config import EtcdConfig
from cluster.model import EtcdCluster, EtcdMember, Finding, Severity


def etcdctl(etcd: EtcdConfig | None, *args: str, endpoints: Iterable[str] | None = None) -> str:
    """The equivalent etcdctl command line, with the cockpit's real endpoints and cert flags."""
    flags: list[str] = []
    if etcd is not None:
        flags.append(f"--endpoints={','.join(endpoints or etcd.endpoints)}")
        flags += [f"--cacert={etcd.tls.ca}", f"--cert={etcd.tls.cert}", f"--key={etcd.tls.key}"]
    return command_line("etcdctl", *args, *flags)


EtcdRule = Callable[[EtcdCluster, EtcdConfig | None], list[Finding]]


def quorum_rules(cluster: EtcdCluster, etcd: EtcdConfig | None) -> list[Finding]:
    """Runbook §2.1/2.2: one of three stopped is survivable, two of three is an outage."""
    if cluster.error or not cluster.voting:
        return []  # membership unknown: the per-endpoint errors say why
    status = etcdctl(etcd, "endpoint", "status", "--cluster", "-w", "table")
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
                command=status,
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
                command=status,
            )
        ]
    return []


def leader_rule(cluster: EtcdCluster, etcd: EtcdConfig | None) -> list[Finding]:
    """Runbook §2.1 step 2: with quorum gone the leader disappears."""
    if cluster.error or cluster.leader is not None or not cluster.members:
        return []
    reachable = [m.display_name for m in cluster.members if m.reachable]
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
            command=etcdctl(etcd, "endpoint", "status", "--cluster", "-w", "table"),
        )
    ]


def unreachable_rule(cluster: EtcdCluster, etcd: EtcdConfig | None) -> list[Finding]:
    return [
        _unreachable(m, etcd, cluster.error is not None) for m in cluster.members if not m.reachable
    ]


def _unreachable(member: EtcdMember, etcd: EtcdConfig | None, membership_unknown: bool) -> Finding:
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
        command=etcdctl(
            etcd, "endpoint", "status", endpoints=[member.endpoint] if member.endpoint else None
        ),
    )


ETCD_RULES: tuple[EtcdRule, ...] = (quorum_rules, leader_rule, unreachable_rule)


def evaluate_etcd(cluster: EtcdCluster, etcd: EtcdConfig | None = None) -> list[Finding]:
    findings = [finding for rule in ETCD_RULES for finding in rule(cluster, etcd)]
    return sorted(findings, key=lambda f: (-f.severity, f.id, f.subject))
