"""A slow network path for a lab drill: a TCP relay that holds every byte for a fixed time.

This machine's kernel has no `netem` qdisc, so a slow link between etcd members is staged in
user space instead: one member's etcd listens for its peers on another port, and this relay,
started in the member's network namespace on the peer port the others dial (2380), forwards
each chunk, both ways, `delay` seconds after it arrived (order kept, throughput not limited).
The peers' TLS passes through untouched, but their connections now come from the relay's
address, which their certificates do not name: the member runs with etcd's
`--experimental-peer-skip-client-san-verification` for the drill. etcd's own peer round-trip
histogram then shows the delay, twice over.

`delayed_peer(lab, node, delay)` stages it on a running lab and takes it away again;
`python -m lab.relay LISTEN_HOST:PORT TARGET_HOST:PORT DELAY` is the relay process itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import yaml

from lab.layout import PROJECT_ROOT, LabError

if TYPE_CHECKING:
    from lab.control import Lab

RELAYED_PEER_PORT = 2391  # where the delayed member's etcd listens for its peers instead
BIND_PATIENCE = 30.0  # seconds the relay waits for etcd to give up the peer port
CHUNK = 64 * 1024
SKIP_SAN_CHECK = "--experimental-peer-skip-client-san-verification=true"


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copies `reader` to `writer`, each chunk `delay` seconds after it was read."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def feed() -> None:
        try:
            while data := await reader.read(CHUNK):
                queue.put_nowait((loop.time() + delay, data))
        finally:
            queue.put_nowait((loop.time() + delay, b""))

    feeding = asyncio.ensure_future(feed())
    try:
        while True:
            due, data = await queue.get()
            await asyncio.sleep(max(0.0, due - loop.time()))
            if not data:
                break
            writer.write(data)
            await writer.drain()
    finally:
        feeding.cancel()
        writer.close()


async def relay(listen: tuple[str, int], target: tuple[str, int], delay: float) -> None:
    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            _pump(reader, upstream_writer, delay),
            _pump(upstream_reader, writer, delay),
            return_exceptions=True,
        )

    deadline = time.monotonic() + BIND_PATIENCE
    while True:
        try:
            server = await asyncio.start_server(connected, *listen, reuse_address=True)
            break
        except OSError:  # etcd still holds the port while the kubelet restarts it
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
    async with server:
        await server.serve_forever()


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def _set_peer_listener(lab: Lab, node: str, url: str, relayed: bool) -> None:
    """The member's `--listen-peer-urls`, in its manifest (the lab kubelet restarts it).
    Relayed, its peers' connections come from the relay's address, not the one their
    certificates name, so etcd is told not to match the two (an etcd 3.5 flag)."""
    manifest = lab.paths.manifests(node) / "etcd.yaml"
    pod = yaml.safe_load(manifest.read_text())
    flag = "--listen-peer-urls="
    command = [
        f"{flag}{url}" if word.startswith(flag) else word
        for word in pod["spec"]["containers"][0]["command"]
        if word != SKIP_SAN_CHECK
    ]
    pod["spec"]["containers"][0]["command"] = [*command, SKIP_SAN_CHECK] if relayed else command
    manifest.write_text(yaml.safe_dump(pod, sort_keys=False))


@contextlib.contextmanager
def delayed_peer(lab: Lab, node: str, delay: float) -> Iterator[None]:
    """The peers' traffic to `node`'s etcd held `delay` seconds each way, for the block."""
    member = next((n for n in lab.spec.nodes if n.name == node), None)
    if member is None:
        raise LabError(f"no lab node {node}")
    relayed = f"https://{member.address}:{RELAYED_PEER_PORT}"
    _set_peer_listener(lab, node, relayed, relayed=True)
    nsenter = ["nsenter", "-t", str(lab.node_pid(node)), "-n", "--"]
    listen, target = f"{member.address}:2380", f"{member.address}:{RELAYED_PEER_PORT}"
    process = subprocess.Popen(
        [*nsenter, sys.executable, "-m", "lab.relay", listen, target, str(delay)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)
        _set_peer_listener(lab, node, member.peer_url, relayed=False)


def main() -> None:
    listen, target, delay = sys.argv[1:4]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(relay(_address(listen), _address(target), float(delay)))


if __name__ == "__main__":
    main()
