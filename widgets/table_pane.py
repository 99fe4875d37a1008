"""A pane that is one table of rows drawn from a snapshot, keeping the cursor across refreshes
and showing the columns its width has room for, the most important ones last to go.

An operator at 3 a.m. may be on an 80x24 terminal: a table as wide as all its columns would
scroll its most telling ones (who leads, how far raft got) off the edge. So, as k9s does, each
column has a priority and a narrow pane leaves out the least important ones until the rest fit;
a wider one brings them back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.cells import cell_len
from textual.widget import Widget
from textual.widgets import DataTable

from actions.specs import TargetKind
from cluster.model import Snapshot
from widgets.base import SnapshotView
from widgets.filter import FilterableTable
from widgets.rows.common import Cell, Column, Row, literal
from widgets.rows.common import node_cell as node_cell  # where the fault tests import it from

# The most a column's widest cell claims when deciding what fits: a long free text (an error,
# an event message) may run past the edge, the table scrolls, rather than push out the rest.
FREE_TEXT_CLAIM = 40


class KeyedTable(FilterableTable):
    """A table of keyed rows (`show_rows`) under the operator's filter, keeping the cursor on
    its row; columns are hidden and shown again as the table's width and the rows' widths
    change (`hidden_columns`). Subclasses name their COLUMNS."""

    COLUMNS: tuple[Column, ...] = ()
    _given: list[Row] = []  # the rows last given, before the filter (a new filter re-applies)
    _shown: list[Row] | None = None  # the rows on screen; an unchanged refresh redraws nothing
    _hidden: frozenset[str] = frozenset()  # the keys of the columns left out at this width

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self._add_columns()

    def on_resize(self) -> None:
        self._fit()

    def _add_columns(self) -> None:
        for column in self.shown_columns:
            self.add_column(column.label, key=column.key)

    def refilter(self) -> None:
        self.show_rows(self._given)

    def show_rows(self, given: Iterable[Row]) -> None:
        """Puts the rows that pass the filter on screen, redrawing only what changed."""
        self._given = list(given)
        rows = [(key, cells) for key, cells in self._given if self.keeps(cells)]
        shown, self._shown = self._shown, rows
        if rows == shown or self._fit():  # unchanged, or redrawn with the columns that fit
            return
        if shown is not None and [key for key, _ in rows] == [key for key, _ in shown]:
            self._update_cells(rows, shown)  # same rows in the same order: only values changed
            return
        self._draw(rows)

    def _fit(self) -> bool:
        """Leaves out the columns the width has no room for; True when that changed which are
        shown (the table is then redrawn). Before the pane is laid out, nothing changes."""
        if self.size.width <= 0:
            return False
        hidden = hidden_columns(self.COLUMNS, self._shown or (), self._room(), self.cell_padding)
        if hidden == self._hidden:
            return False
        self._hidden = hidden
        self._draw(self._shown or (), columns=True)
        return True

    def _room(self) -> int:
        """The cells the columns may take. A pane as wide as its table (`width: auto`, as the
        etcd members beside the findings on a wide terminal) may grow to its container's width
        or its max-width: its own width is only what the columns it shows took. The
        scrollbar's room is kept even when it is not shown: rows that come and go must not
        make columns flicker in and out."""
        width = self.size.width
        container = self.parent
        if (
            self.styles.width is not None
            and self.styles.width.is_auto
            and isinstance(container, Widget)
        ):
            width = container.size.width
            if self.styles.max_width is not None:
                most = self.styles.max_width.resolve(container.size, self.app.size)
                width = min(width, int(most))
            width -= self.styles.gutter.width
        return width - self.styles.scrollbar_size_vertical

    def _draw(self, rows: Iterable[Row], columns: bool = False) -> None:
        """Redraws every row (and the columns, when which are hidden changed); the cursor
        stays on its row."""
        selected = self.selected_key
        self.clear(columns=columns)
        if columns:
            self._add_columns()
        for key, cells in rows:
            self.add_row(*map(literal, self._visible(cells)), key=key)
        if selected is not None and selected in self.rows_by_key:
            self.move_cursor(row=self.get_row_index(selected))

    def _visible(self, cells: Sequence[Cell]) -> list[Cell]:
        return [
            cell
            for column, cell in zip(self.COLUMNS, cells, strict=False)
            if column.key not in self._hidden
        ]

    def _update_cells(self, rows: list[Row], shown: list[Row]) -> None:
        """Rewrites just the cells that changed; the rows, their order and the cursor stay."""
        for (key, cells), (_, before) in zip(rows, shown, strict=True):
            for column, cell, old in zip(self.COLUMNS, cells, before, strict=False):
                if cell != old and column.key not in self._hidden:
                    self.update_cell(key, column.key, literal(cell), update_width=True)

    @property
    def rows_by_key(self) -> set[str]:
        return {str(key.value) for key in self.rows}

    @property
    def selected_key(self) -> str | None:
        return cursor_row_key(self)

    @property
    def shown_columns(self) -> list[Column]:
        """The columns on screen, in order."""
        return [column for column in self.COLUMNS if column.key not in self._hidden]

    def row_texts(self) -> list[list[str]]:
        """Every row on screen as plain strings, with all its columns, hidden or not (what
        tests and screen readers see: a narrow terminal hides columns from the eye only)."""
        return [[str(cell) for cell in cells] for _, cells in self._shown or ()]


class TablePane(SnapshotView, KeyedTable):
    """Subclasses name their COLUMNS and turn a snapshot into keyed rows (a row builder's
    `rows`, from widgets.rows); they do no I/O."""

    # The kinds of target its rows are: the pane binds every action on them (action_bindings).
    TARGETS: tuple[TargetKind, ...] = ()

    def table_rows(self, snapshot: Snapshot) -> Iterable[Row]:
        raise NotImplementedError

    def show_snapshot(self, snapshot: Snapshot) -> None:
        self.remember(snapshot)
        self.show_rows(self.table_rows(snapshot))


def hidden_columns(
    columns: Sequence[Column], rows: Iterable[Row], width: int, padding: int = 1
) -> frozenset[str]:
    """The keys of the columns to leave out so that the others fit `width` cells: the highest
    priority number first, of equal ones the rightmost. Priority 1 columns stay even when
    they alone are too wide (the table then scrolls)."""
    widest = [cell_len(column.label) for column in columns]
    for _, cells in rows:
        for index, cell in enumerate(cells[: len(widest)]):
            width_of = cell_len(cell) if isinstance(cell, str) else cell.cell_len
            widest[index] = max(widest[index], width_of)
    claims = {
        column.key: min(cells_wide, FREE_TEXT_CLAIM) + 2 * padding
        for column, cells_wide in zip(columns, widest, strict=True)
    }
    shown = list(columns)
    while sum(claims[column.key] for column in shown) > width:
        optional = [column for column in shown if column.priority > 1]
        if not optional:
            break
        shown.remove(max(reversed(optional), key=lambda column: column.priority))
    return frozenset(claims) - {column.key for column in shown}


def cursor_row_key(table: DataTable) -> str | None:
    """The key of the row under the cursor, None on an empty table."""
    if not table.row_count:
        return None
    try:
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
    except Exception:
        return None
