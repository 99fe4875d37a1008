"""A node read as a user who may not read everything: a refused read is "permission denied",
never "missing".

On a kubeadm node manifests/ is root's alone (0700) while pki/'s certificates are anyone's
(0644). Run as `nobody` (setpriv) over such a tree: the survey script under a real `sh` and GNU
`find`, and the local walk, must both name the directory they could not enter; the node source
must show every static pod as permission denied, raise no manifest-missing finding but one
node.permission-denied, and still show the certificates. Read as root, the same tree shows
what it holds (and what is really missing). Also: find's words parsed, and the `sudo` setting.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cluster.config import ConfigError, parse_config
from cluster.model import EtcdCluster, Snapshot
from cluster.nodes.access import ErrorKind, Listing, NodeError, Survey, Tree
from cluster.nodes.model import MANIFESTS_DIR, PKI_DIR, NodeState, StaticPod
from cluster.nodes.source import KUBERNETES_TREE, TREES
from cluster.nodes.survey import find_denied, new_nonce, parse, script
from lab import pki
from widgets.rows import static_pods

AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
ADMIN_CONF = "/etc/kubernetes/admin.conf"
ETCD_MANIFEST = f"{MANIFESTS_DIR}/etcd.yaml"
MANIFEST = """apiVersion: v1
kind: Pod
metadata: {name: etcd, namespace: kube-system}
spec:
  containers:
  - name: etcd
    image: registry.k8s.io/etcd:3.5.16-0
    command: [etcd, --name=n]
"""


@pytest.fixture
def node_root() -> Iterator[Path]:
    """A kubeadm node's files with kubeadm's modes, owned by root, below a directory anyone
    may enter (pytest's own tmp_path is root's alone)."""
    root = Path(tempfile.mkdtemp(prefix="kcockpit-sudo-"))
    try:
        root.chmod(0o755)
        kubernetes = root / "etc/kubernetes"
        manifests = kubernetes / "manifests"
        manifests.mkdir(parents=True)
        manifests.chmod(0o700)
        (manifests / "etcd.yaml").write_text(MANIFEST)
        (manifests / "etcd.yaml").chmod(0o600)
        ca = pki.issue("kubernetes", ca=True)
        pki.write_pair(kubernetes / "pki", "ca", ca)  # ca.crt 0644, ca.key 0600
        admin = pki.issue("kubernetes-admin", issuer=ca, client=True)
        pki.write_kubeconfig(kubernetes / "admin.conf", "https://n:6443", ca.cert, admin, "admin")
        cni = root / "etc/cni/net.d"
        cni.mkdir(parents=True)
        (cni / "10-calico.conflist").write_text(
            '{"cniVersion": "0.3.1", "name": "k8s-pod-network", "plugins": [{"type": "calico"}]}'
        )
        yield root
    finally:
        shutil.rmtree(root)


def run_script(root: Path, survey: Survey, as_nobody: bool) -> Any:
    nonce = new_nonce()
    ran = subprocess.run(
        [*(AS_NOBODY if as_nobody else []), "sh", "-s"],
        input=script(survey, nonce, root=str(root)).encode(),
        capture_output=True,
        check=True,
        timeout=30,
        cwd="/",
    )
    return parse(survey, nonce, ran.stdout, root=str(root))


# Runs in a child process as `nobody`: the local walk of the tree, then the node source's
# whole read of it with its findings and static pod rows, as JSON.
CHILD = """
import asyncio, dataclasses, datetime as dt, json, sys
from pathlib import Path
from cluster.config import Config, EtcdConfig, NodeConfig, TlsFiles
from cluster.findings import evaluate
from cluster.model import EtcdCluster, Snapshot
from cluster.nodes.access import Listing, Survey
from cluster.nodes.local import LocalNodeAccess
from cluster.nodes.pool import NodePool
from cluster.nodes.report import node_json
from cluster.nodes.source import TREES, NodeSource
from widgets.rows import static_pods

root = Path(sys.argv[1])
node = NodeConfig("n", "localhost", local=True, root=root)
config = Config("t", EtcdConfig(("https://127.0.0.1:2379",), TlsFiles(root, root, root)), (node,))

async def read():
    walked = await LocalNodeAccess("n", root=root).survey(Survey(TREES))
    pool = NodePool(config)
    try:
        return walked, await NodeSource(pool).collect_node(pool.access("n"))
    finally:
        await pool.close()

