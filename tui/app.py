"""The cockpit App: a header, panes as tabs, refreshed live.

The app composes the screen and puts each snapshot on it (`show`, the one way a snapshot
reaches the screen). What surrounds that lives beside it: when to refresh (tui/refresh.py:
never two at once, so a frozen member can only slow its own row down to the deadline, never
the UI), the layout (tui/cockpit.tcss), the garbage collector once the first screen is up
(tui/startup.py), a hung-up terminal (tui/signals.py), and running an action
(actions/runner.py `run`, shared with `kcockpit act`). The collection itself runs on the
collector's own loop (tui/background.py).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widget import MountError, Widget
from textual.widgets import Static, TabbedContent, TabPane

from actions.audit import (
    AuditLog,
    AuditWriteError,
    leader_change_record,
    leader_log,
    state_dir,
)
from actions.audit_tail import LastAuditRecord, operating_here
from cluster.config import Config
from cluster.model import LeaderChange, Severity, Snapshot
from cluster.untrusted import printable
from tui.background import BackgroundLoop
from tui.refresh import RefreshScheduler
from tui.signals import exit_on_hang_up
from tui.startup import calm_garbage_collector
from widgets.add_member import AddMemberScreen
from widgets.base import QuietStatic, SnapshotView
from widgets.certificates_pane import CertificatesPane
from widgets.cni_pane import CniPane
from widgets.etcd_pane import EtcdPane
from widgets.filter import FilterableTable
from widgets.findings_list import FindingsList
from widgets.findings_pane import FindingsPane, finding_key
from widgets.footer import QuietFooter
from widgets.header import ClusterHeader
from widgets.help import HelpKey, HelpScreen, help_key, own_bindings
from widgets.incident_bar import IncidentBar
from widgets.messages import ActionRequested
from widgets.nodes_pane import NodesPane
from widgets.static_pods_pane import StaticPodsPane
from widgets.trends_pane import TrendsPane

if TYPE_CHECKING:  # imported where first needed: the first frame waits for none of them
    from textual.command import Provider

    from actions.base import Action
    from actions.runner import Result
    from cluster.collect import Collector

TABLES_SCOPE = "every table (every pane but trends)"
FIRST_PANE = "pane-etcd"
# The panes behind the other tabs, by tab: mounted just after the first screen, which shows
# none of them (a tenth of the launch went to styling and filling their tables before it).
LATER_PANES: dict[str, tuple[str, Callable[[], Widget]]] = {
    "pane-static-pods": ("static pods", lambda: StaticPodsPane(id="static-pods")),
    "pane-certificates": ("certificates", lambda: CertificatesPane(id="certificates")),
    "pane-cni": ("CNI", lambda: CniPane(id="cni")),
    "pane-nodes": ("nodes (API)", lambda: NodesPane(id="nodes")),
    "pane-findings": ("findings", lambda: FindingsPane(id="findings-pane")),
    "pane-trends": ("trends", lambda: TrendsPane(id="trends")),
}


async def make_collector(config: Config) -> Collector:
    from cluster.collect import Collector  # grpc, asyncssh, kubernetes: on the collector's thread

    return Collector(config)


def views_in(root: Widget) -> list[SnapshotView]:
    return list(root.query(".snapshot-view"))  # type: ignore[arg-type]


def focus_first(pane: Widget) -> None:
    focusable = [w for w in pane.query("*") if w.can_focus]
    if focusable and focusable[0] is not pane.app.focused:
        focusable[0].focus()


def cockpit_commands() -> type[Provider]:
    from tui.commands import CockpitCommands  # it lists the actions: the registry and its imports

    return CockpitCommands


CLOSE_SECONDS = 3.0
Command = tuple[str, Callable[[], object], str]  # a palette entry: label, what it does, kind


class CockpitScreen(Screen):
    """The main screen, one cluster's cockpit: focus starts on the etcd members, where the
    operator starts (set at once, not on the tabs first and then moved: each move rebuilds the
    footer). The app shows its cluster's snapshots on it once it is mounted."""

    AUTO_FOCUS = "#etcd"

    def compose(self) -> ComposeResult:
        app: CockpitApp = self.app  # type: ignore[assignment]
        yield ClusterHeader(id="header")
        yield IncidentBar(id="incident")
        with TabbedContent(id="panes"):
            with TabPane("etcd", id=FIRST_PANE):
                yield EtcdPane(id="etcd", thresholds=app.config.thresholds)
                with Vertical(id="etcd-findings"):
                    yield Static("findings", classes="section")
                    yield FindingsList(id="findings")
            for pane_id, (title, _) in LATER_PANES.items():
                yield TabPane(title, id=pane_id)  # filled once the first screen is up
        yield QuietStatic("", id="status-line")
        yield QuietFooter(compact=True)  # more keys fit at 80 columns

    def on_mount(self) -> None:
        """Once its panes are mounted too (after the next refresh of the screen), the app
        starts reading its cluster."""
        app: CockpitApp = self.app  # type: ignore[assignment]
        self.call_after_refresh(app.cockpit_mounted, self)


