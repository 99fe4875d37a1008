"""The Kubernetes API source, on the official `kubernetes` client.

The client is synchronous, so every call runs in a thread worker (asyncio.to_thread) with a
per-request deadline (`_request_timeout`) and no urllib3 retries: a refused or frozen API
server costs one deadline, never a hang and never three. The kubeconfig is found the way
kubectl finds it, plus kubeadm's admin.conf when kcockpit runs on a control-plane node. TLS
verification is never turned off: the CA comes from the kubeconfig.

One `collect()` reads, in order: nodes, kube-system pods, kube-system DaemonSets, the
`kubernetes` Service's Endpoints and kube-system Warning events. A 403 or other API error on
one read is recorded and the others go on; a connection-level failure (refused, timeout, x509)
stops the collection and is reported verbatim with the server's address.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from cluster.config import KubeConfig
from cluster.kube.model import (
    KubeDaemonSet,
    KubeEndpoints,
    KubeEvent,
    KubeNode,
    KubePod,
    KubeReadError,
    KubeView,
)

ADMIN_CONF = Path("/etc/kubernetes/admin.conf")
KUBE_SYSTEM = "kube-system"
MAX_EVENTS = 20
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
ROLE_LABEL_PREFIX = "node-role.kubernetes.io/"
T = TypeVar("T")
# What a missing, malformed or incomplete kubeconfig raises while the client loads it.
CONFIG_ERRORS = (
    ConfigException,
    yaml.YAMLError,
    OSError,
    ValueError,
    TypeError,
    KeyError,
    AttributeError,
)


class KubeError(Exception):
    """A failed API call, with the verbatim reason (and the HTTP status when there was one)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class KubeUnreachable(KubeError):
    """The API server could not be talked to at all (refused, timeout, TLS)."""


def resolve_kubeconfig(
    explicit: Path | None = None,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
    admin_conf: Path = ADMIN_CONF,
) -> str | None:
    """The kubeconfig to load, as kubectl picks it: --kubeconfig, then $KUBECONFIG (a
    colon-separated list, merged), then ~/.kube/config; then, on a control-plane node,
    /etc/kubernetes/admin.conf when readable. None when there is none."""
    if explicit is not None:
        return str(explicit)
    environ = os.environ if environ is None else environ
    if environ.get("KUBECONFIG"):
        return environ["KUBECONFIG"]
    user_config = (home or Path.home()) / ".kube" / "config"
    if user_config.is_file():
        return str(user_config)
    if admin_conf.is_file() and os.access(admin_conf, os.R_OK):
        return str(admin_conf)
    return None


def connection_error_text(exc: BaseException) -> str:
    """The innermost reason of a connection-level failure, verbatim minus object addresses."""
    reason: Any = exc
    while isinstance(reason, urllib3.exceptions.MaxRetryError) and reason.reason is not None:
        reason = reason.reason
    if isinstance(reason, ApiException):
        text = str(reason.reason or reason).replace("\n", ": ")
    else:
        text = str(reason)
    return re.sub(r"<[\w.]+ object at 0x[0-9a-f]+>: ", "", text)


