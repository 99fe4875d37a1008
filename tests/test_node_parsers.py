"""Parsers over node files: never crash on any bytes, and read real shapes right."""

from __future__ import annotations

import base64
import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from cluster.nodes.model import CniState
from cluster.nodes.parse import (
    build_certificates,
    certificate_blocks,
    expected_ca,
    image_version,
    load_certificate,
    parse_cni_config,
    parse_epoch,
    parse_ip_addresses,
    parse_kubeconfig,
    parse_manifest,
)
from lab import pki

ANY_BYTES = st.binary(max_size=2048)
PEM_LIKE = st.builds(
    lambda body: b"-----BEGIN CERTIFICATE-----\n" + body + b"\n-----END CERTIFICATE-----\n",
    ANY_BYTES,
)
YAML_LIKE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
).map(lambda value: repr(value).encode())
FUZZ = settings(max_examples=150, deadline=None)


@FUZZ
@given(st.one_of(ANY_BYTES, YAML_LIKE))
def test_manifest_parser_never_raises(data: bytes) -> None:
    manifest = parse_manifest(data)
    assert manifest.error or manifest.pod_name is not None or manifest.flags == ()


@FUZZ
@given(st.one_of(ANY_BYTES, PEM_LIKE))
def test_certificate_parsers_never_raise(data: bytes) -> None:
    cert, error = load_certificate(data)
    assert (cert is None) != (error is None)
    certs = build_certificates(
        {"/etc/kubernetes/pki/x.crt": data}, {"/etc/kubernetes/admin.conf": data}
    )
    assert len(certs) == 2


@FUZZ
@given(st.one_of(ANY_BYTES, YAML_LIKE))
def test_kubeconfig_and_cni_parsers_never_raise(data: bytes) -> None:
    kubeconfig = parse_kubeconfig(data)
    assert kubeconfig.error or kubeconfig.cert or kubeconfig.cert_path
    cni = parse_cni_config("10-x.conflist", data)
    assert cni.valid or cni.error
    assert CniState(files=(cni,)).active == (cni if cni.primary else None)


@FUZZ
@given(st.text(max_size=400))
def test_command_output_parsers_never_raise(text: str) -> None:
    assert isinstance(parse_ip_addresses(text), tuple)
    assert parse_epoch(text) is None or parse_epoch(text) > 0


def test_kubeconfig_gives_up_only_the_client_certificate(tmp_path) -> None:
    ca = pki.issue("kubernetes", ca=True)
    issued = pki.issue("kubernetes-admin", issuer=ca, client=True)
    pki.write_kubeconfig(tmp_path / "admin.conf", "https://10.0.0.1:6443", ca.cert, issued, "admin")
    data = (tmp_path / "admin.conf").read_bytes()
    kubeconfig = parse_kubeconfig(data)
    assert kubeconfig.server == "https://10.0.0.1:6443"
    assert kubeconfig.cert is not None and b"PRIVATE KEY" not in kubeconfig.cert
    (cert,) = build_certificates({}, {"/etc/kubernetes/admin.conf": data})
    assert cert.subject == "kubernetes-admin" and cert.signed_by_ca is True
    assert cert.source == "kubeconfig"


def test_pem_with_a_key_keeps_only_certificate_blocks() -> None:
    issued = pki.issue("node", client=True)
    key = pki._key_pem(issued.key)
    blocks = certificate_blocks(pki.cert_pem(issued.cert) + key)
    assert b"PRIVATE KEY" not in blocks and load_certificate(blocks)[0] is not None


def test_wrong_issuer_and_dates() -> None:
    ca, other = pki.issue("kubernetes", ca=True), pki.issue("kubernetes", ca=True)
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    leaf = pki.issue("front", issuer=other, client=True, not_after=soon)
    certs = build_certificates(
        {
            "/etc/kubernetes/pki/ca.crt": pki.cert_pem(ca.cert),
            "/etc/kubernetes/pki/leaf.crt": pki.cert_pem(leaf.cert),
            "/etc/kubernetes/pki/gone.crt": "permission denied",
        },
        {},
    )
    by_path = {c.path.rsplit("/", 1)[1]: c for c in certs}
    assert by_path["leaf.crt"].signed_by_ca is False
    assert 2 < by_path["leaf.crt"].days_left(dt.datetime.now(dt.UTC)) < 3.01
    assert by_path["ca.crt"].is_ca and by_path["ca.crt"].signed_by_ca is None
    assert by_path["gone.crt"].error == "permission denied"


def test_small_parsers() -> None:
    assert image_version("registry.k8s.io/etcd:3.5.16-0") == "3.5.16-0"
    assert image_version("localhost:5000/kube-apiserver") is None
    assert image_version("registry.k8s.io/pause@sha256:abc") is None
    assert expected_ca("/etc/kubernetes/pki/front-proxy-client.crt").endswith("front-proxy-ca.crt")
    assert expected_ca("/etc/kubernetes/pki/etcd/peer.crt") == "/etc/kubernetes/pki/etcd/ca.crt"
    assert expected_ca("/etc/kubernetes/pki/etcd/ca.crt") is None
    ip = "1: lo    inet 127.0.0.1/8 scope host lo\n2: eth0    inet 10.0.0.11/24 brd 10.0.0.255\n"
    ip += "2: eth0    inet6 fe80::1/64 scope link\n3: eth1    inet6 2001:db8::5/64 scope global\n"
    assert parse_ip_addresses(ip) == ("10.0.0.11", "2001:db8::5")
    conflist = parse_cni_config("10-calico.conflist", b'{"plugins": [{"type": "calico"}]}')
    assert conflist.types == ("calico",) and conflist.primary
    loopback = parse_cni_config("99-loopback.conf", b'{"type": "loopback"}')
    assert loopback.valid and not loopback.primary
    assert parse_cni_config("x.conf", b'{"name": "x"}').error == "neither `type` nor `plugins`"
    token = base64.b64encode(b"junk").decode()
    assert (
        parse_kubeconfig(f"users: [{{user: {{client-certificate-data: {token}}}}}]".encode()).cert
        == b""
    )
