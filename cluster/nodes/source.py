"""Collects every node's part of a snapshot, all nodes at once, each under its own deadline.

Per node the reads fan out too (manifests, pki/, kubeconfigs, net.d and a few commands go over
one connection concurrently), so a refresh costs about the slowest node's few round trips. A
node that cannot be reached, or does not finish within its deadline, becomes an unreachable
`NodeState` carrying the error, and the other nodes' states are current regardless.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time
from collections.abc import Iterable

from cluster.nodes.access import DirEntry, NodeAccess, NodeError
from cluster.nodes.model import (
    CNI_DIR,
    EXPECTED_COMPONENTS,
    KUBERNETES_DIR,
    MANIFESTS_DIR,
    PKI_DIR,
    Certificate,
    CniFile,
    CniState,
    ManifestFile,
    NodeState,
    StaticPod,
)
from cluster.nodes.parse import (
    FileRead,
    Manifest,
    build_certificates,
    image_version,
    is_cni_config,
    kubeconfig_server,
    parse_cni_config,
    parse_epoch,
    parse_ip_addresses,
    parse_kubeconfig,
    parse_manifest,
)
from cluster.nodes.pool import NodePool

KUBECONFIGS = (
    "admin.conf",
    "super-admin.conf",
    "kubelet.conf",
    "controller-manager.conf",
    "scheduler.conf",
)
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
MAX_PKI_DEPTH = 4
# Flags worth a glance per component: where it advertises itself and listens.
KEY_FLAGS = {
    "etcd": ("name", "advertise-client-urls", "initial-advertise-peer-urls", "data-dir"),
    "kube-apiserver": ("advertise-address", "secure-port", "etcd-servers"),
    "kube-controller-manager": ("bind-address", "secure-port"),
    "kube-scheduler": ("bind-address", "secure-port"),
}
LAB_PODS_COMMAND = ("kcockpit-lab-pods",)
CRICTL_COMMAND = ("crictl", "ps", "-o", "json")


class NodeSource:
    """Reads all nodes of a pool; remembers per node which runtime evidence answers."""

    def __init__(self, pool: NodePool) -> None:
        self.pool = pool
        self._pod_probe: dict[str, tuple[str, ...]] = {}

    async def collect(self) -> tuple[NodeState, ...]:
        return tuple(await asyncio.gather(*(self.collect_node(a) for a in self.pool)))

    async def collect_node(self, access: NodeAccess) -> NodeState:
        deadline = access.timeout * 2  # connect, then a few concurrent rounds of reads
        try:
            return await asyncio.wait_for(self._read_node(access), deadline)
        except TimeoutError:
            error = f"{access.name}: node did not answer within {deadline:g} s"
        except NodeError as exc:
            error = str(exc)
        return NodeState(access.name, access.address, reachable=False, error=error)

    async def _read_node(self, access: NodeAccess) -> NodeState:
        await access.connect()
        kubernetes_dir = await access.list_dir(KUBERNETES_DIR)
        identity, pods, certificates, cni = await asyncio.gather(
            self._identity(access),
            self._static_pods(access, kubernetes_dir),
            _certificates(access, {e.name for e in kubernetes_dir}),
            _cni(access),
        )
        hostname, addresses, offset = identity
        static_pods, extras, manifests_dir = pods
        return NodeState(
            name=access.name,
            address=access.address,
            reachable=True,
            hostname=hostname,
            addresses=addresses,
            clock_offset=offset,
            manifests_dir=manifests_dir,
            static_pods=static_pods,
            extra_manifests=extras,
            certificates=certificates,
            cni=cni,
            local=access.local,
        )

    async def _identity(
        self, access: NodeAccess
    ) -> tuple[str | None, tuple[str, ...], float | None]:
        started = time.time()
        hostname, ip, date = await asyncio.gather(
            access.run(["hostname"]),
            access.run(["ip", "-o", "addr", "show"]),
            access.run(["date", "+%s.%N"]),
        )
        finished = time.time()
        node_time = parse_epoch(date.stdout) if date.ok else None
        offset = node_time - (started + finished) / 2 if node_time is not None else None
        addresses = parse_ip_addresses(ip.stdout) if ip.ok else ()
        if _is_ip(access.address):
            addresses = tuple(dict.fromkeys((access.address, *addresses)))
        name = hostname.stdout.strip() if hostname.ok else None
        return name or None, addresses, offset

    async def _static_pods(
        self, access: NodeAccess, kubernetes_dir: Iterable[DirEntry]
    ) -> tuple[tuple[StaticPod, ...], tuple[ManifestFile, ...], bool]:
        entries = {e.name: e for e in kubernetes_dir}
        manifests_dir = entries.get("manifests") is not None and entries["manifests"].kind == "dir"
        siblings = sorted(
            name
            for name, e in entries.items()
            if name.startswith("manifests") and name != "manifests" and e.kind == "dir"
        )
        files = (
            [e for e in await access.list_dir(MANIFESTS_DIR) if not e.name.startswith(".")]
            if manifests_dir
            else []
        )
        reads = await asyncio.gather(
            *(_read(access, f"{MANIFESTS_DIR}/{e.name}") for e in files if e.kind != "dir")
        )
        parsed = {
            e.name: (parse_manifest(data) if isinstance(data, bytes) else Manifest(error=data))
            for e, data in zip((e for e in files if e.kind != "dir"), reads, strict=True)
        }
        sibling_files = await asyncio.gather(
            *(access.list_dir(f"{KUBERNETES_DIR}/{s}") for s in siblings), return_exceptions=True
        )
        moved: dict[str, str] = {}  # manifest file name -> where it is now
        for sibling, listing in zip(siblings, sibling_files, strict=True):
            if not isinstance(listing, BaseException):
                for entry in listing:
                    moved.setdefault(entry.name, f"{KUBERNETES_DIR}/{sibling}/{entry.name}")
        for name in entries:  # a single manifest moved up next to manifests/
            moved.setdefault(name, f"{KUBERNETES_DIR}/{name}")
        running = await self._running(access)
        pods, claimed = [], set()
        for component in EXPECTED_COMPONENTS:
            pod, file = _static_pod(component, parsed, moved, running)
            pods.append(pod)
            claimed |= {file} if file else set()
        extras = tuple(
            _extra(name, manifest, claimed, parsed)
            for name, manifest in sorted(parsed.items())
            if name not in claimed
        )
        extras += tuple(
            ManifestFile(e.name, stray=False, error="a directory (the kubelet ignores it)")
            for e in files
            if e.kind == "dir"
        )
        return tuple(pods), extras, manifests_dir

    async def _running(self, access: NodeAccess) -> RunningStates:
        """component -> (running, evidence), from crictl or, on a lab node, the lab kubelet."""
        probes = [self._pod_probe[access.name]] if access.name in self._pod_probe else []
        probes += [p for p in (CRICTL_COMMAND, LAB_PODS_COMMAND) if p not in probes]
        reasons = []
        for probe in probes:
            result = await access.run(list(probe))
            if result.ok:
                self._pod_probe[access.name] = probe
                return _crictl(result.stdout) if probe == CRICTL_COMMAND else _lab(result.stdout)
            reasons.append((result.stderr or result.stdout).strip()[:100] or probe[0])
        return {"": (None, f"unknown: {reasons[0]}")}


def _static_pod(
    component: str,
    parsed: dict[str, Manifest],
    moved: dict[str, str],
    running: RunningStates,
) -> tuple[StaticPod, str | None]:
    filename = f"{component}.yaml"
    if filename not in parsed:
        filename = next(
            (
                n
                for n, m in parsed.items()
                if m.pod_name == component and n.endswith(MANIFEST_SUFFIXES)
            ),
            filename,
        )
    manifest = parsed.get(filename)
    is_running, evidence = running.get(component) or running.get("", (False, ""))
    if manifest is None:
        where = moved.get(f"{component}.yaml")
        state = "moved" if where else "missing"
        return StaticPod(
            component, state, moved_to=where, running=is_running, evidence=evidence
        ), None
    path = f"{MANIFESTS_DIR}/{filename}"
    if manifest.error:
        return StaticPod(
            component, "invalid", path, running=is_running, evidence=evidence, error=manifest.error
        ), filename
    flags = tuple((k, v) for k in KEY_FLAGS[component] if (v := manifest.flag(k)) is not None)
    return StaticPod(
        component,
        "present",
        path,
        image=manifest.image,
        version=image_version(manifest.image),
        flags=flags,
        running=is_running,
        evidence=evidence,
    ), filename


def _extra(
    name: str, manifest: Manifest, claimed: set[str], parsed: dict[str, Manifest]
) -> ManifestFile:
    """An extra file: stray when it looks like a backup copy or duplicates a component's pod."""
    duplicate = manifest.pod_name in EXPECTED_COMPONENTS and any(
        parsed[c].pod_name == manifest.pod_name for c in claimed
    )
    stray = not name.endswith(MANIFEST_SUFFIXES) or name.endswith("~") or duplicate
    return ManifestFile(name, stray=stray, pod_name=manifest.pod_name, error=manifest.error)


