"""The safety defaults cannot be weakened by accident: read-only however it is spelled, config
values checked before use, bounded parsers, files that are not regular never opened, and no
private key kept after its certificate is read."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from cluster.config import NodeConfig
from cluster.nodes.access import ErrorKind, NodeError
from cluster.nodes.local import LocalNodeAccess
from cluster.nodes.parse import parse_kubeconfig, parse_manifest
from cluster.nodes.pool import NodePool
from cluster.nodes.source import NodeSource
from lab.control import Lab
from tests.helpers import kcockpit, report_json
from tests.test_hostile_input import LAUGHS
from tui.cli import build_parser
from tui.serve import cockpit_command

# ---- read-only, every spelling -----------------------------------------------------------


def leader_of(config: Path) -> str:
    return report_json(config)["etcd"]["leader"]


def read_only_config(lab: Lab, tmp_path: Path) -> Path:
    """The lab's config with `read_only = true` at the top."""
    config = tmp_path / "read-only.toml"
    text = lab.paths.config.read_text()
    config.write_text(f"read_only = true\n{text}")
    return config


@pytest.mark.parametrize("spelling", ["before", "after", "config"])
def test_every_spelling_of_read_only_refuses_move_leader(
    lab: Lab, tmp_path: Path, spelling: str
) -> None:
    config = lab.paths.config
    leader = leader_of(config)
    target = next(n.name for n in lab.spec.nodes if n.name != leader)
    args = ["act", "move-leader", target, "--yes", "--config", str(config)]
    if spelling == "before":
        args = ["--read-only", *args]
    elif spelling == "after":
        args = [*args, "--read-only"]
    else:
        args[-1] = str(read_only_config(lab, tmp_path))
    env = {"KCOCKPIT_STATE_DIR": str(tmp_path / "state")}
    result = kcockpit(*args, env=env, timeout=60)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "read-only" in result.stderr
    assert leader_of(config) == leader


@pytest.mark.parametrize(
    "argv",
    [["--read-only", "serve"], ["serve", "--read-only"]],
)
def test_serve_passes_read_only_on_however_it_is_spelled(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert "--read-only" in cockpit_command(args).split()


@pytest.mark.parametrize(
    "argv",
    [["--read-only"], ["--read-only", "act", "x", "y"], ["act", "x", "y", "--read-only"]],
)
def test_a_subcommand_never_turns_off_a_read_only_given_before_it(argv: list[str]) -> None:
    assert build_parser().parse_args(argv).read_only is True
    assert build_parser().parse_args([a for a in argv if a != "--read-only"]).read_only is False


# ---- config values -----------------------------------------------------------------------

ETCD = '[etcd]\nendpoints = ["https://127.0.0.1:2379"]\nca = "a"\ncert = "b"\nkey = "c"\n'


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (ETCD + "timeout = nan\n", "[etcd] timeout"),
        (ETCD + "timeout = inf\n", "[etcd] timeout"),
        (ETCD + "timeout = 0\n", "[etcd] timeout"),
        (ETCD + "timeout = -1\n", "[etcd] timeout"),
        (ETCD + "timeout = true\n", "[etcd] timeout"),
        ("refresh = nan\n" + ETCD, "refresh"),
        ('lab = "x"\n' + ETCD, "[lab]"),
        ("read_only = 1\n" + ETCD, "read_only"),
        (ETCD.replace("https://", "http://"), "endpoints"),
        (ETCD.replace("2379", "237900"), "endpoints"),
        (ETCD.replace("127.0.0.1:2379", "fd00::10:2379"), "endpoints"),
        (ETCD + '[kube]\ntimeout = "3"\n', "[kube] timeout"),
        (ETCD + "[thresholds]\nraft_lag_entries = nan\n", "[thresholds] raft_lag_entries"),
        (ETCD + '[[nodes]]\nname = "n"\naddress = "a"\nagent = "no"\n', "agent"),
        (ETCD + '[[nodes]]\nname = "n"\naddress = "a"\nuser = 5\n', "user"),
        ('nodes = "x"\n' + ETCD, "nodes"),
    ],
)
def test_a_bad_config_value_is_one_line_naming_its_key(
    tmp_path: Path, text: str, named: str
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(text)
    result = kcockpit("report", "--config", str(config))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], result.stderr


