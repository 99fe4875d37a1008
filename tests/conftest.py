"""Fixtures: one real lab per test module (tests restore what they change)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cluster.lab.control import Lab
from tests.helpers import running_lab


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_lab(tmp_path_factory.mktemp("lab")) as lab:
        yield lab
