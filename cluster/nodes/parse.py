"""Pure parsers for what is read from a node: manifests, certificates, kubeconfigs, CNI configs.

Every function takes bytes (or text) and returns plain data or an error string; none raises on
any input (property tests feed them arbitrary bytes), because a node full of half-written,
copied or corrupted files is exactly when the operator needs the cockpit. Private keys are
never kept: kubeconfigs give up only their client certificate, PEM files only their
CERTIFICATE blocks.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cluster.nodes.model import PKI_DIR, Certificate, CniFile, Filesystem, Listener

PARSE_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError)
CERT_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)
CNI_CONFIG_SUFFIXES = (".conf", ".conflist", ".json")
PUBLIC_CLUSTER_KEYS = ("server", "certificate-authority-data")  # what public_kubeconfig keeps
# Which CA signs a leaf when it is not the `ca.crt` of its own directory (kubeadm's layout).
SIGNING_CA = {
    f"{PKI_DIR}/front-proxy-client.crt": f"{PKI_DIR}/front-proxy-ca.crt",
    f"{PKI_DIR}/apiserver-etcd-client.crt": f"{PKI_DIR}/etcd/ca.crt",
}
# Serving certificates that must name their own node (the pki-copied incident).
SERVING_CERTS = (
    f"{PKI_DIR}/apiserver.crt",
    f"{PKI_DIR}/etcd/server.crt",
    f"{PKI_DIR}/etcd/peer.crt",
)


# libyaml's loader parses a manifest 10x faster than PyYAML's own (most of a first refresh).
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
ALIASES_REFUSED = (
    "YAML aliases (*name) are refused: no manifest or kubeconfig needs them, and a few lines "
    "of them can expand to gigabytes (billion laughs)"
)


def load_yaml(data: bytes) -> tuple[Any, str | None]:
    """The YAML document in `data`, or (None, reason). A document with aliases is refused
    before anything is built from it, by a scan of its events (only when it holds a `*` at
    all); libyaml itself refuses nesting deeper than a thousand levels."""
    try:
        if b"*" in data and any(
            isinstance(event, yaml.AliasEvent) for event in yaml.parse(data, Loader=SAFE_LOADER)
        ):
            return None, ALIASES_REFUSED
        return yaml.load(data, Loader=SAFE_LOADER), None
    except yaml.MarkedYAMLError as exc:
        mark = f" at line {exc.problem_mark.line + 1}" if exc.problem_mark else ""
        return None, f"not valid YAML: {exc.problem or exc.context}{mark}"
    except (yaml.YAMLError, *PARSE_ERRORS) as exc:
        return None, f"not valid YAML: {exc}"


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _first_mapping(value: Any) -> dict[str, Any]:
    return _mapping(value[0]) if isinstance(value, list) and value else {}


# ---- static pod manifests ----


@dataclass(frozen=True)
class Manifest:
    """What a static pod manifest declares; `error` set when it is not a usable Pod."""

    pod_name: str | None = None
    image: str | None = None
    flags: tuple[tuple[str, str], ...] = ()
    error: str | None = None

    def flag(self, name: str) -> str | None:
        return next((value for key, value in self.flags if key == name), None)


def parse_manifest(data: bytes) -> Manifest:
    document, error = load_yaml(data)
    if error:
        return Manifest(error=error)
    if not isinstance(document, dict):
        return Manifest(error="not a Kubernetes object (no mapping at the top)")
    if document.get("kind") != "Pod":
        return Manifest(error=f"kind is {document.get('kind')!r}, not Pod")
    name = _mapping(document.get("metadata")).get("name")
    container = _first_mapping(_mapping(document.get("spec")).get("containers"))
    if not container:
        return Manifest(pod_name=str(name) if name else None, error="a Pod without containers")
    words = [
        str(w)
        for key in ("command", "args")
        if isinstance(container.get(key), list)
        for w in container[key]
    ]
    flags = tuple(
        (flag, value)
        for word in words
        if word.startswith("--")
        for flag, _, value in [word[2:].partition("=")]
    )
    image = container.get("image")
    return Manifest(
        pod_name=str(name) if name else None,
        image=str(image) if image else None,
        flags=flags,
    )


def image_version(image: str | None) -> str | None:
    """The tag of an image reference (`registry.k8s.io/etcd:3.5.16-0` -> `3.5.16-0`)."""
    if not image:
        return None
    reference = image.split("@", 1)[0]
    name, _, tag = reference.rpartition(":")
    return tag if name and "/" not in tag else None


# ---- certificates ----


def certificate_blocks(data: bytes) -> bytes:
    """Only the CERTIFICATE blocks of a PEM file (a key in the same file is dropped unread)."""
    return b"\n".join(CERT_BLOCK.findall(data))


def load_certificate(data: bytes) -> tuple[x509.Certificate | None, str | None]:
    blocks = CERT_BLOCK.findall(data)
    try:
        if blocks:
            return x509.load_pem_x509_certificate(blocks[0]), None
        if b"-----BEGIN" in data:
            return None, "PEM without a CERTIFICATE block"
        return x509.load_der_x509_certificate(data), None
    except PARSE_ERRORS as exc:
        kind = "malformed PEM" if blocks else "not a certificate (neither PEM nor DER)"
        return None, f"{kind}: {exc}"


def _common_name(name: x509.Name) -> str:
    try:
        values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(values[0].value) if values else name.rfc4514_string()
    except PARSE_ERRORS:
        return "?"


def _extension(cert: x509.Certificate, kind: type) -> Any:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except (x509.ExtensionNotFound, *PARSE_ERRORS):
        return None


def describe_certificate(path: str, cert: x509.Certificate, source: str = "file") -> Certificate:
    sans_ext = _extension(cert, x509.SubjectAlternativeName)
    sans: list[str] = []
    if sans_ext is not None:
        sans += [str(n) for n in sans_ext.get_values_for_type(x509.DNSName)]
        sans += [str(ip) for ip in sans_ext.get_values_for_type(x509.IPAddress)]
    constraints = _extension(cert, x509.BasicConstraints)
    usages = _extension(cert, x509.ExtendedKeyUsage)
    return Certificate(
        path=path,
        source=source,
        subject=_common_name(cert.subject),
        issuer=_common_name(cert.issuer),
        sans=tuple(sans),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        is_ca=bool(constraints and constraints.ca),
        serving=bool(usages and ExtendedKeyUsageOID.SERVER_AUTH in usages),
    )


def signed_by(leaf: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        leaf.verify_directly_issued_by(ca)
    except (InvalidSignature, *PARSE_ERRORS):
        return False
    return True


@dataclass(frozen=True)
class KubeconfigCert:
    """The client certificate a kubeconfig carries (data or a file path) and its CA, if any."""

    cert: bytes | None = None
    cert_path: str | None = None
    ca: bytes | None = None
    server: str | None = None
    error: str | None = None


def _b64(value: Any) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=False)
    except (binascii.Error, ValueError):
        return None


def parse_kubeconfig(data: bytes) -> KubeconfigCert:
    """The first user's client certificate, the first cluster's CA and server address."""
    document, error = load_yaml(data)
    if error:
        return KubeconfigCert(error=error)
    if not isinstance(document, dict):
        return KubeconfigCert(error="not a kubeconfig (no mapping at the top)")
    cluster = _mapping(_first_mapping(document.get("clusters")).get("cluster"))
    user = _mapping(_first_mapping(document.get("users")).get("user"))
    server = cluster.get("server")
    cert = _b64(user.get("client-certificate-data"))
    cert_path = str(user.get("client-certificate") or "") if not cert else ""
    error = None if cert or cert_path else "no client certificate in the first user"
    if cert_path and not cert_path.startswith("/"):
        # Relative to wherever the reader stands, or `-` (stdin): never what the file meant.
        error, cert_path = f"client-certificate {cert_path!r} is not an absolute path: not read", ""
    return KubeconfigCert(
        cert=certificate_blocks(cert) if cert else None,
        cert_path=cert_path or None,
        ca=_b64(cluster.get("certificate-authority-data")),
        server=str(server) if isinstance(server, str) else None,
        error=error,
    )


def public_kubeconfig(data: bytes) -> bytes | str:
    """What the cockpit reads of a kubeconfig (the first cluster's server and CA, the first
    user's client certificate), as a small JSON kubeconfig, or why it is unreadable. The
    private key, tokens and passwords are dropped here, before anything keeps the bytes."""
    document, error = load_yaml(data)
    if error:
        return error
    if not isinstance(document, dict):
        return "not a kubeconfig (no mapping at the top)"
    cluster = _mapping(_first_mapping(document.get("clusters")).get("cluster"))
    user = _mapping(_first_mapping(document.get("users")).get("user"))
    public_user = {k: user[k] for k in ("client-certificate",) if k in user}
    if (cert := _b64(user.get("client-certificate-data"))) is not None:
        public_user["client-certificate-data"] = base64.b64encode(certificate_blocks(cert)).decode()
    public = {
        "clusters": [{"cluster": {k: cluster[k] for k in PUBLIC_CLUSTER_KEYS if k in cluster}}],
        "users": [{"user": public_user}],
    }
    return json.dumps(public, default=str).encode()


def public_pem(data: bytes) -> bytes | str:
    """A PEM file's CERTIFICATE blocks alone (a key beside them is dropped before anything
    keeps the bytes); DER is passed on as it is."""
    if b"-----BEGIN" not in data:
        return data
    return certificate_blocks(data) or "PEM without a CERTIFICATE block"


def expected_ca(path: str) -> str | None:
    """The CA file a pki/ leaf should be signed by (None for the CAs themselves)."""
    directory, _, name = path.rpartition("/")
    if name == "ca.crt" or name.endswith("-ca.crt"):
        return None
    return SIGNING_CA.get(path, f"{directory}/ca.crt")


FileRead = bytes | str  # the bytes, or the reason they could not be read


def build_certificates(
    pki_files: Mapping[str, FileRead],
    kubeconfigs: Mapping[str, FileRead],
    referenced: Mapping[str, FileRead] | None = None,
) -> tuple[Certificate, ...]:
    """Every certificate of a node, with its CA check; unreadable ones carry their error.

    `pki_files` maps paths under pki/ to their content; `kubeconfigs` the kubeconfig files;
    `referenced` the certificate files kubeconfigs point at (`client-certificate: /path`).
    """
    loaded: dict[str, x509.Certificate] = {}
    result: list[Certificate] = []
    for path, content in sorted(pki_files.items()):
        if isinstance(content, str):
            result.append(Certificate(path=path, error=content))
            continue
        cert, error = load_certificate(content)
        if cert is None:
            result.append(Certificate(path=path, error=error))
            continue
        loaded[path] = cert
    for path, cert in loaded.items():
        ca_path = expected_ca(path)
        ca = loaded.get(ca_path) if ca_path else None
        info = describe_certificate(path, cert)
        result.append(_with_ca(info, ca_path if ca else None, signed_by(cert, ca) if ca else None))
    for path, content in sorted(kubeconfigs.items()):
        result.append(_kubeconfig_certificate(path, content, loaded, referenced or {}))
    return tuple(result)


def _with_ca(info: Certificate, ca_path: str | None, signed: bool | None) -> Certificate:
    return Certificate(**{**info.__dict__, "ca_path": ca_path, "signed_by_ca": signed})


def _kubeconfig_certificate(
    path: str,
    content: FileRead,
    loaded: Mapping[str, x509.Certificate],
    referenced: Mapping[str, FileRead],
) -> Certificate:
    if isinstance(content, str):
        return Certificate(path=path, source="kubeconfig", error=content)
    kubeconfig = parse_kubeconfig(content)
    cert_bytes: FileRead | None = kubeconfig.cert
    if kubeconfig.cert_path:
        cert_bytes = referenced.get(kubeconfig.cert_path, f"{kubeconfig.cert_path}: not read")
    if kubeconfig.error or cert_bytes is None:
        return Certificate(path=path, source="kubeconfig", error=kubeconfig.error)
    if isinstance(cert_bytes, str):
        return Certificate(path=path, source="kubeconfig", error=cert_bytes)
    cert, error = load_certificate(certificate_blocks(cert_bytes) or cert_bytes)
    if cert is None:
        return Certificate(path=path, source="kubeconfig", error=f"client certificate: {error}")
    info = describe_certificate(path, cert, source="kubeconfig")
    ca, _ = load_certificate(kubeconfig.ca) if kubeconfig.ca else (None, None)
    ca_path = f"{path} (certificate-authority-data)"
    if ca is None:
        ca, ca_path = loaded.get(f"{PKI_DIR}/ca.crt"), f"{PKI_DIR}/ca.crt"
    return _with_ca(info, ca_path if ca else None, signed_by(cert, ca) if ca else None)


# ---- CNI ----


def parse_cni_config(
    name: str, data: bytes, kind: str = "file", size: int | None = None
) -> CniFile:
    """A CNI config's plugin types; invalid when not JSON or without `type` / `plugins`."""
    base = CniFile(name=name, kind=kind, size=size, is_config=True)
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, *PARSE_ERRORS) as exc:
        return _cni(base, error=f"not valid JSON: {exc}")
    if not isinstance(document, dict):
        return _cni(base, error="not a JSON object")
    plugins = document.get("plugins")
    if isinstance(plugins, list):
        types = tuple(str(p.get("type")) for p in plugins if isinstance(p, dict) and p.get("type"))
        if not types:
            return _cni(base, error="`plugins` declares no plugin `type`")
        return _cni(base, types=types)
    if isinstance(document.get("type"), str) and document["type"]:
        return _cni(base, types=(document["type"],))
    return _cni(base, error="neither `type` nor `plugins`")


