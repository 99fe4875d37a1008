"""The console for printed (non-TUI) output: wide enough that rows stay on one line in pipes."""

from __future__ import annotations

from rich.console import Console

PIPE_WIDTH = 160


def output_console() -> Console:
    console = Console()
    if not console.is_terminal:
        console.width = max(console.width, PIPE_WIDTH)  # mail, cron, pipes: keep rows whole
    return console