class KubeSource:
    """Reads the API's view of the control plane; one client (and its keep-alive pool) reused."""

    def __init__(self, config: KubeConfig) -> None:
        self.config = config
        self._api: k8s.ApiClient | None = None
        self._lock = threading.Lock()
        self.kubeconfig: str | None = None
        self.context: str | None = config.context
        self.user: str | None = None
        self.server = "(no server yet)"

    # -- public, async -----------------------------------------------------------------

    async def collect(self) -> KubeView:
        return await asyncio.to_thread(self._collect)

    async def delete_pod(self, namespace: str, name: str) -> KubePod | None:
        """Deletes exactly one pod (one DELETE, no retry) within the deadline; returns the pod
        as the API answered (None when it answered with a bare Status). Raises KubeError."""

        def delete() -> Any:
            return self._call(
                lambda api: k8s.CoreV1Api(api).delete_namespaced_pod(
                    name, namespace, _request_timeout=self._timeout
                )
            )

        answer = await asyncio.to_thread(delete)
        return pod_of(answer) if isinstance(answer, k8s.V1Pod) else None

    async def daemonset_pods_on_node(
        self, daemonset: str, node: str, namespace: str = KUBE_SYSTEM
    ) -> tuple[KubePod, ...]:
        """The pods a DaemonSet owns on one node (its selector, `spec.nodeName`, and the owner
        reference, so a look-alike pod is never picked). Raises KubeError."""

        def read() -> tuple[KubePod, ...]:
            ds = self._call(
                lambda api: k8s.AppsV1Api(api).read_namespaced_daemon_set(
                    daemonset, namespace, _request_timeout=self._timeout
                )
            )
            selector = ",".join(
                f"{k}={v}" for k, v in sorted((ds.spec.selector.match_labels or {}).items())
            )
            pods = self._call(
                lambda api: k8s.CoreV1Api(api).list_namespaced_pod(
                    namespace,
                    label_selector=selector,
                    field_selector=f"spec.nodeName={node}",
                    _request_timeout=self._timeout,
                )
            )
            return tuple(
                pod
                for pod in map(pod_of, pods.items)
                if pod.owner_kind == "DaemonSet" and pod.owner_name == daemonset
            )

        return await asyncio.to_thread(read)

    def close(self) -> None:
        with self._lock:
            if self._api is not None:
                self._api.close()
                self._api = None

    # -- sync, in a worker thread --------------------------------------------------------

    @property
    def _timeout(self) -> tuple[float, float]:
        return (self.config.timeout, self.config.timeout)

    def _client(self) -> k8s.ApiClient:
        with self._lock:
            if self._api is not None:
                return self._api
            path = resolve_kubeconfig(self.config.kubeconfig)
            if path is None:
                raise ConfigException(
                    "no kubeconfig: set [kube] kubeconfig, $KUBECONFIG or ~/.kube/config "
                    f"({ADMIN_CONF} is not readable here)"
                )
            self.kubeconfig = path
            contexts, current = k8s_config.list_kube_config_contexts(path)
            name = self.config.context or (current or {}).get("name")
            chosen = next((c for c in contexts if c.get("name") == name), None)
            if chosen is None:
                raise ConfigException(f"context {name!r} not found in {path}")
            self.context = name
            self.user = (chosen.get("context") or {}).get("user")
            configuration = k8s.Configuration()
            k8s_config.load_kube_config(
                path, name, client_configuration=configuration, persist_config=False
            )
            configuration.retries = 0  # one deadline per call; the cockpit refreshes anyway
            if not configuration.verify_ssl:
                raise ConfigException(
                    f"{path}: insecure-skip-tls-verify is set; kcockpit always verifies TLS"
                )
            self.server = configuration.host
            self._api = k8s.ApiClient(configuration)
            return self._api

    def _call(self, request: Callable[[k8s.ApiClient], T]) -> T:
        try:
            api = self._client()
        except CONFIG_ERRORS as exc:
            raise KubeError(f"{self.kubeconfig or 'kubeconfig'}: {exc}") from None
        try:
            return request(api)
        except ApiException as exc:
            if not exc.status:  # the client's wrapping of an SSL error
                raise KubeUnreachable(f"{self.server}: {connection_error_text(exc)}") from None
            raise KubeError(api_error_message(exc), exc.status) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise KubeUnreachable(f"{self.server}: {connection_error_text(exc)}") from None
        except (ValueError, TypeError, KeyError, AttributeError) as exc:  # a malformed answer
            raise KubeError(f"{self.server}: unreadable answer: {exc}") from None

    def _collect(self) -> KubeView:
        now = dt.datetime.now(dt.UTC)
        try:
            self._client()
        except CONFIG_ERRORS as exc:
            return KubeView(
                server=self.server,
                collected_at=now,
                kubeconfig=self.kubeconfig,
                config_error=f"{self.kubeconfig or 'kubeconfig'}: {exc}",
            )
        reads: dict[str, Any] = {}
        errors: list[KubeReadError] = []
        plan: tuple[tuple[str, str, str | None, Callable[[k8s.ApiClient], Any]], ...] = (
            ("nodes", "nodes", None, self._list_nodes),
            ("pods", "pods", KUBE_SYSTEM, self._list_pods),
            ("daemonsets", "daemonsets.apps", KUBE_SYSTEM, self._list_daemonsets),
            ("endpoints", "endpoints", "default", self._read_endpoints),
            ("events", "events", KUBE_SYSTEM, self._list_events),
        )
        for key, resource, namespace, read in plan:
            verb = "get" if key == "endpoints" else "list"
            try:
                reads[key] = self._call(read)
            except KubeUnreachable as exc:
                return self._view(now, error=str(exc))
            except KubeError as exc:
                errors.append(
                    KubeReadError(
                        verb, resource, namespace, exc.status, _reason(exc.status), str(exc)
                    )
                )
        return self._view(now, read_errors=tuple(errors), **reads)

    def _view(self, now: dt.datetime, **parts: Any) -> KubeView:
        return KubeView(
            server=self.server,
            collected_at=now,
            context=self.context,
            user=self.user,
            kubeconfig=self.kubeconfig,
            **parts,
        )

    def _list_nodes(self, api: k8s.ApiClient) -> tuple[KubeNode, ...]:
        nodes = k8s.CoreV1Api(api).list_node(_request_timeout=self._timeout)
        return tuple(sorted((node_of(n) for n in nodes.items), key=lambda n: n.name))

    def _list_pods(self, api: k8s.ApiClient) -> tuple[KubePod, ...]:
        pods = k8s.CoreV1Api(api).list_namespaced_pod(KUBE_SYSTEM, _request_timeout=self._timeout)
        return tuple(sorted((pod_of(p) for p in pods.items), key=lambda p: p.name))

    def _list_daemonsets(self, api: k8s.ApiClient) -> tuple[KubeDaemonSet, ...]:
        sets = k8s.AppsV1Api(api).list_namespaced_daemon_set(
            KUBE_SYSTEM, _request_timeout=self._timeout
        )
        return tuple(sorted((daemonset_of(d) for d in sets.items), key=lambda d: d.name))

    def _read_endpoints(self, api: k8s.ApiClient) -> KubeEndpoints:
        try:
            endpoints = k8s.CoreV1Api(api).read_namespaced_endpoints(
                "kubernetes", "default", _request_timeout=self._timeout
            )
        except ApiException as exc:
            if exc.status == 404:
                return KubeEndpoints(exists=False)
            raise
        return endpoints_of(endpoints)

    def _list_events(self, api: k8s.ApiClient) -> tuple[KubeEvent, ...]:
        events = k8s.CoreV1Api(api).list_namespaced_event(
            KUBE_SYSTEM, field_selector="type=Warning", _request_timeout=self._timeout
        )
        newest = sorted(
            (event_of(e) for e in events.items),
            key=lambda e: e.last_seen or dt.datetime.min.replace(tzinfo=dt.UTC),
            reverse=True,
        )
        return tuple(newest[:MAX_EVENTS])


