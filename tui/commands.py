"""Command palette entries: every pane, and every action on every member of the current snapshot."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from textual.command import Hit, Hits, Provider
from textual.content import Content
from textual.fuzzy import Matcher
from textual.widgets import TabbedContent

from actions.registry import ACTIONS

if TYPE_CHECKING:
    from tui.app import CockpitApp

MEMBER_ACTIONS = ("move-leader", "member-remove", "member-promote", "defragment", "snapshot-save")


class CockpitCommands(Provider):
    def commands(self) -> list[tuple[str, object, str]]:
        app: CockpitApp = self.app  # type: ignore[assignment]
        commands: list[tuple[str, object, str]] = []
        panes = app.query_one("#panes", TabbedContent)
        for pane in panes.query("TabPane"):
            title = str(panes.get_tab(pane.id or "").label)
            commands.append(
                (f"Show pane: {title}", partial(setattr, panes, "active", pane.id), "pane")
            )
        commands.append(("Refresh now", partial(app.action_refresh_now, True), "key r"))
        commands.append(("Show every key (help)", app.action_help, "key ?"))
        commands.append(
            ("Add etcd member (learner)", partial(app.request_action, "member-add", None), "action")
        )
        members = app.snapshot.etcd.members if app.snapshot else ()
        for name in MEMBER_ACTIONS:
            for member in members:
                label = f"{ACTIONS[name].title}: {member.display_name}"
                commands.append((label, partial(app.request_action, name, member.name), "action"))
        nodes = app.snapshot.nodes if app.snapshot else ()
        for name in ("stop-static-pod", "start-static-pod"):
            for node in nodes:
                for target in (
                    node.name,
                    *(f"{node.name}/{p.component}" for p in node.static_pods),
                ):
                    label = f"{ACTIONS[name].title}: {target}"
                    commands.append((label, partial(app.request_action, name, target), "action"))
        view = app.snapshot.kube if app.snapshot else None
        for pod in view.pods or () if view else ():
            if pod.owner_kind == "DaemonSet" and pod.node:
                target = f"{pod.node}/{pod.owner_name}"
                label = f"{ACTIONS['restart-ds-pod'].title}: {target}"
                commands.append(
                    (label, partial(app.request_action, "restart-ds-pod", target), "action")
                )
        return commands

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, callback, kind in self.commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, highlighted(matcher, text), callback, text, kind)  # type: ignore[arg-type]

    async def discover(self) -> Hits:
        for text, callback, kind in self.commands():
            yield Hit(1.0, Content(text), callback, text, kind)  # type: ignore[arg-type]


def highlighted(matcher: Matcher, text: str) -> Content:
    """The label with the matched letters styled. Textual's `Matcher.highlight` reads the
    label as markup, and labels carry member and node names from the cluster."""
    content = Content(text)
    _, offsets = matcher.fuzzy_search.match(matcher.query, text)
    for offset in offsets:
        content = content.stylize(matcher.match_style, offset, offset + 1)
    return content