RunningStates = dict[str, tuple[bool | None, str]]  # component -> (running, evidence)


def _json_items(stdout: str, key: str) -> list[dict] | None:
    try:
        items = json.loads(stdout).get(key) or []
    except (ValueError, AttributeError):
        return None
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else None


def _crictl(stdout: str) -> RunningStates:
    containers = _json_items(stdout, "containers")
    if containers is None:
        return {"": (None, "unknown: crictl printed no JSON")}
    states: RunningStates = {"": (False, "crictl: no running container")}
    for container in containers:
        name = str((container.get("metadata") or {}).get("name", ""))
        if container.get("state") == "CONTAINER_RUNNING":
            states[name] = (True, "crictl: container running")
    return states


def _lab(stdout: str) -> RunningStates:
    pods = _json_items(stdout, "pods")
    if pods is None:
        return {"": (None, "unknown: lab kubelet state unreadable")}
    states: RunningStates = {"": (False, "lab kubelet: no such pod")}
    for pod in pods:
        component, note = str(pod.get("component")), str(pod.get("note") or "")
        if pod.get("state") == "running":
            states[component] = (True, f"lab kubelet: running (pid {pod.get('pid')})")
        elif "no binary" in note:
            states[component] = (None, "lab kubelet: manifest only, no binary")
        else:
            states[component] = (False, f"lab kubelet: stopped {note}".strip())
    return states


