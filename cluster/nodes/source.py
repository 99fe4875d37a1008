"""Collects every node's part of a snapshot, all nodes at once, each under its own deadline.

Per node the reads fan out too (manifests, pki/, kubeconfigs, net.d and a few commands go over
one connection concurrently), so a refresh costs about the slowest node's few round trips. A
node that cannot be reached, or does not finish within its deadline, becomes an unreachable
`NodeState` carrying the error, and the other nodes' states are current regardless.

A warm refresh re-lists the directories but re-reads only files whose size or modification
time changed (`FileCache`): on a big cluster the SSH servers would otherwise spend most of a
refresh sending the same certificates again, and 30 nodes would cost 10x what 3 do. For the
same reason a node's hostname and addresses are asked again only every `IDENTITY_SECONDS` or
after the node was unreachable; its clock and the static pods' running state every time.
Parsing is memoised on the bytes read (YAML and X.509 parsing of unchanged files would otherwise
be most of a warm refresh's CPU).
"""

from __future__ import annotations

import asyncio
import functools
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
    Filesystem,
    Listener,
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
    parse_cni_config,
    parse_df,
    parse_epoch,
    parse_ip_addresses,
    parse_kubeconfig,
    parse_manifest,
    parse_ss_listeners,
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
    "etcd": (
        "name",
        "advertise-client-urls",
        "initial-advertise-peer-urls",
        "data-dir",
        "quota-backend-bytes",
    ),
    "kube-apiserver": ("advertise-address", "secure-port", "etcd-servers"),
    "kube-controller-manager": ("bind-address", "secure-port"),
    "kube-scheduler": ("bind-address", "secure-port"),
}
LAB_PODS_COMMAND = ("kcockpit-lab-pods",)
DISK_PATHS = ("/var/lib/etcd", "/")
SS_COMMAND = ("ss", "-Hltnp")
CRICTL_COMMAND = ("crictl", "ps", "-o", "json")
# A file modified this recently may change again within its mtime's granularity: read it anyway.
RACY_SECONDS = 2.0
IDENTITY_SECONDS = 30.0

Identity = tuple[str | None, tuple[str, ...]]  # hostname, addresses


