"""Where the cockpit keeps what it must remember between runs, and one small JSON file per cluster.

Some findings need a fact older than the process: `etcd.revision-regressed` compares the revision
now with the highest one ever seen, so a cluster restored from an old snapshot is caught even when
the cockpit was restarted in between (runbook troubleshooting-case-etcd-rollback). The file is
keyed by the etcd cluster ID as well as the cockpit's cluster name, so two clusters configured
under the same name never compare revisions with each other.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

WRITE_INTERVAL = 5.0  # seconds between writes of a rising revision


def state_dir() -> Path:
    """$KCOCKPIT_STATE_DIR, else $XDG_STATE_HOME/kcockpit, else ~/.local/state/kcockpit."""
    explicit = os.environ.get("KCOCKPIT_STATE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "kcockpit"


class ClusterState:
    """The highest etcd revision seen per etcd cluster ID, written through on every rise."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._max_revision: dict[str, int] = {}
        self.error: str | None = None
        self._dirty = False
        self._written_at = -WRITE_INTERVAL
        self._load()

    @classmethod
    def for_cluster(cls, name: str, directory: Path | None = None) -> ClusterState:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "cluster"
        return cls((directory or state_dir()) / "clusters" / f"{safe}.json")

    def _load(self) -> None:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            revisions = raw["max_revision"]
            self._max_revision = {str(k): int(v) for k, v in revisions.items()}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            self.error = f"state file {self.path} unreadable, starting afresh: {exc}"

    def max_revision(self, cluster_id: int) -> int | None:
        return self._max_revision.get(f"{cluster_id:016x}")

    def see_revision(self, cluster_id: int, revision: int) -> None:
        """Remembers `revision` if it is the highest seen for that cluster; written to disk at
        most every WRITE_INTERVAL seconds (a busy cluster's revision rises every refresh)."""
        key = f"{cluster_id:016x}"
        if revision <= self._max_revision.get(key, -1):
            return
        self._max_revision[key] = revision
        self._dirty = True
        if time.monotonic() - self._written_at >= WRITE_INTERVAL:
            self.flush()

    def flush(self) -> None:
        """Writes what is not on disk yet (the Collector calls it on close)."""
        if not self._dirty:
            return
        self._dirty, self._written_at = False, time.monotonic()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text(json.dumps({"max_revision": self._max_revision}), "utf-8")
            temporary.replace(self.path)
        except OSError as exc:
            self.error = f"cannot write state file {self.path}: {exc}"
