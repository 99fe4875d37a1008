"""Collects every node's part of a snapshot, each node read on its own, under its own deadline.

Per node a read is one survey (`NodeAccess.survey`): the trees under /etc/kubernetes and
/etc/cni/net.d listed with sizes and mtimes, and the few read-only commands (clock, disks,
listeners, runtime, etcd's health), in one round trip over SSH. Only files whose size or
modification time changed are then read (`FileCache`): on a big cluster the SSH servers would
otherwise spend most of a refresh sending the same certificates again, and 30 nodes would cost
10x what 3 do. For the same reason a node's hostname and addresses are asked again only every
`IDENTITY_SECONDS` or after the node was unreachable. A node that cannot be reached, or does
not finish within its deadline, becomes an unreachable `NodeState` carrying the error. Parsing
is memoised on the bytes read (YAML and X.509 parsing of unchanged files would otherwise be most
of a warm refresh's CPU).

Each node is a `LatestRead` (cluster.sources). A refresh does not wait for the nodes it
already knows (`read(fresh=False)`): it starts a read of every node not being read already and
takes each node's latest state. So a slow or frozen node never holds the screen (the etcd rows
and the other nodes go on updating): it keeps its previous state, marked slow, until its read's
deadline passes, then shows unreachable; and a refresh costs the same for 30 nodes as for 3,
each node's data being at most one refresh older than its read. Whoever must judge by the
present (a guard, a verification, the operator's `r`, a one-shot report) asks for `fresh`:
every node read anew, and waited for.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import ipaddress
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace

from cluster.nodes.access import (
    MAX_READ_BYTES,
    READABLE_KINDS,
    CommandResult,
    DirEntry,
    ErrorKind,
    Listing,
    NodeAccess,
    NodeError,
    Survey,
    SurveyAnswer,
    Tree,
    not_regular,
    too_large,
)
from cluster.nodes.model import (
    CNI_DIR,
    DENIED,
    ETCD_DATA_DIR,
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
    public_kubeconfig,
    public_pem,
)
from cluster.nodes.pool import NodePool
from cluster.nodes.running import (
    CRICTL_COMMAND,
    KUBEADM_HEALTH_URLS,
    RunningStates,
    crictl_states,
    health_command,
    health_url,
    health_words,
    observed,
)
from cluster.sources import LatestRead
from cluster.untrusted import neutralized

KUBECONFIGS = (
    "admin.conf",
    "super-admin.conf",
    "kubelet.conf",
    "controller-manager.conf",
    "scheduler.conf",
)
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
CERTIFICATE_SUFFIXES = (".crt", ".pem", ".cert")
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
DF_COMMANDS = (("df", "-P", ETCD_DATA_DIR), ("df", "-P", "/"))
SS_COMMAND = ("ss", "-Hltnp")
DATE_COMMAND = ("date", "+%s.%N")
IDENTITY_COMMANDS = (("hostname",), ("ip", "-o", "addr", "show"))
KUBERNETES_TREE = Tree(KUBERNETES_DIR, 2)  # manifests/ and its moved-away siblings
PKI_TREE = Tree(PKI_DIR, MAX_PKI_DEPTH + 1)
CNI_TREE = Tree(CNI_DIR, 1)
TREES = (KUBERNETES_TREE, PKI_TREE, CNI_TREE)
# A file modified this recently may change again within its mtime's granularity: read it anyway.
RACY_SECONDS = 2.0
IDENTITY_SECONDS = 30.0

Identity = tuple[str | None, tuple[str, ...]]  # hostname, addresses


class FileCache:
    """One node's file contents keyed by path, valid while the listing's size and mtime match.

    What is kept is only what the cockpit reads of a file (`public_part`: no private key or
    token survives the read), and a file that cannot be read or used is remembered as its
    error the same way, so a bad file costs one read, not one a refresh. Errors that a fix
    of the node's permissions or a race could change (permission, not found) are asked again.
    """

    def __init__(self) -> None:
        self._entries: dict[str, tuple[int, float, FileRead]] = {}
        self.clock_offset = 0.0  # node clock minus ours, from the last clock probe

    @staticmethod
    def _trusted(entry: DirEntry | None, node_now: float) -> DirEntry | None:
        if entry is None or entry.kind != "file" or entry.size is None or entry.mtime is None:
            return None  # symlinks' targets can change behind an unchanged link
        return entry if entry.mtime < node_now - RACY_SECONDS else None

    async def read(
        self, access: NodeAccess, listed: Mapping[str, DirEntry | None]
    ) -> dict[str, FileRead]:
        """Every listed file's content: unchanged ones from the cache, the rest in one survey
        (a file listed larger than the read limit is refused without reading it)."""
        contents: dict[str, FileRead] = {}
        node_now = time.time() + self.clock_offset
        for path, entry in listed.items():
            trusted = self._trusted(entry, node_now)
            cached = self._entries.get(path)
            if trusted is not None and cached and cached[:2] == (trusted.size, trusted.mtime):
                contents[path] = cached[2]
            elif entry is not None and (entry.size or 0) > MAX_READ_BYTES:
                contents[path] = _message(path, too_large(path, entry.size or 0, MAX_READ_BYTES))
        missing = tuple(path for path in listed if path not in contents)
        answer = await access.survey(Survey(reads=missing)) if missing else None
        for path in missing:
            assert answer is not None
            read = answer.files[path]
            content = (
                _message(path, read) if isinstance(read, NodeError) else public_part(path, read)
            )
            contents[path] = content
            trusted = self._trusted(listed[path], node_now)
            if trusted is not None and not (isinstance(read, NodeError) and read.kind in RETRIED):
                self._entries[path] = (trusted.size or 0, trusted.mtime or 0.0, content)
            else:
                self._entries.pop(path, None)
        return contents


RETRIED = frozenset({ErrorKind.PERMISSION, ErrorKind.NOT_FOUND})


def public_part(path: str, data: bytes) -> FileRead:
    """What the cockpit keeps of a file it read: kubeconfigs (kubeadm's and a CNI plugin's)
    lose their keys and tokens, PEM files every block but the certificates."""
    name = path.rpartition("/")[2]
    if name in KUBECONFIGS or ("kubeconfig" in name and not is_cni_config(name)):
        return public_kubeconfig(data)
    if name.endswith(CERTIFICATE_SUFFIXES):
        return public_pem(data)
    return data


def _message(path: str, error: NodeError) -> str:
    """A file's error as its row or finding shows it (they name the file already); a read the
    user was refused is DENIED, whichever way it was read."""
    return DENIED if error.kind is ErrorKind.PERMISSION else str(error).removeprefix(f"{path}: ")


class NodeSource:
    """Reads all nodes of a pool, each on its own; remembers per node its latest state and
    what tells whether its static pods run. A `Source` (cluster.sources) of the nodes' part.

    The static pods' evidence comes from the container runtime (crictl) when it answers, else
    from the node's listening sockets and etcd's health endpoint (cluster/nodes/running.py):
    health is asked at the URL the node's last read manifest names (kubeadm's before that),
    and not at all of a node whose crictl answered last time."""

    def __init__(self, pool: NodePool, interval: float = 0.0) -> None:
        self.pool = pool
        self.interval = interval  # a node's next read starts no sooner (the fleet's pace)
        self._runtime: set[str] = set()  # the nodes whose crictl answered last time
        self._health_urls: dict[str, dict[str, str]] = {}  # node -> component -> URL to ask
        self._files: dict[str, FileCache] = {}
        self._identities: dict[str, tuple[float, Identity]] = {}  # name -> (asked at, answer)
        self._reads: dict[str, LatestRead[NodeState]] = {}  # name -> its reads

    async def read(self, fresh: bool) -> tuple[NodeState, ...]:
        """Every node's state, in pool order. `fresh`: every node read from now on, waited for
        (each within its deadline). Otherwise each node's latest state while a new read of it
        runs on: only a node never read before is waited for."""
        reads = [self._node(access) for access in self.pool]
        if fresh:  # one read of a node at a time (they share its file cache): let it end
            await self.reads_done()
        else:  # the next read of every node not being read already, once its pace allows
            due = time.monotonic() - self.interval
            for read in reads:
                if read.began <= due:
                    read.start()
        # Only the reads latest() would wait for get a task: a warm refresh of 30 nodes makes none.
        await asyncio.gather(*(r.latest(fresh) for r in reads if fresh or r.value is None))
        states = (read.shown() for read in reads)
        return tuple(state for state in states if state is not None)  # None: closed meanwhile

    async def reads_done(self) -> None:
        """Until every read under way has ended (each ends by its deadline)."""
        await asyncio.gather(*(read.settled() for read in self._reads.values()))

    @property
    def all_read(self) -> bool:
        """Whether every node has been read once (a refresh then waits for none)."""
        return all(self._node(access).value is not None for access in self.pool)

    def _node(self, access: NodeAccess) -> LatestRead[NodeState]:
        read = self._reads.get(access.name)
        if read is None:

            def failed(exc: Exception) -> NodeState:
                error = f"{access.name}: reading the node failed: {exc!r}"
                return neutralized(
                    NodeState(access.name, access.address, reachable=False, error=error)
                )

            read = LatestRead(
                lambda: self._read_neutralized(access),
                failed,
                slow=lambda state, waited: replace(state, slow_for=waited),
            )
            self._reads[access.name] = read
        return read

    async def _read_neutralized(self, access: NodeAccess) -> NodeState:
        return neutralized(await self.collect_node(access))  # names, fields, errors are data

    def close(self) -> None:
        """Stops the reads in flight (before the pool's connections are closed)."""
        for read in self._reads.values():
            read.close()

    async def collect_node(self, access: NodeAccess) -> NodeState:
        deadline = access.timeout * 2  # connect, then a few concurrent rounds of reads
        try:
            async with asyncio.timeout(deadline):  # no inner task to orphan when cancelled
                return await self._read_node(access)
        except TimeoutError:
            error = f"{access.name}: node did not answer within {deadline:g} s"
        except NodeError as exc:
            error = str(exc)
        self._identities.pop(access.name, None)  # it may come back as another machine
        return NodeState(access.name, access.address, reachable=False, error=error)

    async def _read_node(self, access: NodeAccess) -> NodeState:
        await access.connect()
        files = self._files.setdefault(access.name, FileCache())
        identity = self._identities.get(access.name)
        identity_due = identity is None or time.monotonic() - identity[0] >= IDENTITY_SECONDS
        health = self._health_asked(access.name)
        survey = Survey(
            TREES,
            (
                DATE_COMMAND,
                *DF_COMMANDS,
                SS_COMMAND,
                CRICTL_COMMAND,
                *(health_command(url) for url in health.values()),
                *(IDENTITY_COMMANDS if identity_due else ()),
            ),
        )
        started = time.time()
        answer = await access.survey(survey)
        answered = time.time()
        offset = _clock_offset(answer.commands[DATE_COMMAND], started, answered)
        if offset is not None:
            files.clock_offset = offset
        kubernetes = answer.trees[KUBERNETES_TREE]
        if isinstance(kubernetes, NodeError):
            raise kubernetes
        if identity_due:
            identity = (time.monotonic(), self._identity(access, answer))
            self._identities[access.name] = identity
        assert identity is not None
        hostname, addresses = identity[1]
        runtime = self._runtime_states(access.name, answer)
        pki, kubeconfigs = _pki_files(answer.trees[PKI_TREE]), _kubeconfig_files(kubernetes)
        cni_listing = answer.trees[CNI_TREE]
        wanted = _manifest_files(kubernetes) | pki | kubeconfigs | _cni_files(cni_listing)
        contents = await files.read(access, wanted)  # every changed file in one exchange
        # Without a runtime's answer every pod's state is the sockets' (set just below).
        static_pods, extras, manifests_dir = _static_pods(
            kubernetes, contents, runtime or {}, access.components
        )
        if runtime is None:
            static_pods = self._observed(access.name, static_pods, contents, answer, health)
        certificates = await _certificates(access, pki, kubeconfigs, contents, files)
        cni = _cni(cni_listing, contents)
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
            filesystems=_filesystems(answer),
            listeners=_listeners(answer),
            read_at=dt.datetime.fromtimestamp(answered, dt.UTC),
            denied=_denied(answer, contents, certificates),
            sudo_refused=answer.sudo_refused,
        )

    @staticmethod
    def _identity(access: NodeAccess, answer: SurveyAnswer) -> Identity:
        hostname, ip = (answer.commands[c] for c in IDENTITY_COMMANDS)
        addresses = parse_ip_addresses(ip.stdout) if ip.ok else ()
        if _is_ip(access.address):
            addresses = tuple(dict.fromkeys((access.address, *addresses)))
        name = hostname.stdout.strip() if hostname.ok else None
        return name or None, addresses

    def _health_asked(self, node: str) -> dict[str, str]:
        """component -> the health URL this read asks (none where crictl tells)."""
        if node in self._runtime:
            return {}
        return self._health_urls.get(node, KUBEADM_HEALTH_URLS)

    def _runtime_states(self, node: str, answer: SurveyAnswer) -> RunningStates | None:
        """crictl's component -> (running, evidence), None when it did not answer (it is
        asked every time: a runtime installed later is found)."""
        result = answer.commands[CRICTL_COMMAND]
        if not result.ok:
            self._runtime.discard(node)
            return None
        self._runtime.add(node)
        return crictl_states(result.stdout)

    def _observed(
        self,
        node: str,
        pods: tuple[StaticPod, ...],
        contents: Mapping[str, FileRead],
        answer: SurveyAnswer,
        asked: Mapping[str, str],
    ) -> tuple[StaticPod, ...]:
        """The pods with what the node's sockets and health endpoints say; remembers the
        health URLs their manifests name, for the next read to ask (kubeadm's while a
        component has no manifest)."""
        manifests = {
            pod.component: _manifest(data)
            for pod in pods
            if pod.file and isinstance(data := contents.get(pod.file), bytes)
        }
        urls = {
            component: health_url(component, manifests[component])
            if component in manifests
            else default
            for component, default in KUBEADM_HEALTH_URLS.items()
        }
        self._health_urls[node] = {c: url for c, url in urls.items() if url}
        ss, listeners = answer.commands[SS_COMMAND], _listeners(answer)
        failed = (ss.stderr or ss.stdout).strip()[:100] or f"exited with {ss.exit_status}"
        states = []
        for pod in pods:
            url = asked.get(pod.component)
            words = None
            if url and url == urls.get(pod.component):  # asked where its manifest says
                words = health_words(answer.commands[health_command(url)])
            health = f"{url}: {words}" if words else None
            running, evidence = (
                observed(pod.component, manifests.get(pod.component), listeners, health)
                if ss.ok
                else (None, f"ss: {failed}")
            )
            states.append(replace(pod, running=running, evidence=evidence))
        return tuple(states)


