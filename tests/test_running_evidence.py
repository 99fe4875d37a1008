"""Whether a static pod runs without crictl: real `ss -Hltnp` text and kubeadm manifests read
right, real curl asked of a real HTTP server, and no junk that makes anything raise."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster.findings import evaluate
from cluster.nodes.access import CommandResult
from cluster.nodes.local import LocalNodeAccess
from cluster.nodes.model import EXPECTED_COMPONENTS, MANIFESTS_DIR, Listener, StaticPod
from cluster.nodes.parse import parse_manifest, parse_ss_listeners
from cluster.nodes.running import (
    component_port,
    health_command,
    health_url,
    health_words,
    observed,
    socket_running,
)
from tests.test_findings_registry import control_plane, kube, mirror, node

# `ss -Hltnp` as root on a kubeadm node.
SS_ROOT = """\
LISTEN 0      4096   10.213.7.11:2379 0.0.0.0:* users:(("etcd",pid=1234,fd=9))
LISTEN 0      4096     127.0.0.1:2379 0.0.0.0:* users:(("etcd",pid=1234,fd=8))
LISTEN 0      4096     127.0.0.1:2381 0.0.0.0:* users:(("etcd",pid=1234,fd=14))
LISTEN 0      4096   10.213.7.11:2380 0.0.0.0:* users:(("etcd",pid=1234,fd=7))
LISTEN 0      4096     127.0.0.1:10257 0.0.0.0:* users:(("kube-controller",pid=2001,fd=3))
LISTEN 0      4096             *:10259       *:* users:(("kube-scheduler",pid=2002,fd=3))
LISTEN 0      4096             *:6443        *:* users:(("haproxy",pid=999,fd=5))
"""
# The same node's ss as a user who owns none of those processes: no process column.
SS_USER = """\
LISTEN 0      4096   10.213.7.11:2379 0.0.0.0:*
LISTEN 0      4096             *:6443        *:*
"""
ETCD = b"""\
apiVersion: v1
kind: Pod
metadata: {name: etcd, namespace: kube-system}
spec:
  containers:
  - name: etcd
    image: registry.k8s.io/etcd:3.5.16-0
    command:
    - etcd
    - --advertise-client-urls=https://10.213.7.11:2379
    - --listen-client-urls=https://127.0.0.1:2379,https://10.213.7.11:2379
    - --listen-metrics-urls=http://127.0.0.1:2381
"""
APISERVER = b"""\
apiVersion: v1
kind: Pod
metadata: {name: kube-apiserver, namespace: kube-system}
spec:
  containers:
  - name: kube-apiserver
    image: registry.k8s.io/kube-apiserver:v1.29.4
    command: [kube-apiserver, --advertise-address=10.213.7.11, --secure-port=16443]
