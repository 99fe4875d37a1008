"""The cockpit App: a header, panes as tabs, refreshed live.

Refreshing runs in a worker on the app's own event loop (the sources are async); a tick that
comes while the previous collection is still running is skipped, so refreshes never overlap
and a frozen member can only slow its own row down to the deadline, never the UI. Every
widget carrying `SnapshotView` is handed each new snapshot.
"""

from __future__ import annotations

import asyncio
import signal

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Static, TabbedContent, TabPane

from actions.audit import AuditLog, state_dir
from actions.base import Action
from actions.registry import build_action, context_for
from actions.runner import Result, Status, perform
from cluster.collect import Collector
from cluster.config import Config
from cluster.model import Snapshot
from tui.commands import CockpitCommands
from widgets.add_member import AddMemberScreen
from widgets.certificates_pane import CertificatesPane
from widgets.cni_pane import CniPane
from widgets.confirm import ConfirmScreen
from widgets.etcd_pane import EtcdPane
from widgets.findings_list import FindingsList
from widgets.header import ClusterHeader
from widgets.help import HelpScreen
from widgets.messages import ActionRequested
from widgets.nodes_pane import NodesPane
from widgets.static_pods_pane import StaticPodsPane


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

    COMMANDS = App.COMMANDS | {CockpitCommands}

    def __init__(
        self,
        config: Config,
        refresh: float | None = None,
        read_only: bool = False,
        audit: AuditLog | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.refresh_seconds = refresh or config.refresh
        self.read_only = read_only
        self.audit = audit or AuditLog.default()
        self.collector = Collector(config)
        self.snapshot: Snapshot | None = None
        self.refresh_count = 0
        self.last_result: Result | None = None
        self._refreshing = False

    def compose(self) -> ComposeResult:
        yield ClusterHeader(id="header")
        with TabbedContent(id="panes"):
            with TabPane("etcd", id="pane-etcd"):
                yield EtcdPane(id="etcd")
                yield Static("findings", classes="section")
                yield FindingsList(id="findings")
            with TabPane("static pods", id="pane-static-pods"):
                yield StaticPodsPane(id="static-pods")
            with TabPane("certificates", id="pane-certificates"):
                yield CertificatesPane(id="certificates")
            with TabPane("CNI", id="pane-cni"):
                yield CniPane(id="cni")
            with TabPane("nodes (API)", id="pane-nodes"):
                yield NodesPane(id="nodes")
        yield Static("", id="status-line")
        yield Footer()

    def on_mount(self) -> None:
        # An SSH drop hangs up the terminal: leave cleanly (an action in flight records that
        # it was interrupted) instead of dying mid-write.
        loop = asyncio.get_running_loop()
        for hang_up in (signal.SIGHUP, signal.SIGTERM):
            loop.add_signal_handler(hang_up, self.exit)
        self.query_one(ClusterHeader).show(None, self.config.name)
        self.query_one(EtcdPane).focus()
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
        if self.read_only:
            status = f"👁 READ-ONLY (actions disabled) · {status}"
        self.query_one("#status-line", Static).update(status)

    def action_help(self) -> None:
        bindings = [*self.BINDINGS, *EtcdPane.BINDINGS]
        keys = [(b.key_display or b.key, b.description) for b in bindings if isinstance(b, Binding)]
        keys.append(("ctrl+p", "command palette: every pane and action"))
        self.push_screen(HelpScreen(keys))

    # -- guarded actions ---------------------------------------------------------------------

    def on_action_requested(self, message: ActionRequested) -> None:
        self.request_action(message.action, message.target)

    def request_action(self, name: str, target: str | None, peer_url: str | None = None) -> None:
        """Opens the confirmation dialog for an action; nothing runs until it is confirmed."""
        if self.snapshot is None:
            self.notify("no snapshot yet: wait for the first refresh", severity="warning")
            return
        if name == "member-add" and (target is None or peer_url is None):
            self.push_screen(AddMemberScreen(*self._new_member_defaults()), self._add_member_chosen)
            return
        action = build_action(name, target or "", peer_url=peer_url, lab_root=self.config.lab_root)
        context = context_for(self.collector, state_dir())
        verdict = action.guard(self.snapshot)
        plan = None if verdict.is_refused else action.plan(self.snapshot, context)
        dialog = ConfirmScreen(f"{action.title}: {action.target}", verdict, plan, self.read_only)

        def confirmed(typed: str | None) -> None:
            if typed is None:
                self.notify(f"{action.describe()}: cancelled")
            else:
                self.run_worker(self._perform(action, typed), group="action", exit_on_error=False)

        self.push_screen(dialog, confirmed)

    def _new_member_defaults(self) -> tuple[str, str]:
        if self.config.lab_root is None:
            return "", ""
        from cluster.lab.control import Lab

        lab = Lab(self.config.lab_root)
        name = f"cp-{len(lab.spec.nodes) + 1}"
        return name, lab.peer_url_for(name)

    def _add_member_chosen(self, chosen: tuple[str, str] | None) -> None:
        if chosen is not None:
            self.request_action("member-add", *chosen)

    async def _perform(self, action: Action, typed: str) -> None:
        status = self.query_one("#status-line", Static)

        def progress(line: str) -> None:
            status.update(f"⏳ {line}")

        progress(f"{action.describe()}: re-reading the cluster for the guard")
        snapshot = await self.collector.collect()
        result = await perform(
            action,
            snapshot,
            context_for(self.collector, state_dir()),
            self.audit,
            typed=typed,
            yes=True,
            read_only=self.read_only,
            progress=progress,
        )
        self.last_result = result
        severity = "information" if result.status is Status.VERIFIED else "error"
        self.notify(
            f"{action.describe()}: {result.status.value}: {result.message}",
            severity=severity,
            timeout=15,
        )
        status.update(f"last action: {action.describe()}: {result.status.value}")
        self.action_refresh_now()
