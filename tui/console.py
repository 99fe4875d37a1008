"""The console for printed (non-TUI) output: wide enough that rows stay on one line in pipes,
and literal: its strings are cluster data (file names, certificate fields, error words), so they
are never read as markup (`x[/]` would raise), emoji codes or things to highlight. Styled parts
are passed as `rich.text.Text`."""

from __future__ import annotations

from rich.console import Console

PIPE_WIDTH = 160


def output_console() -> Console:
    console = Console(markup=False, emoji=False, highlight=False)
    if not console.is_terminal:
        console.width = max(console.width, PIPE_WIDTH)  # mail, cron, pipes: keep rows whole
    return console
