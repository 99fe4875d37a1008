"""Command palette entries: every pane, the preflight list, and every action on every target of the current snapshot (in a fleet, every cluster's cockpit too)."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from textual.command import Hit, Hits, Provider
from textual.content import Content
from textual.fuzzy import Matcher
from textual.widgets import TabbedContent

from actions.specs import SPECS, palette_label, targets

if TYPE_CHECKING:
    from tui.app import CockpitApp


class CockpitCommands(Provider):
    def commands(self) -> list[tuple[str, object, str]]:
        """Every pane, then every action (actions/specs.py) on every target of its kind."""
        app: CockpitApp = self.app  # type: ignore[assignment]
        commands: list[tuple[str, object, str]] = list(app.cluster_commands())
        if not app.cockpit_shown:  # the fleet alone: its own entries
            return commands
        panes = app.cockpit.query_one("#panes", TabbedContent)
        for pane in panes.query("TabPane"):
            title = str(panes.get_tab(pane.id or "").label)
            commands.append(
                (f"Show pane: {title}", partial(setattr, panes, "active", pane.id), "pane")
            )
        commands.append(("Refresh now", partial(app.action_refresh_now, True), "key r"))
        commands.append(("Show every key (help)", app.action_help, "key ?"))
        commands.append(
            ("Preflight: go / no-go before maintenance", app.action_preflight, "checks")
        )
        for spec in SPECS.values():
            for target in targets(spec.target, app.snapshot):
                label = palette_label(spec, target)
                run = partial(app.request_action, spec.name, target.name)
                commands.append((label, run, f"action: {spec.confirmation.value}"))
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
