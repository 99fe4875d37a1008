"""Startup tuning: the garbage collector around the first screen.

`tui.cli.cockpit_app` turns cyclic collection off before the heavy imports (each collection
would walk everything Textual, gRPC, asyncssh and kubernetes are making, a tenth of the
launch); the app turns it back on once the first screen is filled. That second half lives
here, away from the app's widgets, because it is about the interpreter, not the screen.
"""

from __future__ import annotations

import gc

GC_YOUNG_THRESHOLD = 10_000  # allocations between young collections (CPython's default: 700)


def calm_garbage_collector() -> None:
    """A full collection stops the UI for as long as it takes to walk every object: 0.2 s and
    more with everything imported, felt as a stuck key. What startup made (modules, the widget
    tree, the first snapshot) lives as long as the app: freeze it out of the walks, and collect
    the young generation less often (Textual allocates a lot per frame). Once per process;
    and on again if a quick launch turned it off until now (tui.cli.cockpit_app)."""
    if not gc.get_freeze_count():
        gc.freeze()
        gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    gc.enable()
