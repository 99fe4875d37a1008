"""The findings table (worst first, the snapshot's order) and the detail of one finding.

The table is for scanning; the detail answers the operator's next three questions: what was
observed, what it means, and the exact command to run. A row is keyed by id and subject, so
the detail follows the finding, not a position in a list that reorders as severities change.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text

from cluster.model import Finding, Snapshot
from widgets.format import severity_text
from widgets.rows.common import Column, Row

COLUMNS = (
    Column("severity", "severity", 1),
    Column("id", "id", 1),
    Column("subject", "subject", 1),
    Column("summary", "summary", 2),
)


def finding_key(finding: Finding) -> str:
    return f"{finding.id}|{finding.subject}"


def by_key(findings: Iterable[Finding]) -> dict[str, Finding]:
    """The findings by row key, in their order; of two with one id and subject, the first
    (the worse: the snapshot sorts them) stands for both."""
    keyed: dict[str, Finding] = {}
    for finding in findings:
        keyed.setdefault(finding_key(finding), finding)
    return keyed


def rows(snapshot: Snapshot) -> list[Row]:
    return [
        (key, (severity_text(f.severity), f.id, f.subject, f.summary))
        for key, f in by_key(snapshot.findings).items()
    ]


def finding_detail(finding: Finding | None) -> Text:
    """Evidence, explanation, next command and the action key, as the detail box shows them."""
    if finding is None:
        return Text("✔ no findings", style="green")
    text = Text()
    text.append_text(severity_text(finding.severity))
    text.append(f" {finding.id} · {finding.subject}\n", style="bold")
    text.append(f"{finding.summary}\n\n")
    text.append("evidence  ", style="bold")
    text.append(f"{finding.evidence}\n")
    text.append("next      ", style="bold")
    text.append(f"{finding.next}\n")
    if finding.command:
        text.append("command   ", style="bold")
        text.append(f"{finding.command}\n", style="cyan")
    if finding.action:
        text.append("action    ", style="bold")
        text.append(f"enter / a: {finding.action} {finding.target} (guarded, asks first)")
    return text
