"""A kubeadm-shaped PKI for the lab, made with `cryptography`.

Keys are ECDSA P-256 (kubeadm's `encryptionAlgorithm: ECDSA-P256`): generation takes
milliseconds, so a 7-node lab's ~70 certificates cost well under a second. Both CAs are shared
by all nodes, as kubeadm does; every leaf is per node, and every serving certificate names its
own node's address and hostname in its SANs, which is exactly what the `pki-copied` incident
breaks.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey
SERVICE_IP = "10.96.0.1"


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: PrivateKey


def new_key() -> PrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def issue(
    common_name: str,
    *,
    issuer: Issued | None = None,
    ca: bool = False,
    server: bool = False,
    client: bool = False,
    sans: tuple[str, ...] = (),
    organizations: tuple[str, ...] = (),
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> Issued:
    """Issues a certificate (self-signed when `issuer` is None) with kubeadm's extensions."""
    now = dt.datetime.now(dt.UTC)
    key = new_key()
    name_attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    subject = x509.Name([*name_attrs, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    signing_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - dt.timedelta(hours=1))
        .not_valid_after(not_after or now + dt.timedelta(days=3650 if ca else 365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=not ca,
                key_cert_sign=ca,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
        [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
    )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(s) for s in sans]), critical=False
        )
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    return Issued(builder.sign(signing_key, hashes.SHA256()), key)


def _general_name(value: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(value))
    except ValueError:
        return x509.DNSName(value)


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def write_pair(directory: Path, stem: str, issued: Issued) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{stem}.crt").write_bytes(cert_pem(issued.cert))
    key_path = directory / f"{stem}.key"
    key_path.write_bytes(_key_pem(issued.key))
    key_path.chmod(0o600)


def _key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class ClusterCAs:
    """What kubeadm shares between control-plane nodes (`kubeadm join --control-plane` copies
    it): the three CAs and the service-account key pair every API server verifies tokens with."""

    kubernetes: Issued
    etcd: Issued
    front_proxy: Issued
    service_account: PrivateKey


def make_cas() -> ClusterCAs:
    return ClusterCAs(
        kubernetes=issue("kubernetes", ca=True),
        etcd=issue("etcd-ca", ca=True),
        front_proxy=issue("front-proxy-ca", ca=True),
        service_account=new_key(),
    )


def load_cas(kubernetes_dir: Path) -> ClusterCAs:
    """The lab's CAs back from a node's pki/, to sign certificates for a node added later."""
    pki_dir = kubernetes_dir / "pki"

    def load(stem: Path) -> Issued:
        cert = x509.load_pem_x509_certificate(stem.with_suffix(".crt").read_bytes())
        key = serialization.load_pem_private_key(stem.with_suffix(".key").read_bytes(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return Issued(cert, key)

    service_account = serialization.load_pem_private_key((pki_dir / "sa.key").read_bytes(), None)
    assert isinstance(service_account, ec.EllipticCurvePrivateKey)
    return ClusterCAs(
        kubernetes=load(pki_dir / "ca"),
        etcd=load(pki_dir / "etcd" / "ca"),
        front_proxy=load(pki_dir / "front-proxy-ca"),
        service_account=service_account,
    )


def write_node_pki(
    kubernetes_dir: Path, cas: ClusterCAs, hostname: str, address: str, endpoint: str
) -> None:
    """Writes /etc/kubernetes/pki and the kubeconfigs of one control-plane node. `endpoint` is
    the control plane's address (kubeadm's controlPlaneEndpoint, the lab's load balancer): the
    API server's certificate names it and admin.conf talks to it. The node's own components
    (kubelet, controller-manager, scheduler) talk to the node's own API server, as kubeadm
    sets them up, so a node whose control plane is down stops renewing its Lease."""
    pki = kubernetes_dir / "pki"
    write_pair(pki, "ca", cas.kubernetes)
    write_pair(pki / "etcd", "ca", cas.etcd)
    write_pair(pki, "front-proxy-ca", cas.front_proxy)
    apiserver_sans = (
        hostname,
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        SERVICE_IP,
        address,
        endpoint,
    )
    etcd_sans = (hostname, "localhost", address, "127.0.0.1", "::1")
    k8s, etcd = cas.kubernetes, cas.etcd
    leaves = {
        pki / "apiserver": issue("kube-apiserver", issuer=k8s, server=True, sans=apiserver_sans),
        pki / "apiserver-kubelet-client": issue(
            "kube-apiserver-kubelet-client",
            issuer=k8s,
            client=True,
            organizations=("kubeadm:cluster-admins",),
        ),
        pki / "front-proxy-client": issue(
            "front-proxy-client", issuer=cas.front_proxy, client=True
        ),
        pki / "apiserver-etcd-client": issue(
            "kube-apiserver-etcd-client", issuer=etcd, client=True
        ),
        pki / "etcd" / "server": issue(
            hostname, issuer=etcd, server=True, client=True, sans=etcd_sans
        ),
        pki / "etcd" / "peer": issue(
            hostname, issuer=etcd, server=True, client=True, sans=etcd_sans
        ),
        pki / "etcd" / "healthcheck-client": issue(
            "kube-etcd-healthcheck-client", issuer=etcd, client=True
        ),
    }
    for path, issued in leaves.items():
        write_pair(path.parent, path.name, issued)
    service_account = cas.service_account
    (pki / "sa.key").write_bytes(_key_pem(service_account))
    (pki / "sa.key").chmod(0o600)
    (pki / "sa.pub").write_bytes(
        service_account.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    balanced, local = f"https://{endpoint}:6443", f"https://{address}:6443"
    kubeconfigs = {
        "admin.conf": ("kubernetes-admin", ("kubeadm:cluster-admins",), balanced),
        "super-admin.conf": ("kubernetes-super-admin", ("system:masters",), balanced),
        "kubelet.conf": (f"system:node:{hostname}", ("system:nodes",), local),
        "controller-manager.conf": ("system:kube-controller-manager", (), local),
        "scheduler.conf": ("system:kube-scheduler", (), local),
    }
    for filename, (user, groups, server) in kubeconfigs.items():
        issued = issue(user, issuer=k8s, client=True, organizations=groups)
        write_kubeconfig(kubernetes_dir / filename, server, cas.kubernetes.cert, issued, user)


def write_kubeconfig(
    path: Path,
    server: str,
    ca: x509.Certificate,
    issued: Issued,
    user: str,
    cluster: str = "kubernetes",
) -> None:
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    context = f"{user}@{cluster}"
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster,
                "cluster": {
                    "server": server,
                    "certificate-authority-data": b64(cert_pem(ca)),
                },
            }
        ],
        "contexts": [{"name": context, "context": {"cluster": cluster, "user": user}}],
        "current-context": context,
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": b64(cert_pem(issued.cert)),
                    "client-key-data": b64(_key_pem(issued.key)),
                },
            }
        ],
        "preferences": {},
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    path.chmod(0o600)
