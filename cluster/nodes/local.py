"""Node access on the local filesystem, for when kcockpit runs on the control-plane node.

`root` maps the node's absolute paths below another directory (default `/`): a node's disk
mounted elsewhere for a post-mortem, or a lab node's root, reads exactly like the node itself.
Blocking file calls run in threads, each under the deadline.
"""

from __future__ import annotations

import asyncio
import errno
import os
import stat as stat_module
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from cluster.nodes.access import (
    DEFAULT_TIMEOUT,
    MAX_OUTPUT_BYTES,
    MAX_READ_BYTES,
    CommandResult,
    DirEntry,
    ErrorKind,
    NodeAccess,
    NodeError,
    bounded_text,
    not_regular,
    timed_out,
    too_large,
)

T = TypeVar("T")

ERRNO_KINDS = {
    errno.ENOENT: ErrorKind.NOT_FOUND,
    errno.ENOTDIR: ErrorKind.NOT_FOUND,
    errno.EACCES: ErrorKind.PERMISSION,
    errno.EPERM: ErrorKind.PERMISSION,
    errno.EEXIST: ErrorKind.EXISTS,
    errno.ENOTEMPTY: ErrorKind.EXISTS,
}


KINDS = (
    (stat_module.S_ISREG, "file"),
    (stat_module.S_ISDIR, "dir"),
    (stat_module.S_ISLNK, "symlink"),
    (stat_module.S_ISFIFO, "fifo"),
    (stat_module.S_ISSOCK, "socket"),
    (stat_module.S_ISBLK, "block device"),
    (stat_module.S_ISCHR, "character device"),
)


def entry_kind(mode: int) -> str:
    return next((kind for is_kind, kind in KINDS if is_kind(mode)), "other")


class LocalNodeAccess(NodeAccess):
    """This machine's own files, optionally below `root`."""

    def __init__(
        self,
        name: str,
        root: Path = Path("/"),
        timeout: float = DEFAULT_TIMEOUT,
        address: str = "localhost",
    ) -> None:
        self.name = name
        self.address = address
        self.root = root
        self.timeout = timeout

    @property
    def local(self) -> bool:
        return True

    def _path(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    async def _call(self, what: str, path: str, function: Callable[[], T]) -> T:
        try:
            return await asyncio.wait_for(asyncio.to_thread(function), self.timeout)
        except TimeoutError:
            raise timed_out(f"{self.name}: {what} {path}", self.timeout) from None
        except OSError as exc:
            kind = ERRNO_KINDS.get(exc.errno or 0, ErrorKind.FAILED)
            reason = exc.strerror or str(exc)
            raise NodeError(kind, f"{path}: {reason}", path=path) from None

    async def connect(self) -> None:
        if not await asyncio.to_thread(self.root.is_dir):
            raise NodeError(ErrorKind.UNREACHABLE, f"{self.root}: not a directory")

    async def list_dir(self, path: str) -> tuple[DirEntry, ...]:
        def scan() -> tuple[DirEntry, ...]:
            entries = []
            with os.scandir(self._path(path)) as found:
                for item in found:
                    info = item.stat(follow_symlinks=False)
                    entries.append(
                        DirEntry(item.name, entry_kind(info.st_mode), info.st_size, info.st_mtime)
                    )
            return tuple(sorted(entries, key=lambda e: e.name))

        return await self._call("list", path, scan)

    async def stat(self, path: str) -> DirEntry | None:
        def lstat() -> DirEntry | None:
            try:
                info = self._path(path).lstat()
            except FileNotFoundError:
                return None
            return DirEntry(Path(path).name, entry_kind(info.st_mode), info.st_size, info.st_mtime)

        return await self._call("stat", path, lstat)

    async def read_file(self, path: str, limit: int = MAX_READ_BYTES) -> bytes:
        def read() -> bytes:
            # Non-blocking open: a FIFO must not hold this thread; only a regular file is read.
            descriptor = os.open(self._path(path), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            with open(descriptor, "rb") as handle:
                info = os.fstat(descriptor)
                if not stat_module.S_ISREG(info.st_mode):
                    raise not_regular(path, entry_kind(info.st_mode))
                if info.st_size > limit:
                    raise too_large(path, info.st_size, limit)
                data = handle.read(limit + 1)
            if len(data) > limit:
                raise too_large(path, len(data), limit)
            return data

        return await self._call("read", path, read)

    async def rename(self, source: str, target: str) -> None:
        def move() -> None:
            destination = self._path(target)
            if destination.exists() or destination.is_symlink():
                raise NodeError(ErrorKind.EXISTS, f"{target}: already exists", path=target)
            self._path(source).rename(destination)

        await self._call("rename", source, move)

    async def run(self, argv: Sequence[str], timeout: float | None = None) -> CommandResult:
        if self.root != Path("/"):  # this machine's commands would describe another node
            return CommandResult(127, "", f"{argv[0]}: not run: files are read below {self.root}")
        seconds = timeout or self.timeout
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            return CommandResult(127, "", f"{argv[0]}: {exc.strerror or exc}")
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), seconds)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise timed_out(f"{self.name}: {' '.join(argv)}", seconds) from None
        return CommandResult(
            process.returncode or 0,
            bounded_text(stdout[:MAX_OUTPUT_BYTES]),
            bounded_text(stderr[:MAX_OUTPUT_BYTES]),
        )

    async def close(self) -> None:
        return None
