"""`/` filter for the cockpit's tables: show only the rows that mention a word.

At 3 a.m. with seven nodes and forty certificates, "only cp-2" or "only expiring" is what the
operator wants. The filter is kept by the table, not applied once, so every refresh re-applies
it: rows come and go as the cluster changes while the filter stays.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Static

from cluster.model import Snapshot


class FilterScreen(ModalScreen[str | None]):
    """Asks for the filter text; Enter applies it (empty clears), Escape keeps the old one."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]
    DEFAULT_CSS = """
    FilterScreen { align: center middle; }
    FilterScreen > Vertical { width: 60; height: auto; border: round $accent; padding: 0 1; background: $surface; }
    """

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Filter rows (any column contains; empty clears; Escape cancels)")
            yield Input(self.current, placeholder="e.g. cp-2, expiring, down", id="filter-input")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())


class FilterableTable(DataTable):
    """A DataTable whose rows pass through the operator's filter on every refresh.

    Subclasses call `keeps(cells)` for each row they are about to add and `remember(snapshot)`
    when they render one, so a new filter re-renders the last snapshot at once.
    """

    BINDINGS = [Binding("slash", "filter", "Filter rows", key_display="/")]
    DEFAULT_CSS = """
    FilterableTable.-filtered { border-top: solid $accent; }
    """

    filter_text = ""
    shown_snapshot: Snapshot | None = None  # the snapshot the rows were drawn from
    # What the cached rendered rows depend on, beyond what DataTable keys its caches by.
    _styled_for: tuple[object, ...] | None = None
    _rendered_width: int | None = None

    # A pane switch used to re-render every visible row twice, the bulk of a key press on a
    # big table: DataTable (textual is pinned) drops its rendered rows on every Resize (a
    # table gets one each time its pane is shown again, same size or not) and on every style
    # update (each focus change). The two overrides below keep them when nothing they depend
    # on changed.

    def _on_resize(self, event: events.Resize) -> None:
        event.prevent_default()  # instead of DataTable's unconditional invalidation
        width, self._rendered_width = self._rendered_width, event.size.width
        # Rows are padded to the width; the first Resize tells the width they were drawn at.
        if width is not None and width != event.size.width:
            self._update_count += 1

    def notify_style_update(self) -> None:
        """The render caches are keyed by pseudo-class state (focus, hover) already: only a
        new theme or a class change of the table drops them."""
        styled_for = (self.app.theme, frozenset(self.classes))
        if styled_for != self._styled_for:
            self._styled_for = styled_for
            super().notify_style_update()
            return
        super(DataTable, self).notify_style_update()
        self._styles_cache.clear()
        self._get_styles_to_render_cell.cache_clear()  # not keyed by the pseudo-class state
        self.refresh()

    def keeps(self, cells: Iterable[object]) -> bool:
        if not self.filter_text:
            return True
        needle = self.filter_text.casefold()
        return any(needle in str(cell).casefold() for cell in cells)

    def remember(self, snapshot: Snapshot) -> None:
        self.shown_snapshot = snapshot

    def action_filter(self) -> None:
        self.app.push_screen(FilterScreen(self.filter_text), self.set_filter)

    def set_filter(self, text: str | None) -> None:
        if text is None:
            return
        self.filter_text = text
        self.set_class(bool(text), "-filtered")
        self.border_title = Text(f"/ filter: {text}  (/ to change or clear)") if text else None
        self.refilter()

    def refilter(self) -> None:
        """Shows the last rows again through the new filter."""
        raise NotImplementedError
