"""kubeadm-shaped static pod manifests for a lab node.

The lab kubelet runs every one of them verbatim inside its node, so their flags are real flags
of etcd 3.5 and of the Kubernetes version built for the lab (kubeadm 1.20's, which is what
kubeadm wrote for that version), and their paths are the node's own (`/etc/kubernetes/pki/...`).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from lab.layout import KUBE_VERSION, LabNode

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


def _probe(
    host: str, path: str, port: int, scheme: str, initial: int, failures: int, period: int = 10
) -> dict:
    return {
        "failureThreshold": failures,
        "httpGet": {"host": host, "path": path, "port": port, "scheme": scheme},
        "initialDelaySeconds": initial,
        "periodSeconds": period,
        "timeoutSeconds": 15,
    }


def _pod(name: str, image: str, command: list[str], probe: tuple[str, str, int, str]) -> dict:
    """A static pod as kubeadm writes it (the fields the lab kubelet and the cockpit read, and
    kubeadm's probes: liveness, and readiness where kubeadm sets one)."""
    host, path, port, scheme = probe
    container: dict = {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": command,
        "livenessProbe": _probe(host, path, port, scheme, 10, 8),
        "startupProbe": _probe(host, path, port, scheme, 10, 24),
    }
    if name == "kube-apiserver":
        container["readinessProbe"] = _probe(host, "/readyz", port, scheme, 0, 3, period=1)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "labels": {"component": name, "tier": "control-plane"},
            "name": name,
            "namespace": "kube-system",
        },
        "spec": {
            "containers": [container],
            "hostNetwork": True,
            "priorityClassName": "system-node-critical",
        },
    }


def apiserver_command(node: LabNode) -> list[str]:
    """kubeadm 1.20's kube-apiserver flags: the local etcd member only, Node and RBAC
    authorization, NodeRestriction, the shared service-account key pair."""
    pki = "/etc/kubernetes/pki"
    return [
        "kube-apiserver",
        f"--advertise-address={node.address}",
        "--allow-privileged=true",
        "--authorization-mode=Node,RBAC",
        f"--client-ca-file={pki}/ca.crt",
        "--enable-admission-plugins=NodeRestriction",
        "--enable-bootstrap-token-auth=true",
        f"--etcd-cafile={pki}/etcd/ca.crt",
        f"--etcd-certfile={pki}/apiserver-etcd-client.crt",
        f"--etcd-keyfile={pki}/apiserver-etcd-client.key",
        "--etcd-servers=https://127.0.0.1:2379",
        "--insecure-port=0",
        f"--kubelet-client-certificate={pki}/apiserver-kubelet-client.crt",
        f"--kubelet-client-key={pki}/apiserver-kubelet-client.key",
        "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
        f"--proxy-client-cert-file={pki}/front-proxy-client.crt",
        f"--proxy-client-key-file={pki}/front-proxy-client.key",
        "--requestheader-allowed-names=front-proxy-client",
        f"--requestheader-client-ca-file={pki}/front-proxy-ca.crt",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-username-headers=X-Remote-User",
        "--secure-port=6443",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pki}/sa.pub",
        f"--service-account-signing-key-file={pki}/sa.key",
        "--service-cluster-ip-range=10.96.0.0/12",
        f"--tls-cert-file={pki}/apiserver.crt",
        f"--tls-private-key-file={pki}/apiserver.key",
    ]


def _controller_manager_command() -> list[str]:
    """kubeadm 1.20's flags, less the node-IPAM ones (`--allocate-node-cidrs`): the lab's nodes
    get no pod CIDRs, as with a CNI that does its own IPAM (Calico's)."""
    pki = "/etc/kubernetes/pki"
    conf = "/etc/kubernetes/controller-manager.conf"
    return [
        "kube-controller-manager",
        f"--authentication-kubeconfig={conf}",
        f"--authorization-kubeconfig={conf}",
        "--bind-address=127.0.0.1",
        f"--client-ca-file={pki}/ca.crt",
        "--cluster-name=kubernetes",
        f"--cluster-signing-cert-file={pki}/ca.crt",
        f"--cluster-signing-key-file={pki}/ca.key",
        "--controllers=*,bootstrapsigner,tokencleaner",
        f"--kubeconfig={conf}",
        "--leader-elect=true",
        "--port=0",
        f"--requestheader-client-ca-file={pki}/front-proxy-ca.crt",
        f"--root-ca-file={pki}/ca.crt",
        f"--service-account-private-key-file={pki}/sa.key",
        "--use-service-account-credentials=true",
    ]


def _scheduler_command() -> list[str]:
    conf = "/etc/kubernetes/scheduler.conf"
    return [
        "kube-scheduler",
        f"--authentication-kubeconfig={conf}",
        f"--authorization-kubeconfig={conf}",
        "--bind-address=127.0.0.1",
        f"--kubeconfig={conf}",
        "--leader-elect=true",
        "--port=0",
    ]


def render_manifests(
    node: LabNode, initial_cluster: str, state: str = "new", control_plane: bool = True
) -> dict[str, dict]:
    """File name -> manifest document, for one control-plane node (or an etcd-only node)."""
    etcd = _pod(
        "etcd",
        ETCD_IMAGE,
        etcd_command(node, initial_cluster, state),
        ("127.0.0.1", "/health", 2381, "HTTP"),
    )
    if not control_plane:
        return {"etcd.yaml": etcd}
    registry, version = "registry.k8s.io", KUBE_VERSION
    return {
        "etcd.yaml": etcd,
        "kube-apiserver.yaml": _pod(
            "kube-apiserver",
            f"{registry}/kube-apiserver:{version}",
            apiserver_command(node),
            (node.address, "/livez", 6443, "HTTPS"),
        ),
        "kube-controller-manager.yaml": _pod(
            "kube-controller-manager",
            f"{registry}/kube-controller-manager:{version}",
            _controller_manager_command(),
            ("127.0.0.1", "/healthz", 10257, "HTTPS"),
        ),
        "kube-scheduler.yaml": _pod(
            "kube-scheduler",
            f"{registry}/kube-scheduler:{version}",
            _scheduler_command(),
            ("127.0.0.1", "/healthz", 10259, "HTTPS"),
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
