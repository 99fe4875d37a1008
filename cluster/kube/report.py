"""The Kubernetes API's view as JSON (`kcockpit report --json`, key "kube"): a stable contract."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from cluster.kube.model import KubeView


def kube_json(view: KubeView | None) -> dict[str, Any] | None:
    if view is None:
        return None
    return {
        "server": view.server,
        "context": view.context,
        "user": view.user,
        "kubeconfig": view.kubeconfig,
        "collected_at": view.collected_at.isoformat(),
        "reachable": view.reachable,
        "error": view.error or view.config_error,
        "nodes": None
        if view.nodes is None
        else [
            {
                "name": n.name,
                "ready": n.ready,
                "ready_reason": n.ready_reason,
                "ready_message": n.ready_message,
                "roles": list(n.roles),
                "kubelet_version": n.kubelet_version,
                "addresses": [{"type": t, "address": a} for t, a in n.addresses],
            }
            for n in view.nodes
        ],
        "pods": None if view.pods is None else [asdict(p) for p in view.pods],
        "daemonsets": None if view.daemonsets is None else [asdict(d) for d in view.daemonsets],
        "kubernetes_endpoints": None
        if view.endpoints is None
        else {
            "exists": view.endpoints.exists,
            "ready": list(view.endpoints.ready),
            "not_ready": list(view.endpoints.not_ready),
        },
        "warning_events": None
        if view.events is None
        else [
            {
                "reason": e.reason,
                "object": e.object,
                "message": e.message,
                "count": e.count,
                "last_seen": e.last_seen.isoformat() if e.last_seen else None,
            }
            for e in view.events
        ],
        "read_errors": [
            {"request": e.request, "status": e.status, "reason": e.reason, "message": e.message}
            for e in view.read_errors
        ],
    }
