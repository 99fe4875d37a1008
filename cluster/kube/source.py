"""The Kubernetes API source, on the official `kubernetes` client.

Its kubeconfig loading, authentication and TLS are used as they are; answers are read as plain
JSON (`KubeSource._json`), not through the typed API classes, whose import alone costs a
second. The client is synchronous, so every call runs in a thread worker (asyncio.to_thread)
with a per-request deadline (`_request_timeout`) and no urllib3 retries: a refused or frozen API
server costs one deadline, never a hang and never three. The kubeconfig is found the way
kubectl finds it, plus kubeadm's admin.conf when kcockpit runs on a control-plane node. TLS
verification is never turned off: the CA comes from the kubeconfig.

One `collect()` reads, in order: nodes, kube-system pods, kube-system DaemonSets, the
`kubernetes` Service's Endpoints and kube-system Warning events. A 403 or other API error on
one read is recorded and the others go on; a connection-level failure (refused, timeout, x509)
stops the collection and is reported verbatim with the server's address.

`ApiSource` is the API as a snapshot's part (a `Source`, cluster.sources): read every
`[kube] interval` seconds, not every refresh (five list calls cost the API server far more than
etcd's Status), and given a short grace (`KUBE_GRACE`) before its previous view is shown, so a
slow API server never holds the etcd rows.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
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
from cluster.sources import LatestRead
from cluster.untrusted import neutralized

ADMIN_CONF = Path("/etc/kubernetes/admin.conf")
KUBE_SYSTEM = "kube-system"
MAX_EVENTS = 20
MAX_READYZ_BYTES = 16 * 1024  # /readyz?verbose is some 50 lines
SHOWN_CHECK_CHARS = 120
KUBE_GRACE = 0.2  # seconds a slow API server may delay a refresh before its last view is used
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

        def delete() -> dict[str, Any]:
            return self._call(
                lambda api: self._json(
                    api, f"/api/v1/namespaces/{namespace}/pods/{name}", method="DELETE"
                )
            )

        answer = await asyncio.to_thread(delete)
        return pod_of(answer) if answer.get("kind") == "Pod" else None

    async def daemonset_pods_on_node(
        self, daemonset: str, node: str, namespace: str = KUBE_SYSTEM
    ) -> tuple[KubePod, ...]:
        """The pods a DaemonSet owns on one node (its selector, `spec.nodeName`, and the owner
        reference, so a look-alike pod is never picked). Raises KubeError."""

        def read() -> tuple[KubePod, ...]:
            ds = self._call(
                lambda api: self._json(
                    api, f"/apis/apps/v1/namespaces/{namespace}/daemonsets/{daemonset}"
                )
            )
            labels = _get(_get(_get(ds, "spec"), "selector"), "matchLabels")
            selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
            pods = self._call(
                lambda api: self._json(
                    api,
                    f"/api/v1/namespaces/{namespace}/pods",
                    {"labelSelector": selector, "fieldSelector": f"spec.nodeName={node}"},
                )
            )
            return tuple(
                pod
                for pod in map(pod_of, _items(pods))
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

    def _request(
        self,
        api: k8s.ApiClient,
        path: str,
        query: Mapping[str, str] | None = None,
        method: str = "GET",
        accept: str = "application/json",
    ) -> tuple[int, bytes]:
        """One request under the deadline: (HTTP status, body)."""
        request = api.param_serialize(
            method=method,
            resource_path=path,
            query_params=list((query or {}).items()),
            header_params={"Accept": accept},
            auth_settings=["BearerToken"],
        )
        response = api.call_api(*request, _request_timeout=self._timeout)
        return response.status, response.read()

    def _json(
        self,
        api: k8s.ApiClient,
        path: str,
        query: Mapping[str, str] | None = None,
        method: str = "GET",
    ) -> dict[str, Any]:
        """One request and its JSON answer as plain data. The client's typed API classes are
        not used: importing them builds some 300 pydantic models (a second of CPU, holding
        the GIL, at the first refresh), and typing each answer cost more than the request."""
        status, data = self._request(api, path, query, method)
        if not 200 <= status <= 299:
            raise ApiException(status, _reason(status), body=data.decode(errors="replace"))
        answer = json.loads(data)
        if not isinstance(answer, dict):
            raise ValueError(f"{path}: the answer is not a JSON object")
        return answer

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
            ("pods", "pods", KUBE_SYSTEM, self._list_pods),  # and their resource_version
            ("daemonsets", "daemonsets.apps", KUBE_SYSTEM, self._list_daemonsets),
            ("endpoints", "endpoints", "default", self._read_endpoints),
            ("events", "events", KUBE_SYSTEM, self._list_events),
        )
        for key, resource, namespace, read in plan:
            verb = "get" if key == "endpoints" else "list"
            try:
                answer = self._call(read)
                reads.update(answer if isinstance(answer, dict) else {key: answer})
            except KubeUnreachable as exc:
                return self._view(now, error=str(exc), failed_checks=self._failed_checks())
            except KubeError as exc:
                errors.append(
                    KubeReadError(
                        verb, resource, namespace, exc.status, _reason(exc.status), str(exc)
                    )
                )
        return self._view(now, read_errors=tuple(errors), **reads)

    def _view(self, now: dt.datetime, **parts: Any) -> KubeView:
        """The view, its names, messages and errors made printable (the API's words are data)."""
        return neutralized(
            KubeView(
                server=self.server,
                collected_at=now,
                context=self.context,
                user=self.user,
                kubeconfig=self.kubeconfig,
                **parts,
            )
        )

    def _failed_checks(self) -> tuple[str, ...]:
        """After a failed read, what the API server says is wrong with it: the failing lines of
        `/readyz?verbose` (`[-]etcd failed: reason withheld` when it cannot reach etcd), asked
        once under the same deadline; () when it cannot tell either."""

        def readiness(api: k8s.ApiClient) -> tuple[str, ...]:
            _, body = self._request(api, "/readyz", {"verbose": "1"}, accept="text/plain")
            lines = body[:MAX_READYZ_BYTES].decode(errors="replace").splitlines()
            return tuple(line[:SHOWN_CHECK_CHARS] for line in lines if line.startswith("[-]"))[:8]

        try:
            return self._call(readiness)
        except KubeError:
            return ()

    def _list_nodes(self, api: k8s.ApiClient) -> tuple[KubeNode, ...]:
        nodes = self._json(api, "/api/v1/nodes")
        return tuple(sorted((node_of(n) for n in _items(nodes)), key=lambda n: n.name))

    def _list_pods(self, api: k8s.ApiClient) -> dict[str, Any]:
        """The pods, and the list's resourceVersion: the etcd revision the API served it at."""
        pods = self._json(api, f"/api/v1/namespaces/{KUBE_SYSTEM}/pods")
        version = str(_get(pods, "metadata").get("resourceVersion") or "")
        return {
            "pods": tuple(sorted((pod_of(p) for p in _items(pods)), key=lambda p: p.name)),
            "resource_version": int(version) if version.isdecimal() and len(version) < 20 else None,
        }

    def _list_daemonsets(self, api: k8s.ApiClient) -> tuple[KubeDaemonSet, ...]:
        sets = self._json(api, f"/apis/apps/v1/namespaces/{KUBE_SYSTEM}/daemonsets")
        return tuple(sorted((daemonset_of(d) for d in _items(sets)), key=lambda d: d.name))

    def _read_endpoints(self, api: k8s.ApiClient) -> KubeEndpoints:
        try:
            endpoints = self._json(api, "/api/v1/namespaces/default/endpoints/kubernetes")
        except ApiException as exc:
            if exc.status == 404:
                return KubeEndpoints(exists=False)
            raise
        return endpoints_of(endpoints)

    def _list_events(self, api: k8s.ApiClient) -> tuple[KubeEvent, ...]:
        events = self._json(
            api, f"/api/v1/namespaces/{KUBE_SYSTEM}/events", {"fieldSelector": "type=Warning"}
        )
        newest = sorted(
            (event_of(e) for e in _items(events)),
            key=lambda e: e.last_seen or dt.datetime.min.replace(tzinfo=dt.UTC),
            reverse=True,
        )
        return tuple(newest[:MAX_EVENTS])


class ApiSource:
    """The API's part of a snapshot, read through `source` (the one actions use too).

    The first read, having no previous view, and a fresh one wait up to a few deadlines (the
    five calls are made one after the other, each under its own); after that the previous view
    stands in until the call in flight ends."""

    def __init__(self, source: KubeSource) -> None:
        self.source = source
        self._reads = LatestRead(
            source.collect, self._failed, slow=lambda view, waited: replace(view, slow_for=waited)
        )

    async def read(self, fresh: bool) -> KubeView | None:
        config = self.source.config
        due = time.monotonic() - self._reads.began >= config.interval
        if due and not fresh:  # a fresh read makes its own
            self._reads.start()  # joins the read in flight, if any: no pile-up on a slow server
        return await self._reads.latest(fresh, grace=KUBE_GRACE, patience=3 * config.timeout)

    def _failed(self, exc: Exception) -> KubeView:
        now = dt.datetime.now(dt.UTC)
        return KubeView(self.source.server, now, error=f"reading the API failed: {exc!r}")

    def close(self) -> None:
        """Stops waiting for the read in flight (its thread ends by its request deadlines)
        and closes the client."""
        self._reads.close()
        self.source.close()


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


# -- the API's JSON → our plain data ----------------------------------------------------------

Json = dict[str, Any]


def _get(obj: Json, key: str) -> Json:
    """A nested object, {} when absent or not an object (a malformed answer reads as empty)."""
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def _list(obj: Json, key: str) -> list[Json]:
    value = obj.get(key)
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _items(answer: Json) -> list[Json]:
    return _list(answer, "items")


def _count(value: Any) -> int:
    """A counter field; a missing or mistyped one counts as 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _time(value: Any) -> dt.datetime | None:
    """An RFC 3339 timestamp (Time or MicroTime) as an aware datetime."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def node_of(node: Json) -> KubeNode:
    meta, status = _get(node, "metadata"), _get(node, "status")
    labels = _get(meta, "labels")
    ready = next((c for c in _list(status, "conditions") if c.get("type") == "Ready"), None)
    return KubeNode(
        name=str(meta.get("name", "")),
        ready=None
        if ready is None or ready.get("status") == "Unknown"
        else ready.get("status") == "True",
        ready_reason=str(ready.get("reason") or "") if ready else "no Ready condition",
        ready_message=str(ready.get("message") or "") if ready else "",
        roles=tuple(
            sorted(
                k.removeprefix(ROLE_LABEL_PREFIX) for k in labels if k.startswith(ROLE_LABEL_PREFIX)
            )
        ),
        kubelet_version=str(_get(status, "nodeInfo").get("kubeletVersion") or ""),
        addresses=tuple(
            (str(a.get("type")), str(a.get("address"))) for a in _list(status, "addresses")
        ),
        unschedulable=bool(_get(node, "spec").get("unschedulable")),
    )


def pod_of(pod: Json) -> KubePod:
    meta, status = _get(pod, "metadata"), _get(pod, "status")
    owners = _list(meta, "ownerReferences")
    owner = next((o for o in owners if o.get("controller")), owners[0] if owners else None)
    containers = _list(status, "containerStatuses")
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in _list(status, "conditions")
    )
    text, message = _status_text(pod)
    return KubePod(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        node=_text(_get(pod, "spec").get("nodeName")),
        phase=str(status.get("phase") or "Unknown"),
        ready=ready,
        restarts=sum(_count(c.get("restartCount")) for c in containers),
        status=text,
        message=message,
        component=_text(_get(meta, "labels").get("component")),
        mirror=MIRROR_ANNOTATION in _get(meta, "annotations"),
        owner_kind=_text(owner.get("kind")) if owner else None,
        owner_name=_text(owner.get("name")) if owner else None,
        ip=_text(status.get("podIP")),
        uid=str(meta.get("uid") or ""),
    )


