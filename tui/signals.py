"""Leaving cleanly when the terminal goes away.

An SSH drop hangs up the terminal (SIGHUP); a service manager or `kill` sends SIGTERM. Either
way the cockpit exits through the app's own path, so an action in flight is cancelled and
records that it was interrupted instead of dying mid-write. Closing connections may hang on the
very network that just failed: a watchdog ends the process after a grace period, so the
cockpit never outlives its terminal for long (a lab's daemon notices its owner is gone and
tears the lab down by itself).
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from typing import Any

from textual.app import App

HANG_UP_GRACE_SECONDS = 5.0
HANG_UP_EXIT_CODE = 128 + signal.SIGHUP


def exit_on_hang_up(app: App[Any]) -> None:
    """From now on, SIGHUP and SIGTERM exit `app` (call it on the app's running loop)."""
    loop = asyncio.get_running_loop()
    for hang_up_signal in (signal.SIGHUP, signal.SIGTERM):
        loop.add_signal_handler(hang_up_signal, hang_up, app)


def hang_up(app: App[Any]) -> None:
    """The terminal is gone: exit now, and do not outlive it for long if closing hangs."""
    watchdog = threading.Timer(HANG_UP_GRACE_SECONDS, os._exit, args=(HANG_UP_EXIT_CODE,))
    watchdog.daemon = True
    watchdog.start()
    app.exit()
