"""The docs stay true to the tree: README is a short front door whose links all resolve, and the
design page's module map names every module there is."""

from __future__ import annotations

import re

from tests.helpers import PROJECT

PACKAGES = ("cluster", "actions", "widgets", "tui", "lab")
README_LIMIT = 8 * 1024


def test_readme_is_a_front_door_with_the_two_commands_and_links_that_resolve() -> None:
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    assert len(readme.encode()) < README_LIMIT
    assert "make lab" in readme and "make test" in readme
    assert "](screenshots/main.svg)" in readme
    pages = set(re.findall(r"\]\((docs/[\w.-]+\.md)\)", readme))
    assert pages == {f"docs/{p.name}" for p in (PROJECT / "docs").glob("*.md")}


def test_every_relative_link_in_the_docs_resolves() -> None:
    for page in (PROJECT / "docs").glob("*.md"):
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            assert (page.parent / target).exists(), f"{page.name}: {target}"


def test_the_module_map_names_every_module() -> None:
    design = (PROJECT / "docs" / "design.md").read_text(encoding="utf-8")
    modules = {
        str(path.relative_to(PROJECT))
        for package in PACKAGES
        for path in (PROJECT / package).rglob("*.py")
        if "proto" not in path.parts
    }
    named = set(re.findall(r"\| `([\w/.]+\.py)` \|", design))
    assert modules == named, f"missing: {modules - named}; gone: {named - modules}"
