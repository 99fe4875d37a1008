"""The audit trail: JSON lines, one intent record fsync'd *before* a mutation and one outcome after.

Pairs read it back during an incident (`kcockpit audit`), so every record names who acted
(`$USER`, and the SSH client address when the cockpit runs inside SSH), on which cluster (its
name and its etcd cluster ID: two labs may share a name), what, on which target, the plan shown,
the guard's verdict, the result and how long it took. Intent and outcome share an `id`; an
intent without an outcome means the process died mid-action. A multi-step action (a rolling
defragment, a static pod's restart) writes one `step` record per step between them, under the
same `id`, so the trail shows how far it got and in which order.

A write that does not reach the disk whole is an error (`AuditWriteError`), never silently
lost: an action whose intent cannot be recorded is not performed at all.

Beside the log sits one lock per cluster (`ActionLock`): two operators (two `kcockpit act`
runs, or the UI and a script) must not change the same cluster at the same time, and the one
refused must learn who holds it.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import getpass
import json
import os
import socket
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cluster.state import state_dir
from cluster.untrusted import neutralized

AUDIT_FILE = "audit.jsonl"
# Beside the audit, what the cockpit saw happen on its own: the leader changes, for the
# incident timeline (kept apart, so the audit stays the record of what operators did).
LEADERS_FILE = "leader-changes.jsonl"
LOCKS_DIR = "locks"
RETRY_BACKOFF_SECONDS = 0.05  # doubled after each failed attempt of a retried write


class AuditWriteError(Exception):
    """A record did not reach the disk whole (an error, a short write, a failed fsync)."""


def cluster_id_hex(cluster_id: int | None) -> str | None:
    """The etcd cluster ID as etcdctl prints it (16 hex digits), None when unknown."""
    return None if cluster_id is None else f"{cluster_id:016x}"


def timestamp() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def operator() -> dict[str, str | None]:
    try:
        user = os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):
        user = f"uid {os.getuid()}"
    ssh = os.environ.get("SSH_CLIENT") or os.environ.get("SSH_CONNECTION")
    return {"user": user, "ssh_client": ssh.split()[0] if ssh else None}


@dataclass
class AuditLog:
    path: Path

    @classmethod
    def default(cls) -> AuditLog:
        return cls(state_dir() / AUDIT_FILE)

    def write(self, record: dict[str, Any], attempts: int = 1) -> None:
        """Appends one record and forces it to disk before returning; raises AuditWriteError
        after `attempts` failed tries (with a short, doubling pause between them)."""
        line = (json.dumps(record, sort_keys=True, default=str) + "\n").encode()
        for attempt in range(attempts):
            try:
                self._append(line)
                return
            except AuditWriteError:
                if attempt + 1 == attempts:
                    raise
                time.sleep(RETRY_BACKOFF_SECONDS * 2**attempt)

    def _append(self, line: bytes) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise AuditWriteError(f"cannot open the audit trail {self.path}: {exc}") from None
        try:
            written = os.write(fd, line)
            if written != len(line):
                os.write(fd, b"\n")  # end the torn fragment so the next record starts clean
                raise AuditWriteError(
                    f"short write to the audit trail {self.path}: {written} of {len(line)} bytes"
                )
            os.fsync(fd)
        except OSError as exc:
            raise AuditWriteError(f"cannot write the audit trail {self.path}: {exc}") from None
        finally:
            os.close(fd)

    def new_record(
        self, phase: str, cluster: str, action: str, target: str, cluster_id: int | None = None
    ) -> dict[str, Any]:
        return {
            "id": uuid.uuid4().hex,
            "time": timestamp(),
            "phase": phase,
            "operator": operator(),
            "cluster": cluster,
            "cluster_id": cluster_id_hex(cluster_id),
            "action": action,
            "target": target,
        }

    def read(self) -> list[dict[str, Any]]:
        """Every readable record, oldest first; a torn last line (a crash mid-write) is skipped."""
        try:
            lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return []
        records = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return readable(records)

    def last(self) -> dict[str, Any] | None:
        records = self.read()
        return records[-1] if records else None


def leader_log(audit: AuditLog) -> AuditLog:
    """The log of observed leader changes beside `audit`."""
    return AuditLog(audit.path.with_name(LEADERS_FILE))


def leader_change_record(
    cluster: str,
    cluster_id: int | None,
    at: dt.datetime,
    old: str | None,
    new: str | None,
    term: int | None,
) -> dict[str, Any]:
    """A leader change the cockpit saw; its id is the change itself, so two cockpits that saw
    the same one make one timeline entry."""
    cluster_hex = cluster_id_hex(cluster_id)
    return {
        "id": f"leader-change:{cluster_hex}:{term}:{new}",
        "time": at.isoformat(timespec="milliseconds"),
        "phase": "observed",
        "operator": operator(),
        "cluster": cluster,
        "cluster_id": cluster_hex,
        "action": "leader-change",
        "target": f"{old or '(none)'} → {new or '(none)'}",
        "term": term,
    }


def incident_records(audit: AuditLog) -> list[dict[str, Any]]:
    """The audit's records and the observed leader changes beside it, by time."""
    records = audit.read() + leader_log(audit).read()
    return sorted(records, key=lambda record: str(record.get("time", "")))