async def _read(access: NodeAccess, path: str) -> FileRead:
    try:
        return await access.read_file(path)
    except NodeError as exc:
        if exc.connection:
            raise
        return str(exc).removeprefix(f"{path}: ")  # the row or finding names the file already


async def _walk(access: NodeAccess, directory: str, depth: int = 0) -> list[str]:
    """Certificate files below `directory`; symlinked directories are not followed (loops)."""
    found: list[str] = []
    for entry in await access.list_dir(directory):
        path = f"{directory}/{entry.name}"
        if entry.kind == "dir" and depth < MAX_PKI_DEPTH:
            found += await _walk(access, path, depth + 1)
        elif entry.kind in ("file", "symlink") and entry.name.endswith(".crt"):
            found.append(path)
    return found


async def _certificates(
    access: NodeAccess, kubernetes_entries: set[str]
) -> tuple[Certificate, ...]:
    try:
        paths = await _walk(access, PKI_DIR) if "pki" in kubernetes_entries else []
    except NodeError as exc:
        if exc.connection:
            raise
        paths = []
    kubeconfig_paths = [f"{KUBERNETES_DIR}/{n}" for n in KUBECONFIGS if n in kubernetes_entries]
    contents = await asyncio.gather(*(_read(access, p) for p in [*paths, *kubeconfig_paths]))
    pki = dict(zip(paths, contents[: len(paths)], strict=True))
    kubeconfigs = dict(zip(kubeconfig_paths, contents[len(paths) :], strict=True))
    wanted = {
        ref
        for content in kubeconfigs.values()
        if isinstance(content, bytes) and (ref := parse_kubeconfig(content).cert_path)
    }
    referenced = dict(
        zip(wanted, await asyncio.gather(*(_read(access, p) for p in wanted)), strict=True)
    )
    return build_certificates(pki, kubeconfigs, referenced)


async def _cni(access: NodeAccess) -> CniState:
    try:
        entries = await access.list_dir(CNI_DIR)
    except NodeError as exc:
        if exc.connection:
            raise
        return CniState(error=str(exc))
    return CniState(files=tuple(await asyncio.gather(*(_cni_file(access, e) for e in entries))))


async def _cni_file(access: NodeAccess, entry: DirEntry) -> CniFile:
    path = f"{CNI_DIR}/{entry.name}"
    if is_cni_config(entry.name):
        if entry.kind == "dir":
            return CniFile(entry.name, entry.kind, entry.size, is_config=True, error="a directory")
        content = await _read(access, path)
        if isinstance(content, str):
            return CniFile(entry.name, entry.kind, entry.size, is_config=True, error=content)
        return parse_cni_config(entry.name, content, entry.kind, entry.size)
    if "kubeconfig" in entry.name and entry.kind != "dir":
        content = await _read(access, path)
        server = kubeconfig_server(content) if isinstance(content, bytes) else None
        error = content if isinstance(content, str) else None
        return CniFile(entry.name, entry.kind, entry.size, server=server, error=error)
    return CniFile(entry.name, entry.kind, entry.size)


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
