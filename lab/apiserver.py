"""The lab's stand-in for kube-apiserver: a small HTTPS server in the lab daemon.

No real kube-apiserver can be installed here, so the lab serves its own state (see
kubestate.py for what is served and how it stays honest) in Kubernetes' REST shapes, enough for
the official Python client and kubectl: discovery, nodes, kube-system pods (list, get, delete),
DaemonSets, the `kubernetes` Service and its Endpoints, events; label selectors (equality) and
the field selectors kubectl and kcockpit use; server-side Tables for `kubectl get`. No watch,
no writes other than pod deletion.

TLS is the real thing: cp-1's own `pki/apiserver.crt` (SANs: its addresses and names), client
certificates required and verified against the cluster CA. Authorization is a small fixed
table by the certificate's organizations (Kubernetes groups): cluster admins may do everything,
`lab:node-readers` may only read nodes, anyone else is refused with the API's own 403 message.

It listens on the lab bridge's address, port 6443 (where a load balancer in front of the
control plane would answer: kubeadm's controlPlaneEndpoint), publishes cp-1's address as the
`kubernetes` endpoint, and can be stopped and started without
stopping the lab: while the marker file `DIR/apiserver.stopped` exists it does not listen
and drops open connections (tests use it for "API down").
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from lab import pki
from lab.kubestate import KUBE_SYSTEM, LAB_KUBELET_VERSION, LabKubeState
from lab.layout import KUBE_API_PORT, LabPaths, LabSpec
from lab.network import LabNetwork

log = logging.getLogger("kcockpit.lab.apiserver")

SYNC_SECONDS = 0.25
IDLE_SECONDS = 30.0
MAX_BODY = 1 << 20
ADMIN_GROUPS = frozenset({"system:masters", "kubeadm:cluster-admins"})
NODE_READERS = "lab:node-readers"


def stopped_marker(paths: LabPaths) -> Path:
    return paths.root / "apiserver.stopped"


def api_address(spec: LabSpec) -> str:
    """The control plane endpoint: the lab bridge's address on this machine."""
    return LabNetwork(spec.subnet).gateway


def api_url(spec: LabSpec) -> str:
    return f"https://{api_address(spec)}:{KUBE_API_PORT}"


def kubeconfig_path(paths: LabPaths, limited: bool = False) -> Path:
    return paths.cockpit / ("kubeconfig-node-reader" if limited else "kubeconfig")


def write_lab_kubeconfigs(paths: LabPaths, ca: pki.Issued, spec: LabSpec) -> None:
    """The cockpit's kubeconfig (a cluster admin, as kubeadm's admin.conf) and one for a user
    who may only read nodes, to see a 403 for real."""
    users = {
        False: ("kcockpit", ("kubeadm:cluster-admins",)),
        True: ("kcockpit-nodes-only", (NODE_READERS,)),
    }
    for limited, (user, groups) in users.items():
        issued = pki.issue(user, issuer=ca, client=True, organizations=groups)
        pki.write_kubeconfig(
            kubeconfig_path(paths, limited), api_url(spec), ca.cert, issued, user, "kcockpit-lab"
        )


@dataclass(frozen=True)
class Resource:
    """One served resource: discovery data and how to read its objects."""

    name: str
    kind: str
    group: str
    namespaced: bool
    verbs: tuple[str, ...]
    short_names: tuple[str, ...] = ()

    @property
    def group_version(self) -> str:
        return f"{self.group}/v1" if self.group else "v1"


RESOURCES = (
    Resource("nodes", "Node", "", False, ("get", "list"), ("no",)),
    Resource("pods", "Pod", "", True, ("delete", "get", "list"), ("po",)),
    Resource("services", "Service", "", True, ("get", "list"), ("svc",)),
    Resource("endpoints", "Endpoints", "", True, ("get", "list"), ("ep",)),
    Resource("events", "Event", "", True, ("get", "list"), ("ev",)),
    Resource("daemonsets", "DaemonSet", "apps", True, ("get", "list"), ("ds",)),
)