def api_error_message(exc: ApiException) -> str:
    """The API's own message from a Status body (e.g. "pods is forbidden: User …")."""
    try:
        body = json.loads(exc.body or "")
    except (ValueError, TypeError):
        body = None
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return f"{exc.status} {exc.reason}"


def _reason(status: int | None) -> str:
    return {401: "Unauthorized", 403: "Forbidden", 404: "NotFound"}.get(status or 0, "Error")


# -- the client's typed objects → our plain data --------------------------------------------


def node_of(node: k8s.V1Node) -> KubeNode:
    labels = node.metadata.labels or {}
    ready = next((c for c in node.status.conditions or () if c.type == "Ready"), None)
    return KubeNode(
        name=node.metadata.name,
        ready=None if ready is None or ready.status == "Unknown" else ready.status == "True",
        ready_reason=(ready.reason or "") if ready else "no Ready condition",
        ready_message=(ready.message or "") if ready else "",
        roles=tuple(
            sorted(
                k.removeprefix(ROLE_LABEL_PREFIX) for k in labels if k.startswith(ROLE_LABEL_PREFIX)
            )
        ),
        kubelet_version=node.status.node_info.kubelet_version if node.status.node_info else "",
        addresses=tuple((a.type, a.address) for a in node.status.addresses or ()),
        unschedulable=bool(node.spec and node.spec.unschedulable),
    )


