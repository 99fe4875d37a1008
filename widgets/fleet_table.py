"""The fleet table: every cluster in one row, worst first; `enter` asks for its cockpit.

The rows are widgets/rows/fleet.py's; the table keeps the cursor on its cluster as rows move
(a cluster getting worse climbs), and `/` filters it like every other table.
"""

from __future__ import annotations

import datetime as dt

from textual.binding import Binding

from cluster.fleet import FleetRow
from widgets.rows import fleet
from widgets.table_pane import KeyedTable


class FleetTable(KeyedTable):
    COLUMNS = fleet.COLUMNS
    BINDINGS = [Binding("enter", "select_cursor", "Open cockpit")]

    def show_fleet(self, rows: list[FleetRow], now: dt.datetime) -> None:
        self.show_rows(fleet.rows(rows, now))
