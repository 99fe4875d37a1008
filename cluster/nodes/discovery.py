"""Zero-config start on a kubeadm control-plane node: the cluster as its own manifests say.

kube-apiserver's manifest names the etcd endpoints and the client certificate it uses
(`--etcd-servers`, `--etcd-cafile`, `--etcd-certfile`, `--etcd-keyfile`); failing that, etcd's
own manifest gives its client URL and CA, with kubeadm's healthcheck client certificate. The
node itself becomes the one local node. `root` reads a node's filesystem mounted elsewhere.
"""

from __future__ import annotations

import socket
from pathlib import Path

from cluster.config import Config, ConfigError, EtcdConfig, NodeConfig, TlsFiles
from cluster.nodes.model import MANIFESTS_DIR, PKI_DIR
from cluster.nodes.parse import Manifest, parse_manifest


def _manifest(path: Path) -> Manifest:
    try:
        return parse_manifest(path.read_bytes())
    except OSError as exc:
        return Manifest(error=exc.strerror or str(exc))


def can_discover(root: Path = Path("/")) -> bool:
    return (root / MANIFESTS_DIR.lstrip("/")).is_dir()


def discover_config(root: Path = Path("/")) -> Config:
    """A Config from this node's static pod manifests; ConfigError says what is missing."""
    manifests = root / MANIFESTS_DIR.lstrip("/")
    apiserver = _manifest(manifests / "kube-apiserver.yaml")
    etcd = _manifest(manifests / "etcd.yaml")

    def mapped(path: str) -> Path:
        return root / path.lstrip("/")

    if apiserver.flag("etcd-servers") and apiserver.flag("etcd-certfile"):
        endpoints = apiserver.flag("etcd-servers") or ""
        ca, cert, key = (
            apiserver.flag(f"etcd-{f}") or "" for f in ("cafile", "certfile", "keyfile")
        )
    elif etcd.flag("advertise-client-urls"):
        endpoints = etcd.flag("advertise-client-urls") or ""
        ca = etcd.flag("trusted-ca-file") or f"{PKI_DIR}/etcd/ca.crt"
        cert, key = (f"{PKI_DIR}/etcd/healthcheck-client.{ext}" for ext in ("crt", "key"))
    else:
        reason = apiserver.error or etcd.error or "no etcd flags"
        raise ConfigError(
            f"no config, and {manifests} does not say where etcd is ({reason}): pass --config FILE"
        )
    name = etcd.flag("name") or socket.gethostname()
    return Config(
        name=f"{name} (discovered)",
        etcd=EtcdConfig(
            endpoints=tuple(e for e in endpoints.split(",") if e),
            tls=TlsFiles(mapped(ca), mapped(cert), mapped(key)),
        ),
        nodes=(NodeConfig(name=name, address="localhost", local=True, root=root),),
    )
