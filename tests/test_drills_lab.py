"""The node drills staged for real on the last node of a lab of their own: its clock runs
45 s ahead (libfaketime), its /var/lib/etcd is a 1 GiB filesystem filled to 97 %, and a
process held its etcd peer port before etcd started. Nothing is simulated: the cockpit reads
`date`, `df` and `ss` on the node, and the node's etcd really failed to bind. The lab is
etcd-only: every drill is the node's or its etcd's, none needs the Kubernetes API."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from lab.control import Lab
from tests.helpers import report_json, running_lab, wait_until

DRILLS = ("clock-skew", "disk-pressure", "port-conflict")


@pytest.fixture(scope="module")
def drilled_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_lab(
        tmp_path_factory.mktemp("drilled-lab"), scenarios=DRILLS, control_plane=False
    ) as lab:
        yield lab


def test_the_node_itself_is_skewed_full_and_port_bound(drilled_lab: Lab) -> None:
    node = drilled_lab.spec.nodes[-1].name
    skewed = float(drilled_lab.node_exec(node, ["date", "+%s.%N"]).stdout)
    assert 40 < skewed - time.time() < 50
    assert time.time() - float(drilled_lab.node_exec("cp-1", ["date", "+%s"]).stdout) < 5

    def full() -> int:
        df = drilled_lab.node_exec(node, ["df", "-P", "/var/lib/etcd"]).stdout.splitlines()
        used = int(df[-1].split()[4].rstrip("%"))
        return used if used >= 96 else 0

    wait_until(full, 30, "the ballast")  # laid once etcd's files are (or could have been)
    log = drilled_lab.paths.node_root(node) / "var/log/pods/etcd.log"
    wait_until(lambda: "address already in use" in log.read_text(errors="replace"), 30, "bind")


def test_report_raises_the_three_findings_with_no_simulated_mark(drilled_lab: Lab) -> None:
    node = drilled_lab.spec.nodes[-1].name

    def drilled() -> dict[str, dict] | None:
        findings = report_json(drilled_lab.paths.config)["findings"]
        on_node = {f["id"]: f for f in findings if f["subject"] == node}
        wanted = {"node.clock-skew", "node.disk-pressure", "static-pod.port-conflict"}
        return on_node if wanted <= set(on_node) else None

    found = wait_until(drilled, 60, "the drills' findings")
    assert found["node.clock-skew"]["severity"] == "error"  # > 30 s
    assert found["node.disk-pressure"]["severity"] == "error"  # > 95 %
    assert "2380" in found["static-pod.port-conflict"]["summary"]
    assert "held by python" in found["static-pod.port-conflict"]["summary"]  # the holder
    assert not any("simulated" in str(f).lower() for f in found.values())
