"""The lab's control-plane endpoint: a TCP load balancer in front of the nodes' API servers.

kubeadm's HA setup puts a load balancer (HAProxy, kube-vip) at `controlPlaneEndpoint`; admin
kubeconfigs and the cockpit talk to it, each node's own components talk to their own API
server. This one listens on the lab bridge's address, port 6443, and passes each connection
through (TLS end to end: clients verify the API server's own certificate, which names the
endpoint) to the next API server that accepts a TCP connection, round robin, as HAProxy in
TCP mode with connect checks does. An API server that accepts but cannot serve (etcd quorum
lost) still gets connections: clients see its real errors.

While the marker file `DIR/loadbalancer.stopped` exists it does not listen and drops open
connections: the endpoint itself down (tests use it for "API unreachable").
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from pathlib import Path

from lab.layout import KUBE_API_PORT, LabPaths, LabSpec
from lab.network import LabNetwork

log = logging.getLogger("kcockpit.lab.loadbalancer")

CONNECT_SECONDS = 1.0
MARKER_POLL_SECONDS = 0.2
CHUNK = 64 * 1024


def stopped_marker(paths: LabPaths) -> Path:
    return paths.root / "loadbalancer.stopped"


def endpoint_address(spec: LabSpec) -> str:
    """The control plane endpoint: the lab bridge's address on this machine."""
    return LabNetwork(spec.subnet).gateway


def endpoint_url(spec: LabSpec) -> str:
    return f"https://{endpoint_address(spec)}:{KUBE_API_PORT}"


class LoadBalancer:
    """Passes TCP connections on the endpoint through to the nodes' API servers."""

    def __init__(self, paths: LabPaths, address: str) -> None:
        self.paths = paths
        self.address = address
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.Task[None]] = set()
        self._turn = itertools.count()

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                down = stopped_marker(self.paths).exists()
                if down and self._server:
                    await self._stop_listening()
                elif not down and not self._server:
                    self._server = await asyncio.start_server(
                        self._pass_through, self.address, KUBE_API_PORT, reuse_address=True
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), MARKER_POLL_SECONDS)
        finally:
            await self._stop_listening()

    async def _stop_listening(self) -> None:
        if self._server:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._open):
            task.cancel()
        await asyncio.gather(*self._open, return_exceptions=True)

    def _backends(self) -> list[str]:
        """The nodes' addresses, starting at the next one in turn."""
        addresses = [node.address for node in self.paths.load_spec().nodes]
        start = next(self._turn) % len(addresses)
        return addresses[start:] + addresses[:start]

    async def _pass_through(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._open.add(task)
        try:
            for backend in self._backends():
                try:
                    upstream = await asyncio.wait_for(
                        asyncio.open_connection(backend, KUBE_API_PORT), CONNECT_SECONDS
                    )
                except (OSError, TimeoutError):
                    continue
                await _splice(reader, writer, *upstream)
                return
        except asyncio.CancelledError:
            pass  # the balancer stops: asyncio would log a connection's cancellation as an error
        finally:
            self._open.discard(task)
            writer.close()


async def _splice(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    upstream_reader: asyncio.StreamReader,
    upstream_writer: asyncio.StreamWriter,
) -> None:
    async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await source.read(CHUNK):
                sink.write(data)
                await sink.drain()
        with contextlib.suppress(OSError):
            if sink.can_write_eof():
                sink.write_eof()

    try:
        await asyncio.gather(
            pump(client_reader, upstream_writer), pump(upstream_reader, client_writer)
        )
    finally:
        upstream_writer.close()
