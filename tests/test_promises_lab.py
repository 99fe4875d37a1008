"""Promises the docs make, each held to on a real lab (issue 13).

`kcockpit config check` names each failing layer on a line of its own (etcd TLS, an SSH host
key, the Kubernetes API) and exits 1, and says "all connections work" (exit 0) when they do;
a kubeadm node needs no config at all (discovery from its static pod manifests); and SIGTERM
during `kcockpit act` still writes the action's outcome, `interrupted`, to the audit
(docs/using.md, "SSH drops").
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actions.audit import AuditLog, timeline
from lab.control import Lab
from tests.helpers import PROJECT, fill_etcd, kcockpit, report_json, wait_until

OK, FAIL = "✔", "✖"
LAB_CONTROL_PLANE = True  # the module reads the Kubernetes API or its static pods

INTERRUPTED = "interrupted, state unknown"
VERIFIED = "verified"


def standalone_config(lab: Lab, directory: Path, name: str, **replace: str) -> Path:
    """A copy of the lab's config with absolute paths, edited by `replace` (old -> new text)."""
    text = lab.paths.config.read_text()
    text = text.replace('"cockpit/', f'"{lab.paths.cockpit}/')
    text = text.replace('dir = "."', f'dir = "{lab.paths.root}"')
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    path = directory / f"{name}.toml"
    path.write_text(text)
    return path


def check(config: Path) -> tuple[int, list[str]]:
    result = kcockpit("config", "check", "--config", str(config), timeout=90)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stdout.splitlines()


def lines_about(lines: list[str], prefix: str) -> list[str]:
    """The check's lines for one layer: `etcd `, `node `, `kubernetes API`."""
    return [line for line in lines if line[2:].startswith(prefix)]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_config_check_of_a_good_config_says_all_connections_work(lab: Lab) -> None:
    code, lines = check(lab.paths.config)
    assert code == 0, lines
    assert lines[-1] == "all connections work", lines
    assert not [line for line in lines if line.startswith(FAIL)], lines
    assert len(lines_about(lines, "etcd ")) == len(lab.spec.nodes)
    assert len(lines_about(lines, "node ")) == len(lab.spec.nodes)
    assert lines_about(lines, "kubernetes API") == [f"{OK} kubernetes API: reachable"]


def test_config_check_names_an_etcd_ca_that_does_not_sign_etcd(lab: Lab, tmp_path: Path) -> None:
    """The Kubernetes CA where the etcd CA belongs: every etcd line fails in TLS words, the
    SSH and API lines still pass, exit 1."""
    wrong_ca = lab.paths.node_root("cp-1") / "etc/kubernetes/pki/ca.crt"
    config = standalone_config(
        lab,
        tmp_path,
        "wrong-ca",
        **{f'ca = "{lab.paths.cockpit}/etcd-ca.crt"': f'ca = "{wrong_ca}"'},
    )
    code, lines = check(config)
    assert code == 1, lines
    etcd = lines_about(lines, "etcd ")
    assert len(etcd) == len(lab.spec.nodes), lines
    for line in etcd:
        assert line.startswith(FAIL), lines
        assert "Tls handshake failed" in line and "CERTIFICATE_VERIFY_FAILED" in line, line
    assert all(line.startswith(OK) for line in lines_about(lines, "node ")), lines
    assert lines_about(lines, "kubernetes API") == [f"{OK} kubernetes API: reachable"]
    passed = sum(line.startswith(OK) for line in lines[1:-1])
    assert lines[-1] == f"{passed} passed, {len(etcd)} failed", lines


def test_config_check_names_an_unknown_ssh_host_key(lab: Lab, tmp_path: Path) -> None:
    """known_hosts that does not know the nodes: every node line fails on the host key, etcd
    and the API still pass, exit 1."""
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    config = standalone_config(
        lab,
        tmp_path,
        "unknown-host-key",
        **{f'known_hosts = "{lab.paths.cockpit}/known_hosts"': f'known_hosts = "{empty}"'},
    )
    code, lines = check(config)
    assert code == 1, lines
    nodes = lines_about(lines, "node ")
    assert len(nodes) == len(lab.spec.nodes), lines
    for node, line in zip(lab.spec.nodes, nodes, strict=True):
        assert line.startswith(f"{FAIL} node {node.name} ({node.address}): "), lines
        assert f"host key unknown for {node.address} " in line, line  # port 22: no [ ]:port
    assert all(line.startswith(OK) for line in lines_about(lines, "etcd ")), lines
    assert lines_about(lines, "kubernetes API") == [f"{OK} kubernetes API: reachable"]
    assert lines[-1].endswith(f"passed, {len(nodes)} failed"), lines