def pod_of(pod: k8s.V1Pod) -> KubePod:
    meta, status = pod.metadata, pod.status
    owner = next(
        (o for o in meta.owner_references or () if o.controller),
        (meta.owner_references or [None])[0],
    )
    containers = (status.container_statuses if status else None) or []
    ready = any(c.type == "Ready" and c.status == "True" for c in (status.conditions or ()))
    text, message = _status_text(pod)
    return KubePod(
        namespace=meta.namespace,
        name=meta.name,
        node=pod.spec.node_name if pod.spec else None,
        phase=(status.phase if status else None) or "Unknown",
        ready=ready,
        restarts=sum(c.restart_count or 0 for c in containers),
        status=text,
        message=message,
        component=(meta.labels or {}).get("component"),
        mirror=MIRROR_ANNOTATION in (meta.annotations or {}),
        owner_kind=owner.kind if owner else None,
        owner_name=owner.name if owner else None,
        ip=status.pod_ip if status else None,
        uid=meta.uid or "",
    )


def _status_text(pod: k8s.V1Pod) -> tuple[str, str]:
    """STATUS as `kubectl get pods` prints it, and the message behind it."""
    if pod.metadata.deletion_timestamp:
        return "Terminating", ""
    status = pod.status
    text = (status.reason or status.phase or "Unknown") if status else "Unknown"
    for container in (status.container_statuses if status else None) or []:
        state = container.state
        if state and state.waiting and state.waiting.reason:
            return state.waiting.reason, state.waiting.message or ""
        if state and state.terminated:
            reason = state.terminated.reason or f"ExitCode:{state.terminated.exit_code}"
            return reason, state.terminated.message or ""
    return text, (status.message or "") if status else ""


def daemonset_of(ds: k8s.V1DaemonSet) -> KubeDaemonSet:
    status = ds.status
    return KubeDaemonSet(
        namespace=ds.metadata.namespace,
        name=ds.metadata.name,
        desired=status.desired_number_scheduled or 0,
        current=status.current_number_scheduled or 0,
        ready=status.number_ready or 0,
        updated=status.updated_number_scheduled or 0,
        available=status.number_available or 0,
        selector=tuple(sorted((ds.spec.selector.match_labels or {}).items())),
    )


def endpoints_of(endpoints: k8s.V1Endpoints) -> KubeEndpoints:
    ready: list[str] = []
    not_ready: list[str] = []
    for subset in endpoints.subsets or ():
        ports = [p.port for p in subset.ports or ()] or [None]
        for port in ports:
            suffix = f":{port}" if port else ""
            ready += [f"{a.ip}{suffix}" for a in subset.addresses or ()]
            not_ready += [f"{a.ip}{suffix}" for a in subset.not_ready_addresses or ()]
    return KubeEndpoints(ready=tuple(ready), not_ready=tuple(not_ready))


def event_of(event: k8s.CoreV1Event) -> KubeEvent:
    involved = event.involved_object
    return KubeEvent(
        namespace=event.metadata.namespace or "",
        type=event.type or "",
        reason=event.reason or "",
        object=f"{(involved.kind or '').lower()}/{involved.name}",
        message=event.message or "",
        count=event.count or 1,
        last_seen=event.last_timestamp or event.event_time or event.metadata.creation_timestamp,
    )
