"""Fixtures: one real lab per test module (tests restore what they change).

A module's lab is etcd-only (kubeadm's external etcd topology: no Kubernetes API, quicker to
start and quieter) unless the module sets `LAB_CONTROL_PLANE = True`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from cluster.collect import Collector
from cluster.config import Config
from lab.control import Lab
from tests.helpers import running_lab


@pytest.fixture(scope="module")
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    control_plane = getattr(request.module, "LAB_CONTROL_PLANE", False)
    with running_lab(tmp_path_factory.mktemp("lab"), control_plane=control_plane) as lab:
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
