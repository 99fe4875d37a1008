"""Go / no-go before maintenance or an upgrade: what operators check by hand, as one list of
pure checks over a fresh snapshot and the few facts gathered beside it.

Everyone healthy and caught up, a fault to spare, a recent snapshot to go back to, the same
data on every member (HashKV at one pinned revision), no certificate about to expire, one
version per component, disk headroom everywhere, no alarm. A check that cannot tell (a node
not read, no hash answered) is a no-go that says so: "unknown" is not "fine" before a risky
change. The facts that need I/O (the hashes, the newest snapshot) are gathered by the caller
(`kcockpit preflight`, the cockpit's palette) and handed in as plain data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

from cluster.config import Thresholds
from cluster.findings.etcd import caught_up
from cluster.findings.nodes import certificate_problems, component_images
from cluster.model import MemberHash, Snapshot


@dataclass(frozen=True)
class Check:
    """One line of the list: a stable `name` (the JSON's key), what it asks, and the answer."""

    name: str
    title: str
    ok: bool
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class LastSnapshot:
    """The newest etcd snapshot known: when it was taken and where it is (or was recorded)."""

    taken: dt.datetime
    where: str


@dataclass(frozen=True)
class Limits:
    """How recent a snapshot must be and how far off certificate expiry; from the config's
    thresholds unless the operator asks for others."""

    snapshot_hours: float
    cert_days: float

    @classmethod
    def of(cls, thresholds: Thresholds) -> Limits:
        return cls(thresholds.preflight_snapshot_hours, thresholds.cert_expiring_days)


def checks(
    snapshot: Snapshot,
    thresholds: Thresholds,
    limits: Limits,
    hashes: tuple[MemberHash, ...],
    last_snapshot: LastSnapshot | None,
    now: dt.datetime,
) -> list[Check]:
    """Every check, in the order an operator reads them."""
    return [
        members_check(snapshot, thresholds),
        tolerance_check(snapshot),
        snapshot_check(last_snapshot, limits, now),
        hash_check(snapshot, hashes),
        certificate_check(snapshot, thresholds, limits, now),
        version_check(snapshot),
        disk_check(snapshot, thresholds),
        alarm_check(snapshot),
    ]


def go(found: list[Check]) -> bool:
    return all(c.ok for c in found)


def members_check(snapshot: Snapshot, thresholds: Thresholds) -> Check:
    title = "all voting members healthy and caught up"
    cluster = snapshot.etcd
    leader = cluster.leader
    if cluster.error or leader is None:
        return Check("members", title, False, cluster.error or "no member reports a leader")
    behind = []
    for member in cluster.voting:
        if not member.healthy:
            behind.append(f"{member.display_name}: {member.error or 'not healthy'}")
        elif not caught_up(member, leader, thresholds):
            behind.append(
                f"{member.display_name}: applied {member.raft_applied_index}, "
                f"leader at {leader.raft_index}"
            )
    if behind:
        return Check("members", title, False, "; ".join(behind))
    names = ", ".join(m.display_name for m in cluster.voting)
    return Check("members", title, True, f"{names}; leader {leader.display_name}")


def tolerance_check(snapshot: Snapshot) -> Check:
    cluster = snapshot.etcd
    detail = (
        f"{cluster.healthy_voting} of {len(cluster.voting)} voting healthy, quorum "
        f"{cluster.quorum}: tolerance {cluster.tolerance}"
    )
    return Check("fault-tolerance", "fault tolerance ≥ 1", cluster.tolerance >= 1, detail)


def snapshot_check(last: LastSnapshot | None, limits: Limits, now: dt.datetime) -> Check:
    title = f"an etcd snapshot newer than {limits.snapshot_hours:g} h"
    if last is None:
        return Check("snapshot", title, False, "no snapshot found (audit trail or directory)")
    hours = (now - last.taken).total_seconds() / 3600
    ok = hours <= limits.snapshot_hours
    return Check("snapshot", title, ok, f"{last.where}, {hours:.1f} h old")


def hash_check(snapshot: Snapshot, hashes: tuple[MemberHash, ...]) -> Check:
    title = "HashKV agrees across members at one revision"
    members = [m for m in snapshot.etcd.members if m.reachable]
    if len(members) == 1 and not hashes:
        return Check("hashkv", title, True, "one member: nothing to compare")
    answered = {h.member_id for h in hashes}
    silent = [m.display_name for m in snapshot.etcd.members if m.id not in answered]
    ranges = {(h.revision, h.compact_revision) for h in hashes}
    if silent or len(ranges) != 1:
        why = f"no hash from {', '.join(silent)}" if silent else "not comparable (compaction)"
        return Check("hashkv", title, False, why)
    revision = next(iter(ranges))[0]
    values = {h.hash for h in hashes}
    if len(values) > 1:
        by_id = {m.id: m.display_name for m in snapshot.etcd.members}
        listing = ", ".join(f"{by_id.get(h.member_id, h.member_id)} {h.hash:#010x}" for h in hashes)
        return Check("hashkv", title, False, f"differs at revision {revision}: {listing}")
    return Check("hashkv", title, True, f"{len(hashes)} members agree at revision {revision}")


def certificate_check(
    snapshot: Snapshot, thresholds: Thresholds, limits: Limits, now: dt.datetime
) -> Check:
    title = f"no certificate expiring within {limits.cert_days:g} days"
    unread = [n.name for n in snapshot.nodes if not n.reachable]
    if not snapshot.nodes or unread:
        why = f"nodes not read: {', '.join(unread)}" if unread else "no nodes configured"
        return Check("certificates", title, False, f"unknown: {why}")
    judged = replace(thresholds, cert_expiring_days=limits.cert_days)
    expiring = [
        f"{node.name}:{cert.name} {evidence}"
        for node in snapshot.nodes
        for cert in node.certificates
        for finding_id, _, evidence in certificate_problems(cert, node, now, judged)
        if finding_id in ("cert.expired", "cert.expiring")
    ]
    if expiring:
        return Check("certificates", title, False, "; ".join(expiring))
    count = sum(len(n.certificates) for n in snapshot.nodes)
    return Check("certificates", title, True, f"{count} certificates checked")


def version_check(snapshot: Snapshot) -> Check:
    title = "one etcd version and one image per control-plane component"
    skews = []
    versions = {m.version for m in snapshot.etcd.members if m.reachable and m.version}
    if len(versions) > 1:
        skews.append(f"etcd {', '.join(sorted(versions))}")
    for component, by_image in sorted(component_images(snapshot).items()):
        if len(by_image) > 1:
            listing = "; ".join(
                f"{', '.join(names)}: {image}" for image, names in sorted(by_image.items())
            )
            skews.append(f"{component}: {listing}")
    if skews:
        return Check("versions", title, False, " | ".join(skews))
    return Check("versions", title, True, f"etcd {', '.join(sorted(versions)) or '?'}")


def disk_check(snapshot: Snapshot, thresholds: Thresholds) -> Check:
    title = f"every node's disk below {thresholds.disk_warning_percent:g}%"
    if not snapshot.nodes:
        return Check("disk", title, False, "unknown: no nodes configured")
    problems = [f"{n.name}: not read ({n.error})" for n in snapshot.nodes if not n.reachable]
    problems += [
        f"{node.name}: {fs.path} {fs.percent:.0f}% full"
        for node in snapshot.nodes
        for fs in node.filesystems
        if fs.percent > thresholds.disk_warning_percent
    ]
    if problems:
        return Check("disk", title, False, "; ".join(problems))
    fullest = max((fs.percent for n in snapshot.nodes for fs in n.filesystems), default=None)
    shown = "no filesystem read" if fullest is None else f"fullest {fullest:.0f}%"
    return Check("disk", title, fullest is not None, shown)


def alarm_check(snapshot: Snapshot) -> Check:
    alarms = snapshot.etcd.alarms
    by_id = {m.id: m.display_name for m in snapshot.etcd.members}
    listing = ", ".join(f"{alarm} on {by_id.get(i, f'{i:016x}')}" for i, alarm in alarms)
    return Check("alarms", "no etcd alarm", not alarms, listing or "none")


def as_json(found: list[Check]) -> dict[str, Any]:
    """`kcockpit preflight --json`: `go` and every check; the names are a contract."""
    return {"go": go(found), "checks": [c.as_json() for c in found]}
