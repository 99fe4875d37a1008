"""`kcockpit preflight` (and the palette's "Preflight"): gathers what the go / no-go checks need
(cluster/preflight.py) and prints them; exit 0 only when every check passes.

Gathered here, with deadlines: a fresh snapshot (every member answers now or meets its
deadline), HashKV at one pinned revision, and the newest etcd snapshot: a verified
`snapshot-save` in the audit trail of this cluster, or a `*.db` file in the snapshot directory
(the one `snapshot-save` writes to unless told otherwise, or `--snapshot-dir`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from actions.audit import AuditLog, field, timeline
from actions.etcd_actions import SNAPSHOTS_DIR
from cluster.etcd.hashes import pinned_hashes
from cluster.preflight import Check, LastSnapshot, Limits, as_json, checks, go
from tui.console import output_console
from widgets.preflight import check_line, verdict_line

if TYPE_CHECKING:
    from cluster.collect import Collector
    from cluster.config import Config


async def gather(
    collector: Collector, audit: AuditLog, snapshot_dir: Path, limits: Limits
) -> list[Check]:
    """Every check on a fresh read; run it on the collector's loop."""
    snapshot = await collector.collect(fresh=True)
    hashes = await pinned_hashes(collector.etcd_client, snapshot.etcd.members)
    last = newest_snapshot(audit.read(), collector.config.name, snapshot_dir)
    now = dt.datetime.now(dt.UTC)
    return checks(snapshot, collector.config.thresholds, limits, hashes, last, now)


def newest_snapshot(
    records: list[dict[str, Any]], cluster: str, directory: Path
) -> LastSnapshot | None:
    """The newest of: a verified snapshot-save of this cluster in the audit trail, a `*.db`
    file in `directory`."""
    found: list[LastSnapshot] = []
    for entry in timeline(records):
        outcome = entry.get("outcome")
        verified = field(outcome or {}, "result", "status") == "verified"
        if entry.get("action") != "snapshot-save" or entry.get("cluster") != cluster:
            continue
        if not verified or not isinstance(outcome, dict):
            continue
        try:
            taken = dt.datetime.fromisoformat(str(outcome.get("time")))
        except ValueError:
            continue
        summary = field(entry, "plan", "summary") or "snapshot-save"
        found.append(LastSnapshot(taken, f"audit: {summary}"))
    try:
        files = [p for p in directory.glob("*.db") if p.is_file()]
    except OSError:
        files = []
    for path in files:
        taken = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
        found.append(LastSnapshot(taken, str(path)))
    return max(found, key=lambda s: s.taken, default=None)


def print_checks(found: list[Check], cluster: str, console: Console | None = None) -> None:
    console = console or output_console()
    console.print(verdict_line(found, cluster))
    for check in found:
        console.print(check_line(check))


def run_preflight(
    config: Config,
    as_json_output: bool,
    snapshot_dir: Path | None,
    snapshot_hours: float | None,
    cert_days: float | None,
) -> int:
    """Exit 0 when every check passes, 1 otherwise."""
    from cluster.collect import Collector
    from cluster.state import state_dir

    defaults = Limits.of(config.thresholds)
    limits = Limits(
        snapshot_hours if snapshot_hours is not None else defaults.snapshot_hours,
        cert_days if cert_days is not None else defaults.cert_days,
    )
    directory = snapshot_dir or state_dir() / SNAPSHOTS_DIR

    async def collect() -> list[Check]:
        collector = Collector(config)
        try:
            return await gather(collector, AuditLog.default(), directory, limits)
        finally:
            await collector.close()

    found = asyncio.run(collect())
    if as_json_output:
        print(json.dumps(as_json(found), indent=2))
    else:
        print_checks(found, config.name)
    return 0 if go(found) else 1
