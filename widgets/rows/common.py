"""What every table's rows are made of: keyed rows of cells, prioritised columns, shared cells.

A row carries its key beside its cells so that what a row *is* (a member, a node/component, a
certificate path) never has to be read back from what it *shows*: display text is for people
and may be ambiguous ("(unstarted ?)" twice), the key is not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from rich.text import Text

from cluster.nodes.model import NodeState

Cell = str | Text
Row = tuple[str, Sequence[Cell]]  # (row key, cells in column order)


class Column(NamedTuple):
    """A table column. `key` names it (in-place updates address cells by it), `label` heads it,
    and `priority` says how long it stays on a narrow terminal, as k9s does: priority 1 is
    never hidden, and of the others the highest number goes first."""

    key: str
    label: str
    priority: int = 1


def literal(cell: Cell) -> Text:
    """A cell as a table shows it: a plain string is text, never markup. Textual's DataTable
    parses a str cell as markup, so a file name `x[/]` would raise and `[fd00::10]` would
    vanish; Rich tables do too on a console that reads markup."""
    return Text(cell, end="") if isinstance(cell, str) else cell


def node_cell(node: NodeState) -> Cell:
    """The node's name; on a row drawn from an older read (a newer one is awaited), how long."""
    if node.slow_for is None:
        return node.name
    return Text(f"{node.name} ⌛ {node.slow_for:.0f}s", style="yellow")


def unreachable_cell(error: str | None) -> Text:
    return Text(f"✗ unreachable: {error or 'no answer'}", style="bold red")


def padded(first: Sequence[Cell], columns: Sequence[Column]) -> tuple[Cell, ...]:
    """A row that speaks only in its first cells (an unreachable node, a missing API): the
    rest of the columns empty."""
    return (*first, *[""] * (len(columns) - len(first)))
