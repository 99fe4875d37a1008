"""Preflight's checks on hand-built snapshots (no I/O): what cannot be told is a no-go that
says so, and each answer names its evidence."""

from __future__ import annotations

import datetime as dt

from cluster.config import Thresholds
from cluster.model import MemberHash, Snapshot
from cluster.preflight import LastSnapshot, Limits, as_json, checks, go
from tests.test_guards import HEALTHY, ONE_DOWN

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
LIMITS = Limits(snapshot_hours=24, cert_days=30)
AGREE = tuple(MemberHash(i, 100, 0xFEED) for i in (1, 2, 3))


def answers(
    snapshot: Snapshot,
    hashes: tuple[MemberHash, ...] = AGREE,
    last: LastSnapshot | None = None,
) -> dict[str, tuple[bool, str]]:
    found = checks(snapshot, Thresholds(), LIMITS, hashes, last, NOW)
    assert as_json(found)["go"] == go(found)
    return {c.name: (c.ok, c.detail) for c in found}


def test_unknown_is_a_no_go_that_says_so() -> None:
    found = answers(HEALTHY, hashes=AGREE[:2])
    assert found["members"][0] and found["fault-tolerance"][0]
    assert found["certificates"] == (False, "unknown: no nodes configured")
    assert found["disk"] == (False, "unknown: no nodes configured")
    assert found["hashkv"] == (False, "no hash from cp-3")
    assert found["snapshot"] == (False, "no snapshot found (audit trail or directory)")


def test_hashes_disagreeing_at_one_revision_and_an_old_snapshot() -> None:
    mismatch = (*AGREE[:2], MemberHash(3, 100, 0xBAD))
    old = LastSnapshot(NOW - dt.timedelta(hours=30), "/backups/etcd.db")
    found = answers(HEALTHY, hashes=mismatch, last=old)
    assert not found["hashkv"][0] and "differs at revision 100" in found["hashkv"][1]
    assert found["snapshot"] == (False, "/backups/etcd.db, 30.0 h old")
    fresh = LastSnapshot(NOW - dt.timedelta(hours=2), "/backups/etcd.db")
    assert answers(HEALTHY, last=fresh)["snapshot"][0]


def test_a_member_down_fails_members_and_tolerance() -> None:
    found = answers(ONE_DOWN, hashes=AGREE[:2])
    assert not found["members"][0] and "cp-3" in found["members"][1]
    assert found["fault-tolerance"] == (False, "2 of 3 voting healthy, quorum 2: tolerance 0")