# ---- bounded parsers and files that are not regular ---------------------------------------


def test_a_billion_laughs_manifest_is_refused_without_being_expanded() -> None:
    manifest = parse_manifest(LAUGHS)
    assert manifest.error and "aliases" in manifest.error
    kubeconfig = parse_kubeconfig(b"users: &u [{user: {client-certificate: /x}}]\nother: *u\n")
    assert kubeconfig.error and "aliases" in kubeconfig.error
    plain = parse_manifest(b"kind: Pod\nmetadata: {name: etcd}\nspec:\n  containers: [{image: x}]")
    assert plain.error is None and plain.pod_name == "etcd"  # a `*` nowhere: parsed as ever


@pytest.mark.parametrize("path", ["-", "relative/client.crt", "../../etc/shadow"])
def test_a_kubeconfig_pointing_at_a_relative_path_is_not_read(path: str) -> None:
    parsed = parse_kubeconfig(f"users: [{{user: {{client-certificate: '{path}'}}}}]".encode())
    assert parsed.cert_path is None and parsed.error and "not an absolute path" in parsed.error


async def test_a_fifo_is_never_opened_on_a_local_node(tmp_path: Path) -> None:
    manifests = tmp_path / "etc/kubernetes/manifests"
    manifests.mkdir(parents=True)
    os.mkfifo(manifests / "etcd.yaml")  # nobody will ever write to it
    (manifests / "link.yaml").symlink_to(manifests / "etcd.yaml")
    access = LocalNodeAccess("n", root=tmp_path, timeout=30)
    for name in ("etcd.yaml", "link.yaml"):
        with pytest.raises(NodeError) as refused:
            await asyncio.wait_for(access.read_file(f"/etc/kubernetes/manifests/{name}"), 5)
        assert refused.value.kind is ErrorKind.NOT_REGULAR


def kubeconfig_with_key(cert: bytes, key: bytes) -> bytes:
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return json.dumps(
        {
            "clusters": [{"cluster": {"server": "https://10.0.0.1:6443"}}],
            "users": [
                {"user": {"client-certificate-data": b64(cert), "client-key-data": b64(key)}}
            ],
        }
    ).encode()


async def test_private_keys_are_dropped_as_soon_as_the_certificate_is_read(
    lab: Lab, tmp_path: Path
) -> None:
    """admin.conf's key, a PEM pair's key and a CNI kubeconfig's token are kept nowhere: not in
    the file cache, not in the parsers' memo, not in the state."""
    pki = lab.paths.kubernetes_dir("cp-1") / "pki"
    cert, key = (pki / "apiserver.crt").read_bytes(), (pki / "apiserver.key").read_bytes()
    assert b"PRIVATE KEY" in key
    root = tmp_path / "node"
    kubernetes = root / "etc/kubernetes"
    (kubernetes / "manifests").mkdir(parents=True)
    (kubernetes / "pki").mkdir()
    (kubernetes / "admin.conf").write_bytes(kubeconfig_with_key(cert, key))
    (kubernetes / "pki/pair.crt").write_bytes(cert + key)
    (root / "etc/cni/net.d").mkdir(parents=True)
    token = "tok-" + "s3cr3t" * 4
    (root / "etc/cni/net.d/calico-kubeconfig").write_text(
        f"clusters: [{{cluster: {{server: 'https://10.0.0.1:6443'}}}}]\n"
        f"users: [{{user: {{token: {token}}}}}]\n"
    )
    for path in (kubernetes / "admin.conf", kubernetes / "pki/pair.crt"):
        settled = path.stat().st_mtime - 60  # an older file is one the cache keeps
        os.utime(path, (settled, settled))
    node = NodeConfig(name="local", address="localhost", local=True, root=root)
    source = NodeSource(NodePool(replace(lab.config(), nodes=(node,))))
    state = (await source.read(fresh=True))[0]
    assert state.reachable, state.error
    kept = repr(state) + repr(source._files["local"]._entries)
    secret = base64.b64encode(key).decode()
    assert secret[:40] not in kept and "PRIVATE KEY" not in kept and token not in kept
    names = {c.name for c in state.certificates if c.error is None}
    assert {"admin.conf", "pki/pair.crt"} <= names  # the certificates themselves were read
