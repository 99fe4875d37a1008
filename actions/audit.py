"""The audit trail: JSON lines, one intent record fsync'd *before* a mutation and one outcome after.

Pairs read it back during an incident (`kcockpit audit`), so every record names who acted
(`$USER`, and the SSH client address when the cockpit runs inside SSH), on which cluster, what,
on which target, the plan shown, the guard's verdict, the result and how long it took. Intent
and outcome share an `id`; an intent without an outcome means the process died mid-action.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cluster.state import state_dir

AUDIT_FILE = "audit.jsonl"


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

    def write(self, record: dict[str, Any]) -> None:
        """Appends one record and forces it to disk before returning."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, sort_keys=True, default=str) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def new_record(self, phase: str, cluster: str, action: str, target: str) -> dict[str, Any]:
        return {
            "id": uuid.uuid4().hex,
            "time": timestamp(),
            "phase": phase,
            "operator": operator(),
            "cluster": cluster,
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
        return records

    def last(self) -> dict[str, Any] | None:
        records = self.read()
        return records[-1] if records else None


def timeline(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per attempt: the intent (or refusal) joined with its outcome, oldest first."""
    entries: dict[str, dict[str, Any]] = {}
    for record in records:
        entry = entries.setdefault(record.get("id", ""), {"outcome": None})
        if record.get("phase") == "outcome":
            entry["outcome"] = record
        else:
            entry.update(record)
    return [e for e in entries.values() if "action" in e]


def result_of(entry: dict[str, Any]) -> str:
    if entry.get("phase") == "refused":
        return "refused: " + "; ".join(entry.get("verdict", {}).get("reasons", []))
    outcome = entry.get("outcome")
    if outcome is None:
        return "no outcome recorded (interrupted?)"
    result = outcome.get("result", {})
    return f"{result.get('status')}: {result.get('message')}"


def who(entry: dict[str, Any]) -> str:
    operator_ = entry.get("operator") or {}
    ssh = operator_.get("ssh_client")
    return f"{operator_.get('user')}" + (f" (ssh from {ssh})" if ssh else "")


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
        outcome = entry.get("outcome") or {}
        duration = f"{outcome['duration_s']:.2f} s" if "duration_s" in outcome else "-"
        cells = [
            entry.get("time", "?"),
            who(entry),
            entry.get("cluster", "?"),
            entry.get("action", "?"),
            entry.get("target", "?"),
            result_of(entry),
            duration,
        ]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    commands = [
        (entry, command)
        for entry in entries
        for command in (entry.get("plan") or {}).get("commands", [])
    ]
    if commands:
        lines += ["", "## Equivalent commands", ""]
        lines += [f"- {e['time']} {e['action']} {e['target']}: `{c}`" for e, c in commands]
    return "\n".join(lines) + "\n"