def _status_text(pod: Json) -> tuple[str, str]:
    """STATUS as `kubectl get pods` prints it, and the message behind it."""
    if _get(pod, "metadata").get("deletionTimestamp"):
        return "Terminating", ""
    status = _get(pod, "status")
    text = str(status.get("reason") or status.get("phase") or "Unknown")
    for container in _list(status, "containerStatuses"):
        state = _get(container, "state")
        waiting, terminated = _get(state, "waiting"), _get(state, "terminated")
        if waiting.get("reason"):
            return str(waiting["reason"]), str(waiting.get("message") or "")
        if terminated:
            reason = terminated.get("reason") or f"ExitCode:{terminated.get('exitCode')}"
            return str(reason), str(terminated.get("message") or "")
    return text, str(status.get("message") or "")


def daemonset_of(ds: Json) -> KubeDaemonSet:
    meta, status = _get(ds, "metadata"), _get(ds, "status")
    labels = _get(_get(_get(ds, "spec"), "selector"), "matchLabels")
    return KubeDaemonSet(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        desired=_count(status.get("desiredNumberScheduled")),
        current=_count(status.get("currentNumberScheduled")),
        ready=_count(status.get("numberReady")),
        updated=_count(status.get("updatedNumberScheduled")),
        available=_count(status.get("numberAvailable")),
        selector=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
    )


def endpoints_of(endpoints: Json) -> KubeEndpoints:
    ready: list[str] = []
    not_ready: list[str] = []
    for subset in _list(endpoints, "subsets"):
        ports = [p.get("port") for p in _list(subset, "ports")] or [None]
        for port in ports:
            suffix = f":{port}" if port else ""
            ready += [f"{a.get('ip')}{suffix}" for a in _list(subset, "addresses")]
            not_ready += [f"{a.get('ip')}{suffix}" for a in _list(subset, "notReadyAddresses")]
    return KubeEndpoints(ready=tuple(ready), not_ready=tuple(not_ready))


def event_of(event: Json) -> KubeEvent:
    meta, involved = _get(event, "metadata"), _get(event, "involvedObject")
    return KubeEvent(
        namespace=str(meta.get("namespace") or ""),
        type=str(event.get("type") or ""),
        reason=str(event.get("reason") or ""),
        object=f"{str(involved.get('kind') or '').lower()}/{involved.get('name')}",
        message=str(event.get("message") or ""),
        count=_count(event.get("count")) or 1,
        last_seen=_time(event.get("lastTimestamp"))
        or _time(event.get("eventTime"))
        or _time(meta.get("creationTimestamp")),
    )