class HttpError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.details = code, reason, details or {}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    user: str
    groups: tuple[str, ...]

    def param(self, name: str) -> str:
        return (self.query.get(name) or [""])[0]


class LabApiServer:
    """Runs the DaemonSet controller and serves the API until `stop` is set."""

    def __init__(self, paths: LabPaths) -> None:
        self.paths = paths
        self.state = LabKubeState(paths)
        self.server: asyncio.Server | None = None
        self.connections: set[asyncio.StreamWriter] = set()
        self.address = ""

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    await self.state.sync()
                    await self._follow_marker()
                except Exception:  # the lab keeps running; the log says what broke
                    log.exception("lab API sync failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), SYNC_SECONDS)
        finally:
            await self._stop_listening()
            await self.state.stop_all()

    async def _follow_marker(self) -> None:
        wanted = not stopped_marker(self.paths).exists()
        if wanted and self.server is None:
            await self._listen()
        elif not wanted and self.server is not None:
            await self._stop_listening()

    def _tls(self) -> ssl.SSLContext:
        pki = self.paths.kubernetes_dir(self.state.spec.nodes[0].name) / "pki"
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki / "ca.crt"))
        context.load_cert_chain(str(pki / "apiserver.crt"), str(pki / "apiserver.key"))
        context.verify_mode = ssl.CERT_REQUIRED
        return context

    async def _listen(self) -> None:
        self.address = api_address(self.state.spec)
        self.server = await asyncio.start_server(
            self._connection, self.address, KUBE_API_PORT, ssl=self._tls(), reuse_address=True
        )
        log.info("lab API serving on https://%s:%s", self.address, KUBE_API_PORT)

    async def _stop_listening(self) -> None:
        if self.server is None:
            return
        self.server.close()
        for writer in list(self.connections):
            writer.transport.abort()
        await self.server.wait_closed()
        self.server = None
        log.info("lab API stopped")

    # -- HTTP/1.1 ------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections.add(writer)
        subject = writer.get_extra_info("peercert") or {}
        pairs = [pair for rdn in subject.get("subject", ()) for pair in rdn]
        user = next((value for key, value in pairs if key == "commonName"), "")
        groups = tuple(value for key, value in pairs if key == "organizationName")
        try:
            while True:
                line = await asyncio.wait_for(reader.readline(), IDLE_SECONDS)
                if not line:
                    return
                method, target, _ = line.decode("latin-1").split(" ", 2)
                headers = await self._headers(reader)
                length = int(headers.get("content-length") or 0)
                if length > MAX_BODY:
                    return
                if length:
                    await reader.readexactly(length)
                url = urlsplit(target)
                request = Request(
                    method, url.path.rstrip("/") or "/", parse_qs(url.query), headers, user, groups
                )
                status, content_type, body = await self._respond(request)
                writer.write(
                    (
                        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                        f"Content-Length: {len(body)}\r\nDate: {_http_date()}\r\n"
                        "Cache-Control: no-cache, private\r\n\r\n"
                    ).encode()
                    + body
                )
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except (
            TimeoutError,
            ValueError,
            ConnectionError,
            asyncio.IncompleteReadError,
            ssl.SSLError,
        ):
            return
        finally:
            self.connections.discard(writer)
            writer.close()

    async def _headers(self, reader: asyncio.StreamReader) -> dict[str, str]:
        headers: dict[str, str] = {}
        while True:
            line = await asyncio.wait_for(reader.readline(), IDLE_SECONDS)
            if line in (b"\r\n", b"\n", b""):
                return headers
            key, _, value = line.decode("latin-1").partition(":")
            headers[key.strip().lower()] = value.strip()

    async def _respond(self, request: Request) -> tuple[str, str, bytes]:
        try:
            if request.path in ("/healthz", "/readyz", "/livez"):
                text = "[+]ping ok\nreadyz check passed\n" if request.param("verbose") else "ok"
                return "200 OK", "text/plain; charset=utf-8", text.encode()
            document = await self._route(request)
            if "as=Table" in request.headers.get("accept", "") and document.get("kind") != "Status":
                document = table(request, document)
            return "200 OK", "application/json", json.dumps(document).encode()
        except HttpError as exc:
            status = {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": str(exc),
                "reason": exc.reason,
                "details": exc.details,
                "code": exc.code,
            }
            phrase = {403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed"}
            return (
                f"{exc.code} {phrase.get(exc.code, 'Error')}",
                "application/json",
                json.dumps(status).encode(),
            )

    # -- routing -------------------------------------------------------------------------

    async def _route(self, request: Request) -> dict[str, Any]:
        discovery = self._discovery(request.path)
        if discovery is not None:
            return discovery
        parts = request.path.strip("/").split("/")
        if parts[:2] == ["api", "v1"]:
            rest, group = parts[2:], ""
        elif parts[:3] == ["apis", "apps", "v1"]:
            rest, group = parts[3:], "apps"
        else:
            raise HttpError(404, "NotFound", "the server could not find the requested resource")
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 2:
            raise HttpError(404, "NotFound", "the server could not find the requested resource")
        resource = next((r for r in RESOURCES if r.name == rest[0] and r.group == group), None)
        if resource is None or (namespace and not resource.namespaced):
            raise HttpError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) == 2 else None
        verb = {"GET": "get" if name else "list", "DELETE": "delete"}.get(request.method, "")
        self._authorize(request, verb, resource, namespace, name)
        if request.param("watch") in ("true", "1"):
            raise HttpError(405, "MethodNotAllowed", "the lab API does not serve watches")
        if verb not in resource.verbs:
            raise HttpError(
                405, "MethodNotAllowed", f"the server does not allow this method on {resource.name}"
            )
        if verb == "delete":
            return await self._delete(resource, namespace, name or "")
        objects = [
            o
            for o in self._objects(resource)
            if namespace is None or o["metadata"].get("namespace") == namespace
        ]
        if name is not None:
            found = next((o for o in objects if o["metadata"]["name"] == name), None)
            if found is None:
                raise _not_found(resource, name)
            return found
        objects = [o for o in objects if _selected(o, request)]
        return {
            "kind": f"{resource.kind}List",
            "apiVersion": resource.group_version,
            "metadata": {"resourceVersion": str(self.state.resource_version)},
            "items": objects,
        }

    def _objects(self, resource: Resource) -> list[dict[str, Any]]:
        state = self.state
        makers: dict[str, Callable[[], list[dict[str, Any]]]] = {
            "nodes": state.nodes,
            "pods": state.kube_system_pods,
            "services": lambda: [state.kubernetes_service()],
            "endpoints": lambda: [
                state.kubernetes_endpoints([state.spec.nodes[0].address] if self.server else [])
            ],
            "events": lambda: list(state.events),
            "daemonsets": state.daemonset_objects,
        }
        return makers[resource.name]()

    async def _delete(self, resource: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        deleted = await self.state.delete_pod(name) if namespace == KUBE_SYSTEM else None
        if deleted is None:
            raise _not_found(resource, name)
        return deleted

    def _authorize(
        self,
        request: Request,
        verb: str,
        resource: Resource,
        namespace: str | None,
        name: str | None,
    ) -> None:
        if ADMIN_GROUPS.intersection(request.groups):
            return
        if NODE_READERS in request.groups and resource.name == "nodes" and verb in ("get", "list"):
            return
        subject = f'{resource.name} "{name}"' if name else resource.name
        scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
        raise HttpError(
            403,
            "Forbidden",
            f'{subject} is forbidden: User "{request.user}" cannot {verb} resource '
            f'"{resource.name}" in API group "{resource.group}" {scope}',
            {"name": name, "group": resource.group, "kind": resource.name}
            if name
            else {"group": resource.group, "kind": resource.name},
        )

    def _discovery(self, path: str) -> dict[str, Any] | None:
        address = f"{self.address}:{KUBE_API_PORT}"
        if path == "/version":
            major, minor = LAB_KUBELET_VERSION.lstrip("v").split(".")[:2]
            return {
                "major": major,
                "minor": minor,
                "gitVersion": LAB_KUBELET_VERSION,
                "platform": "linux/amd64",
            }
        if path == "/api":
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": address}
                ],
            }
        apps = {"groupVersion": "apps/v1", "version": "v1"}
        apps_group = {"name": "apps", "versions": [apps], "preferredVersion": apps}
        if path == "/apis":
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [apps_group]}
        if path == "/apis/apps":
            return {"kind": "APIGroup", "apiVersion": "v1", **apps_group}
        for group_version in ("v1", "apps/v1"):
            prefix = "/api/v1" if group_version == "v1" else "/apis/apps/v1"
            if path == prefix:
                return {
                    "kind": "APIResourceList",
                    "apiVersion": "v1",
                    "groupVersion": group_version,
                    "resources": [
                        {
                            "name": r.name,
                            "singularName": r.kind.lower(),
                            "namespaced": r.namespaced,
                            "kind": r.kind,
                            "verbs": list(r.verbs),
                            "shortNames": list(r.short_names),
                        }
                        for r in RESOURCES
                        if r.group_version == group_version
                    ],
                }
        return None


