"""SVG snapshots of the three node panes, rendered from a fixed hand-built snapshot.

No lab here: addresses, dates and errors are constants, so the pictures only change when the
panes' rendering does (`pytest --snapshot-update` after a deliberate change).
"""

from __future__ import annotations

import datetime as dt

import pytest
from textual.app import App, ComposeResult

from cluster.model import EtcdCluster, Snapshot
from cluster.nodes.model import (
    COMPONENT_PORTS,
    Certificate,
    CniFile,
    CniState,
    ManifestFile,
    NodeState,
    StaticPod,
)
from widgets.certificates_pane import CertificatesPane
from widgets.cni_pane import CniPane
from widgets.static_pods_pane import StaticPodsPane
from widgets.table_pane import TablePane

NOW = dt.datetime(2023, 3, 10, 9, 0, tzinfo=dt.UTC)
IMAGE = "registry.k8s.io/{}:v1.29.4"
UNNAMED = "ss: *:{} is listened on, but ss may not name the process (not root)"


def days(n: float) -> dt.datetime:
    return NOW + dt.timedelta(days=n)


def pods(node: str, address: str, etcd_state: str = "present") -> tuple[StaticPod, ...]:
    etcd = StaticPod(
        "etcd",
        etcd_state,
        file=None if etcd_state == "moved" else "/etc/kubernetes/manifests/etcd.yaml",
        moved_to="/etc/kubernetes/manifests-20230310/etcd.yaml" if etcd_state == "moved" else None,
        image="registry.k8s.io/etcd:3.5.16-0" if etcd_state == "present" else None,
        version="3.5.16-0" if etcd_state == "present" else None,
        flags=(("name", node), ("advertise-client-urls", f"https://{address}:2379")),
        running=etcd_state == "present",
        evidence=f"ss: etcd (pid 4242) listens on {address}:2379; "
        "http://127.0.0.1:2381/health: healthy"
        if etcd_state == "present"
        else "ss: nothing listens on :2379",
    )
    others = tuple(
        StaticPod(
            c,
            "present",
            file=f"/etc/kubernetes/manifests/{c}.yaml",
            image=IMAGE.format(c),
            version="v1.29.4",
            flags=(("advertise-address", address),) if c == "kube-apiserver" else (),
            evidence=UNNAMED.format(COMPONENT_PORTS[c]),
        )
        for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
    )
    return (etcd, *others)


def cert(path: str, subject: str, not_after: float, **extra: object) -> Certificate:
    return Certificate(
        path=f"/etc/kubernetes/{path}",
        subject=subject,
        issuer=extra.pop("issuer", "kubernetes"),  # type: ignore[arg-type]
        not_before=days(-355),
        not_after=days(not_after),
        signed_by_ca=extra.pop("signed_by_ca", True),  # type: ignore[arg-type]
        **extra,  # type: ignore[arg-type]
    )


CP1 = NodeState(
    name="cp-1",
    address="10.0.0.11",
    reachable=True,
    hostname="cp-1",
    addresses=("10.0.0.11",),
    static_pods=pods("cp-1", "10.0.0.11"),
    extra_manifests=(
        ManifestFile("kube-apiserver.yaml.20230310", stray=True, pod_name="kube-apiserver"),
    ),
    certificates=(
        cert("pki/apiserver.crt", "kube-apiserver", 10, sans=("cp-1", "10.0.0.11")),
        cert("pki/front-proxy-client.crt", "front-proxy-client", -3, issuer="front-proxy-ca"),
        cert(
            "pki/apiserver-kubelet-client.crt",
            "kube-apiserver-kubelet-client",
            300,
            signed_by_ca=False,
        ),
        cert("admin.conf", "kubernetes-admin", 200, source="kubeconfig"),
        cert("pki/ca.crt", "kubernetes", 3000, is_ca=True, signed_by_ca=None),
        Certificate(path="/etc/kubernetes/pki/broken.crt", error="malformed PEM: invalid base64"),
    ),
    cni=CniState(
        files=(
            CniFile("05-cilium.conflist", "file", 176, is_config=True, types=("cilium-cni",)),
            CniFile("10-calico.conflist", "file", 411, is_config=True, types=("calico", "portmap")),
            CniFile(
                "50-huge.conflist", "file", 50_000_000, is_config=True, error="too large (not read)"
            ),
            CniFile("calico-kubeconfig", "file", 233, server="https://10.0.0.11:6443"),
        )
    ),
)
CP2 = NodeState(
    name="cp-2",
    address="10.0.0.12",
    reachable=True,
    hostname="cp-2",
    addresses=("10.0.0.12",),
    manifests_dir=False,
    static_pods=pods("cp-2", "10.0.0.12", etcd_state="moved"),
    certificates=(
        cert("pki/etcd/server.crt", "cp-1", 300, issuer="etcd-ca", sans=("cp-1", "10.0.0.11")),
    ),
    cni=CniState(
        files=(CniFile("10-calico.conflist", "file", 411, is_config=True, types=("calico",)),)
    ),
)
CP3 = NodeState(
    name="cp-3",
    address="10.0.0.13",
    reachable=False,
    error="cp-3: host key unknown for 10.0.0.13; the server offers SHA256:q7Jk0fixedfingerprint",
)
SNAPSHOT = Snapshot("prod-eu1", NOW, EtcdCluster(), nodes=(CP1, CP2, CP3))


class PaneApp(App[None]):
    def __init__(self, pane: TablePane) -> None:
        super().__init__()
        self.pane = pane

    def compose(self) -> ComposeResult:
        yield self.pane

    def on_mount(self) -> None:
        self.pane.show_snapshot(SNAPSHOT)


@pytest.mark.parametrize("pane", [StaticPodsPane, CertificatesPane, CniPane])
def test_pane_snapshot(snap_compare, pane: type[TablePane]) -> None:
    assert snap_compare(PaneApp(pane()), terminal_size=(170, 20))