def _manifests(kubernetes: Listing) -> tuple[bool, list[DirEntry]]:
    """(whether manifests/ is a directory, its entries but hidden ones)."""
    manifests = kubernetes.children(KUBERNETES_DIR).get("manifests")
    if manifests is None or manifests.kind != "dir":
        return False, []
    entries = kubernetes.children(MANIFESTS_DIR).values()
    return True, [e for e in entries if not e.name.startswith(".")]


def _manifest_files(kubernetes: Listing) -> dict[str, DirEntry]:
    return {
        f"{MANIFESTS_DIR}/{e.name}": e
        for e in _manifests(kubernetes)[1]
        if e.kind in READABLE_KINDS
    }


def _unopened(directory: str, entry: DirEntry) -> str:
    """Why a listed entry that is neither a directory nor readable was not read."""
    path = f"{directory}/{entry.name}"
    return _message(path, not_regular(path, entry.kind))


def _static_pods(
    kubernetes: Listing,
    contents: dict[str, FileRead],
    running: RunningStates,
    components: tuple[str, ...],
) -> tuple[tuple[StaticPod, ...], tuple[ManifestFile, ...], bool]:
    entries = kubernetes.children(KUBERNETES_DIR)
    manifests_dir, files = _manifests(kubernetes)
    denied = MANIFESTS_DIR in kubernetes.denied  # every manifest unknown: none is missing
    reads = {
        e.name: contents[f"{MANIFESTS_DIR}/{e.name}"]
        if e.kind in READABLE_KINDS
        else _unopened(MANIFESTS_DIR, e)
        for e in files
        if e.kind != "dir"
    }
    parsed = {
        name: _manifest(data) if isinstance(data, bytes) else Manifest(error=data)
        for name, data in reads.items()
    }
    siblings = sorted(
        name
        for name, e in entries.items()
        if name.startswith("manifests") and name != "manifests" and e.kind == "dir"
    )
    moved: dict[str, str] = {}  # manifest file name -> where it is now
    for sibling in siblings:
        for name in kubernetes.children(f"{KUBERNETES_DIR}/{sibling}"):
            moved.setdefault(name, f"{KUBERNETES_DIR}/{sibling}/{name}")
    for name in entries:  # a single manifest moved up next to manifests/
        moved.setdefault(name, f"{KUBERNETES_DIR}/{name}")
    pods, claimed = [], set()
    for component in components:
        pod, file = _static_pod(component, parsed, {} if denied else moved, running, denied)
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


