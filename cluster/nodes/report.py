"""The nodes' part of `kcockpit report --json`: field names are a contract, never renamed."""

from __future__ import annotations

import datetime as dt
from typing import Any

from cluster.findings.nodes import certificate_problems
from cluster.nodes.model import Certificate, CniFile, NodeState, StaticPod


def _time(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def static_pod_json(pod: StaticPod) -> dict[str, Any]:
    return {
        "component": pod.component,
        "state": pod.state,
        "file": pod.file,
        "moved_to": pod.moved_to,
        "image": pod.image,
        "version": pod.version,
        "flags": dict(pod.flags),
        "running": pod.running,
        "evidence": pod.evidence,
        "error": pod.error,
    }


def certificate_json(cert: Certificate, node: NodeState, now: dt.datetime) -> dict[str, Any]:
    days = cert.days_left(now)
    return {
        "path": cert.path,
        "source": cert.source,
        "subject": cert.subject,
        "issuer": cert.issuer,
        "sans": list(cert.sans),
        "not_before": _time(cert.not_before),
        "not_after": _time(cert.not_after),
        "days_left": None if days is None else round(days, 1),
        "is_ca": cert.is_ca,
        "ca": cert.ca_path,
        "signed_by_ca": cert.signed_by_ca,
        "problems": [finding_id for finding_id, _, _ in certificate_problems(cert, node, now)],
        "error": cert.error,
    }


def cni_file_json(file: CniFile) -> dict[str, Any]:
    return {
        "name": file.name,
        "kind": file.kind,
        "size": file.size,
        "config": file.is_config,
        "valid": file.valid,
        "types": list(file.types),
        "server": file.server,
        "error": file.error,
    }


def node_json(node: NodeState, now: dt.datetime) -> dict[str, Any]:
    active = node.cni.active
    return {
        "name": node.name,
        "address": node.address,
        "reachable": node.reachable,
        "error": node.error,
        "local": node.local,
        "hostname": node.hostname,
        "addresses": list(node.addresses),
        "clock_offset": None if node.clock_offset is None else round(node.clock_offset, 3),
        "read_at": _time(node.read_at),
        "denied": list(node.denied),
        "sudo_refused": node.sudo_refused,
        "static_pods": [static_pod_json(p) for p in node.static_pods],
        "extra_manifests": [
            {"name": e.name, "stray": e.stray, "pod": e.pod_name, "error": e.error}
            for e in node.extra_manifests
        ],
        "certificates": [certificate_json(c, node, now) for c in node.certificates],
        "cni": {
            "active": active.name if active else None,
            "active_types": list(active.types) if active else [],
            "error": node.cni.error,
            "files": [cni_file_json(f) for f in node.cni.files],
        },
    }


def nodes_json(nodes: tuple[NodeState, ...], now: dt.datetime) -> list[dict[str, Any]]:
    return [node_json(n, now) for n in nodes]
