"""The findings pane: what is wrong, worst first, and for the selected one what to do about it.

The table is for scanning (severity, id, subject, one-line summary); the detail below answers
the operator's next three questions for the row under the cursor: what was observed, what it
means, and the exact command to run. When a guarded action performs that step, `enter` (or `a`)
opens its confirmation dialog for the finding's target: the pane only asks, the app decides.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Static

from cluster.model import Finding, Snapshot
from widgets.base import QuietStatic
from widgets.messages import request_action
from widgets.rows import findings as finding_rows
from widgets.rows.common import Row
from widgets.rows.findings import finding_detail
from widgets.rows.findings import finding_key as finding_key  # the app keys findings by it
from widgets.table_pane import TablePane


class FindingsTable(TablePane):
    """Every finding, sorted worst first (the snapshot's order); the key is id + subject."""

    COLUMNS = finding_rows.COLUMNS
    BINDINGS = [
        Binding("enter", "act", "Run the finding's action", show=False),
        Binding("a", "act", "Run the finding's action"),
    ]

    class Shown(Message):
        """The table shows a new snapshot: the detail must follow even if the cursor did not."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.findings: dict[str, Finding] = {}

    def table_rows(self, snapshot: Snapshot) -> list[Row]:
        self.findings = finding_rows.by_key(snapshot.findings)
        return finding_rows.rows(snapshot)

    def show_snapshot(self, snapshot: Snapshot) -> None:
        super().show_snapshot(snapshot)
        self.post_message(self.Shown())

    @property
    def selected(self) -> Finding | None:
        key = self.selected_key
        return self.findings.get(key) if key is not None else None

    def action_act(self) -> None:
        finding = self.selected
        if finding is None:
            request_action(self, "", None, "finding")  # says that none is selected
        elif finding.action is None:
            self.notify(f"{finding.id}: no guarded action; run the command shown", timeout=5)
        else:
            request_action(self, finding.action, finding.target, "finding")


class FindingsPane(Vertical):
    """The table plus the detail of the selected finding, refreshed with each snapshot."""

    DEFAULT_CSS = """
    FindingsPane FindingsTable { height: 1fr; }
    FindingsPane #finding-detail {
        height: auto; max-height: 14; border-top: solid $accent; padding: 0 1;
    }
    """

    def compose(self) -> ComposeResult:
        yield FindingsTable(id="findings-table")
        yield QuietStatic(finding_detail(None), id="finding-detail")

    @property
    def table(self) -> FindingsTable:
        return self.query_one(FindingsTable)

    def on_data_table_row_highlighted(self, _: DataTable.RowHighlighted) -> None:
        self.show_detail()

    def on_findings_table_shown(self, _: FindingsTable.Shown) -> None:
        self.show_detail()

    def show_detail(self) -> None:
        self.query_one("#finding-detail", Static).update(finding_detail(self.table.selected))