walked, state = asyncio.run(read())
now = dt.datetime.now(dt.UTC)
snapshot = Snapshot("t", now, EtcdCluster(), nodes=(state,))
print(json.dumps({
    "walked": {
        tree.path: [sorted(listing), list(listing.denied)] if isinstance(listing, Listing)
        else listing.kind.name
        for tree, listing in walked.trees.items()
    },
    "node": node_json(state, now),
    "findings": {f.id: f.summary for f in evaluate(snapshot)},
    "cells": [str(cells[2]) for _, cells in static_pods.rows(snapshot)],
}))
"""


def read_node(root: Path, as_nobody: bool) -> Any:
    ran = subprocess.run(
        [*(AS_NOBODY if as_nobody else []), sys.executable, "-c", CHILD, str(root)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
        env={**os.environ, "HOME": "/"},  # nobody's
    )
    assert ran.returncode == 0, ran.stderr
    return json.loads(ran.stdout)


def test_the_script_names_the_directory_find_could_not_enter(node_root: Path) -> None:
    survey = Survey(TREES, (), (f"{PKI_DIR}/ca.crt", ADMIN_CONF, ETCD_MANIFEST))
    answer = run_script(node_root, survey, as_nobody=True)

    kubernetes = answer.trees[KUBERNETES_TREE]
    assert isinstance(kubernetes, Listing)
    assert kubernetes.denied == (MANIFESTS_DIR,)
    assert kubernetes[MANIFESTS_DIR].kind == "dir" and ADMIN_CONF in kubernetes
    assert not kubernetes.children(MANIFESTS_DIR)  # unknown, and said so above
    assert answer.files[f"{PKI_DIR}/ca.crt"].startswith(b"-----BEGIN CERTIFICATE-----")
    for refused in (ADMIN_CONF, ETCD_MANIFEST):
        error = answer.files[refused]
        assert isinstance(error, NodeError) and error.kind is ErrorKind.PERMISSION
    assert answer.denied

    as_root = run_script(node_root, survey, as_nobody=False)
    listing = as_root.trees[KUBERNETES_TREE]
    assert isinstance(listing, Listing) and listing.denied == () and ETCD_MANIFEST in listing
    assert not as_root.denied


def test_the_local_walk_names_it_the_same_way_and_the_node_shows_permission_denied(
    node_root: Path,
) -> None:
    read = read_node(node_root, as_nobody=True)
    answer = run_script(node_root, Survey(TREES), as_nobody=True)
    assert read["walked"] == {
        tree.path: [sorted(listing), list(listing.denied)]
        if isinstance(listing, Listing)
        else listing.kind.name
        for tree, listing in answer.trees.items()
    }

    node = read["node"]
    assert node["reachable"], node["error"]
    assert {pod["state"] for pod in node["static_pods"]} == {"denied"}
    assert set(read["cells"]) == {"⊘ permission denied"}
    assert node["denied"] == [ADMIN_CONF, MANIFESTS_DIR]
    certificates = {c["path"]: c for c in node["certificates"]}
    assert certificates[f"{PKI_DIR}/ca.crt"]["subject"] == "kubernetes"
    assert certificates[f"{PKI_DIR}/ca.crt"]["error"] is None
    assert certificates[ADMIN_CONF]["error"] == "permission denied"
    assert certificates[ADMIN_CONF]["problems"] == []
    assert read["findings"] == {
        "node.permission-denied": "n: cannot read the static pod manifests (permission denied)"
    }


def test_a_manifest_the_user_may_not_read_in_a_listed_directory_is_denied_not_invalid(
    node_root: Path,
) -> None:
    (node_root / MANIFESTS_DIR.lstrip("/")).chmod(0o755)  # listed; etcd.yaml stays 0600
    read = read_node(node_root, as_nobody=True)
    node = read["node"]
    states = {pod["component"]: pod["state"] for pod in node["static_pods"]}
    assert states["etcd"] == "denied" and states["kube-apiserver"] == "missing"
    assert ETCD_MANIFEST in node["denied"] and MANIFESTS_DIR not in node["denied"]
    assert "static-pod.invalid-manifest" not in read["findings"]
    assert "etcd" not in read["findings"]["static-pod.manifest-missing"]  # the others are


def test_read_as_root_the_same_tree_shows_what_it_holds(node_root: Path) -> None:
    read = read_node(node_root, as_nobody=False)
    node = read["node"]
    states = {pod["component"]: pod["state"] for pod in node["static_pods"]}
    assert states == {
        "etcd": "present",
        "kube-apiserver": "missing",
        "kube-controller-manager": "missing",
        "kube-scheduler": "missing",
    }
    assert node["denied"] == []
    assert "static-pod.manifest-missing" in read["findings"]
    assert "node.permission-denied" not in read["findings"]
    admin = next(c for c in node["certificates"] if c["path"] == ADMIN_CONF)
    assert admin["subject"] == "kubernetes-admin" and admin["error"] is None


@pytest.mark.parametrize(
    ("stderr", "root", "denied"),
    [
        (b"find: '/etc/kubernetes/manifests': Permission denied\n", "", (MANIFESTS_DIR,)),
        ("find: ‘/r/etc/a b’: Permission denied\n".encode(), "/r", ("/etc/a b",)),  # UTF-8 locale
        (
            b"find: '/r/etc/kubernetes/pki/x': Permission denied\n"
            b"find: '/r/etc/kubernetes/gone': No such file or directory\n"
            b"find: '/r/etc/kubernetes/y': Permission denied",
            "/r",
            ("/etc/kubernetes/pki/x", "/etc/kubernetes/y"),
        ),
        (b"find: unrecognized: -printf\n", "", ()),
        (b"", "", ()),
    ],
)
def test_find_denied_reads_finds_words(stderr: bytes, root: str, denied: tuple[str, ...]) -> None:
    assert find_denied(stderr, root) == denied


def test_a_listing_with_a_denied_subdirectory_keeps_its_entries() -> None:
    tree = Tree("/etc/kubernetes", 2)
    nonce = new_nonce()
    mark = f"@@{nonce}".encode()
    output = (
        mark + b" begin 0\n"
        b"d 4096 1700000000.0 /etc/kubernetes/manifests\0f 5 1700000000.0 /etc/kubernetes/a\0"
        b"\n" + mark + b" end 0 1\n"
        b"find: '/etc/kubernetes/manifests': Permission denied\n" + mark + b" done\n"
    )  # fmt: skip
    listing = parse(Survey((tree,)), nonce, output).trees[tree]
    assert isinstance(listing, Listing)
    assert sorted(listing) == ["/etc/kubernetes/a", MANIFESTS_DIR]
    assert listing.denied == (MANIFESTS_DIR,)


def test_a_denied_static_pod_row_says_permission_denied() -> None:
    state = NodeState("n", "10.0.0.1", True, static_pods=(StaticPod("etcd", "denied"),))
    snapshot = Snapshot("t", dt.datetime.now(dt.UTC), EtcdCluster(), nodes=(state,))
    [(key, cells)] = static_pods.rows(snapshot)
    assert key == "n/etcd" and str(cells[2]) == "⊘ permission denied"


CONFIG = {"etcd": {"endpoints": ["https://127.0.0.1:2379"], "ca": "c", "cert": "c", "key": "k"}}


@pytest.mark.parametrize("value", [True, False, "auto"])
def test_sudo_is_true_false_or_auto(value: object) -> None:
    node = {"name": "cp-1", "address": "10.0.0.11", "sudo": value}
    assert parse_config({**CONFIG, "nodes": [node]}, Path("/")).nodes[0].sudo == value


def test_sudo_is_off_by_default() -> None:
    node = {"name": "cp-1", "address": "10.0.0.11"}
    assert parse_config({**CONFIG, "nodes": [node]}, Path("/")).nodes[0].sudo is False


@pytest.mark.parametrize(
    ("node", "words"),
    [
        ({"sudo": "yes"}, "[[nodes]] #1 sudo must be true, false or \"auto\", not 'yes'"),
        ({"sudo": 1}, '[[nodes]] #1 sudo must be true, false or "auto", not 1'),
        ({"sudo": True, "local": True}, "sudo is for SSH nodes: on a local node run kcockpit"),
    ],
)
def test_a_wrong_sudo_is_a_one_line_config_error(node: dict[str, object], words: str) -> None:
    raw = {**CONFIG, "nodes": [{"name": "cp-1", "address": "10.0.0.11", **node}]}
    with pytest.raises(ConfigError) as refused:
        parse_config(raw, Path("/"))
    assert words in str(refused.value) and "\n" not in str(refused.value)
