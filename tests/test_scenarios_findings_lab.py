"""`kcockpit lab up --scenario …` for incidents that need a running cluster, seen by `report`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.control import Lab
from tests.helpers import finding_ids, kcockpit, report_json, running_lab

STAGED = ("learner", "stale-member", "alarm")


@pytest.fixture(scope="module")
def staged_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    staged = running_lab(
        tmp_path_factory.mktemp("staged-lab"), scenarios=STAGED, control_plane=False
    )
    with staged as lab:
        yield lab


def test_running_scenarios_are_diagnosed_without_losing_quorum(staged_lab: Lab) -> None:
    config: Path = staged_lab.paths.config
    report = report_json(config)
    found = finding_ids(report)
    assert {
        "etcd.learner-not-promoted",
        "etcd.stale-member",
        "etcd.even-member-count",
        "etcd.alarm",
        "etcd.db-near-quota",
    } <= found
    # a full database is an alarm, not an outage: 3 of 4 voting members still make quorum
    assert "etcd.quorum-lost" not in found and "etcd.no-fault-tolerance" in found
    near = [f for f in report["findings"] if f["id"] == "etcd.db-near-quota"]
    assert all("quota 1048576 bytes" in f["evidence"] for f in near)  # read from the manifests
    assert kcockpit("report", "--config", str(config), "--fail-on", "critical").returncode == 1
    listed = kcockpit("lab", "scenarios").stdout
    assert "clock-skew" in listed and "SIMULATED" not in listed  # every drill is staged for real