"""


def manifest_with(component: str, *flags: str) -> bytes:
    """A Pod manifest of `component` with these command words (JSON is YAML)."""
    container = {"name": component, "command": [component, *flags]}
    return json.dumps({"kind": "Pod", "spec": {"containers": [container]}}).encode()


def test_a_component_runs_when_its_own_process_listens_on_its_manifests_port() -> None:
    listeners = parse_ss_listeners(SS_ROOT)
    etcd = parse_manifest(ETCD)
    assert component_port("etcd", etcd) == 2379
    assert observed("etcd", etcd, listeners, None) == (
        True,
        "ss: etcd (pid 1234) listens on 10.213.7.11:2379, 127.0.0.1:2379",
    )
    # The manager's kernel name is cut to 15 characters; its port is kubeadm's default.
    assert observed("kube-controller-manager", None, listeners, None) == (
        True,
        "ss: kube-controller (pid 2001) listens on 127.0.0.1:10257",
    )
    assert observed("kube-scheduler", None, listeners, None)[0] is True


def test_nothing_on_the_port_or_a_stranger_on_it_is_not_running() -> None:
    listeners = parse_ss_listeners(SS_ROOT)
    apiserver = parse_manifest(APISERVER)
    assert observed("kube-apiserver", apiserver, listeners, None) == (
        False,
        "ss: nothing listens on :16443",
    )
    assert observed("kube-apiserver", None, listeners, None) == (
        False,
        "ss: haproxy (pid 999) listens on *:6443, not kube-apiserver",
    )


def test_a_listener_ss_may_not_name_leaves_it_unknown() -> None:
    running, evidence = socket_running("etcd", 2379, parse_ss_listeners(SS_USER))
    assert running is None
    assert evidence == (
        "ss: 10.213.7.11:2379 is listened on, but ss may not name the process (not root)"
    )
    assert observed("kube-scheduler", None, parse_ss_listeners(SS_USER), None) == (
        False,
        "ss: nothing listens on :10259",
    )


def test_ports_come_from_the_flags_and_a_port_that_is_none_says_so() -> None:
    assert component_port("kube-apiserver", parse_manifest(APISERVER)) == 16443
    for component in EXPECTED_COMPONENTS:  # no manifest (moved, unreadable): kubeadm's
        assert isinstance(component_port(component, None), int)
    scheduler = parse_manifest(manifest_with("kube-scheduler", "--secure-port=0"))
    assert component_port("kube-scheduler", scheduler) == (
        "--secure-port=0 names no port to look for"
    )
    etcd = parse_manifest(manifest_with("etcd", "--listen-client-urls=https://[::1]:12379"))
    assert component_port("etcd", etcd) == 12379
    assert observed(
        "etcd", parse_manifest(manifest_with("etcd", "--listen-client-urls=x")), (), None
    ) == (
        None,
        "ss: --listen-client-urls=x names no port to look for",
    )


def test_health_is_etcds_plain_http_metrics_url_only() -> None:
    assert health_url("etcd", parse_manifest(ETCD)) == "http://127.0.0.1:2381/health"
    wildcard = manifest_with("etcd", "--listen-metrics-urls=https://10.0.0.1:2381,http://[::]:2382")
    assert health_url("etcd", parse_manifest(wildcard)) == "http://[::1]:2382/health"
    hostile = manifest_with("etcd", "--listen-metrics-urls=http://1.2.3.4:2381/x?$(reboot)")
    assert health_url("etcd", parse_manifest(hostile)) == "http://1.2.3.4:2381/health"
    assert health_url("etcd", parse_manifest(manifest_with("etcd"))) is None
    assert health_url("kube-apiserver", parse_manifest(APISERVER)) is None  # HTTPS: not asked


def test_health_words_join_a_running_components_evidence_only() -> None:
    listeners = parse_ss_listeners(SS_ROOT)
    health = "http://127.0.0.1:2381/health: healthy"
    running = observed("etcd", parse_manifest(ETCD), listeners, health)
    assert running[1].endswith("listens on 10.213.7.11:2379, 127.0.0.1:2379; " + health)
    assert observed("kube-apiserver", parse_manifest(APISERVER), listeners, health)[1] == (
        "ss: nothing listens on :16443"
    )


# The lab's nodes today: etcd runs, the other components are manifests without a binary.
SS_ETCD_ONLY = """\
LISTEN 0      4096   10.213.7.11:2379 0.0.0.0:* users:(("etcd",pid=1234,fd=9))
LISTEN 0      4096   10.213.7.11:2380 0.0.0.0:* users:(("etcd",pid=1234,fd=7))
"""


def pods_seen(ss: str) -> tuple[StaticPod, ...]:
    """cp-1's static pods as the node source makes them from `ss`, kubeadm's ports."""
    listeners = parse_ss_listeners(ss)
    return tuple(
        StaticPod(
            component,
            "present",
            f"{MANIFESTS_DIR}/{component}.yaml",
            running=(seen := observed(component, None, listeners, None))[0],
            evidence=seen[1],
        )
        for component in EXPECTED_COMPONENTS
    )


def test_socket_evidence_against_the_mirror_pods_finds_only_real_disagreement() -> None:
    """Nothing listens for a component the API has no pod of either (the lab's apiserver):
    true, shown in its row, and no finding. The sockets against a mirror pod's state:
    static-pod.api-disagrees, with the socket as the node's evidence."""
    etcd_running = kube(nodes=control_plane("cp-1"), pods=(mirror("cp-1", True),))
    lab_like = replace(etcd_running, nodes=(node(1, static_pods=pods_seen(SS_ETCD_ONLY)),))
    pods = {pod.component: pod for pod in lab_like.nodes[0].static_pods}
    assert pods["kube-apiserver"].running is False
    assert pods["kube-apiserver"].evidence == "ss: nothing listens on :6443"
    assert evaluate(lab_like) == ()

    stopped = replace(etcd_running, nodes=(node(1, static_pods=pods_seen("")),))
    [finding] = evaluate(stopped)
    assert finding.id == "static-pod.api-disagrees" and finding.subject == "cp-1/etcd"
    assert "not running (ss: nothing listens on :2379); per the API: etcd-cp-1 Running" in (
        finding.evidence
    )
    crashing = replace(lab_like, kube=replace(lab_like.kube, pods=(mirror("cp-1", False),)))
    [finding] = [f for f in evaluate(crashing) if f.id == "static-pod.api-disagrees"]
    assert "running (ss: etcd (pid 1234) listens on 10.213.7.11:2379)" in finding.evidence
    unnamed = replace(stopped, nodes=(node(1, static_pods=pods_seen(SS_USER)),))
    assert evaluate(unnamed) == ()  # ss may not name the process: nothing to compare


class Health(http.server.BaseHTTPRequestHandler):
    """etcd's /health as it answers: 200 when healthy; 503 anywhere else here."""

    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 503)
        self.end_headers()
        self.wfile.write(b'{"health":"true","reason":""}')

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def health_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


