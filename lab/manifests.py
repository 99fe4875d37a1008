"""kubeadm-shaped static pod manifests for a lab node.

The etcd manifest is the one the lab kubelet really runs, so its flags are real etcd flags;
paths in it are the node's own (`/etc/kubernetes/pki/...`) and the kubelet maps them into the
node root. The other components' manifests are what kubeadm writes, for the panes to read.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from lab.layout import LabNode

KUBE_VERSION = "v1.29.4"
ETCD_IMAGE = "registry.k8s.io/etcd:3.5.16-0"


def etcd_command(node: LabNode, initial_cluster: str, state: str = "new") -> list[str]:
    pki = "/etc/kubernetes/pki/etcd"
    return [
        "etcd",
        f"--advertise-client-urls={node.client_url}",
        f"--cert-file={pki}/server.crt",
        "--client-cert-auth=true",
        "--data-dir=/var/lib/etcd",
        f"--initial-advertise-peer-urls={node.peer_url}",
        f"--initial-cluster={initial_cluster}",
        f"--initial-cluster-state={state}",
        "--initial-cluster-token=kcockpit-lab",
        f"--key-file={pki}/server.key",
        f"--listen-client-urls=https://127.0.0.1:2379,{node.client_url}",
        "--listen-metrics-urls=http://127.0.0.1:2381",
        f"--listen-peer-urls={node.peer_url}",
        f"--name={node.name}",
        f"--peer-cert-file={pki}/peer.crt",
        "--peer-client-cert-auth=true",
        f"--peer-key-file={pki}/peer.key",
        f"--peer-trusted-ca-file={pki}/ca.crt",
        "--snapshot-count=10000",
        f"--trusted-ca-file={pki}/ca.crt",
    ]


def _pod(name: str, image: str, command: list[str], node: LabNode, port: int, tier: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "labels": {"component": name, "tier": tier},
            "name": name,
            "namespace": "kube-system",
        },
        "spec": {
            "containers": [
                {
                    "name": name,
                    "image": image,
                    "command": command,
                    "livenessProbe": {
                        "httpGet": {"host": node.address, "port": port, "scheme": "HTTPS"},
                    },
                }
            ],
            "hostNetwork": True,
            "priorityClassName": "system-node-critical",
        },
    }


def render_manifests(node: LabNode, initial_cluster: str, state: str = "new") -> dict[str, dict]:
    """File name -> manifest document, for one control-plane node."""
    pki = "/etc/kubernetes/pki"
    apiserver = [
        "kube-apiserver",
        f"--advertise-address={node.address}",
        "--secure-port=6443",
        f"--etcd-servers={node.client_url}",
        f"--etcd-cafile={pki}/etcd/ca.crt",
        f"--etcd-certfile={pki}/apiserver-etcd-client.crt",
        f"--etcd-keyfile={pki}/apiserver-etcd-client.key",
        f"--tls-cert-file={pki}/apiserver.crt",
        f"--tls-private-key-file={pki}/apiserver.key",
        f"--client-ca-file={pki}/ca.crt",
        "--service-cluster-ip-range=10.96.0.0/12",
    ]
    controller_manager = [
        "kube-controller-manager",
        "--bind-address=127.0.0.1",
        "--kubeconfig=/etc/kubernetes/controller-manager.conf",
        "--leader-elect=true",
    ]
    scheduler = [
        "kube-scheduler",
        "--bind-address=127.0.0.1",
        "--kubeconfig=/etc/kubernetes/scheduler.conf",
        "--leader-elect=true",
    ]
    registry = "registry.k8s.io"
    return {
        "etcd.yaml": _pod(
            "etcd",
            ETCD_IMAGE,
            etcd_command(node, initial_cluster, state),
            node,
            2381,
            "control-plane",
        ),
        "kube-apiserver.yaml": _pod(
            "kube-apiserver",
            f"{registry}/kube-apiserver:{KUBE_VERSION}",
            apiserver,
            node,
            6443,
            "control-plane",
        ),
        "kube-controller-manager.yaml": _pod(
            "kube-controller-manager",
            f"{registry}/kube-controller-manager:{KUBE_VERSION}",
            controller_manager,
            node,
            10257,
            "control-plane",
        ),
        "kube-scheduler.yaml": _pod(
            "kube-scheduler",
            f"{registry}/kube-scheduler:{KUBE_VERSION}",
            scheduler,
            node,
            10259,
            "control-plane",
        ),
    }


def write_manifests(directory: Path, manifests: dict[str, dict]) -> None:
    """The manifests as kubeadm writes them: root's alone (0600 in a 0700 directory)."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    for filename, document in manifests.items():
        path = directory / filename
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        path.chmod(0o600)
