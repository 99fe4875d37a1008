"""`kcockpit audit` for people: the incident timeline as a rich table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from actions.audit import duration_of, result_of, timeline, who
from tui.console import output_console


def print_timeline(
    records: list[dict[str, Any]], path: Path, console: Console | None = None
) -> None:
    console = console or output_console()
    entries = timeline(records)
    if not entries:
        console.print(f"no audit records in {path}")
        return
    table = Table(title=f"kcockpit audit ({path})", title_justify="left")
    for column in ("time (UTC)", "operator", "cluster", "action", "target", "result", "duration"):
        table.add_column(column)
    for entry in entries:
        result = result_of(entry)
        status_style = "red" if "refused" in result or "failed" in result else ""
        time, cluster, action, target = (
            str(entry.get(key, "?")) for key in ("time", "cluster", "action", "target")
        )  # a hand-edited record may hold any JSON there
        table.add_row(
            time,
            who(entry),
            cluster,
            action,
            target,
            Text(result, style=status_style),
            duration_of(entry),
        )
    console.print(table)