async def test_real_curl_answers_healthy_unhealthy_or_nothing(health_server: int) -> None:
    here = LocalNodeAccess("here")
    base = f"http://127.0.0.1:{health_server}"
    healthy = await here.run(health_command(f"{base}/health"))
    assert health_words(healthy) == "healthy"
    assert health_words(await here.run(health_command(f"{base}/other"))) == "unhealthy: HTTP 503"
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    refused = health_words(await here.run(health_command(f"http://127.0.0.1:{closed}/health")))
    assert refused is not None and refused.startswith("unhealthy: curl: (7)")
    no_curl = await here.run(("kcockpit-no-such-curl", *health_command(base)[1:]))
    assert health_words(no_curl) is None  # no curl on the node: no health evidence


ANY_TEXT = st.text(max_size=300)
FUZZ = settings(max_examples=150, deadline=None)


@FUZZ
@given(ANY_TEXT, st.sampled_from(EXPECTED_COMPONENTS), st.binary(max_size=400))
def test_junk_never_raises(ss: str, component: str, manifest: bytes) -> None:
    parsed = parse_manifest(manifest)
    running, evidence = observed(component, parsed, parse_ss_listeners(ss), None)
    assert running in (True, False, None) and evidence.startswith("ss: ")
    url = health_url(component, parsed)
    assert url is None or url.startswith("http://")


def test_digits_int_would_refuse_are_no_port() -> None:
    huge = "9" * 5000  # int() refuses more than 4300 digits; "²" is a digit to isdigit() only
    ss = f'LISTEN 0 1 10.0.0.1:² *:*\nLISTEN 0 1 10.0.0.1:{huge} *:* users:(("etcd",pid={huge},fd=1))'
    assert parse_ss_listeners(ss) == ()
    assert parse_ss_listeners('LISTEN 0 1 *:2379 *:* users:(("etcd",pid=' + huge + ",fd=1))") == (
        Listener("*", 2379),
    )
    for value in (huge, "²", "-1", "65536"):
        scheduler = parse_manifest(manifest_with("kube-scheduler", f"--secure-port={value}"))
        assert isinstance(component_port("kube-scheduler", scheduler), str)
        etcd = parse_manifest(manifest_with("etcd", f"--listen-client-urls=https://[::1]:{value}"))
        assert isinstance(component_port("etcd", etcd), str)


@FUZZ
@given(st.integers(-1, 300), ANY_TEXT, ANY_TEXT)
def test_any_curl_result_reads_as_words_or_none(status: int, stdout: str, stderr: str) -> None:
    words = health_words(CommandResult(status, stdout, stderr))
    assert words is None or words == "healthy" or words.startswith("unhealthy: ")
