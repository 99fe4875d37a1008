"""Fixtures: one real lab per test module (tests restore what they change)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from cluster.collect import Collector
from cluster.config import Config
from lab.control import Lab
from tests.helpers import running_lab


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_lab(tmp_path_factory.mktemp("lab")) as lab:
        yield lab


@pytest.fixture(scope="module")
def config(lab: Lab) -> Config:
    """The cockpit config the module's lab wrote."""
    return lab.config()


@pytest.fixture()
async def collector(config: Config) -> AsyncIterator[Collector]:
    """A Collector on the module's lab, closed after the test."""
    collector = Collector(config)
    yield collector
    await collector.close()
