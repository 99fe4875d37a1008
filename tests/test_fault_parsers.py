"""Bad-input corpus for the parsers tests/test_node_parsers.py does not reach: well-formed YAML
and JSON of the right *shape* with wrong types or missing fields (what a half-edited manifest or
a foreign tool's file looks like), runtime listings, and etcd answers with fields left unset
(an older etcd, a learner, a member that never started). No input may raise."""

from __future__ import annotations

import json

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster.etcd.client import EtcdError
from cluster.etcd.proto import etcd_rpc_pb2 as pb
from cluster.etcd.source import _client_url, _member_without_list, _merge
from cluster.findings import evaluate_etcd
from cluster.model import EtcdCluster
from cluster.nodes.parse import (
    build_certificates,
    parse_cni_config,
    parse_kubeconfig,
    parse_manifest,
)
from cluster.nodes.source import _crictl, _lab

FUZZ = settings(max_examples=120, deadline=None)
SCALAR = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
ANY_VALUE = st.recursive(
    SCALAR,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


def shaped(keys: dict[str, st.SearchStrategy]) -> st.SearchStrategy[dict]:
    """A mapping with some of `keys` present, each holding its own strategy or any value."""
    return st.fixed_dictionaries({}, optional={k: v | ANY_VALUE for k, v in keys.items()})


CONTAINER = shaped(
    {
        "name": st.text(max_size=10),
        "image": st.text(max_size=30),
        "command": st.lists(st.text(max_size=30), max_size=4),
        "args": st.lists(st.text(max_size=30), max_size=4),
    }
)
MANIFEST = shaped(
    {
        "apiVersion": st.just("v1"),
        "kind": st.sampled_from(["Pod", "Deployment"]),
        "metadata": shaped({"name": st.text(max_size=10), "labels": ANY_VALUE}),
        "spec": shaped({"containers": st.lists(CONTAINER, max_size=3)}),
    }
)
KUBECONFIG = shaped(
    {
        "clusters": st.lists(shaped({"cluster": shaped({"server": st.text(max_size=20)})})),
        "users": st.lists(
            shaped(
                {
                    "name": st.text(max_size=8),
                    "user": shaped(
                        {
                            "client-certificate": st.text(max_size=20),
                            "client-certificate-data": st.text(max_size=40),
                        }
                    ),
                }
            ),
            max_size=2,
        ),
        "current-context": st.text(max_size=8),
    }
)
CNI = shaped(
    {
        "cniVersion": st.text(max_size=6),
        "type": st.text(max_size=10),
        "plugins": st.lists(shaped({"type": st.text(max_size=10)}), max_size=3),
    }
)
RUNTIME = shaped(
    {
        "containers": st.lists(
            shaped({"metadata": shaped({"name": st.text(max_size=10)}), "state": SCALAR}),
            max_size=3,
        ),
        "pods": st.lists(
            shaped({"component": SCALAR, "state": SCALAR, "note": SCALAR, "pid": SCALAR}),
            max_size=3,
        ),
    }
)


@FUZZ
@given(MANIFEST, st.sampled_from([yaml.safe_dump, json.dumps]))
def test_manifest_shaped_documents_never_raise(document: dict, dump) -> None:
    manifest = parse_manifest(dump(document).encode())
    assert manifest.error is None or isinstance(manifest.error, str)
    assert isinstance(manifest.flags, tuple)


@FUZZ
@given(KUBECONFIG)
def test_kubeconfig_shaped_documents_never_raise(document: dict) -> None:
    data = yaml.safe_dump(document).encode()
    kubeconfig = parse_kubeconfig(data)
    assert kubeconfig.error or kubeconfig.cert or kubeconfig.cert_path
    certificates = build_certificates({}, {"/etc/kubernetes/admin.conf": data}, {})
    assert [c.path for c in certificates] == ["/etc/kubernetes/admin.conf"]


@FUZZ
@given(CNI)
def test_cni_shaped_documents_never_raise(document: dict) -> None:
    cni = parse_cni_config("10-x.conflist", json.dumps(document).encode())
    assert cni.valid != bool(cni.error)


@FUZZ
@given(st.one_of(RUNTIME.map(json.dumps), st.text(max_size=200)))
def test_runtime_listings_never_raise(stdout: str) -> None:
    for states in (_crictl(stdout), _lab(stdout)):
        assert "" in states or states
        assert all(isinstance(evidence, str) for _, evidence in states.values())


MEMBER = st.builds(
    pb.Member,
    ID=st.integers(0, 2**64 - 1),
    name=st.text(max_size=8),
    peerURLs=st.lists(st.text(max_size=20), max_size=2),
    clientURLs=st.lists(st.sampled_from(["https://127.0.0.1:2379", "http://x", "", "junk"])),
    isLearner=st.booleans(),
)
STATUS = st.builds(
    pb.StatusResponse,
    header=st.builds(pb.ResponseHeader, member_id=st.integers(0, 2**64 - 1)) | st.none(),
    version=st.text(max_size=8),
    dbSize=st.integers(0, 2**40),
    leader=st.integers(0, 2**64 - 1),
    raftIndex=st.integers(0, 2**63),
    raftTerm=st.integers(0, 2**63),
    errors=st.lists(st.text(max_size=20), max_size=2),
    isLearner=st.booleans(),
)
ANSWER = st.one_of(
    st.none(),
    STATUS,
    st.just(EtcdError("https://127.0.0.1:2379", "UNAVAILABLE", "connection refused")),
)


@FUZZ
@given(st.lists(st.tuples(MEMBER, ANSWER), max_size=5))
def test_etcd_answers_with_missing_fields_never_raise(answers: list) -> None:
    """Partial Member and Status answers (fields unset, odd URLs) still make rows and findings."""
    members = tuple(_merge(member, status) for member, status in answers)
    listless = tuple(
        _member_without_list(_client_url(m) or "https://x:1", s)
        for m, s in answers
        if s is not None
    )
    for cluster in (EtcdCluster(members=members), EtcdCluster(members=listless, error="none")):
        assert cluster.quorum >= 0 and cluster.tolerance >= -len(cluster.members)
        findings = evaluate_etcd(cluster)
        assert all(f.id and f.subject is not None for f in findings)
