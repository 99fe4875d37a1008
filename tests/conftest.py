"""Fixtures: one real lab per test module (tests restore what they change).

A module's lab is etcd-only (kubeadm's external etcd topology: no Kubernetes API, quicker to
start and quieter) unless the module sets `LAB_CONTROL_PLANE = True`.

Tests run in random order (pytest-randomly). A test marked `fresh_lab` judges the module's lab
as `lab up` left it (a clean lab raises no warning): a restored lab is not the same, its
metrics remember the last five minutes, so such a test runs first in its module.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from cluster.collect import Collector
from cluster.config import Config
from lab.control import Lab
from tests.helpers import running_lab


@pytest.hookimpl(trylast=True)  # after pytest-randomly's shuffle
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    first_of_module: dict[object, int] = {}
    for index, item in enumerate(items):
        first_of_module.setdefault(item.module, index)  # type: ignore[attr-defined]
    items.sort(  # stable: each module's tests stay together and in their shuffled order
        key=lambda item: (
            first_of_module[item.module],  # type: ignore[attr-defined]
            item.get_closest_marker("fresh_lab") is None,
        )
    )


@pytest.fixture(scope="session", autouse=True)
def own_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The cockpit's state (leader changes, action locks, the default audit) goes to the
    run's own directory: never the user's ~/.local/state, never another run's."""
    path = tmp_path_factory.mktemp("state")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KCOCKPIT_STATE_DIR", str(path))
        yield path


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
