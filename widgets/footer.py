"""The key footer, recomposed once per change of the keys it shows.

Textual's Footer (textual is pinned) recomposes on every bindings signal, and a focus move, a
screen resume and idle callbacks each send one: five at startup and two per pane switch, each
rebuilding and restyling a dozen key widgets (a twentieth of the launch, a good part of a key
press), mostly to show the same keys again. This one gathers a burst of signals into one look
at the keys and recomposes only when they differ from what it shows.
"""

from __future__ import annotations

from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer

FooterKeys = tuple[tuple[str, str, str, Binding.Group | None, bool, str], ...]


class QuietFooter(Footer):
    _look_pending = False
    _shown: FooterKeys | None = None

    def bindings_changed(self, screen: Screen) -> None:
        self._bindings_ready = True
        if not screen.app.app_focus or self._look_pending:
            return
        if self.is_attached and screen is self.screen:
            self._look_pending = True
            self.call_after_refresh(self._recompose_if_changed)

    async def _recompose_if_changed(self) -> None:
        self._look_pending = False
        if not self.is_attached:  # its screen was closed meanwhile (a fleet's cockpit left)
            return
        keys = self.shown_keys()
        if keys != self._shown:
            self._shown = keys
            await self.recompose()

    def shown_keys(self) -> FooterKeys:
        """What the footer draws of every binding it shows."""
        return tuple(
            (binding.key, binding.action, binding.description, binding.group, enabled, tooltip)
            for _, binding, enabled, tooltip in self.screen.active_bindings.values()
            if binding.show
        )
