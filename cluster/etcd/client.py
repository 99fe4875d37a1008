"""A thin async etcd v3 client over grpc.aio: one TLS channel per member, deadline on every call.

Why not python-etcd3: it breaks with protobuf >= 4, has no learner field, no MemberPromote, no
move-leader and no per-call deadline, and is synchronous. This client speaks the subset of
etcd's published gRPC API that kcockpit needs (cluster/etcd/proto/etcd_rpc.proto), addressed per
member, because a cockpit must ask *each* member about itself and must never wait on one that is
frozen. Mutations are sent once: no call here retries.

Endpoints include the client URLs members advertise, and etcd checks those only with Go's
url.Parse: it accepts a port beyond 65535, port 0 or an empty port. A URL kcockpit cannot
dial over TLS is refused here as an EtcdError (BAD_URL) like any failed call, so it
stays the error of the one member that advertises it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar
from urllib.parse import urlsplit

import grpc
from google.protobuf.message import Message

from cluster.config import TlsFiles
from cluster.endpoints import endpoint_problem
from cluster.etcd.proto import etcd_rpc_pb2 as pb

ResponseT = TypeVar("ResponseT", bound=Message)

_CHANNEL_OPTIONS = (
    # etcd's server enforces a 5 s minimum ping interval and no pings without calls.
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 2_000),
    ("grpc.keepalive_permit_without_calls", 0),
    # A member that comes back must be reachable again within a refresh or two, not after
    # gRPC's default exponential backoff of up to two minutes.
    ("grpc.initial_reconnect_backoff_ms", 300),
    ("grpc.min_reconnect_backoff_ms", 300),
    ("grpc.max_reconnect_backoff_ms", 1_000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
)


class EtcdError(Exception):
    """A failed etcd call: which endpoint, the gRPC status, etcd's message."""

    def __init__(self, endpoint: str, code: str, detail: str) -> None:
        self.endpoint = endpoint
        self.code = code
        self.detail = detail
        super().__init__(f"{endpoint}: {code}: {detail}")

    @property
    def short(self) -> str:
        """One line for a table cell: the status and etcd's own words."""
        return f"{self.code}: {self.detail}"


@dataclass(frozen=True)
class SnapshotFile:
    path: Path
    size: int
    sha256: str


def target_of(endpoint: str) -> str:
    """'https://10.0.0.1:2379' -> '10.0.0.1:2379' (the gRPC target; 2379 when no port is
    given), or an EtcdError BAD_URL saying why the URL names none. Port 0 and an empty port
    are refused rather than read as 2379: they would dial whichever member listens there and
    show its answer as this member's."""
    reason = endpoint_problem(endpoint)
    if reason:
        raise EtcdError(endpoint, "BAD_URL", f"unusable client URL {endpoint!r}: {reason}")
    parts = urlsplit(endpoint)
    host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
    return f"{host}:{parts.port or 2379}"