def _not_found(resource: Resource, name: str) -> HttpError:
    return HttpError(
        404,
        "NotFound",
        f'{resource.name} "{name}" not found',
        {"name": name, "group": resource.group, "kind": resource.name},
    )


def _http_date() -> str:
    return dt.datetime.now(dt.UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


# -- selectors ---------------------------------------------------------------------------

FIELDS: dict[str, Callable[[dict[str, Any]], str]] = {
    "metadata.name": lambda o: o["metadata"]["name"],
    "metadata.namespace": lambda o: o["metadata"].get("namespace", ""),
    "spec.nodeName": lambda o: o.get("spec", {}).get("nodeName", ""),
    "status.phase": lambda o: o.get("status", {}).get("phase", ""),
    "type": lambda o: o.get("type", ""),
    "involvedObject.name": lambda o: o.get("involvedObject", {}).get("name", ""),
}


def _selected(document: dict[str, Any], request: Request) -> bool:
    """Equality label selectors (`k=v`, `k!=v`, `k`) and field selectors, comma = and."""
    labels = document["metadata"].get("labels") or {}
    for term in filter(None, request.param("labelSelector").split(",")):
        key, negated, value = _term(term)
        if value is None:
            if (key in labels) == negated:
                return False
        elif (labels.get(key) == value) == negated:
            return False
    for term in filter(None, request.param("fieldSelector").split(",")):
        key, negated, value = _term(term)
        getter = FIELDS.get(key)
        if getter is None:
            raise HttpError(400, "BadRequest", f'field label not supported: "{key}"')
        if (getter(document) == value) == negated:
            return False
    return True


def _term(term: str) -> tuple[str, bool, str | None]:
    if "!=" in term:
        key, value = term.split("!=", 1)
        return key.strip(), True, value.strip()
    if "=" in term:
        key, value = term.replace("==", "=").split("=", 1)
        return key.strip(), False, value.strip()
    return term.strip(), False, None


# -- server-side printing (what `kubectl get` shows) --------------------------------------


def _age(document: dict[str, Any]) -> str:
    created = document["metadata"].get("creationTimestamp")
    if not created:
        return "<unknown>"
    seconds = int(
        (
            dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
        ).total_seconds()
    )
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _node_cells(o: dict[str, Any]) -> list[Any]:
    ready = next(c for c in o["status"]["conditions"] if c["type"] == "Ready")
    roles = sorted(
        k.split("/", 1)[1]
        for k in o["metadata"]["labels"]
        if k.startswith("node-role.kubernetes.io/")
    )
    internal = next(a["address"] for a in o["status"]["addresses"] if a["type"] == "InternalIP")
    info = o["status"]["nodeInfo"]
    return [
        o["metadata"]["name"],
        {"True": "Ready", "False": "NotReady"}.get(ready["status"], "Unknown"),
        ",".join(roles) or "<none>",
        _age(o),
        info["kubeletVersion"],
        internal,
        "<none>",
        info["osImage"],
        info["kernelVersion"],
        info["containerRuntimeVersion"],
    ]


def _pod_cells(o: dict[str, Any]) -> list[Any]:
    statuses = o["status"]["containerStatuses"]
    ready = sum(1 for c in statuses if c["ready"])
    status = o["status"]["phase"]
    for container in statuses:
        waiting = container["state"].get("waiting")
        if waiting:
            status = waiting["reason"]
    if o["metadata"].get("deletionTimestamp"):
        status = "Terminating"
    return [
        o["metadata"]["name"],
        f"{ready}/{len(statuses)}",
        status,
        sum(c["restartCount"] for c in statuses),
        _age(o),
        o["status"]["podIP"],
        o["spec"]["nodeName"],
        "<none>",
        "<none>",
    ]


def _daemonset_cells(o: dict[str, Any]) -> list[Any]:
    s = o["status"]
    containers = o["spec"]["template"]["spec"]["containers"]
    return [
        o["metadata"]["name"],
        s["desiredNumberScheduled"],
        s["currentNumberScheduled"],
        s["numberReady"],
        s["updatedNumberScheduled"],
        s["numberAvailable"],
        "<none>",
        _age(o),
        ",".join(c["name"] for c in containers),
        ",".join(c["image"] for c in containers),
        ",".join(f"{k}={v}" for k, v in o["spec"]["selector"]["matchLabels"].items()),
    ]


def _endpoints_cells(o: dict[str, Any]) -> list[Any]:
    addresses = [
        f"{a['ip']}:{p['port']}" for s in o["subsets"] for a in s["addresses"] for p in s["ports"]
    ]
    return [o["metadata"]["name"], ",".join(addresses) or "<none>", _age(o)]


def _name_cells(o: dict[str, Any]) -> list[Any]:
    return [o["metadata"]["name"], _age(o)]


def _columns(*names: str, wide: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "type": "integer"
            if name in ("Desired", "Current", "Available", "Restarts")
            else "string",
            "format": "name" if name == "Name" else "",
            "description": name,
            "priority": 1 if name in wide else 0,
        }
        for name in names
    ]


