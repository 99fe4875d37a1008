"""The last audit record, read cheaply for the incident bar on every refresh.

The audit log only grows, and during a long incident it can be large; re-reading it every
second would make the cockpit slower the longer the incident lasts. So the file is stat'ed on
each poll and read only when its size or mtime changed, and then only its tail.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any

from actions.audit import AuditLog, operator

TAIL_BYTES = 64 * 1024  # far more than one record (a plan with its commands is a few kB)


def operating_here() -> str:
    """Who runs this cockpit: `user@host`, and the SSH client address when inside SSH."""
    here = operator()
    label = f"{here['user']}@{socket.gethostname()}"
    return label + (f" (ssh from {here['ssh_client']})" if here["ssh_client"] else "")


class LastAuditRecord:
    """Polls an AuditLog for its newest complete record."""

    def __init__(self, log: AuditLog) -> None:
        self.log = log
        self.reads = 0  # how many times the file was actually read (tests check the caching)
        self._stamp: tuple[int, int] | None = None
        self._last: dict[str, Any] | None = None

    def poll(self) -> dict[str, Any] | None:
        try:
            stat = os.stat(self.log.path)
        except OSError:
            self._stamp, self._last = None, None
            return None
        stamp = (stat.st_size, stat.st_mtime_ns)
        if stamp != self._stamp:
            self._stamp = stamp
            self._last = self._read_tail(stat.st_size)
        return self._last

    def _read_tail(self, size: int) -> dict[str, Any] | None:
        self.reads += 1
        try:
            with open(self.log.path, "rb") as file:
                file.seek(max(0, size - TAIL_BYTES))
                tail = file.read(TAIL_BYTES)
        except OSError:
            return None
        # The first line of the tail may be cut, the last may be torn by a crash: skip both.
        for line in reversed(tail.decode("utf-8", errors="replace").splitlines()):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                return record
        return None
