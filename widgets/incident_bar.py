"""The incident bar: who operates this cockpit and the last action anyone took, from the audit.

During an incident two people look at the same cluster; the bar answers "who is at the
controls?" and "what was done last, by whom, and did it work?" without leaving the screen.
Read-only watchers see it too. The app reads the audit (this cluster's records only); this
widget only renders. An outcome whose state is unknown (a deadline passed after the request was
sent) is shown apart from a failure: the change may have been made.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from actions.audit import who
from widgets.base import QuietStatic


def last_action_text(record: dict[str, Any] | None) -> Text:
    if record is None:
        return Text("last action: none recorded", style="dim")
    phase = record.get("phase")
    if phase == "outcome":
        status = str((record.get("result") or {}).get("status", "?"))
        if status == "verified":
            outcome = Text(f"✔ {status}")
        elif status.startswith("unknown"):  # may have been applied: check before acting again
            outcome = Text(f"? {status}", "bold yellow")
        else:
            outcome = Text(f"✖ {status}", "bold red")
    elif phase == "refused":
        refused_by = record.get("refused_by") or "guard"  # older records: only guards refused
        outcome = Text(f"✖ refused by {refused_by}", style="yellow")
    else:
        outcome = Text("⏳ started, no outcome yet", style="bold yellow")
    time = str(record.get("time", "?"))[11:19]
    text = Text(
        f"last action: {time} {who(record)} {record.get('action')} {record.get('target')} → "
    )
    return text.append_text(outcome)


def incident_text(operating: str, read_only: bool, record: dict[str, Any] | None) -> Text:
    text = Text()
    text.append("👁 watching: " if read_only else "⚑ operating: ", style="bold")
    text.append(operating)
    if read_only:
        text.append(" (read-only)")
    text.append(" │ ")
    return text.append_text(last_action_text(record))


class IncidentBar(QuietStatic):
    DEFAULT_CSS = """
    IncidentBar { height: 1; padding: 0 1; background: $boost; }
    """

    def show(self, operating: str, read_only: bool, record: dict[str, Any] | None) -> None:
        self.update(incident_text(operating, read_only, record), layout=False)  # one line