PRINTERS: dict[str, tuple[list[dict[str, Any]], Callable[[dict[str, Any]], list[Any]]]] = {
    "Node": (
        _columns(
            "Name",
            "Status",
            "Roles",
            "Age",
            "Version",
            "Internal-IP",
            "External-IP",
            "OS-Image",
            "Kernel-Version",
            "Container-Runtime",
            wide=("Internal-IP", "External-IP", "OS-Image", "Kernel-Version", "Container-Runtime"),
        ),
        _node_cells,
    ),
    "Pod": (
        _columns(
            "Name",
            "Ready",
            "Status",
            "Restarts",
            "Age",
            "IP",
            "Node",
            "Nominated Node",
            "Readiness Gates",
            wide=("IP", "Node", "Nominated Node", "Readiness Gates"),
        ),
        _pod_cells,
    ),
    "DaemonSet": (
        _columns(
            "Name",
            "Desired",
            "Current",
            "Ready",
            "Up-to-date",
            "Available",
            "Node Selector",
            "Age",
            "Containers",
            "Images",
            "Selector",
            wide=("Containers", "Images", "Selector"),
        ),
        _daemonset_cells,
    ),
    "Endpoints": (_columns("Name", "Endpoints", "Age"), _endpoints_cells),
}


def table(request: Request, document: dict[str, Any]) -> dict[str, Any]:
    """A meta.k8s.io/v1 Table of a list or one object, as kube-apiserver prints them."""
    items = document.get("items", [document])
    kind = document["kind"].removesuffix("List")
    columns, cells = PRINTERS.get(kind, (_columns("Name", "Age"), _name_cells))
    include = request.param("includeObject") or "Metadata"

    def row_object(o: dict[str, Any]) -> dict[str, Any] | None:
        if include == "None":
            return None
        if include == "Object":
            return o
        return {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": o["metadata"],
        }

    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": document.get("metadata", {}).get("resourceVersion", "")},
        "columnDefinitions": columns,
        "rows": [{"cells": cells(o), "object": row_object(o)} for o in items],
    }
