"""The audit trail and the action lock on their own (no lab): the last action is this cluster's
(name and etcd cluster ID), a write the disk refuses is an error said in words, and the lock
refuses a second holder, naming the first."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from actions.audit import (
    ActionLock,
    ActionRunning,
    AuditLog,
    AuditWriteError,
    incident_records,
    leader_change_record,
    leader_log,
    timeline_markdown,
)
from actions.audit_tail import TAIL_BYTES, LastAuditRecord
from widgets.incident_bar import incident_text

OLD_LAB, NEW_LAB = 0x1111, 0x2222  # two labs brought up one after the other, both named "lab"


def record(log: AuditLog, cluster: str, cluster_id: int | None, action: str) -> dict:
    entry = log.new_record("refused", cluster, action, "cp-1", cluster_id)
    if cluster_id is None:
        del entry["cluster_id"]  # as written before records carried the ID
    log.write(entry)
    return entry


def test_last_action_is_this_clusters_by_name_and_id(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    before_ids = record(log, "lab", None, "member-add")
    old = record(log, "lab", OLD_LAB, "move-leader")
    new = record(log, "lab", NEW_LAB, "defragment")
    record(log, "prod", NEW_LAB, "member-remove")  # newest, but another cluster's name
    record(log, "lab", OLD_LAB, "snapshot-save")  # the old lab's, written last

    tail = LastAuditRecord(log, "lab")
    assert tail.poll() == before_ids  # ID not known yet: only a record without one can match
    assert tail.poll(NEW_LAB) == new
    assert tail.poll(None) == new  # etcd unreachable for a refresh: still the same cluster
    assert LastAuditRecord(log, "lab").poll(OLD_LAB)["action"] == "snapshot-save"
    assert LastAuditRecord(log, "staging").poll(NEW_LAB) is None
    assert old["cluster_id"] == f"{OLD_LAB:016x}"


def test_last_action_is_found_behind_a_tail_of_other_clusters(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    ours = record(log, "lab", NEW_LAB, "move-leader")
    while log.path.stat().st_size < 3 * TAIL_BYTES:
        record(log, "prod", 0x9999, "defragment")
    tail = LastAuditRecord(log, "lab")
    assert tail.poll(NEW_LAB) == ours
    assert tail.poll(NEW_LAB) == ours and tail.reads == 1  # unchanged file: not read again


def test_a_full_disk_is_an_audit_write_error_in_words(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.path.symlink_to("/dev/full")  # a real device whose every write fails with ENOSPC
    entry = log.new_record("intent", "lab", "move-leader", "cp-2", NEW_LAB)
    with pytest.raises(AuditWriteError, match="No space left on device") as raised:
        log.write(entry, attempts=3)
    assert str(log.path) in str(raised.value)


def test_a_second_holder_is_refused_and_told_who_holds_the_lock(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    first, second = ActionLock.beside(log, "prod/eu"), ActionLock.beside(log, "prod/eu")
    assert first.path.parent == tmp_path / "locks" and "/" not in first.path.name
    first.acquire("alice move-leader cp-2 on prod/eu (pid 1, since 10:00)")
    try:
        with pytest.raises(ActionRunning, match="another action is running: alice move-leader"):
            second.acquire("bob defragment cp-1 on prod/eu")
        other_cluster = ActionLock.beside(log, "staging")
        other_cluster.acquire("carol defragment cp-1 on staging")  # another cluster: not blocked
        other_cluster.release()
    finally:
        first.release()
    second.acquire("bob defragment cp-1 on prod/eu")
    assert first.path.read_text() == "bob defragment cp-1 on prod/eu"
    second.release()
    assert first.path.read_text() == ""  # a finished action is not named as the holder


@pytest.mark.parametrize(
    ("extra", "shown"),
    [
        (
            {"phase": "outcome", "result": {"status": "unknown: deadline passed after the re"}},
            "→ ? unknown: deadline passed after the re",
        ),
        ({"phase": "refused", "refused_by": "another action"}, "→ ✖ refused by another action"),
    ],
)
def test_bar_tells_an_unknown_outcome_and_who_refused(extra: dict, shown: str) -> None:
    entry = {"action": "defragment", "target": "cp-1", "operator": {"user": "alice"}, **extra}
    assert incident_text("bob@bastion", False, entry).plain.endswith(shown)


def test_observed_leader_changes_join_the_incident_timeline_once(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")
    at = dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)
    action = audit.new_record("intent", "prod", "move-leader", "cp-2", 0xC0FFEE)
    action["time"] = (at + dt.timedelta(seconds=5)).isoformat(timespec="milliseconds")
    audit.write(action)
    for _ in range(2):  # two cockpits saw the same change
        leader_log(audit).write(leader_change_record("prod", 0xC0FFEE, at, "cp-1", "cp-2", 7))
    assert audit.read() == [action]  # the audit stays the operators' record
    markdown = timeline_markdown(incident_records(audit))
    rows = [line for line in markdown.splitlines() if "| prod |" in line]
    assert len(rows) == 2 and "leader-change | cp-1 → cp-2 | observed: term 7" in rows[0]
    assert "move-leader" in rows[1]