class FileCache:
    """One node's file contents keyed by path, valid while the listing's size and mtime match."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[int, float, bytes]] = {}
        self.clock_offset = 0.0  # node clock minus ours, from the last clock probe

    def _trusted(self, entry: DirEntry | None) -> DirEntry | None:
        if entry is None or entry.kind != "file" or entry.size is None or entry.mtime is None:
            return None  # symlinks' targets can change behind an unchanged link
        node_now = time.time() + self.clock_offset
        return entry if entry.mtime < node_now - RACY_SECONDS else None

    async def read(self, access: NodeAccess, path: str, entry: DirEntry | None = None) -> FileRead:
        trusted = self._trusted(entry)
        if trusted is not None:
            cached = self._entries.get(path)
            if cached is not None and cached[:2] == (trusted.size, trusted.mtime):
                return cached[2]
        content = await _read(access, path)
        if trusted is not None and isinstance(content, bytes):
            self._entries[path] = (trusted.size or 0, trusted.mtime or 0.0, content)
        else:
            self._entries.pop(path, None)
        return content


class NodeSource:
    """Reads all nodes of a pool; remembers per node which runtime evidence answers."""

    def __init__(self, pool: NodePool) -> None:
        self.pool = pool
        self._pod_probe: dict[str, tuple[str, ...]] = {}
        self._files: dict[str, FileCache] = {}
        self._identities: dict[str, tuple[float, Identity]] = {}  # name -> (asked at, answer)

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
        self._identities.pop(access.name, None)  # it may come back as another machine
        return NodeState(access.name, access.address, reachable=False, error=error)

    async def _read_node(self, access: NodeAccess) -> NodeState:
        await access.connect()
        files = self._files.setdefault(access.name, FileCache())
        kubernetes_dir = await access.list_dir(KUBERNETES_DIR)
        identity, pods, certificates, cni, filesystems, listeners = await asyncio.gather(
            self._identity(access),
            self._static_pods(access, kubernetes_dir, files),
            _certificates(access, {e.name: e for e in kubernetes_dir}, files),
            _cni(access, files),
            _filesystems(access),
            _listeners(access),
        )
        hostname, addresses, offset = identity
        if offset is not None:
            files.clock_offset = offset
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
            filesystems=filesystems,
            listeners=listeners,
        )

    async def _identity(
        self, access: NodeAccess
    ) -> tuple[str | None, tuple[str, ...], float | None]:
        (hostname, addresses), offset = await asyncio.gather(
            self._names(access), _clock_offset(access)
        )
        return hostname, addresses, offset

    async def _names(self, access: NodeAccess) -> Identity:
        asked_at, identity = self._identities.get(access.name, (0.0, None))
        if identity is not None and time.monotonic() - asked_at < IDENTITY_SECONDS:
            return identity
        hostname, ip = await asyncio.gather(
            access.run(["hostname"]), access.run(["ip", "-o", "addr", "show"])
        )
        addresses = parse_ip_addresses(ip.stdout) if ip.ok else ()
        if _is_ip(access.address):
            addresses = tuple(dict.fromkeys((access.address, *addresses)))
        name = hostname.stdout.strip() if hostname.ok else None
        identity = (name or None, addresses)
        self._identities[access.name] = (time.monotonic(), identity)
        return identity

    async def _static_pods(
        self, access: NodeAccess, kubernetes_dir: Iterable[DirEntry], cache: FileCache
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
            *(cache.read(access, f"{MANIFESTS_DIR}/{e.name}", e) for e in files if e.kind != "dir")
        )
        parsed = {
            e.name: (_manifest(data) if isinstance(data, bytes) else Manifest(error=data))
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


# Parsers are pure and their results immutable, so unchanged bytes need parsing once.
_manifest = functools.lru_cache(maxsize=1024)(parse_manifest)
_kubeconfig = functools.lru_cache(maxsize=1024)(parse_kubeconfig)


@functools.lru_cache(maxsize=256)
def _certificate_set(
    pki: tuple[tuple[str, FileRead], ...],
    kubeconfigs: tuple[tuple[str, FileRead], ...],
    referenced: tuple[tuple[str, FileRead], ...],
) -> tuple[Certificate, ...]:
    return build_certificates(dict(pki), dict(kubeconfigs), dict(referenced))


async def _clock_offset(access: NodeAccess) -> float | None:
    """Node clock minus ours, taking the middle of the round trip as the moment it answered."""
    started = time.time()
    date = await access.run(["date", "+%s.%N"])
    finished = time.time()
    node_time = parse_epoch(date.stdout) if date.ok else None
    return node_time - (started + finished) / 2 if node_time is not None else None


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
        metadata = container.get("metadata")
        name = str(metadata.get("name", "")) if isinstance(metadata, dict) else ""
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


async def _walk(access: NodeAccess, directory: str, depth: int = 0) -> dict[str, DirEntry]:
    """Certificate files below `directory`; symlinked directories are not followed (loops)."""
    found: dict[str, DirEntry] = {}
    for entry in await access.list_dir(directory):
        path = f"{directory}/{entry.name}"
        if entry.kind == "dir" and depth < MAX_PKI_DEPTH:
            found |= await _walk(access, path, depth + 1)
        elif entry.kind in ("file", "symlink") and entry.name.endswith(".crt"):
            found[path] = entry
    return found


async def _certificates(
    access: NodeAccess, kubernetes_entries: dict[str, DirEntry], cache: FileCache
) -> tuple[Certificate, ...]:
    try:
        listed = await _walk(access, PKI_DIR) if "pki" in kubernetes_entries else {}
    except NodeError as exc:
        if exc.connection:
            raise
        listed = {}
    paths = list(listed)
    kubeconfigs_listed = {
        f"{KUBERNETES_DIR}/{n}": kubernetes_entries[n]
        for n in KUBECONFIGS
        if n in kubernetes_entries
    }
    kubeconfig_paths = list(kubeconfigs_listed)
    contents = await asyncio.gather(
        *(cache.read(access, p, e) for p, e in (listed | kubeconfigs_listed).items())
    )
    pki = dict(zip(paths, contents[: len(paths)], strict=True))
    kubeconfigs = dict(zip(kubeconfig_paths, contents[len(paths) :], strict=True))
    wanted = {
        ref
        for content in kubeconfigs.values()
        if isinstance(content, bytes) and (ref := _kubeconfig(content).cert_path)
    }
    referenced = dict(
        zip(wanted, await asyncio.gather(*(_read(access, p) for p in wanted)), strict=True)
    )
    return _certificate_set(
        tuple(pki.items()), tuple(kubeconfigs.items()), tuple(referenced.items())
    )


async def _listeners(access: NodeAccess) -> tuple[Listener, ...]:
    """Who holds which TCP port (process names need root on a real node; without them the
    port-conflict rule stays silent rather than guess)."""
    answer = await access.run(list(SS_COMMAND))
    return parse_ss_listeners(answer.stdout) if answer.ok else ()


async def _filesystems(access: NodeAccess) -> tuple[Filesystem, ...]:
    """Fill levels of the paths the control plane lives on (missing paths are skipped)."""
    answers = await asyncio.gather(*(access.run(["df", "-P", p]) for p in DISK_PATHS))
    found = (parse_df(path, a.stdout) for path, a in zip(DISK_PATHS, answers, strict=True))
    return tuple(fs for fs in found if fs is not None)


async def _cni(access: NodeAccess, cache: FileCache) -> CniState:
    try:
        entries = await access.list_dir(CNI_DIR)
    except NodeError as exc:
        if exc.connection:
            raise
        return CniState(error=str(exc))
    return CniState(
        files=tuple(await asyncio.gather(*(_cni_file(access, e, cache) for e in entries)))
    )


async def _cni_file(access: NodeAccess, entry: DirEntry, cache: FileCache) -> CniFile:
    path = f"{CNI_DIR}/{entry.name}"
    if is_cni_config(entry.name):
        if entry.kind == "dir":
            return CniFile(entry.name, entry.kind, entry.size, is_config=True, error="a directory")
        content = await cache.read(access, path, entry)
        if isinstance(content, str):
            return CniFile(entry.name, entry.kind, entry.size, is_config=True, error=content)
        return parse_cni_config(entry.name, content, entry.kind, entry.size)
    if "kubeconfig" in entry.name and entry.kind != "dir":
        content = await cache.read(access, path, entry)
        server = _kubeconfig(content).server if isinstance(content, bytes) else None
        error = content if isinstance(content, str) else None
        return CniFile(entry.name, entry.kind, entry.size, server=server, error=error)
    return CniFile(entry.name, entry.kind, entry.size)


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
