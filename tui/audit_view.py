"""`kcockpit audit` for people: the incident timeline as a rich table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from actions.audit import result_of, timeline, who
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
        outcome = entry.get("outcome") or {}
        duration = f"{outcome['duration_s']:.2f} s" if "duration_s" in outcome else "-"
        status_style = (
            "red" if "refused" in result_of(entry) or "failed" in result_of(entry) else ""
        )
        table.add_row(
            entry.get("time", "?"),
            who(entry),
            entry.get("cluster", "?"),
            entry.get("action", "?"),
            entry.get("target", "?"),
            f"[{status_style}]{result_of(entry)}[/]" if status_style else result_of(entry),
            duration,
        )
    console.print(table)
