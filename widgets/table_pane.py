"""A pane that is one table of rows drawn from a snapshot, keeping the cursor across refreshes."""

from __future__ import annotations

from collections.abc import Iterable

from textual.widgets import DataTable

from cluster.model import Snapshot
from widgets.base import SnapshotView
from widgets.filter import FilterableTable
from widgets.rows.common import Column, Row, literal
from widgets.rows.common import node_cell as node_cell  # where the fault tests import it from


class TablePane(SnapshotView, FilterableTable):
    """Subclasses name their COLUMNS and turn a snapshot into keyed rows (a row builder's
    `rows`, from widgets.rows); they do no I/O."""

    COLUMNS: tuple[Column, ...] = ()
    _shown: list[Row] | None = None  # the rows on screen; an unchanged refresh redraws nothing

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        for column in self.COLUMNS:
            self.add_column(column.label, key=column.key)

    def table_rows(self, snapshot: Snapshot) -> Iterable[Row]:
        raise NotImplementedError

    def show_snapshot(self, snapshot: Snapshot) -> None:
        self.remember(snapshot)
        rows = [(key, cells) for key, cells in self.table_rows(snapshot) if self.keeps(cells)]
        shown, self._shown = self._shown, rows
        if rows == shown:
            return
        if shown is not None and [key for key, _ in rows] == [key for key, _ in shown]:
            self._update_cells(rows, shown)  # same rows in the same order: only values changed
            return
        selected = self.selected_key
        self.clear()
        for key, cells in rows:
            self.add_row(*map(literal, cells), key=key)
        if selected is not None and selected in self.rows_by_key:
            self.move_cursor(row=self.get_row_index(selected))

    def _update_cells(self, rows: list[Row], shown: list[Row]) -> None:
        """Rewrites just the cells that changed; the rows, their order and the cursor stay."""
        for (key, cells), (_, before) in zip(rows, shown, strict=True):
            for column, cell, old in zip(self.COLUMNS, cells, before, strict=False):
                if cell != old:
                    self.update_cell(key, column.key, literal(cell), update_width=True)

    @property
    def rows_by_key(self) -> set[str]:
        return {str(key.value) for key in self.rows}

    @property
    def selected_key(self) -> str | None:
        return cursor_row_key(self)

    def row_texts(self) -> list[list[str]]:
        """Every row as plain strings (what tests and screen readers see)."""
        return [[str(cell) for cell in self.get_row_at(i)] for i in range(self.row_count)]


def cursor_row_key(table: DataTable) -> str | None:
    """The key of the row under the cursor, None on an empty table."""
    if not table.row_count:
        return None
    try:
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
    except Exception:
        return None
