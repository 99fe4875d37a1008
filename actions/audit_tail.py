"""The last audit record of this cluster, read cheaply for the incident bar on every refresh.

The audit log only grows, and during a long incident it can be large; re-reading it every
second would make the cockpit slower the longer the incident lasts. So the file is stat'ed on
each poll and read only when its size or mtime changed, and then from its end backwards, only
as far as the newest record of this cluster.

One state dir serves every cluster a user operates, and a lab torn down and brought up again
keeps its name: the bar shows only records of this cluster name *and* this etcd cluster ID, so
an old lab's action never appears as the last action on a new one.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any

from actions.audit import AuditLog, cluster_id_hex, operator
from cluster.untrusted import neutralized

TAIL_BYTES = 64 * 1024  # far more than one record (a plan with its commands is a few kB)


def operating_here() -> str:
    """Who runs this cockpit: `user@host`, and the SSH client address when inside SSH."""
    here = operator()
    label = f"{here['user']}@{socket.gethostname()}"
    return label + (f" (ssh from {here['ssh_client']})" if here["ssh_client"] else "")


class LastAuditRecord:
    """Polls an AuditLog for the newest complete record of one cluster."""

    def __init__(self, log: AuditLog, cluster: str | None = None) -> None:
        """`cluster` is the cockpit's cluster name; None follows every name in the log."""
        self.log = log
        self.cluster = cluster
        self.cluster_id: str | None = None
        self.reads = 0  # how many times the file was actually read (tests check the caching)
        self._stamp: tuple[int, int, str | None] | None = None
        self._last: dict[str, Any] | None = None

    def poll(self, cluster_id: int | None = None) -> dict[str, Any] | None:
        """The newest record of this cluster. `cluster_id` is the etcd cluster ID of the
        latest snapshot; None (etcd unreachable right now) keeps the last one seen, so the
        bar does not go blank in the very incident it is for."""
        if cluster_id is not None:
            self.cluster_id = cluster_id_hex(cluster_id)
        try:
            stat = os.stat(self.log.path)
        except OSError:
            self._stamp, self._last = None, None
            return None
        stamp = (stat.st_size, stat.st_mtime_ns, self.cluster_id)
        if stamp != self._stamp:
            self._stamp = stamp
            self._last = self._newest_of_this_cluster(stat.st_size)
        return self._last

    def of_this_cluster(self, record: dict[str, Any]) -> bool:
        """Same name and same cluster ID; a record without an ID (written before IDs were
        recorded) only while this cluster's ID is unknown, as nothing tells the two apart."""
        if self.cluster is not None and record.get("cluster") != self.cluster:
            return False
        return record.get("cluster_id") == self.cluster_id

    def _newest_of_this_cluster(self, size: int) -> dict[str, Any] | None:
        self.reads += 1
        try:
            with open(self.log.path, "rb") as file:
                end, cut = size, b""
                while end > 0:
                    start = max(0, end - TAIL_BYTES)
                    file.seek(start)
                    lines = (file.read(end - start) + cut).split(b"\n")
                    # The first line may be cut by the chunk: it is finished in the next one.
                    cut = lines.pop(0) if start > 0 else b""
                    for line in reversed(lines):
                        record = _record(line)
                        if record is not None and self.of_this_cluster(record):
                            return record
                    end = start
        except OSError:
            return None
        return None


def _record(line: bytes) -> dict[str, Any] | None:
    """One record, or None for a torn line (a crash mid-write) or anything not a record."""
    try:
        record = json.loads(line.decode("utf-8", errors="replace"))
    except json.JSONDecodeError:
        return None
    return neutralized(record) if isinstance(record, dict) else None
