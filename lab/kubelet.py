"""The lab kubelet: follows a node's `manifests/` directory like the real kubelet does, and
tells the API server what it sees (lab/kubeagent.py).

It runs inside its node (lab/node.py), so a manifest is used verbatim: every static pod's
command runs (`etcd`, `kube-apiserver`, … from the node's PATH, as a container image provides
it) with the manifest's flags and paths; when a manifest or the whole directory is moved away
it stops that pod; when it comes back it starts it again with the same data dir. A process
that exits on its own is restarted with a growing back-off, like CrashLoopBackOff. Readiness
is what the pod's own health endpoint says (etcd's /health, the API server's /readyz verified
against the cluster CA) or, for the controller-manager and the scheduler, whose serving
certificates are self-signed, that their secure port accepts.

A real kubelet needs a container runtime and images this machine cannot pull; this one runs
the binaries directly, and everything it reports is what it observed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import datetime as dt
import functools
import hashlib
import json
import logging
import os
import signal
import ssl
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from cluster.nodes.parse import load_yaml

log = logging.getLogger("kcockpit.lab.kubelet")

POLL_SECONDS = 0.25
PROBE_SECONDS = 1.0
PROBE_TIMEOUT_SECONDS = 2.0
STOP_GRACE_SECONDS = 5.0
MAX_BACKOFF_SECONDS = 10.0
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
PR_SET_PDEATHSIG = 1
CLUSTER_CA = "/etc/kubernetes/pki/ca.crt"


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGKILL it if the lab daemon dies, so nothing leaks."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


async def stop_process(
    process: asyncio.subprocess.Process, grace: float = STOP_GRACE_SECONDS
) -> None:
    """SIGCONT (a test may have frozen it), SIGTERM, then SIGKILL after the grace period."""
    for sig in (signal.SIGCONT, signal.SIGTERM):
        try:
            os.kill(process.pid, sig)
        except ProcessLookupError:
            return
    try:
        await asyncio.wait_for(process.wait(), grace)
    except TimeoutError:
        process.kill()
        await process.wait()


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class PodState:
    """One static pod: its manifest and what its process is doing."""

    file: str
    digest: str
    component: str
    document: dict
    command: list[str]
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: dt.datetime | None = None
    ready: bool = False
    note: str = ""  # why it is not running or not ready, in the kubelet's words
    last_exit: int | None = None
    exits: list[int] = field(default_factory=list)
    failures: int = 0  # consecutive failed readiness probes
    next_probe: float = 0.0  # the loop time the next one is due

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process and self.running else None


class LabKubelet:
    """Runs one node's static pods from its manifests directory."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.manifests = Path("/etc/kubernetes/manifests")
        self.log_dir = Path("/var/log/pods")
        self.pods: dict[str, PodState] = {}

    async def run(self, stop: asyncio.Event) -> None:
        probes = asyncio.create_task(self._probe_forever(stop))
        try:
            while not stop.is_set():
                await self.sync()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), POLL_SECONDS)
        finally:
            probes.cancel()
            await self.stop_all()

    async def sync(self) -> None:
        wanted = self._read_manifests()
        gone = [p for f, p in self.pods.items() if f not in wanted or wanted[f].digest != p.digest]
        await asyncio.gather(*(self._stop(pod) for pod in gone))  # together, as a kubelet does
        for pod in gone:
            del self.pods[pod.file]
        for file, pod in wanted.items():
            if file not in self.pods:
                self.pods[file] = pod
        loop = asyncio.get_running_loop()
        for pod in self.pods.values():
            if pod.process and pod.process.returncode is not None:
                pod.last_exit = pod.process.returncode
                pod.exits.append(pod.last_exit)
                pod.restarts += 1
                backoff = min(MAX_BACKOFF_SECONDS, 0.5 * 2 ** min(pod.restarts, 5))
                pod.next_start = loop.time() + backoff
                pod.note = f"exited with {pod.last_exit}; back-off {backoff:g}s restarting it"
                pod.process = None
                pod.ready = False
            if pod.process is None and loop.time() >= pod.next_start:
                await self._start(pod)

    def _read_manifests(self) -> dict[str, PodState]:
        wanted: dict[str, PodState] = {}
        try:
            entries = sorted(self.manifests.iterdir())
        except (FileNotFoundError, NotADirectoryError):
            return wanted
        for path in entries:
            if (
                path.name.startswith(".")
                or path.suffix not in MANIFEST_SUFFIXES
                or not path.is_file()
            ):
                continue
            try:
                data = path.read_bytes()
                document, component, command = _pod_command(data)
            except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
                log.warning("%s: ignoring invalid manifest %s: %s", self.name, path.name, exc)
                continue
            wanted[path.name] = PodState(
                file=path.name,
                digest=hashlib.sha256(data).hexdigest(),
                component=component,
                document=document,
                command=list(command),
            )
        return wanted

    async def _start(self, pod: PodState) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_file = (self.log_dir / f"{pod.component}.log").open("ab")
        try:
            pod.process = await asyncio.create_subprocess_exec(
                *pod.command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:
            pod.note = f"cannot start: {exc}"
            pod.last_exit = 128
            pod.next_start = asyncio.get_running_loop().time() + MAX_BACKOFF_SECONDS
            return
        finally:
            log_file.close()
        pod.started_at = now_utc()
        pod.note = "starting: not ready yet"
        log.info("%s: started %s (pid %s)", self.name, pod.component, pod.process.pid)

    async def _stop(self, pod: PodState) -> None:
        process = pod.process
        pod.process = None
        pod.ready, pod.failures = False, 0
        if process is None or process.returncode is not None:
            return
        log.info("%s: stopping %s (pid %s)", self.name, pod.component, process.pid)
        await stop_process(process)

    async def stop_all(self) -> None:
        await asyncio.gather(*(self._stop(pod) for pod in self.pods.values()))

    async def _probe_forever(self, stop: asyncio.Event) -> None:
        """One probe at a time per pod, each on its own period and deadline (a kubelet's
        probe workers): a slow pod never delays another's."""
        loop = asyncio.get_running_loop()
        probing: dict[str, asyncio.Task[None]] = {}
        try:
            while not stop.is_set():
                for file, pod in self.pods.items():
                    task = probing.get(file)
                    if (
                        pod.running
                        and (task is None or task.done())
                        and loop.time() >= pod.next_probe
                    ):
                        probing[file] = asyncio.create_task(self._probe_once(pod))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), POLL_SECONDS)
        finally:
            for task in probing.values():
                task.cancel()

    async def _probe_once(self, pod: PodState) -> None:
        process, probe = pod.process, Probe.of(pod.document)
        ready, note = await self._probe(pod, probe)
        pod.next_probe = asyncio.get_running_loop().time() + probe.period
        if pod.process is not process or not pod.running:
            return  # stopped or restarted meanwhile: this answer is about a process gone
        # as a kubelet: Ready at the first success, not Ready only after the probe's
        # failureThreshold consecutive failures (a busy API server misses one at times)
        pod.failures = 0 if ready else pod.failures + 1
        if ready or not pod.ready or pod.failures >= probe.failure_threshold:
            if ready != pod.ready:
                log.info("%s: %s %s", self.name, pod.component, "ready" if ready else note)
            pod.ready, pod.note = ready, note

    async def _probe(self, pod: PodState, probe: Probe) -> tuple[bool, str]:
        """The pod's readiness from its manifest's probe (readiness, else liveness)."""
        host, port = probe.host, probe.port
        if not port:
            return True, ""
        if probe.scheme == "HTTPS" and pod.component in SELF_SIGNED:
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port), probe.timeout
                )
            except (OSError, TimeoutError) as exc:
                return False, f"readiness: {host}:{port}: {exc or 'no answer'}"
            writer.close()
            return True, ""
        url = f"{probe.scheme.lower()}://{host}:{port}{probe.path}"
        return await asyncio.to_thread(_http_ready, url, probe.timeout)


