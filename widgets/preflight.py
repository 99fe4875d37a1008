"""The preflight list (go / no-go before maintenance) as the cockpit and `kcockpit preflight`
show it: one line per check, a symbol and a word for its answer (never colour alone), the
details as literal text (they carry member names and the cluster's own words)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen

from cluster.preflight import Check, go
from widgets.base import QuietStatic


def check_line(check: Check) -> Text:
    mark = Text("✔ GO    ", style="bold green") if check.ok else Text("✖ NO-GO ", style="bold red")
    return mark.append(check.title, style="bold").append(f" — {check.detail}")


def verdict_line(found: list[Check], cluster: str) -> Text:
    if go(found):
        return Text(f"preflight {cluster}: GO, every check passes", style="bold green")
    failing = sum(1 for c in found if not c.ok)
    return Text(f"preflight {cluster}: NO-GO, {failing} of {len(found)} fail", style="bold red")


class PreflightScreen(ModalScreen[None]):
    """The list, judged on a fresh read when it was asked for; Esc or Enter closes it."""

    BINDINGS = [Binding("escape", "dismiss_screen", "Close"), Binding("enter", "dismiss_screen")]
    DEFAULT_CSS = """
    PreflightScreen { align: center middle; }
    PreflightScreen > VerticalScroll {
        width: 96%; max-width: 130; height: auto; max-height: 96%;
        border: thick $accent; background: $surface; padding: 0 1;
    }
    PreflightScreen #preflight-verdict { margin-bottom: 1; }
    """

    def __init__(self, found: list[Check], cluster: str) -> None:
        super().__init__()
        self.found = found
        self.cluster = cluster

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield QuietStatic(verdict_line(self.found, self.cluster), id="preflight-verdict")
            for check in self.found:
                yield QuietStatic(check_line(check), id=f"check-{check.name}")

    def action_dismiss_screen(self) -> None:
        self.dismiss(None)