class EtcdClient:
    """Per-member channels to an etcd cluster, created lazily and kept open across refreshes."""

    def __init__(self, tls: TlsFiles, timeout: float = 2.0) -> None:
        self.timeout = timeout
        self._tls = tls
        self._credentials: grpc.ChannelCredentials | None = None
        self._channels: dict[str, grpc.aio.Channel] = {}

    def _creds(self) -> grpc.ChannelCredentials:
        if self._credentials is None:
            try:
                self._credentials = grpc.ssl_channel_credentials(
                    root_certificates=self._tls.ca.read_bytes(),
                    private_key=self._tls.key.read_bytes(),
                    certificate_chain=self._tls.cert.read_bytes(),
                )
            except OSError as exc:
                raise EtcdError(
                    "tls", "CONFIG", f"cannot read {exc.filename}: {exc.strerror}"
                ) from None
        return self._credentials

    def channel(self, endpoint: str) -> grpc.aio.Channel:
        channel = self._channels.get(endpoint)
        if channel is None:
            channel = grpc.aio.secure_channel(target_of(endpoint), self._creds(), _CHANNEL_OPTIONS)
            self._channels[endpoint] = channel
        return channel

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        await asyncio.gather(*(c.close() for c in channels), return_exceptions=True)

    async def _unary(
        self,
        endpoint: str,
        method: str,
        request: Message,
        response_type: type[ResponseT],
        timeout: float | None = None,
    ) -> ResponseT:
        call = self.channel(endpoint).unary_unary(
            method,
            request_serializer=_serialize,
            response_deserializer=response_type.FromString,
        )
        try:
            return await call(request, timeout=timeout or self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise _error(endpoint, exc, timeout or self.timeout) from None

    # -- reads ---------------------------------------------------------------------------------

    async def status(self, endpoint: str) -> pb.StatusResponse:
        return await self._unary(
            endpoint, "/etcdserverpb.Maintenance/Status", pb.StatusRequest(), pb.StatusResponse
        )

    async def member_list(self, endpoint: str, linearizable: bool = False) -> pb.MemberListResponse:
        return await self._unary(
            endpoint,
            "/etcdserverpb.Cluster/MemberList",
            pb.MemberListRequest(linearizable=linearizable),
            pb.MemberListResponse,
        )

    async def hash_kv(self, endpoint: str, revision: int = 0) -> pb.HashKVResponse:
        return await self._unary(
            endpoint,
            "/etcdserverpb.Maintenance/HashKV",
            pb.HashKVRequest(revision=revision),
            pb.HashKVResponse,
        )

    async def get(self, endpoint: str, key: bytes, prefix: bool = False) -> pb.RangeResponse:
        request = pb.RangeRequest(key=key, range_end=_prefix_end(key) if prefix else b"")
        return await self._unary(endpoint, "/etcdserverpb.KV/Range", request, pb.RangeResponse)

    # -- mutations (sent once, never retried) --------------------------------------------------

    async def put(self, endpoint: str, key: bytes, value: bytes) -> pb.PutResponse:
        return await self._unary(
            endpoint, "/etcdserverpb.KV/Put", pb.PutRequest(key=key, value=value), pb.PutResponse
        )

    async def delete(
        self, endpoint: str, key: bytes, prefix: bool = False
    ) -> pb.DeleteRangeResponse:
        request = pb.DeleteRangeRequest(key=key, range_end=_prefix_end(key) if prefix else b"")
        return await self._unary(
            endpoint, "/etcdserverpb.KV/DeleteRange", request, pb.DeleteRangeResponse
        )

    async def compact(
        self, endpoint: str, revision: int, physical: bool = True
    ) -> pb.CompactionResponse:
        return await self._unary(
            endpoint,
            "/etcdserverpb.KV/Compact",
            pb.CompactionRequest(revision=revision, physical=physical),
            pb.CompactionResponse,
        )

    async def set_alarm(
        self, endpoint: str, member_id: int, alarm: pb.AlarmType, active: bool = True
    ) -> pb.AlarmResponse:
        """Activates (or clears) an alarm, as etcd itself does on NOSPACE or CORRUPT."""
        action = pb.AlarmRequest.ACTIVATE if active else pb.AlarmRequest.DEACTIVATE
        return await self._unary(
            endpoint,
            "/etcdserverpb.Maintenance/Alarm",
            pb.AlarmRequest(action=action, memberID=member_id, alarm=alarm),
            pb.AlarmResponse,
        )

    async def move_leader(self, leader_endpoint: str, target_id: int) -> pb.MoveLeaderResponse:
        """Must be sent to the current leader (etcd answers 'not leader' otherwise)."""
        return await self._unary(
            leader_endpoint,
            "/etcdserverpb.Maintenance/MoveLeader",
            pb.MoveLeaderRequest(targetID=target_id),
            pb.MoveLeaderResponse,
            timeout=max(self.timeout, 10.0),
        )

    async def member_add(
        self, endpoint: str, peer_urls: list[str], learner: bool = True
    ) -> pb.MemberAddResponse:
        return await self._unary(
            endpoint,
            "/etcdserverpb.Cluster/MemberAdd",
            pb.MemberAddRequest(peerURLs=peer_urls, isLearner=learner),
            pb.MemberAddResponse,
        )

    async def member_remove(self, endpoint: str, member_id: int) -> pb.MemberRemoveResponse:
        return await self._unary(
            endpoint,
            "/etcdserverpb.Cluster/MemberRemove",
            pb.MemberRemoveRequest(ID=member_id),
            pb.MemberRemoveResponse,
        )

    async def member_promote(self, endpoint: str, member_id: int) -> pb.MemberPromoteResponse:
        return await self._unary(
            endpoint,
            "/etcdserverpb.Cluster/MemberPromote",
            pb.MemberPromoteRequest(ID=member_id),
            pb.MemberPromoteResponse,
        )

    async def defragment(self, endpoint: str, timeout: float = 60.0) -> pb.DefragmentResponse:
        return await self._unary(
            endpoint,
            "/etcdserverpb.Maintenance/Defragment",
            pb.DefragmentRequest(),
            pb.DefragmentResponse,
            timeout=timeout,
        )

    async def snapshot(self, endpoint: str, dest: Path, timeout: float = 120.0) -> SnapshotFile:
        """Streams a member's backend to `dest`, a file that must not exist yet.

        A snapshot holds every secret the cluster stores, so it is created 0600 whatever the
        umask, in directories created 0700, and never put over an existing file: it is written
        under a partial name, fsync'd, then hard-linked to `dest` (which fails if the name is
        taken), and the directory fsync'd. A crash leaves no file or a complete one; any
        failure here (gRPC error, full disk, cancellation, deadline) removes what was written.
        """
        if os.path.lexists(dest):
            raise FileExistsError(f"{dest} exists: a snapshot never overwrites a file")
        _private_dirs(dest.parent)
        partial = dest.with_name(f"{dest.name}.{secrets.token_hex(4)}.part")
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise OSError(f"cannot create the snapshot in {dest.parent}: {exc.strerror}") from None
        linked = False
        try:
            with os.fdopen(fd, "wb") as out:
                size, sha256 = await self._stream_snapshot(endpoint, out, timeout)
                out.flush()
                os.fsync(out.fileno())
            os.link(partial, dest)
            linked = True
            _fsync_directory(dest.parent)
        except FileExistsError:
            raise FileExistsError(f"{dest} appeared meanwhile: it was not overwritten") from None
        except OSError as exc:
            if linked:
                dest.unlink(missing_ok=True)
            raise OSError(f"cannot write the snapshot {dest}: {exc.strerror or exc}") from None
        except BaseException:
            if linked:
                dest.unlink(missing_ok=True)
            raise
        finally:
            partial.unlink(missing_ok=True)
        return SnapshotFile(dest, size, sha256)

    async def _stream_snapshot(
        self, endpoint: str, out: BinaryIO, timeout: float
    ) -> tuple[int, str]:
        """Writes the member's snapshot stream to `out`: its size and SHA-256."""
        call = self.channel(endpoint).unary_stream(
            "/etcdserverpb.Maintenance/Snapshot",
            request_serializer=_serialize,
            response_deserializer=pb.SnapshotResponse.FromString,
        )
        digest = hashlib.sha256()
        size = 0
        try:
            async for chunk in call(pb.SnapshotRequest(), timeout=timeout):
                out.write(chunk.blob)
                digest.update(chunk.blob)
                size += len(chunk.blob)
        except grpc.aio.AioRpcError as exc:
            raise _error(endpoint, exc, timeout) from None
        return size, digest.hexdigest()


def _private_dirs(directory: Path) -> None:
    """Creates the missing directories up to `directory`, each 0700 whatever the umask (they
    will hold snapshots); directories that exist are the operator's and left as they are."""
    missing = list(itertools.takewhile(lambda d: not d.exists(), (directory, *directory.parents)))
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700)
            path.chmod(0o700)


def _fsync_directory(directory: Path) -> None:
    """Makes a new name in `directory` survive a power loss (the file's own fsync does not)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def _prefix_end(key: bytes) -> bytes:
    end = bytearray(key)
    for i in reversed(range(len(end))):
        if end[i] < 0xFF:
            end[i] += 1
            return bytes(end[: i + 1])
    return b"\0"


def _error(endpoint: str, exc: grpc.aio.AioRpcError, timeout: float) -> EtcdError:
    code = exc.code()
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return EtcdError(endpoint, code.name, f"no answer within {timeout:g} s")
    detail = (exc.details() or "").strip() or code.name.lower()
    return EtcdError(endpoint, code.name, " ".join(detail.split()))
