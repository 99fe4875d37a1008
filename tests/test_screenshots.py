"""screenshots/ is what `make screenshots` made: README shows the main one, and README with the
docs pages shows every one of them."""

from __future__ import annotations

import re

from tests.helpers import PROJECT
from tui.app import LATER_PANES


def test_readme_and_docs_embed_every_screenshot_and_each_exists() -> None:
    shots = {p.name for p in (PROJECT / "screenshots").glob("*.svg")}
    pages = [PROJECT / "README.md", *(PROJECT / "docs").glob("*.md")]
    text = "\n".join(page.read_text(encoding="utf-8") for page in pages)
    embedded = set(re.findall(r"\]\((?:\.\./)?screenshots/([\w.-]+\.svg)\)", text))
    assert "](screenshots/main.svg)" in pages[0].read_text(encoding="utf-8")
    assert {"main.svg", "help.svg", "confirm-member-remove.svg"} <= shots
    assert embedded == shots, f"not embedded: {shots - embedded}; missing: {embedded - shots}"
    # Every pane: main.svg is the first (etcd), each other tab has its own.
    assert {f"{pane}.svg" for pane in LATER_PANES} <= shots, "run `make screenshots`"
    for name in shots:
        assert "<svg" in (PROJECT / "screenshots" / name).read_text(encoding="utf-8")[:500]
