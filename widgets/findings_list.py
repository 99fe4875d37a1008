"""A compact list of the current findings, worst first, one line each."""

from __future__ import annotations

from rich.text import Text

from cluster.model import Finding, Snapshot
from widgets.base import QuietStatic, SnapshotView
from widgets.format import severity_text


def findings_text(findings: tuple[Finding, ...]) -> Text:
    if not findings:
        return Text("✔ no findings", style="green")
    text = Text()
    for index, finding in enumerate(findings):
        if index:
            text.append("\n")
        text.append_text(severity_text(finding.severity))
        text.append(f" {finding.id} ", style="bold")
        text.append(f"{finding.subject}: {finding.evidence}")
    return text


class FindingsList(SnapshotView, QuietStatic):
    DEFAULT_CSS = """
    FindingsList { height: auto; max-height: 10; padding: 0 1; }
    """

    def show_snapshot(self, snapshot: Snapshot) -> None:
        self.update(findings_text(snapshot.findings))
