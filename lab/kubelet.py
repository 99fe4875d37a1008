"""The lab kubelet: follows a node's `manifests/` directory like the real kubelet does.

It runs inside its node (lab/node.py), so a manifest is used verbatim: when `etcd.yaml` is there
it runs the manifest's command (`etcd` from the node's PATH, as a container image provides it)
with the manifest's flags and paths; when the manifest or the whole directory is moved away it
stops it; when it comes back it starts it again with the same data dir. A process that exits on
its own is restarted with a growing back-off, like CrashLoopBackOff. The lab has no binaries for
the other components yet, so their manifests are read but reported as not run.

Its state is written to `/var/lib/kubelet/lab-pods.json`, which the lab's stand-in API server
reads to publish mirror pods, as a kubelet reports its pods to the API. The cockpit never reads
it: on a node it finds what runs from the node's sockets and processes.
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
import sys
from dataclasses import dataclass, field
from pathlib import Path

from cluster.nodes.parse import load_yaml

log = logging.getLogger("kcockpit.lab.kubelet")

POLL_SECONDS = 0.25
STOP_GRACE_SECONDS = 5.0
MAX_BACKOFF_SECONDS = 10.0
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
PR_SET_PDEATHSIG = 1


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


@dataclass
class PodState:
    file: str
    digest: str
    component: str
    command: list[str]
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: str | None = None
    note: str = ""
    exits: list[int] = field(default_factory=list)


class LabKubelet:
    """Runs one node's static pods from its manifests directory."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.state_file = Path("/var/lib/kubelet/lab-pods.json")
        self.manifests = Path("/etc/kubernetes/manifests")
        self.log_dir = Path("/var/log/pods")
        self.pods: dict[str, PodState] = {}
        self._written = ""

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                await self.sync()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), POLL_SECONDS)
        finally:
            await self.stop_all()

    async def sync(self) -> None:
        wanted = self._read_manifests()
        for file in list(self.pods):
            pod = self.pods[file]
            if file not in wanted or wanted[file].digest != pod.digest:
                await self._stop(pod)
                del self.pods[file]
        for file, pod in wanted.items():
            if file not in self.pods:
                self.pods[file] = pod
        loop = asyncio.get_running_loop()
        for pod in self.pods.values():
            if pod.component != "etcd":
                continue
            if pod.process and pod.process.returncode is not None:
                pod.exits.append(pod.process.returncode)
                pod.restarts += 1
                backoff = min(MAX_BACKOFF_SECONDS, 0.5 * 2 ** min(pod.restarts, 5))
                pod.next_start = loop.time() + backoff
                pod.note = f"exited with {pod.process.returncode}; restarting in {backoff:g} s"
                pod.process = None
            if pod.process is None and loop.time() >= pod.next_start:
                await self._start(pod)
        self._write_state()

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
                component, command = _pod_command(data)
            except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
                log.warning("%s: ignoring invalid manifest %s: %s", self.name, path.name, exc)
                continue
            if command and os.path.basename(command[0]) == "etcd":
                component = "etcd"
            wanted[path.name] = PodState(
                file=path.name,
                digest=hashlib.sha256(data).hexdigest(),
                component=component,
                command=list(command),
                note="" if component == "etcd" else "manifest only: the lab has no binary for it",
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
            pod.next_start = asyncio.get_running_loop().time() + MAX_BACKOFF_SECONDS
            return
        finally:
            log_file.close()
        pod.started_at = dt.datetime.now(dt.UTC).isoformat()
        pod.note = ""
        log.info("%s: started %s (pid %s)", self.name, pod.component, pod.process.pid)

    async def _stop(self, pod: PodState) -> None:
        process = pod.process
        pod.process = None
        if process is None or process.returncode is not None:
            return
        log.info("%s: stopping %s (pid %s)", self.name, pod.component, process.pid)
        await stop_process(process)

    async def stop_all(self) -> None:
        await asyncio.gather(*(self._stop(pod) for pod in self.pods.values()))
        self._write_state()

    def _write_state(self) -> None:
        pods = []
        for pod in self.pods.values():
            running = pod.process is not None and pod.process.returncode is None
            pods.append(
                {
                    "file": pod.file,
                    "component": pod.component,
                    "state": "running" if running else "stopped",
                    "pid": pod.process.pid if running and pod.process else None,
                    "restarts": pod.restarts,
                    "started_at": pod.started_at if running else None,
                    "note": pod.note,
                }
            )
        text = json.dumps({"node": self.name, "pods": pods}, indent=1)
        if text == self._written:
            return
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(self.state_file)
        self._written = text


def main() -> None:
    """`python -m lab.kubelet NODE`, inside the node: runs its static pods until SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(_serve(sys.argv[1]))


async def _serve(name: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await LabKubelet(name).run(stop)


@functools.lru_cache(maxsize=64)
def _pod_command(data: bytes) -> tuple[str, tuple[str, ...]]:
    """(pod name, command + args) of a manifest; memoised, as the kubelet looks at the same
    manifests four times a second (parsing them each time was most of an idle lab's CPU)."""
    document, error = load_yaml(data)  # aliases refused: a billion-laughs file stays small
    if error:
        raise ValueError(error)
    container = document["spec"]["containers"][0]
    command = [str(c) for c in container.get("command") or []]
    command += [str(a) for a in container.get("args") or []]
    return str(document["metadata"]["name"]), tuple(command)


if __name__ == "__main__":
    main()
