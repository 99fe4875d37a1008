"""Bad-input corpus for the parsers tests/test_node_parsers.py does not reach: well-formed YAML
and JSON of the right *shape* with wrong types or missing fields (what a half-edited manifest or
a foreign tool's file looks like), runtime listings, and etcd answers with fields left unset
(an older etcd, a learner, a member that never started), a node's survey output and the
Kubernetes API's JSON. No input may raise (a survey that cannot be read raises NodeError, which
marks the node, never the cockpit)."""

from __future__ import annotations

import datetime as dt
import json

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster.etcd.client import EtcdError
from cluster.etcd.proto import etcd_rpc_pb2 as pb
from cluster.etcd.source import _client_url, _member_without_list, _merge
from cluster.findings import evaluate
from cluster.kube.source import daemonset_of, endpoints_of, event_of, node_of, pod_of
from cluster.model import EtcdCluster, Snapshot
from cluster.nodes.access import NodeError, Survey, Tree
from cluster.nodes.parse import (
    build_certificates,
    parse_cni_config,
    parse_kubeconfig,
    parse_manifest,
)
from cluster.nodes.running import crictl_states
from cluster.nodes.survey import find_record, parse, section

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
    states = crictl_states(stdout)
    assert "" in states
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
        findings = evaluate(Snapshot("test", dt.datetime.now(dt.UTC), cluster))
        assert all(f.id and f.subject is not None for f in findings)


SURVEY = Survey((Tree("/etc/kubernetes", 2),), (("date", "+%s.%N"),))
RECORD = st.one_of(
    st.builds(
        find_record,
        st.sampled_from(["file", "dir", "symlink", "other"]),
        st.integers(-1, 2**40),
        st.floats(allow_nan=True),
        st.text(max_size=30).map(lambda name: f"/etc/kubernetes/{name}"),
    ),
    st.binary(max_size=40),  # not find's record at all
)


@FUZZ
@given(
    st.lists(RECORD, max_size=6).map(b"".join),
    st.binary(max_size=60),
    st.integers(0, 255),
    st.binary(max_size=40),
    st.binary(max_size=60),
)
def test_survey_output_never_raises_but_node_error(
    listing: bytes, stdout: bytes, status: int, stderr: bytes, junk: bytes
) -> None:
    """Framed answers with odd records and outputs read; anything else is the node's error."""
    framed = section("n", 0, listing, status, stderr) + section("n", 1, stdout, status, b"")
    answer = parse(SURVEY, "n", framed)
    assert set(answer.trees) == set(SURVEY.trees) and set(answer.commands) == set(SURVEY.commands)
    for output in (junk, framed[: len(framed) // 2] + junk, junk + framed):
        try:
            parse(SURVEY, "n", output)
        except NodeError as exc:
            assert str(exc)


META = shaped(
    {
        "name": st.text(max_size=8),
        "namespace": st.text(max_size=8),
        "labels": ANY_VALUE,
        "annotations": ANY_VALUE,
        "ownerReferences": st.lists(shaped({"kind": SCALAR, "name": SCALAR}), max_size=2),
        "deletionTimestamp": SCALAR,
        "creationTimestamp": SCALAR,
    }
)
KUBE_OBJECT = shaped(
    {
        "metadata": META,
        "spec": shaped({"nodeName": SCALAR, "selector": shaped({"matchLabels": ANY_VALUE})}),
        "status": shaped(
            {
                "phase": SCALAR,
                "conditions": st.lists(shaped({"type": SCALAR, "status": SCALAR}), max_size=2),
                "containerStatuses": st.lists(
                    shaped({"restartCount": SCALAR, "state": ANY_VALUE}), max_size=2
                ),
                "addresses": ANY_VALUE,
                "nodeInfo": ANY_VALUE,
                "numberReady": SCALAR,
            }
        ),
        "subsets": st.lists(shaped({"addresses": ANY_VALUE, "ports": ANY_VALUE}), max_size=2),
        "involvedObject": ANY_VALUE,
        "lastTimestamp": st.sampled_from(["2026-11-25T17:00:00Z", "yesterday", ""]) | SCALAR,
        "count": SCALAR,
    }
)


@FUZZ
@given(KUBE_OBJECT)
def test_kube_objects_with_missing_or_mistyped_fields_never_raise(obj: dict) -> None:
    """An API object of the right shape but odd fields (another version, another tool's
    object) still makes a row: one odd pod must not cost the whole list."""
    for convert in (node_of, pod_of, daemonset_of, endpoints_of, event_of):
        assert convert(obj) is not None