@dataclass(frozen=True)
class Probe:
    """What the kubelet asks a pod, how often and how patiently.

    A manifest's readinessProbe is followed as a kubelet follows it: its period, its timeout
    (kubeadm gives the API server's /readyz 15 s) and its failureThreshold. A pod without one
    (kubeadm's etcd, controller-manager and scheduler have liveness and startup probes only)
    is Ready for a kubelet once started; the lab asks the liveness probe's endpoint instead,
    every second with a short timeout, so a component that stopped answering shows within
    seconds rather than at its restart.
    """

    host: str
    port: int
    path: str
    scheme: str
    period: float
    timeout: float
    failure_threshold: int

    @classmethod
    def of(cls, document: dict) -> Probe:
        container = document["spec"]["containers"][0]
        readiness = container.get("readinessProbe")
        probe = readiness or container.get("livenessProbe") or {}
        get = probe.get("httpGet") or {}

        def seconds(field: str, default: float) -> float:
            value = probe.get(field) if readiness else None
            return float(value) if isinstance(value, int | float) and value > 0 else default

        threshold, port = probe.get("failureThreshold"), get.get("port")
        return cls(
            host=str(get.get("host") or "127.0.0.1"),
            port=port if isinstance(port, int) else 0,  # a named port: nothing the lab can ask
            path=str(get.get("path", "/")),
            scheme=str(get.get("scheme", "HTTP")).upper(),
            period=seconds("periodSeconds", PROBE_SECONDS),
            timeout=seconds("timeoutSeconds", PROBE_TIMEOUT_SECONDS),
            failure_threshold=threshold if isinstance(threshold, int) and threshold > 0 else 3,
        )