def _clock_offset(date: CommandResult, started: float, finished: float) -> float | None:
    """Node clock minus ours, taking the middle of the round trip as the moment it answered."""
    node_time = parse_epoch(date.stdout) if date.ok else None
    return node_time - (started + finished) / 2 if node_time is not None else None


def _static_pod(
    component: str,
    parsed: dict[str, Manifest],
    moved: dict[str, str],
    running: RunningStates,
    denied: bool = False,
) -> tuple[StaticPod, str | None]:
    """The component's pod and the file that holds it; `denied`: manifests/ was not readable."""
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
        state = "denied" if denied else "moved" if where else "missing"
        return StaticPod(
            component, state, moved_to=where, running=is_running, evidence=evidence
        ), None
    path = f"{MANIFESTS_DIR}/{filename}"
    if manifest.error:
        state = "denied" if manifest.error == DENIED else "invalid"
        return StaticPod(
            component, state, path, running=is_running, evidence=evidence, error=manifest.error
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


def _denied(
    answer: SurveyAnswer, contents: Mapping[str, FileRead], certificates: Iterable[Certificate]
) -> tuple[str, ...]:
    """Every path the node's user was refused: trees, directories in them, files (a
    certificate's own file, or the one its kubeconfig points at)."""
    paths = {path for path, content in contents.items() if content == DENIED}
    paths |= {cert.path for cert in certificates if cert.error == DENIED}
    for tree, listing in answer.trees.items():
        if isinstance(listing, Listing):
            paths.update(listing.denied)
        elif listing.kind is ErrorKind.PERMISSION:
            paths.add(tree.path)
    return tuple(sorted(paths))


def _pki_files(pki: Listing | NodeError) -> dict[str, DirEntry]:
    """The .crt files below pki/ (symlinks included: their targets are read)."""
    listed = {} if isinstance(pki, NodeError) else pki
    return {
        path: entry
        for path, entry in listed.items()
        if entry.kind in ("file", "symlink") and entry.name.endswith(".crt")
    }


def _kubeconfig_files(kubernetes: Listing) -> dict[str, DirEntry]:
    """The kubeconfigs whose client certificates are certificates of the node too."""
    entries = kubernetes.children(KUBERNETES_DIR)
    return {f"{KUBERNETES_DIR}/{n}": entries[n] for n in KUBECONFIGS if n in entries}


async def _certificates(
    access: NodeAccess,
    pki_paths: Iterable[str],
    kubeconfig_paths: Iterable[str],
    contents: dict[str, FileRead],
    cache: FileCache,
) -> tuple[Certificate, ...]:
    pki = {path: contents[path] for path in pki_paths}
    kubeconfigs = {path: contents[path] for path in kubeconfig_paths}
    wanted = {
        ref
        for content in kubeconfigs.values()
        if isinstance(content, bytes) and (ref := _kubeconfig(content).cert_path)
    }
    referenced = await cache.read(access, dict.fromkeys(sorted(wanted)))  # never trusted
    return _certificate_set(
        tuple(pki.items()), tuple(kubeconfigs.items()), tuple(referenced.items())
    )


def _listeners(answer: SurveyAnswer) -> tuple[Listener, ...]:
    """Who holds which TCP port (process names need root on a real node; without them the
    port-conflict rule stays silent rather than guess)."""
    ss = answer.commands[SS_COMMAND]
    return parse_ss_listeners(ss.stdout) if ss.ok else ()


def _filesystems(answer: SurveyAnswer) -> tuple[Filesystem, ...]:
    """Fill levels of the paths the control plane lives on (missing paths are skipped)."""
    found = (parse_df(c[-1], answer.commands[c].stdout) for c in DF_COMMANDS)
    return tuple(fs for fs in found if fs is not None)


def _cni_files(listing: Listing | NodeError) -> dict[str, DirEntry]:
    """The files in net.d worth reading: configs and the kubeconfigs CNI plugins use."""
    if isinstance(listing, NodeError):
        return {}
    return {
        f"{CNI_DIR}/{e.name}": e
        for e in listing.children(CNI_DIR).values()
        if e.kind in READABLE_KINDS and (is_cni_config(e.name) or "kubeconfig" in e.name)
    }


def _cni(listing: Listing | NodeError, contents: dict[str, FileRead]) -> CniState:
    if isinstance(listing, NodeError):
        return CniState(error=str(listing))
    entries = listing.children(CNI_DIR).values()
    return CniState(files=tuple(_cni_file(e, contents.get(f"{CNI_DIR}/{e.name}")) for e in entries))


def _cni_file(entry: DirEntry, content: FileRead | None) -> CniFile:
    if entry.kind not in (*READABLE_KINDS, "dir"):
        content = _unopened(CNI_DIR, entry)
    if is_cni_config(entry.name):
        if entry.kind == "dir":
            return CniFile(entry.name, entry.kind, entry.size, is_config=True, error="a directory")
        if isinstance(content, str) or content is None:
            return CniFile(entry.name, entry.kind, entry.size, is_config=True, error=content)
        return parse_cni_config(entry.name, content, entry.kind, entry.size)
    if content is not None:  # a kubeconfig the CNI plugin uses
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
