"""Shared test helpers: condition waits with deadlines (never fixed sleeps) and CLI runs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
POLL_SECONDS = 0.2
PROJECT = Path(__file__).resolve().parents[1]


async def fill_etcd(config_path: Path, endpoint: str, megabytes: int) -> None:
    """Writes `megabytes` of random values under /kcockpit-test/ through `endpoint`."""
    from cluster.config import load_config
    from cluster.etcd.client import EtcdClient

    client = EtcdClient(load_config(config_path).etcd.tls, timeout=10)
    try:
        for i in range(megabytes * 10):
            await client.put(endpoint, f"/kcockpit-test/{i}".encode(), os.urandom(100_000))
    finally:
        await client.close()


def process_state(pid: int) -> str:
    """R, S, T (stopped), Z (ended, not reaped yet)…, as /proc/PID/stat has it."""
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]


def process_ended(pid: int) -> bool:
    """Gone, or a zombie its parent has not reaped yet."""
    try:
        return process_state(pid) == "Z"
    except FileNotFoundError:
        return True


def wait_until(
    probe: Callable[[], T],
    timeout: float = 15.0,
    what: str = "condition",
    explain: Callable[[], object] | None = None,
) -> T:
    """Calls `probe` until it returns something truthy; fails at the deadline with its last
    value, or with what `explain` says of the last try."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(POLL_SECONDS)
    told = explain() if explain else repr(last)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; last: {told}")


async def eventually(
    probe: Callable[[], Awaitable[T]], timeout: float = 15.0, what: str = "condition"
) -> T:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(POLL_SECONDS)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; last: {last!r}")


def open_fds() -> dict[int, str]:
    """This process's open file descriptors, each with what it is: a path, a pipe, or a socket
    with its TCP peer when it has one (so a leak says where it leads)."""
    peers = {}
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                peers[fields[9]] = _tcp_address(fields[2])
    found = {}
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor, closed already
            target = os.readlink(f"/proc/self/fd/{name}")
            inode = target.removeprefix("socket:[").removesuffix("]")
            found[int(name)] = f"{target} to {peers[inode]}" if inode in peers else target
    return found


def _tcp_address(hex_address: str) -> str:
    """/proc/net/tcp's "0100007F:0016" as 127.0.0.1:22 (IPv4; IPv6 stays as the kernel has it)."""
    address, _, port = hex_address.partition(":")
    if len(address) == 8:
        address = ".".join(str(b) for b in reversed(bytes.fromhex(address)))
    return f"{address}:{int(port, 16)}"


async def fds_back_to(baseline: dict[int, str], timeout: float) -> None:
    """Until this process holds no more file descriptors than at `baseline` (`open_fds`);
    fails at the deadline naming the new ones, so a leak says where it leads."""
    deadline = time.monotonic() + timeout
    while len(now := open_fds()) > len(baseline):
        if time.monotonic() >= deadline:
            new = sorted(set(now.values()) - set(baseline.values()))
            raise AssertionError(
                f"{len(now)} file descriptors, {len(baseline)} at the start, after {timeout:g} "
                f"s (a leak never gets back); new ones: {new}"
            )
        await asyncio.sleep(POLL_SECONDS)


def open_sockets() -> set[str]:
    """This process's sockets, each as its inode and TCP peer (see `open_fds`)."""
    return {target for target in open_fds().values() if target.startswith("socket:")}


def loud(snapshot: Any) -> list[tuple[str, str, str]]:
    """(id, subject, evidence) of the snapshot's findings at WARNING or worse."""
    from cluster.model import Severity

    return [
        (f.id, f.subject, f.evidence) for f in snapshot.findings if f.severity >= Severity.WARNING
    ]


async def settled(collector: Any, also: Callable[[Any], bool] = lambda _: True) -> Any:
    """The first snapshot of a fresh lab with no warning (and `also`), within a minute.

    Three API servers, their controllers and a cockpit starting at once load a 2-core CI box
    for a while after `lab up` returns, and its first seconds may show what that load does
    (a /readyz that misses its deadline, a slow Range); a clean lab is judged once it settled,
    then held to no warnings for as long as the test looks.
    """

    async def quiet() -> Any:
        snapshot = await collector.collect()
        return snapshot if not loud(snapshot) and also(snapshot) else None

    try:
        return await eventually(quiet, 60.0, "a settled lab")
    except AssertionError:
        raise AssertionError(f"never settled: {loud(await collector.collect())}") from None


def kcockpit(
    *args: str,
    timeout: float = 30.0,
    env: dict[str, str] | None = None,
    wrapper: list[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Runs the real CLI (`python -m tui ...`) as an operator would; `wrapper` runs it under
    another command (e.g. `prlimit --as=…`)."""
    return subprocess.run(
        [*(wrapper or ()), sys.executable, "-m", "tui", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=PROJECT,
        env={**os.environ, **(env or {})},
    )


def report_json(config: Path, timeout: float = 30.0) -> dict[str, Any]:
    result = kcockpit("report", "--config", str(config), "--json", timeout=timeout)
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


def finding_ids(report: dict[str, Any]) -> set[str]:
    return {f["id"] for f in report["findings"]}


async def collect_once(config: Any) -> Any:
    """One snapshot through a fresh Collector (connections opened and closed here)."""
    from cluster.collect import Collector

    collector = Collector(config)
    try:
        return await collector.collect()
    finally:
        await collector.close()


@contextlib.contextmanager
def running_lab(
    root: Path, nodes: int = 3, scenarios: tuple[str, ...] = (), control_plane: bool = True
) -> Iterator[Any]:
    """A lab up in `root` (scenarios staged) for the block, always taken down after;
    `control_plane=False` for etcd-only nodes, when a module needs no Kubernetes API."""
    from lab.control import Lab, lab_down, lab_up

    lab_up(root, nodes=nodes, scenarios=scenarios, control_plane=control_plane)
    try:
        yield Lab(root)
    finally:
        lab_down(root)


def config_with_thresholds(lab: Any, name: str, **thresholds: float) -> Path:
    """The lab's config (as it is now: adding a node rewrites it) with `[thresholds]` of the
    test's, written beside it (its paths are relative to the lab directory)."""
    config = lab.paths.root / name
    table = "\n".join(f"{key} = {value}" for key, value in thresholds.items())
    config.write_text(f"{lab.paths.config.read_text()}\n[thresholds]\n{table}\n")
    return config


def break_ssh(lab: Any, node: str, how: str) -> Callable[[], None]:
    """A real SSH fault on a lab node; returns what puts it back. "slow": its sshd and every
    session are SIGSTOPped (it accepts, then never answers); "down": they are killed (links
    drop, new ones are refused)."""
    if how == "slow":
        frozen = lab.freeze_sshd(node)
        return lambda: lab.thaw_all(frozen)
    if how == "down":
        lab.stop_sshd(node)
        return lambda: lab.start_sshd(node)
    raise ValueError(how)