class CockpitApp(App[None]):
    TITLE = "kcockpit"
    CSS_PATH = Path(__file__).with_name("cockpit.tcss")  # beside this file, for subclasses too
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (180, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (40, "-tall")]
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("r", "refresh_now(True)", "Refresh"),
        Binding("question_mark", "help", "Help", key_display="?"),
        # 1, 2, … jump to the n-th pane (tab); a pane added later gets the next digit.
        *(Binding(str(n), f"show_pane({n})", f"Pane {n}", show=False) for n in range(1, 10)),
    ]

    COMMANDS = App.COMMANDS | {cockpit_commands}

    def __init__(
        self,
        config: Config,
        refresh: float | None = None,
        read_only: bool = False,
        audit: AuditLog | None = None,
        bell: bool = False,
        connect: bool = True,
    ) -> None:
        """`connect`: the collector starts at once, while the UI starts (a fleet's cockpits
        start theirs when opened)."""
        super().__init__()
        self.ring_on_critical = bell
        self.refresh_asked = refresh
        self.read_only_asked = read_only
        self.audit = audit or AuditLog.default()
        self.background = BackgroundLoop()
        self.last_result: Result | None = None
        self.operating = operating_here()
        self.leader_log = leader_log(self.audit)
        self.bind_cluster(
            config, self.background.submit(make_collector(config)) if connect else None
        )

    def bind_cluster(
        self, config: Config, collector: concurrent.futures.Future[Collector] | None
    ) -> None:
        """The cluster the cockpit shows from now on, read by `collector` (None: a new one,
        started when the cockpit's screen is mounted). Read-only as asked or as its config
        says."""
        self.config = config
        self._criticals: set[str] = set()
        self.refresh_seconds = self.refresh_asked or config.refresh
        self.read_only = self.read_only_asked or config.read_only
        self._collector = collector
        self.snapshot: Snapshot | None = None
        self.refresh_count = 0
        self.scheduler = RefreshScheduler(self._refresh, self.refresh_seconds, self._refresh_failed)
        self._later_panes: asyncio.Future[None] | None = None
        # The widgets a snapshot is shown in, by tab (found once the tab's pane is mounted, not
        # by a query through the whole tree every refresh), and which snapshot each tab shows.
        self._views: dict[str, list[SnapshotView]] = {}
        self._tab_shows: dict[str, Snapshot] = {}
        self.last_audit = LastAuditRecord(self.audit, config.name)  # this cluster's only
        self._leader_changes_kept: tuple[LeaderChange, ...] = ()

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Every notification is literal text: the messages carry member names, targets and
        the cluster's own error words, which must never be read as markup (widgets' notify
        comes here too, asking for markup by default)."""
        super().notify(
            printable(message), title=title, severity=severity, timeout=timeout, markup=False
        )

    def get_default_screen(self) -> Screen:
        return CockpitScreen(id="_default")

    def on_mount(self) -> None:
        exit_on_hang_up(self)

    def cockpit_mounted(self, screen: CockpitScreen) -> None:
        """The cockpit's screen is up: its cluster is read from now on."""
        if self._collector is None:
            self._collector = self.background.submit(make_collector(self.config))
        screen.query_one(ClusterHeader).show(None, self.config.name)
        self.show_incident(screen)
        self._views[FIRST_PANE] = views_in(screen.query_one(f"#{FIRST_PANE}", TabPane))
        self.scheduler.start()

    @property
    def collector(self) -> Collector:
        """Made on the collector's thread (with its imports) while the UI starts; there is a
        snapshot, hence a collector, before anything on the UI thread asks for it."""
        assert self._collector is not None, "the cockpit's screen is not mounted"
        return self._collector.result()

    async def on_unmount(self) -> None:
        await self.scheduler.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.close_collectors(), CLOSE_SECONDS)
        self.background.stop()

    async def close_collectors(self) -> None:
        """Closes what reads the clusters (the cockpit's collector; a fleet's too)."""
        if self._collector is not None:
            await self.close_collector(self._collector)

    async def close_collector(self, future: concurrent.futures.Future[Collector]) -> None:
        try:
            collector = await asyncio.wrap_future(future)
        except Exception:  # it never started (the status line said why): nothing to close
            return
        await self.background.run(collector.close())

    @property
    def cockpit(self) -> Screen:
        """The screen the cockpit's widgets are on: a fleet's cockpit on top, else the default
        screen (an app's own queries look at its default screen, whatever is on top)."""
        cockpits = (s for s in reversed(self.screen_stack) if isinstance(s, CockpitScreen))
        return next(cockpits, self.default_screen)

    @property
    def cockpit_shown(self) -> bool:
        """Whether a cockpit is on screen (under a dialog, maybe), not only a fleet."""
        return any(isinstance(screen, CockpitScreen) for screen in self.screen_stack)

    def cluster_commands(self) -> list[Command]:
        """Palette entries beyond this cockpit's own (a fleet's: the other clusters)."""
        return []

    def action_refresh_now(self, fresh: bool = False) -> None:
        """A refresh at once (right after one under way); `fresh` (the operator's `r`) reads
        every node and the Kubernetes API anew and waits for them, instead of taking their
        latest reads."""
        self.scheduler.now(fresh)

    def _refresh_failed(self, exc: Exception) -> None:
        """A defect in a refresh: said on screen (unless the cockpit is closing); the next one
        tries again."""
        self.say(f"refresh failed: {exc!r}")

    async def _refresh(self, fresh: bool = False) -> bool:
        """One refresh, run by the scheduler (never two at once, never in a worker: one a
        second cost the UI more than an unchanged refresh does). True when an etcd member
        answered: while none does, the scheduler backs off."""
        try:
            assert self._collector is not None  # set before the scheduler starts
            collector = await asyncio.wrap_future(self._collector)
            snapshot = await self.background.run(collector.collect(fresh))
        except Exception as exc:
            self.say(f"refresh failed: {exc}")
            calm_garbage_collector()  # no first screen to wait for
            self.call_after_refresh(self.later_panes)
            return False
        if self._later_panes is not None:
            await self.later_panes()  # a pane half mounted would get rows before its columns
        try:
            self.cockpit.query_one(ClusterHeader)  # cached until the screen's widgets change
        except NoMatches:  # the cockpit is closing: nowhere to show the snapshot
            return False
        self.show(snapshot)
        return any(member.reachable for member in snapshot.etcd.members)

    def say(self, status: str) -> None:
        """The status line's text (none once the cockpit or the app is closing: a refresh or
        an action may end after its screen is gone)."""
        if self.is_running:
            with contextlib.suppress(NoMatches):
                self.cockpit.query_one("#status-line", Static).update(status)

    def show(self, snapshot: Snapshot) -> None:
        """Puts a snapshot on screen: the header, the incident bar, the pane on show and the
        status line (the other panes catch up when shown); nothing once the app is closing."""
        if not self.is_running:
            return
        self.snapshot = snapshot
        self.refresh_count += 1
        self._ring_for_new_criticals(snapshot)
        self._keep_leader_changes(snapshot)
        self.cockpit.query_one(ClusterHeader).show(snapshot, self.config.name)
        self.show_incident()
        self.bring_up_to_date(self.cockpit.query_one("#panes", TabbedContent).active)
        # The footer may be cut at 80 columns: the way to every key stays on screen.
        status = f"refreshed every {self.refresh_seconds:g} s · ? all keys"
        if snapshot.etcd.error:
            status = f"etcd: {snapshot.etcd.error}"
        if self.read_only:
            status = f"👁 READ-ONLY (actions disabled) · {status}"
        self.say(status)
        if self.refresh_count == 1:
            calm_garbage_collector()  # the first screen is filled
            self.call_after_refresh(self.later_panes)

    def _ring_for_new_criticals(self, snapshot: Snapshot) -> None:
        """`--bell`: one terminal bell when a critical finding appears (not on every refresh)."""
        criticals = {finding_key(f) for f in snapshot.findings if f.severity is Severity.CRITICAL}
        if self.ring_on_critical and criticals - self._criticals:
            self.bell()
        self._criticals = criticals

    def _keep_leader_changes(self, snapshot: Snapshot) -> None:
        """Writes the leader changes not yet kept to the log beside the audit, for `kcockpit
        audit`'s incident timeline (rare: one line each)."""
        changes = snapshot.leader_changes
        if changes is self._leader_changes_kept:
            return
        kept = set(self._leader_changes_kept)
        self._leader_changes_kept = changes
        try:
            for change in (c for c in changes if c not in kept):
                self.leader_log.write(
                    leader_change_record(
                        self.config.name,
                        snapshot.etcd.cluster_id,
                        change.at,
                        change.old,
                        change.new,
                        change.term,
                    )
                )
        except AuditWriteError as exc:
            self.notify(f"leader changes not kept for `kcockpit audit`: {exc}", severity="warning")

    def show_incident(self, screen: Screen | None = None) -> None:
        """Who operates, and the audit's last record (re-read only when the file changed)."""
        cluster_id = self.snapshot.etcd.cluster_id if self.snapshot else None
        last = self.last_audit.poll(cluster_id)
        (screen or self.cockpit).query_one(IncidentBar).show(self.operating, self.read_only, last)

    # -- keyboard ----------------------------------------------------------------------------

    @property
    def pane_ids(self) -> list[str]:
        return [
            pane.id or "" for pane in self.cockpit.query_one("#panes", TabbedContent).query(TabPane)
        ]

    async def later_panes(self) -> None:
        """Until the panes behind the other tabs are mounted (they are, once) and filled."""
        if self._later_panes is None:
            self._later_panes = asyncio.ensure_future(self._mount_later_panes())
        await asyncio.shield(self._later_panes)

    async def _mount_later_panes(self) -> None:
        panes = self.cockpit.query_one("#panes", TabbedContent)
        for pane_id, (_, make) in LATER_PANES.items():
            pane = panes.get_pane(pane_id)
            try:
                await pane.mount(make())
            except MountError:  # the cockpit is closing before it settled: nowhere to mount
                return
            self._views[pane_id] = views_in(pane)
            self.bring_up_to_date(pane_id)

    def bring_up_to_date(self, pane_id: str) -> None:
        """Shows the latest snapshot in a tab's pane unless it shows it already. A refresh
        updates the pane on screen only: the one behind a tab is brought up to date when it
        is shown (a third of the idle cockpit's CPU went to rebuilding hidden rows)."""
        if self.snapshot is not None and self._tab_shows.get(pane_id) is not self.snapshot:
            self._tab_shows[pane_id] = self.snapshot
            for view in self._views.get(pane_id, ()):
                view.show_snapshot(self.snapshot)

    async def action_show_pane(self, number: int) -> None:
        ids = self.pane_ids
        if 0 < number <= len(ids):
            panes = self.cockpit.query_one("#panes", TabbedContent)
            panes.active = ids[number - 1]
            # Ready before its first frame, the pane's table is drawn once, not blurred and
            # then again focused (its TabActivated then finds nothing left to do).
            await self._ready_to_show(panes.get_pane(ids[number - 1]))

    async def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        await self._ready_to_show(event.pane)  # a tab clicked, or chosen in the palette

    async def _ready_to_show(self, pane: TabPane) -> None:
        """The pane being shown: mounted, up to date, and focused (the footer shows the keys
        of the focused widget)."""
        if pane.id != FIRST_PANE:
            await self.later_panes()
        self.bring_up_to_date(pane.id or "")
        focus_first(pane)

    def help_keys(self) -> list[HelpKey]:
        """Every key: the app's, the pane jumps, the palette, then each pane's own keys."""
        panes = self.cockpit.query_one("#panes", TabbedContent)
        keys = [help_key("everywhere", b) for b in self.BINDINGS if isinstance(b, Binding)]
        keys = [k for k in keys if not k.action.startswith("show_pane")]
        for number, pane_id in enumerate(self.pane_ids, start=1):
            title = panes.get_tab(pane_id).label.plain
            binding = Binding(str(number), f"show_pane({number})")
            keys.append(help_key("everywhere", binding, f"show pane {number}: {title}"))
        palette = Binding("ctrl+p", "command_palette")
        keys.append(help_key("everywhere", palette, "command palette: every pane and action"))
        keys += [
            help_key(TABLES_SCOPE, b) for b in FilterableTable.BINDINGS if isinstance(b, Binding)
        ]
        seen = {(k.scope, k.key) for k in keys}
        for pane_id in self.pane_ids:
            scope = f"{panes.get_tab(pane_id).label.plain} pane"
            for widget in panes.get_pane(pane_id).query("*"):
                for binding in own_bindings(widget):
                    shared = binding in FilterableTable.BINDINGS
                    if not shared and (scope, binding.key) not in seen:
                        seen.add((scope, binding.key))
                        keys.append(help_key(scope, binding))
        return keys

    async def action_help(self) -> None:
        await self.later_panes()  # their keys too
        self.push_screen(HelpScreen(self.help_keys()))

    # -- preflight ---------------------------------------------------------------------------

    def action_preflight(self) -> None:
        """The go / no-go list before maintenance (tui/preflight.py), on a fresh read."""
        self.say("⏳ preflight: reading the cluster")
        self.run_worker(self._preflight(), group="preflight", exit_on_error=False)

    async def _preflight(self) -> None:
        from actions.etcd_actions import SNAPSHOTS_DIR
        from cluster.preflight import Limits
        from tui.preflight import gather
        from widgets.preflight import PreflightScreen

        limits = Limits.of(self.config.thresholds)
        try:
            found = await self.background.run(
                gather(self.collector, self.audit, state_dir() / SNAPSHOTS_DIR, limits)
            )
        except Exception as exc:  # a defect, not the cluster (the checks say its faults)
            self.notify(f"preflight: cannot read the cluster: {exc}", severity="error")
            return
        self.say("preflight done")
        self.push_screen(PreflightScreen(found, self.config.name))

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
        from actions.registry import build_action

        provisioner = self.config.seams.provisioner
        action = build_action(
            name,
            target or "",
            peer_url=peer_url,
            provisioner=provisioner,
            thresholds=self.config.thresholds,
        )
        self.say(f"⏳ {action.describe()}: re-reading the cluster for the guard")
        self.run_worker(self._confirm(action), group="action", exit_on_error=False)

    async def _confirm(self, action: Action) -> None:
        """The dialog, its verdict judged on a fresh read: every member's answer of now (or
        its deadline), never the screen's latest answers, which may be a frozen member's
        last words."""
        from actions.registry import context_for
        from widgets.confirm import ConfirmScreen

        try:
            snapshot = await self.background.run(self.collector.collect(fresh=True))
        except Exception as exc:  # a defect, not the cluster (sources report their own faults)
            self.notify(f"{action.describe()}: cannot read the cluster: {exc}", severity="error")
            return
        self.show(snapshot)  # behind the dialog: what its verdict was judged on
        context = context_for(self.collector, state_dir())
        verdict = action.guard(snapshot)
        plan = None if verdict.is_refused else action.plan(snapshot, context)
        title = f"{self.config.name} · {action.title}: {action.target}"  # which cluster, always
        dialog = ConfirmScreen(title, verdict, plan, self.read_only)

        def confirmed(typed: str | None) -> None:
            if typed is None:
                self.notify(f"{action.describe()}: cancelled")
            else:
                self.run_worker(self._perform(action, typed), group="action", exit_on_error=False)

        self.push_screen(dialog, confirmed)

    def _new_member_defaults(self) -> tuple[str, str]:
        provisioner = self.config.seams.provisioner
        return provisioner.new_member_defaults() if provisioner else ("", "")

    def _add_member_chosen(self, chosen: tuple[str, str] | None) -> None:
        if chosen is not None:
            self.request_action("member-add", *chosen)

    async def _perform(self, action: Action, typed: str) -> None:
        from actions.registry import context_for
        from actions.runner import Status, run

        watched = None
        if action.spec.multi_step:  # one line per step, on a screen the operator can watch
            from widgets.progress import ActionProgressScreen

            watched = ActionProgressScreen(f"{self.config.name} · {action.title}: {action.target}")
            self.push_screen(watched)

        def progress(line: str) -> None:
            self.say(f"⏳ {line}")
            if watched is not None:
                watched.add(line)

        def progress_from_collector(line: str) -> None:
            self.call_from_thread(progress, line)

        progress(f"{action.describe()}: re-reading the cluster for the guard")
        # On the collector's loop: the action borrows its open connections.
        result = await self.background.run(
            run(
                action,
                self.collector,
                context_for(self.collector, state_dir()),
                self.audit,
                typed=typed,
                yes=True,
                read_only=self.read_only,
                progress=progress_from_collector,
            )
        )
        self.last_result = result
        severity: SeverityLevel = "information" if result.status is Status.VERIFIED else "error"
        self.notify(
            f"{action.describe()}: {result.status.value}: {result.message}",
            severity=severity,
            timeout=15,
        )
        self.say(f"last action: {action.describe()}: {result.status.value}")
        if watched is not None:
            watched.finish(f"{result.status.value}: {result.message}", severity == "information")
        self.action_refresh_now(fresh=True)