def _cni(base: CniFile, **changes: Any) -> CniFile:
    return CniFile(**{**base.__dict__, **changes})


def is_cni_config(name: str) -> bool:
    return name.endswith(CNI_CONFIG_SUFFIXES)


# ---- node commands ----


def parse_ip_addresses(text: str) -> tuple[str, ...]:
    """Addresses from `ip -o addr show`, loopback interface and link-local ones left out."""
    found: list[str] = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 4 or words[1].rstrip(":") == "lo" or words[2] not in ("inet", "inet6"):
            continue
        try:
            address = ipaddress.ip_interface(words[3]).ip
        except ValueError:
            continue
        if not address.is_link_local:
            found.append(str(address))
    return tuple(dict.fromkeys(found))


def parse_epoch(text: str) -> float | None:
    """`date +%s.%N` output as seconds since the epoch."""
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if 0 < value < 1e11 else None


def parse_df(path: str, text: str) -> Filesystem | None:
    """The data line of `df -P PATH` (POSIX format, 1024-byte blocks), None if absent."""
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 6 and fields[4].endswith("%"):
            try:
                size, used, percent = int(fields[1]), int(fields[2]), float(fields[4][:-1])
            except ValueError:
                continue
            return Filesystem(path, " ".join(fields[5:]), size, used, percent)
    return None


SS_PROCESS = re.compile(r'users:\(\("([^"]+)",pid=([0-9]{1,10})\b')
SS_PORT = re.compile(r"[0-9]{1,5}")  # ASCII only: int() refuses "²", which isdigit() accepts


def parse_ss_listeners(text: str) -> tuple[Listener, ...]:
    """`ss -Hltnp` lines (state, queues, local address:port, peer, process) as listeners."""
    listeners = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[0] != "LISTEN":
            continue
        address, _, port = fields[3].rpartition(":")
        if not SS_PORT.fullmatch(port):
            continue
        process = SS_PROCESS.search(line)
        name, pid = (process.group(1), int(process.group(2))) if process else ("", None)
        listeners.append(Listener(address, int(port), name, pid))
    return tuple(listeners)
