"""The CNI pane: per node, the files in /etc/cni/net.d and which one the kubelet uses; the
rows are widgets/rows/cni.py's, shared with `kcockpit report`."""

from __future__ import annotations

from cluster.model import Snapshot
from widgets.rows import cni
from widgets.rows.common import Row
from widgets.table_pane import TablePane


class CniPane(TablePane):
    COLUMNS = cni.COLUMNS

    def table_rows(self, snapshot: Snapshot) -> list[Row]:
        return cni.rows(snapshot)
