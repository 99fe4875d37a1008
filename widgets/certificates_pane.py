"""The certificates pane: every certificate of every node, the most urgent first; the rows
and their order are widgets/rows/certificates.py's, shared with `kcockpit report`."""

from __future__ import annotations

from cluster.model import Snapshot
from widgets.rows import certificates
from widgets.rows.common import Row
from widgets.table_pane import TablePane


class CertificatesPane(TablePane):
    COLUMNS = certificates.COLUMNS

    def table_rows(self, snapshot: Snapshot) -> list[Row]:
        return certificates.rows(snapshot)
