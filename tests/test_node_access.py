"""The node access interface on a real lab node, over SSH and on the local filesystem alike.

Both implementations answer the same calls the same way; actions built on them rely on that.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cluster.nodes.access import ErrorKind, NodeAccess, NodeError
from cluster.nodes.local import LocalNodeAccess
from cluster.nodes.pool import NodePool
from lab.control import Lab

NET_D = "/etc/cni/net.d"


@pytest.fixture(params=["ssh", "local"])
async def access(request: pytest.FixtureRequest, lab: Lab) -> AsyncIterator[NodeAccess]:
    node = lab.spec.nodes[0].name
    if request.param == "ssh":
        pool = NodePool(lab.config())
        try:
            yield await pool.get(node)
        finally:
            await pool.close()
    else:
        yield LocalNodeAccess(node, root=lab.paths.node_root(node))


async def test_list_stat_and_read(access: NodeAccess) -> None:
    entries = {e.name: e for e in await access.list_dir("/etc/kubernetes")}
    assert entries["manifests"].kind == "dir" and entries["admin.conf"].kind == "file"
    assert (await access.stat("/etc/kubernetes/manifests/etcd.yaml")).kind == "file"
    assert await access.stat("/etc/kubernetes/nothing-here") is None
    assert await access.exists("/etc/kubernetes/pki/ca.crt")
    data = await access.read_file("/etc/kubernetes/pki/ca.crt")
    assert data.startswith(b"-----BEGIN CERTIFICATE-----")


async def test_errors_are_typed(access: NodeAccess) -> None:
    with pytest.raises(NodeError) as missing:
        await access.read_file("/etc/kubernetes/missing.conf")
    assert missing.value.kind is ErrorKind.NOT_FOUND and "missing.conf" in str(missing.value)
    with pytest.raises(NodeError) as small:
        await access.read_file("/etc/kubernetes/admin.conf", limit=100)
    assert small.value.kind is ErrorKind.TOO_LARGE and "100 byte" in str(small.value)


async def test_rename_out_and_back_refuses_to_overwrite(access: NodeAccess, lab: Lab) -> None:
    source, target = f"{NET_D}/calico-kubeconfig", f"{NET_D}/calico-kubeconfig.moved"
    await access.rename(source, target)
    try:
        assert not await access.exists(source) and await access.exists(target)
        (lab.paths.node_root(access.name) / source.lstrip("/")).write_text("in the way\n")
        with pytest.raises(NodeError) as refused:
            await access.rename(target, source)
        assert refused.value.kind is ErrorKind.EXISTS
        (lab.paths.node_root(access.name) / source.lstrip("/")).unlink()
    finally:
        await access.rename(target, source)
    assert await access.exists(source)


async def test_commands(access: NodeAccess) -> None:
    result = await access.run(["hostname"])
    if access.local:  # root-mapped: this machine's commands would describe another node
        assert result.exit_status == 127 and "not run" in result.stderr
    else:
        assert result.ok and result.stdout.strip() == access.name
        assert not (await access.run(["crictl", "ps"])).ok
