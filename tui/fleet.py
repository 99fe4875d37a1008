"""The fleet: every cluster of the config at a glance, one keystroke from its cockpit.

`FleetApp` is the cockpit app whose first screen is the fleet (`FleetScreen`): the clusters
are read by a `Fleet` (cluster/fleet.py: each cluster at its slow `[fleet]` pace, a bounded
number at once) on the app's collector loop, and the screen shows their latest rows every
second. `enter` binds the app to that cluster and pushes its `CockpitScreen` (its own collector
at the cockpit's pace); `escape` (or `F`) stops that cockpit's refreshes and comes back, its
collector kept open for `WARM_SECONDS` so coming back to it is instant, then closed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
from functools import partial
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable

from actions.audit import AuditLog
from cluster.config import Config
from cluster.fleet import Fleet, FleetRow, now
from tui.app import CockpitApp, CockpitScreen, Command
from widgets.base import QuietStatic
from widgets.fleet_table import FleetTable
from widgets.footer import QuietFooter

if TYPE_CHECKING:
    from cluster.collect import Collector

WARM_SECONDS = 120.0  # a cockpit left for the fleet keeps its connections this long
SHOW_SECONDS = 1.0  # the fleet's rows are redrawn this often (their age moves)
# The app's own keys that act on a cockpit: on the fleet screen they do nothing.
COCKPIT_ACTIONS = {"refresh_now", "help", "show_pane", "fleet"}


class FleetScreen(Screen):
    AUTO_FOCUS = "#fleet"
    DEFAULT_CSS = """
    #fleet-header { height: 1; background: $panel; }
    #fleet { height: 1fr; }
    """

    def compose(self) -> ComposeResult:
        yield QuietStatic("", id="fleet-header")
        yield FleetTable(id="fleet")
        yield QuietStatic("enter: open the cockpit · / filter · q quit", id="status-line")
        yield QuietFooter(compact=True)

    def on_mount(self) -> None:
        if isinstance(self.app, FleetApp):  # its rows at once, not at the next tick
            self.app.show_fleet()

    def show(self, rows: list[FleetRow], now: dt.datetime, reads: int) -> None:
        """The clusters' rows (worst first) and the header over them."""
        self.query_one(FleetTable).show_fleet(rows, now)
        header = Text()
        header.append(" kcockpit ", style="bold reverse")
        header.append(f" fleet: {len(rows)} clusters ", style="bold")
        header.append(f"│ read at most {reads} at once")
        self.query_one("#fleet-header", QuietStatic).update(header, layout=False)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        app: FleetApp = self.app  # type: ignore[assignment]
        if event.row_key.value is not None:
            app.open_cockpit(event.row_key.value)


class FleetApp(CockpitApp):
    BINDINGS = [
        *CockpitApp.BINDINGS,
        Binding("F", "fleet", "Back to the fleet"),
        Binding("escape", "fleet", "Back to the fleet", show=False),
    ]

    def __init__(
        self,
        configs: list[Config],
        reads: int,
        refresh: float | None = None,
        read_only: bool = False,
        audit: AuditLog | None = None,
        bell: bool = False,
    ) -> None:
        super().__init__(configs[0], refresh, read_only, audit, bell, connect=False)
        self.configs = {config.name: config for config in configs}
        self.fleet = Fleet(configs, reads)
        # Cockpits left for the fleet: their collectors, and the timers that close them.
        self._warm: dict[str, tuple[concurrent.futures.Future[Collector], Timer]] = {}

    def get_default_screen(self) -> Screen:
        return FleetScreen(id="_default")

    def on_mount(self) -> None:
        super().on_mount()
        self.background.loop.call_soon_threadsafe(self.fleet.watch)
        self.set_interval(SHOW_SECONDS, self.show_fleet)

    def show_fleet(self) -> None:
        """The clusters' latest rows on the fleet screen, when it is the one shown."""
        screen = self.screen
        if not isinstance(screen, FleetScreen):
            return
        screen.show(self.fleet.rows(), now(), self.fleet.reads)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """A cockpit's keys work on a cockpit only."""
        return action not in COCKPIT_ACTIONS or isinstance(self.screen, CockpitScreen)

    def open_cockpit(self, name: str) -> None:
        """Binds the app to the cluster `name` and shows its cockpit (its collector reused
        when it is still warm)."""
        warm = self._warm.pop(name, None)
        collector = None
        if warm is not None:
            collector, timer = warm
            timer.stop()
        self.bind_cluster(self.configs[name], collector)
        self.push_screen(CockpitScreen())

    async def action_fleet(self) -> None:
        """Back to the fleet: the cockpit stops refreshing, its collector is kept warm."""
        if not isinstance(self.screen, CockpitScreen):
            return
        if any(w.group == "action" and w.is_running for w in self.workers):
            self.notify("an action is running here: its outcome first", severity="warning")
            return
        await self.scheduler.stop()
        name, collector = self.config.name, self._collector
        if collector is not None:
            timer = self.set_timer(WARM_SECONDS, lambda: self._cool(name))
            self._warm[name] = (collector, timer)
        self._collector = None
        await self.pop_screen()
        self.show_fleet()

    def _cool(self, name: str) -> None:
        warm = self._warm.pop(name, None)
        if warm is not None:
            self.run_worker(self.close_collector(warm[0]), exit_on_error=False)

    async def close_collectors(self) -> None:
        await super().close_collectors()
        futures = [future for future, _ in self._warm.values()]
        await asyncio.gather(*(self.close_collector(f) for f in futures))
        await self.background.run(self.fleet.close())

    def cluster_commands(self) -> list[Command]:
        """The palette's way back to the fleet and into every cluster's cockpit."""
        commands: list[Command] = [("Fleet: every cluster at a glance", self.action_fleet, "key F")]
        for name in self.configs:
            commands.append((f"Open cockpit: {name}", partial(self.open_cockpit, name), "cluster"))
        return commands

    def warm_clusters(self) -> set[str]:
        """The clusters whose cockpit was left and whose collector is still open."""
        return set(self._warm)
