"""The cockpit App: a header, panes as tabs, refreshed live.

Refreshing runs in a worker on the app's own event loop (the sources are async); a tick that
comes while the previous collection is still running is skipped, so refreshes never overlap
and a frozen member can only slow its own row down to the deadline, never the UI. Every
widget carrying `SnapshotView` is handed each new snapshot.
"""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Static, TabbedContent, TabPane

from cluster.collect import Collector
from cluster.config import Config
from cluster.model import Snapshot
from widgets.etcd_pane import EtcdPane
from widgets.findings_list import FindingsList
from widgets.header import ClusterHeader
from widgets.help import HelpScreen


class CockpitApp(App[None]):
    TITLE = "kcockpit"
    CSS = """
    Screen { layout: vertical; }
    #panes { height: 1fr; }
    .section { color: $text-muted; text-style: bold; padding: 0 1; height: 1; }
    #status-line { height: 1; color: $text-muted; padding: 0 1; }
    """
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("r", "refresh_now", "Refresh"),
        Binding("question_mark", "help", "Help", key_display="?"),
    ]

    def __init__(self, config: Config, refresh: float | None = None) -> None:
        super().__init__()
        self.config = config
        self.refresh_seconds = refresh or config.refresh
        self.collector = Collector(config)
        self.snapshot: Snapshot | None = None
        self.refresh_count = 0
        self._refreshing = False

    def compose(self) -> ComposeResult:
        yield ClusterHeader(id="header")
        with TabbedContent(id="panes"), TabPane("etcd", id="pane-etcd"):
            yield EtcdPane(id="etcd")
            yield Static("findings", classes="section")
            yield FindingsList(id="findings")
        yield Static("", id="status-line")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(ClusterHeader).show(None, self.config.name)
        self.set_interval(self.refresh_seconds, self.action_refresh_now)
        self.action_refresh_now()

    async def on_unmount(self) -> None:
        await self.collector.close()

    def action_refresh_now(self) -> None:
        if not self._refreshing:
            self._refreshing = True
            self.run_worker(self._refresh(), group="refresh", exit_on_error=False)

    async def _refresh(self) -> None:
        try:
            snapshot = await self.collector.collect()
        except Exception as exc:
            self.query_one("#status-line", Static).update(f"refresh failed: {exc}")
            return
        finally:
            self._refreshing = False
        self.snapshot = snapshot
        self.refresh_count += 1
        self.query_one(ClusterHeader).show(snapshot, self.config.name)
        for view in self.query(".snapshot-view"):
            view.show_snapshot(snapshot)  # type: ignore[attr-defined]
        status = f"refreshed every {self.refresh_seconds:g} s"
        if snapshot.etcd.error:
            status = f"etcd: {snapshot.etcd.error}"
        self.query_one("#status-line", Static).update(status)

    def action_help(self) -> None:
        keys = [
            (b.key_display or b.key, b.description) for b in self.BINDINGS if isinstance(b, Binding)
        ]
        self.push_screen(HelpScreen(keys))