def test_config_check_names_an_unreachable_kubernetes_api(lab: Lab, tmp_path: Path) -> None:
    """A kubeconfig whose server nobody listens on: one failing API line, exit 1."""
    kubeconfig = tmp_path / "kubeconfig"
    text = lab.kubeconfig.read_text()
    server = next(
        line.split("server:")[1].strip() for line in text.splitlines() if "server:" in line
    )
    unreachable = f"https://127.0.0.1:{closed_port()}"
    kubeconfig.write_text(text.replace(server, unreachable))
    config = standalone_config(
        lab,
        tmp_path,
        "api-unreachable",
        **{f'kubeconfig = "{lab.paths.cockpit}/kubeconfig"': f'kubeconfig = "{kubeconfig}"'},
    )
    code, lines = check(config)
    assert code == 1, lines
    [api] = lines_about(lines, "kubernetes API")
    assert api.startswith(f"{FAIL} kubernetes API: {unreachable}: "), api
    assert "Connection refused" in api, api
    assert all(line.startswith(OK) for line in lines_about(lines, "etcd ")), lines
    assert all(line.startswith(OK) for line in lines_about(lines, "node ")), lines
    assert lines[-1].endswith("passed, 1 failed"), lines


def test_zero_config_discovery_on_a_kubeadm_node(lab: Lab) -> None:
    """No --config, no $KCOCKPIT_CONFIG, no ~/.config file, run as root on the node itself:
    the node's own manifests say where etcd is (kubeadm's `--etcd-servers=https://127.0.0.1:2379`)
    and which client certificate the API server uses to reach it."""
    env = {k: v for k, v in os.environ.items() if k != "KCOCKPIT_CONFIG"}
    env |= {"XDG_CONFIG_HOME": "/tmp/xdg", "HOME": "/tmp/home", "PYTHONPATH": str(PROJECT)}
    result = lab.node_exec("cp-1", [sys.executable, "-m", "tui", "report", "--json"], False, env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["cluster"] == "cp-1 (discovered)"
    etcd = report["etcd"]
    cp1 = lab.spec.node("cp-1")
    assert etcd["error"] is None
    assert sorted(m["name"] for m in etcd["members"]) == sorted(n.name for n in lab.spec.nodes)
    assert cp1.client_url in {m["endpoint"] for m in etcd["members"]}
    assert etcd["leader"] and etcd["healthy"] == len(lab.spec.nodes)
    [node] = report["nodes"]
    assert node["name"] == "cp-1" and node["local"] and node["reachable"], node
    certs = {c["path"] for c in node["certificates"]}
    assert {
        "/etc/kubernetes/pki/etcd/server.crt",
        "/etc/kubernetes/pki/apiserver-etcd-client.crt",
    } <= certs, certs
    pods = {p["component"]: p["state"] for p in node["static_pods"]}
    assert pods["etcd"] == pods["kube-apiserver"] == "present", pods


@pytest.fixture()
def thaw_after(lab: Lab) -> Iterator[list[int]]:
    """Pids a test SIGSTOPs; every one is SIGCONTed afterwards, whatever happened."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        lab.thaw(pid)


def sigterm_at_intent(
    lab: Lab, target: str, where: Path, thaw_after: list[int]
) -> tuple[dict[str, Any], str, Path]:
    """Runs `act snapshot-save TARGET`, freezes the member as soon as the intent is printed
    and sends SIGTERM: (the action's audit entry, act's stderr, the snapshot's file name)."""
    destination = where / "big.db"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tui",
            "act",
            "--config",
            str(lab.paths.config),
            "snapshot-save",
            target,
            "--yes",
            "--file",
            str(destination),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=PROJECT,
        env={**os.environ, "KCOCKPIT_STATE_DIR": str(where / "state")},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        thaw_after.append(lab.freeze(target))
        assert line.startswith("intent recorded"), line
        process.send_signal(signal.SIGTERM)
        try:
            _, stderr = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            pytest.fail("kcockpit act did not exit within 20 s of SIGTERM")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    [entry] = timeline(AuditLog(where / "state" / "audit.jsonl").read())
    return entry, stderr, destination


def test_sigterm_during_an_action_records_it_interrupted(
    lab: Lab, tmp_path: Path, thaw_after: list[int]
) -> None:
    """SIGTERM after `act` printed its intent: the audit's outcome record says interrupted
    (docs/using.md, "SSH drops"), and no partial snapshot is left under the real name. The
    member being read is frozen at the intent; a loaded machine may still let the snapshot
    finish before the freeze lands (it then verifies, rightly), so a lost race is run again."""
    report = report_json(lab.paths.config)
    target = next(m for m in report["etcd"]["members"] if not m["is_leader"])
    asyncio.run(fill_etcd(lab.paths.config, target["endpoint"], 20))
    for attempt in range(3):
        entry, stderr, destination = sigterm_at_intent(
            lab, target["name"], tmp_path / f"attempt-{attempt}", thaw_after
        )
        assert entry["action"] == "snapshot-save" and entry["phase"] == "intent", entry
        assert entry["outcome"] is not None, f"no outcome recorded; stderr: {stderr!r}"
        if entry["outcome"]["result"]["status"] != VERIFIED:
            break
        lab.thaw(thaw_after.pop())  # done before the signal: again, once it answers
        wait_until(lambda: member_reachable(lab, target["name"]), 15, "the member thawed")
    assert entry["outcome"]["result"]["status"] == INTERRUPTED, entry["outcome"]
    assert not destination.exists()


def member_reachable(lab: Lab, name: str) -> bool:
    members = report_json(lab.paths.config)["etcd"]["members"]
    return any(m["name"] == name and m["reachable"] for m in members)