class ActionRunning(Exception):
    """The cluster's action lock is held; `holder` says by whom, doing what, since when."""

    def __init__(self, holder: str) -> None:
        self.holder = holder
        super().__init__(f"another action is running: {holder}")


class ActionLock:
    """One mutation at a time per cluster, across every cockpit and `kcockpit act` process.

    An flock on `<state dir>/locks/<cluster>.lock`, held from the intent record to the outcome
    record. The kernel drops it when its holder dies (even by SIGKILL), so a crashed cockpit
    never leaves the cluster locked. The holder writes its description into the file so the
    one refused can be told who to talk to. The file itself is never removed: unlinking a
    locked file lets a third process lock a new file of the same name.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @classmethod
    def beside(cls, audit: AuditLog, cluster: str) -> ActionLock:
        """The lock of `cluster` next to the audit log (same state dir, same machine)."""
        return cls(audit.path.parent / LOCKS_DIR / f"{quote(cluster, safe='') or 'cluster'}.lock")

    def acquire(self, holder: str) -> None:
        """Takes the lock at once or raises ActionRunning (never waits); OSError when the
        lock file cannot be made at all."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            described = os.pread(fd, 4096, 0).decode("utf-8", errors="replace").strip()
            os.close(fd)
            raise ActionRunning(described or "(its holder has not described itself yet)") from None
        except OSError:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.ftruncate(fd, 0)  # a stale description must not name a finished action
            os.close(fd)  # drops the flock


def holder_description(record: dict[str, Any]) -> str:
    """Who holds a cluster's lock, for the operator refused: who, what, on what, since when."""
    return (
        f"{who(record)} {record.get('action')} {record.get('target')} on "
        f"{record.get('cluster')} (pid {os.getpid()} on {socket.gethostname()}, "
        f"since {record.get('time')})"
    )


def readable(records: Iterable[Any]) -> list[dict[str, Any]]:
    """The records a timeline can show: JSON objects only, every string in them made printable
    (the file is on disk, where anything may have been written into it)."""
    return [neutralized(record) for record in records if isinstance(record, dict)]


def field(record: dict[str, Any], *path: str) -> Any:
    """`record[a][b]…`, or None where the path leads nowhere or through a non-object (a
    record written by hand, or by another version, may have any shape)."""
    value: Any = record
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def timeline(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per attempt: the intent (or refusal) joined with its outcome (and, for a
    multi-step action, its `steps` records in order), oldest first."""
    entries: dict[str, dict[str, Any]] = {}
    for record in records:
        entry = entries.setdefault(str(record.get("id", "")), {"outcome": None})
        if record.get("phase") == "outcome":
            entry["outcome"] = record
        elif record.get("phase") == "step":  # a multi-step action's progress, in order
            entry.setdefault("steps", []).append(record)
        else:
            entry.update(record)
    return [e for e in entries.values() if "action" in e]


def result_of(entry: dict[str, Any]) -> str:
    if entry.get("phase") == "observed":
        return f"observed: term {entry.get('term', '?')}"
    if entry.get("phase") == "refused":
        reasons = field(entry, "verdict", "reasons")
        return "refused: " + "; ".join(map(str, reasons if isinstance(reasons, list) else ()))
    outcome = entry.get("outcome")
    if outcome is None:
        return "no outcome recorded (interrupted?)"
    return f"{field(outcome, 'result', 'status')}: {field(outcome, 'result', 'message')}"


def who(entry: dict[str, Any]) -> str:
    ssh = field(entry, "operator", "ssh_client")
    return f"{field(entry, 'operator', 'user')}" + (f" (ssh from {ssh})" if ssh else "")


def duration_of(entry: dict[str, Any]) -> str:
    seconds = field(entry, "outcome", "duration_s")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return "-"
    return f"{seconds:.2f} s"


def timeline_markdown(records: list[dict[str, Any]]) -> str:
    """The audit as a Markdown incident timeline, for pasting into a ticket or postmortem."""
    lines = [
        "# kcockpit audit: incident timeline",
        "",
        "| time (UTC) | operator | cluster | action | target | result | duration |",
        "|---|---|---|---|---|---|---|",
    ]
    entries = timeline(records)
    for entry in entries:
        cells = [
            entry.get("time", "?"),
            who(entry),
            entry.get("cluster", "?"),
            entry.get("action", "?"),
            entry.get("target", "?"),
            result_of(entry),
            duration_of(entry),
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    commands = [
        (entry, command)
        for entry in entries
        for command in _listed(field(entry, "plan", "commands"))
    ]
    if commands:
        lines += ["", "## Equivalent commands", ""]
        lines += [
            f"- {_cell(e.get('time'))} {_cell(e['action'])} {_cell(e.get('target'))}: "
            f"`{_cell(c).replace('`', chr(39))}`"
            for e, c in commands
        ]
    steps = [(entry, step) for entry in entries for step in _listed(entry.get("steps"))]
    if steps:
        lines += ["", "## Steps of multi-step actions", ""]
        lines += [
            f"- {_cell(field(s, 'time'))} {_cell(e['action'])} {_cell(e.get('target'))}: "
            f"step {_cell(field(s, 'step'))}: {_cell(field(s, 'message'))}"
            for e, s in steps
        ]
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    """A value on one line of a Markdown table."""
    return " ".join(str(value).split("\n")).replace("|", "\\|")


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
