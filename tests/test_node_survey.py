"""The node survey: one shell script per refresh must tell exactly what the call-by-call reads
tell. Checked three ways: the real script run by a real `sh` and GNU `find` on a directory of
ours, against the local walk of the same directory; the lab's answer over SSH against the same
calls made one by one over SFTP; and a node without a usable shell, surveyed call by call."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cluster.nodes.access import ErrorKind, NodeAccess, NodeError, Survey, SurveyAnswer, Tree
from cluster.nodes.local import LocalNodeAccess
from cluster.nodes.pool import NodePool
from cluster.nodes.source import TREES, NodeSource
from cluster.nodes.ssh import SshNodeAccess
from cluster.nodes.survey import new_nonce, parse, script
from lab.control import Lab
from tests.helpers import break_ssh

PIPE = "/etc/kubernetes/manifests/pipe.yaml"
PIPE_LINK = "/etc/kubernetes/pki/pipe.crt"
READS = (
    "/etc/kubernetes/pki/etcd/server.crt",
    "/etc/kubernetes/file with spaces.conf",
    "/etc/kubernetes/missing.conf",
    PIPE,  # a FIFO: opening it would wait for a writer for ever
    PIPE_LINK,  # a link to it
)
COMMANDS = (
    ("sh", "-c", "printf 'out\\n'; echo 'warning: not JSON' >&2; exit 3"),
    ("printf", "%s", "no newline at the end"),
    ("kcockpit-no-such-command",),
)


def listing_facts(answer: SurveyAnswer) -> dict[Tree, object]:
    """Per tree its entries (name, kind, size, whole-second mtime: SFTP's precision) or its
    error kind."""
    return {
        tree: listing.kind
        if isinstance(listing, NodeError)
        else {p: (e.name, e.kind, e.size, int(e.mtime or 0)) for p, e in listing.items()}
        for tree, listing in answer.trees.items()
    }


def file_facts(answer: SurveyAnswer) -> dict[str, object]:
    """Per file its bytes or its error kind."""
    return {
        path: content.kind if isinstance(content, NodeError) else content
        for path, content in answer.files.items()
    }


def build_node_files(root: Path) -> None:
    pki = root / "etc/kubernetes/pki"
    (pki / "etcd").mkdir(parents=True)
    (root / "etc/kubernetes/manifests").mkdir()
    (root / "etc/kubernetes/manifests/etcd.yaml").write_text("kind: Pod\n")
    (root / "etc/kubernetes/admin.conf").write_text("apiVersion: v1\n")
    (pki / "ca.crt").write_text("not really PEM\n")
    (pki / "etcd/server.crt").write_bytes(b"\x00\xff binary junk")
    (pki / "etcd-link").symlink_to(pki / "etcd")  # a directory link: listed, not followed
    deep = pki / "a/b/c/d/e"
    deep.mkdir(parents=True)
    (deep / "too-deep.crt").write_text("beyond the walk\n")
    (pki / "a/b/c/d/shallow-enough.crt").write_text("x\n")
    (root / "etc/kubernetes/file with spaces.conf").write_text("y\n")
    os.mkfifo(root / PIPE.lstrip("/"))
    (root / PIPE_LINK.lstrip("/")).symlink_to(root / PIPE.lstrip("/"))


async def test_the_real_script_lists_what_the_local_walk_lists(tmp_path: Path) -> None:
    build_node_files(tmp_path)
    survey = Survey((*TREES, Tree("/etc/kubernetes/admin.conf", 0)), COMMANDS, READS)
    nonce = new_nonce()
    ran = subprocess.run(
        ["sh", "-s"],
        input=script(survey, nonce, root=str(tmp_path)).encode(),
        capture_output=True,
        check=True,
        timeout=30,
    )
    answer = parse(survey, nonce, ran.stdout, root=str(tmp_path))
    walked = await LocalNodeAccess("n", root=tmp_path).survey(Survey(survey.trees, (), READS))

    assert listing_facts(answer) == listing_facts(walked)
    assert file_facts(answer) == file_facts(walked)
    assert answer.files["/etc/kubernetes/pki/etcd/server.crt"] == b"\x00\xff binary junk"
    assert file_facts(answer)[PIPE] is file_facts(answer)[PIPE_LINK] is ErrorKind.NOT_REGULAR
    manifests = answer.trees[TREES[0]]
    assert not isinstance(manifests, NodeError) and manifests[PIPE].kind == "fifo"
    pki = answer.trees[TREES[1]]
    assert not isinstance(pki, NodeError)
    assert pki["/etc/kubernetes/pki/etcd-link"].kind == "symlink"
    ca_mtime = pki["/etc/kubernetes/pki/ca.crt"].mtime
    assert ca_mtime == pytest.approx((tmp_path / "etc/kubernetes/pki/ca.crt").stat().st_mtime)
    assert "/etc/kubernetes/pki/a/b/c/d/shallow-enough.crt" in pki
    assert not any(p.endswith("too-deep.crt") for p in pki)
    missing = answer.trees[TREES[2]]  # no /etc/cni/net.d here
    assert isinstance(missing, NodeError) and missing.kind is ErrorKind.NOT_FOUND

    failing, quiet, absent = (answer.commands[c] for c in COMMANDS)
    assert (failing.exit_status, failing.stdout) == (3, "out\n")
    assert "warning: not JSON" in failing.stderr  # never mixed into stdout
    assert quiet.ok and quiet.stdout == "no newline at the end"
    assert absent.exit_status == 127 and "not found" in absent.stderr


@pytest.fixture
async def ssh_access(lab: Lab) -> AsyncIterator[NodeAccess]:
    pool = NodePool(lab.config())
    try:
        yield await pool.get(lab.spec.nodes[0].name)
    finally:
        await pool.close()


@pytest.fixture
async def user_access(lab: Lab) -> AsyncIterator[NodeAccess]:
    """The first node read as the SSH user (`sudo = false`), as its SFTP server reads."""
    config = lab.config()
    nodes = tuple(dataclasses.replace(node, sudo=False) for node in config.nodes)
    pool = NodePool(dataclasses.replace(config, nodes=nodes))
    try:
        yield await pool.get(lab.spec.nodes[0].name)
    finally:
        await pool.close()


async def test_one_exchange_over_ssh_answers_like_the_calls_one_by_one(
    user_access: NodeAccess,
) -> None:
    ssh_access = user_access  # SFTP reads as the user: root's shell would see more
    assert isinstance(ssh_access, SshNodeAccess)
    reads = ("/etc/kubernetes/admin.conf", "/etc/kubernetes/pki/ca.crt", "/etc/nothing")
    survey = Survey(TREES, (("hostname",), ("ss", "-Hltnp"), ("crictl", "ps")), reads)
    exchanged = await ssh_access.survey(survey)
    one_by_one = await NodeAccess.survey(ssh_access, survey)  # readdir per directory, exec each

    assert listing_facts(exchanged) == listing_facts(one_by_one)
    assert file_facts(exchanged) == file_facts(one_by_one)
    denied = {tree: getattr(listing, "denied", ()) for tree, listing in exchanged.trees.items()}
    assert denied == {t: getattr(v, "denied", ()) for t, v in one_by_one.trees.items()}
    assert file_facts(exchanged)["/etc/nothing"] is ErrorKind.NOT_FOUND
    for command, result in one_by_one.commands.items():
        # The shell drops stderr's last newline, and sh names the script's line, not line 1.
        expected = dataclasses.replace(result, stderr=without_line(result.stderr.rstrip("\n")))
        got = exchanged.commands[command]
        assert dataclasses.replace(got, stderr=without_line(got.stderr)) == expected
    again = await ssh_access.survey(survey)  # the same shell session answers the next one
    assert listing_facts(again) == listing_facts(exchanged)


def without_line(stderr: str) -> str:
    """`sh: 6: crictl: not found` as `sh: crictl: not found`."""
    return re.sub(r"^sh: \d+: ", "sh: ", stderr, flags=re.MULTILINE)


async def test_a_node_without_a_usable_shell_is_surveyed_call_by_call(lab: Lab) -> None:
    """The operator's login shell is nologin (an SFTP-only account): the survey's shell is
    refused, and what SFTP can read as that user is still read, call by call."""
    node = lab.spec.nodes[1].name
    lab.node_exec(node, ["usermod", "-s", "/usr/sbin/nologin", "ops"])
    config = lab.config()
    pool = NodePool(config)
    try:
        source = NodeSource(pool)
        state = await source.collect_node(pool.access(node))
        assert state.reachable, state.error
        assert any(c.name == "pki/ca.crt" and c.error is None for c in state.certificates)
        assert state.cni.files  # /etc/cni/net.d is readable by anyone
        assert state.clock_offset is None  # no command runs without a shell
        assert pool.access(node)._shell_refused  # the fallback answered, not the shell
    finally:
        lab.node_exec(node, ["usermod", "-s", "/bin/sh", "ops"])
        await pool.close()


async def test_a_shell_lost_mid_answer_is_replaced_on_the_next_survey(
    ssh_access: NodeAccess, lab: Lab
) -> None:
    survey = Survey(TREES[:1])
    await ssh_access.survey(survey)  # the shell is open
    undo = break_ssh(lab, ssh_access.name, "slow")
    try:
        with pytest.raises(NodeError) as late:
            await ssh_access.survey(survey)
        assert late.value.kind is ErrorKind.TIMEOUT
    finally:
        undo()
    answer = await asyncio.wait_for(ssh_access.survey(survey), 2 * ssh_access.timeout)
    listing = answer.trees[TREES[0]]
    assert not isinstance(listing, NodeError) and "/etc/kubernetes/manifests" in listing