# Their secure ports serve certificates they make themselves at start: nothing to verify
# them with, so the probe checks that the port accepts (and never skips verification).
SELF_SIGNED = frozenset({"kube-controller-manager", "kube-scheduler"})


def _http_ready(url: str, timeout: float) -> tuple[bool, str]:
    """(ready, why not) of one HTTP(S) probe; HTTPS is verified against the cluster CA."""
    context = ssl.create_default_context(cafile=CLUSTER_CA) if url.startswith("https") else None
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as reply:
            reply.read(4096)
            return True, ""
    except urllib.error.HTTPError as exc:
        return False, f"readiness probe failed: HTTP probe failed with statuscode: {exc.code}"
    except (OSError, ValueError) as exc:
        return False, f"readiness probe failed: {url}: {exc}"


def main() -> None:
    """`python -m lab.kubelet NODE ADDRESS [--standalone]`, inside the node: runs its static
    pods and reports to the API server (standalone: to none, as on an external etcd node)
    until SIGTERM."""
    from lab.kubeagent import KubeAgent  # it builds on this module

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        kubelet = LabKubelet(sys.argv[1])
        if "--standalone" in sys.argv[3:]:
            await kubelet.run(stop)
        else:
            await asyncio.gather(kubelet.run(stop), KubeAgent(kubelet, sys.argv[2]).run(stop))

    asyncio.run(serve())


@functools.lru_cache(maxsize=64)
def _pod_command_cached(data: bytes) -> tuple[str, str, tuple[str, ...]]:
    document, error = load_yaml(data)  # aliases refused: a billion-laughs file stays small
    if error:
        raise ValueError(error)
    container = document["spec"]["containers"][0]
    command = [str(c) for c in container.get("command") or []]
    command += [str(a) for a in container.get("args") or []]
    if not command:
        raise ValueError("the container has no command (the lab runs no images)")
    return json.dumps(document), str(document["metadata"]["name"]), tuple(command)


def _pod_command(data: bytes) -> tuple[dict, str, tuple[str, ...]]:
    """(document, pod name, command + args) of a manifest; memoised, as the kubelet looks at
    the same manifests four times a second (parsing them each time was most of an idle lab's
    CPU). The document is a fresh copy each time: callers may keep it."""
    text, name, command = _pod_command_cached(data)
    return json.loads(text), name, command


if __name__ == "__main__":
    main()
