"""Shared text formatting for panes and the report: sizes, symbols, severities.

State is never carried by colour alone: every marker has a symbol and a word.
"""

from __future__ import annotations

from rich.text import Text

from cluster.model import EtcdMember, Severity

SEVERITY_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.ERROR: "bold red",
    Severity.WARNING: "yellow",
    Severity.INFO: "cyan",
}
SEVERITY_SYMBOL = {
    Severity.CRITICAL: "‼",
    Severity.ERROR: "✖",
    Severity.WARNING: "▲",
    Severity.INFO: "i",
}


def human_bytes(size: int | None) -> str:
    """Decimal units, as etcdctl prints them (go-humanize): 25 kB, 112 MB."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" or value >= 10 else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def severity_text(severity: Severity) -> Text:
    return Text(
        f"{SEVERITY_SYMBOL[severity]} {severity.label.upper()}", style=SEVERITY_STYLE[severity]
    )


def member_state(member: EtcdMember) -> Text:
    if not member.reachable:
        return Text("✗ down", style="bold red")
    if not member.healthy:  # its own errors; "no leader" or an alarm are the cluster's
        return Text("! errors", style="yellow")
    return Text("● up", style="green")


def optional(value: object) -> str:
    return "-" if value is None else str(value)
