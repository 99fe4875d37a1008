"""Row builders: each table's rows and columns as pure functions of a snapshot.

The cockpit's panes, `kcockpit report` and the tests all need the same rows; kept here, apart
from any widget, they are written once, printed without instantiating a pane, and tested on a
hand-built snapshot. Nothing in this package imports Textual (Rich `Text` cells only).
"""
