"""Checks with two halves, each half proven on its own (issue 13).

A serving certificate must name its node by hostname *and* by address; a certificate that
gets one right and the other wrong is still a peer's copy. The kubelet's CNI config is the
first *primary* one (valid and more than loopback), not merely the first valid file. A test
that only covers the case where both halves agree cannot tell a weakened check from a right
one; these cases can.
"""

from __future__ import annotations

import datetime as dt

import pytest

from cluster.findings import evaluate
from cluster.findings.nodes import missing_node_names
from cluster.model import EtcdCluster, Snapshot
from cluster.nodes.model import (
    KUBERNETES_DIR,
    PKI_DIR,
    Certificate,
    CniFile,
    CniState,
    NodeState,
)
from cluster.nodes.report import node_json

NOW = dt.datetime(2026, 3, 10, 17, 40, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
SAN_FINDING = "cert.san-missing-node-address"


def node(**changes: object) -> NodeState:
    base = {
        "name": "cp-1",
        "address": "10.0.0.11",
        "reachable": True,
        "hostname": "cp-1",
        "addresses": ("10.0.0.11",),
        "clock_offset": 0.0,
    }
    return NodeState(**{**base, **changes})  # type: ignore[arg-type]


def serving_cert(*sans: str, path: str = "pki/apiserver.crt") -> Certificate:
    return Certificate(
        f"{KUBERNETES_DIR}/{path}",
        subject="kube-apiserver",
        issuer="kubernetes",
        sans=sans,
        not_before=NOW - 300 * DAY,
        not_after=NOW + 65 * DAY,
        ca_path=f"{PKI_DIR}/ca.crt",
        signed_by_ca=True,
    )


def snapshot_of(*nodes: NodeState) -> Snapshot:
    return Snapshot("test", NOW, EtcdCluster(), nodes=nodes)


def san_findings(cert: Certificate) -> list:
    state = node(certificates=(cert,))
    return [f for f in evaluate(snapshot_of(state)) if f.id == SAN_FINDING]


# --- The SAN check: hostname and address are each required -------------------------------


@pytest.mark.parametrize("path", ["pki/apiserver.crt", "pki/etcd/server.crt", "pki/etcd/peer.crt"])
def test_a_serving_cert_naming_the_host_but_not_its_address_is_flagged(path: str) -> None:
    """pki/ copied from a peer and re-issued for the hostname only: the address half must
    catch it on its own."""
    cert = serving_cert("cp-1", "10.0.0.12", path=path)
    assert missing_node_names(cert, node()) == ["address 10.0.0.11"]
    [finding] = san_findings(cert)
    assert "lack this node's address 10.0.0.11 " in finding.evidence, finding.evidence
    assert "hostname" not in finding.evidence


def test_a_serving_cert_naming_the_address_but_not_the_host_is_flagged() -> None:
    cert = serving_cert("cp-2", "10.0.0.11")
    assert missing_node_names(cert, node()) == ["hostname cp-1"]
    [finding] = san_findings(cert)
    assert "lack this node's hostname cp-1 " in finding.evidence, finding.evidence


def test_a_serving_cert_naming_neither_is_flagged_for_both() -> None:
    cert = serving_cert("cp-2", "10.0.0.12")
    assert missing_node_names(cert, node()) == ["hostname cp-1", "address 10.0.0.11"]
    assert len(san_findings(cert)) == 1


def test_a_serving_cert_naming_both_is_not_flagged() -> None:
    cert = serving_cert("CP-1", "10.0.0.11", "kubernetes")
    assert missing_node_names(cert, node()) == []
    assert san_findings(cert) == []


def test_any_of_the_nodes_addresses_satisfies_the_address_half() -> None:
    state = node(addresses=("10.0.0.11", "192.168.1.11"))
    assert missing_node_names(serving_cert("cp-1", "192.168.1.11"), state) == []
    assert missing_node_names(serving_cert("cp-1", "192.168.1.12"), state) == ["address 10.0.0.11"]


# --- The active CNI config: the first primary, not the first valid file -------------------

CALICO = CniFile("10-calico.conflist", "file", is_config=True, types=("calico", "portmap"))
LOOPBACK = CniFile("00-loopback.conf", "file", is_config=True, types=("loopback",))
BROKEN = CniFile("05-broken.conflist", "file", is_config=True, error="not JSON")
NO_TYPE = CniFile("07-empty.conf", "file", is_config=True)
README = CniFile("01-README", "file")
FLANNEL = CniFile("20-flannel.conflist", "file", is_config=True, types=("flannel",))


@pytest.mark.parametrize(
    "files",
    [
        (LOOPBACK, BROKEN, CALICO),
        (CALICO, BROKEN, LOOPBACK),  # listed out of order: the kubelet sorts by name
        (BROKEN, NO_TYPE, README, CALICO, LOOPBACK),
    ],
    ids=["sorted", "reversed", "with-untyped-and-non-config"],
)
def test_loopback_only_and_invalid_configs_sorted_first_are_not_active(
    files: tuple[CniFile, ...],
) -> None:
    cni = CniState(files)
    assert LOOPBACK.valid and not LOOPBACK.primary  # valid, sorted first, still not the one
    assert not BROKEN.valid and not NO_TYPE.valid and not README.valid
    assert cni.primaries == (CALICO,)
    assert cni.active == CALICO


def test_the_first_primary_by_name_is_active_when_there_are_two() -> None:
    cni = CniState((FLANNEL, LOOPBACK, CALICO))
    assert cni.primaries == (CALICO, FLANNEL)
    assert cni.active == CALICO


def test_loopback_alone_leaves_no_active_config() -> None:
    cni = CniState((LOOPBACK, BROKEN))
    assert cni.primaries == ()
    assert cni.active is None


def test_findings_and_report_see_the_primary_as_active() -> None:
    """The rules and the report read the same active config: one CNI here, no complaint of
    two, none of a missing one, and the report names calico."""
    state = node(cni=CniState((LOOPBACK, BROKEN, CALICO)))
    ids = {f.id for f in evaluate(snapshot_of(state))}
    assert "cni.multiple-configs" not in ids and "cni.config-missing" not in ids
    assert "cni.invalid-config" in ids  # the broken file is still reported as broken
    other = node(
        name="cp-2",
        address="10.0.0.12",
        hostname="cp-2",
        addresses=("10.0.0.12",),
        cni=CniState((CALICO,)),
    )
    mixed = {f.id for f in evaluate(snapshot_of(state, other))}
    assert "cni.inconsistent-across-nodes" not in mixed
    cni_json = node_json(state, NOW)["cni"]
    assert cni_json["active"] == "10-calico.conflist"
    assert cni_json["active_types"] == ["calico", "portmap"]
