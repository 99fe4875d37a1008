"""The incident bar and its cheap read of the audit's last record (pure: no lab)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from actions.audit import AuditLog
from actions.audit_tail import TAIL_BYTES, LastAuditRecord, operating_here
from widgets.incident_bar import incident_text


def record(log: AuditLog, phase: str, **extra: object) -> dict[str, object]:
    entry = {**log.new_record(phase, "prod", "move-leader", "cp-2"), **extra}
    log.write(entry)
    return entry


def test_last_record_is_reread_only_when_the_file_changes(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    tail = LastAuditRecord(log)
    assert tail.poll() is None  # no file yet: nothing, no error
    intent = record(log, "intent")
    assert tail.poll() == intent
    for _ in range(5):
        assert tail.poll() == intent
    assert tail.reads == 1  # unchanged file: not read again
    outcome = record(log, "outcome", result={"status": "verified", "message": "ok"})
    assert tail.poll() == outcome and tail.reads == 2


def test_big_log_reads_only_the_tail_and_skips_a_torn_line(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    for _ in range(2000):  # a long incident: ~0.5 MB, many times the tail
        record(log, "refused", verdict={"reasons": ["x" * 200]})
    last = record(log, "outcome", result={"status": "failed", "message": "deadline"})
    with log.path.open("a") as file:
        file.write('{"phase": "intent", "torn')  # the process died mid-write
    assert log.path.stat().st_size > 4 * TAIL_BYTES
    assert LastAuditRecord(log).poll() == last


@pytest.mark.parametrize(
    ("phase", "extra", "shown"),
    [
        ("outcome", {"result": {"status": "verified"}}, "→ ✔ verified"),
        ("outcome", {"result": {"status": "failed"}}, "→ ✖ failed"),
        ("refused", {}, "→ ✖ refused by guard"),
        ("intent", {}, "→ ⏳ started, no outcome yet"),
    ],
)
def test_bar_names_who_did_what_and_the_result_in_words(
    tmp_path: Path, phase: str, extra: dict[str, object], shown: str
) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    entry = record(log, phase, operator={"user": "alice", "ssh_client": "10.0.0.7"}, **extra)
    text = incident_text("bob@bastion", False, entry).plain
    assert text.startswith("⚑ operating: bob@bastion │ last action: ")
    assert "alice (ssh from 10.0.0.7) move-leader cp-2" in text and text.endswith(shown)


def test_watchers_see_the_bar_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER", "carol")
    monkeypatch.setenv("SSH_CLIENT", "192.168.7.9 52011 22")
    here = operating_here()
    assert here == f"carol@{socket.gethostname()} (ssh from 192.168.7.9)"
    text = incident_text(here, True, None).plain
    assert text.startswith("👁 watching: carol@") and "(read-only)" in text
    assert text.endswith("last action: none recorded")
