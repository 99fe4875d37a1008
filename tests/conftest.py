"""Fixtures: one real lab per test module (tests restore what they change)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cluster.lab.control import Lab, lab_down, lab_up


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("lab")
    lab_up(root, nodes=3)
    try:
        yield Lab(root)
    finally:
        lab_down(root)
