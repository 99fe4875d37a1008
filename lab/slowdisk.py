"""A slow disk for a lab drill: a FUSE passthrough filesystem whose fsync waits a fixed time.

This machine's kernel has FUSE but no device-mapper (no `dm-delay`), so a disk too slow for
etcd is staged in user space: inside one node, `/var/lib/etcd` is mounted over with this
filesystem, which passes every call through to the directory it covers (opened before the
mount hides it) and sleeps `delay` seconds before each fsync. etcd's own WAL fsync and backend
commit histograms then show the delay. The binding is `mfusepy` (libfuse through ctypes), a
lab-only dependency.

`slow_fsync(lab, node, delay)` stages it on a running lab (etcd stopped the runbook way,
the filesystem mounted, etcd started on it) and takes it away again;
`python -m lab.slowdisk DIRECTORY DELAY` is the filesystem process itself, run in the node.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from lab.layout import PROJECT_ROOT, LabError

if TYPE_CHECKING:
    from lab.control import Lab

ETCD_DATA = "/var/lib/etcd"
PATIENCE = 30.0  # seconds for etcd to stop, or the filesystem to be mounted
POLL = 0.1
STAT_FIELDS = ("mode", "ino", "dev", "nlink", "uid", "gid", "size", "blocks")


def passthrough(base: int, delay: float) -> Any:
    """The mfusepy operations over the directory open as `base`, fsync delayed."""
    import mfusepy  # lab-only: imported where the drill runs

    def rel(path: str) -> str:
        return path.lstrip("/") or "."

    class SlowFsync(mfusepy.Operations):  # type: ignore[misc]
        def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
            st = os.stat(fh) if fh else os.stat(rel(path), dir_fd=base, follow_symlinks=False)
            attrs = {f"st_{name}": getattr(st, f"st_{name}") for name in STAT_FIELDS}
            attrs.update(st_atime=st.st_atime, st_mtime=st.st_mtime, st_ctime=st.st_ctime)
            return attrs

        def readdir(self, path: str, fh: int) -> list[str]:
            fd = os.open(rel(path), os.O_RDONLY | os.O_DIRECTORY, dir_fd=base)
            try:
                return [".", "..", *os.listdir(fd)]
            finally:
                os.close(fd)

        def access(self, path: str, amode: int) -> int:
            if not os.access(rel(path), amode, dir_fd=base):
                raise OSError(13, "permission denied")
            return 0

        def open(self, path: str, flags: int) -> int:
            return os.open(rel(path), flags, dir_fd=base)

        def create(self, path: str, mode: int, fi: Any = None) -> int:
            return os.open(rel(path), os.O_RDWR | os.O_CREAT, mode, dir_fd=base)

        def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
            return os.pread(fh, size, offset)

        def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
            return os.pwrite(fh, data, offset)

        def truncate(self, path: str, length: int, fh: int | None = None) -> int:
            if fh:
                os.ftruncate(fh, length)
                return 0
            fd = os.open(rel(path), os.O_WRONLY, dir_fd=base)
            try:
                os.ftruncate(fd, length)
            finally:
                os.close(fd)
            return 0

        def flush(self, path: str, fh: int) -> int:
            return 0

        def release(self, path: str, fh: int) -> int:
            os.close(fh)
            return 0

        def fsync(self, path: str, datasync: int, fh: int) -> int:
            time.sleep(delay)  # the slow disk
            (os.fdatasync if datasync else os.fsync)(fh)
            return 0

        def mkdir(self, path: str, mode: int) -> int:
            os.mkdir(rel(path), mode, dir_fd=base)
            return 0

        def rmdir(self, path: str) -> int:
            os.rmdir(rel(path), dir_fd=base)
            return 0

        def unlink(self, path: str) -> int:
            os.unlink(rel(path), dir_fd=base)
            return 0

        def rename(self, old: str, new: str) -> int:
            os.rename(rel(old), rel(new), src_dir_fd=base, dst_dir_fd=base)
            return 0

        def chmod(self, path: str, mode: int) -> int:
            os.chmod(rel(path), mode, dir_fd=base)
            return 0

        def chown(self, path: str, uid: int, gid: int) -> int:
            os.chown(rel(path), uid, gid, dir_fd=base)
            return 0

        def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
            if times is None:
                os.utime(rel(path), dir_fd=base)
            else:
                os.utime(rel(path), ns=times, dir_fd=base)
            return 0

        def statfs(self, path: str) -> dict[str, int]:
            sv = os.statvfs(base)
            names = ("bavail", "bfree", "blocks", "bsize", "favail", "ffree", "files", "flag")
            return {f"f_{n}": getattr(sv, f"f_{n}") for n in (*names, "frsize", "namemax")}

    return SlowFsync()


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        if time.monotonic() > deadline:
            raise LabError(f"timed out waiting for {what}")
        time.sleep(POLL)


def _mounted(lab: Lab, node: str) -> bool:
    mounts = lab.node_exec(node, ["cat", "/proc/self/mountinfo"]).stdout
    return any(f" {ETCD_DATA} " in line and "fuse" in line for line in mounts.splitlines())


@contextlib.contextmanager
def slow_fsync(lab: Lab, node: str, delay: float) -> Iterator[None]:
    """`node`'s etcd on a filesystem whose fsync takes `delay` seconds more, for the block."""
    lab.stop_node(node)
    _until(lambda: lab.etcd_pid(node) is None, f"{node}'s etcd to stop")
    nsenter = ["nsenter", "-t", str(lab.node_pid(node)), "-m", "-u", "-n", "-p", "--"]
    process = subprocess.Popen(
        [*nsenter, sys.executable, "-m", "lab.slowdisk", ETCD_DATA, str(delay)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _until(lambda: _mounted(lab, node), f"the slow filesystem on {node}")
        lab.start_node(node)
        yield
    finally:
        lab.stop_node(node)
        _until(lambda: lab.etcd_pid(node) is None, f"{node}'s etcd to stop")
        process.send_signal(signal.SIGINT)  # libfuse unmounts on it
        process.wait(timeout=PATIENCE)
        lab.start_node(node)


def main() -> None:
    directory, delay = sys.argv[1], float(sys.argv[2])
    import mfusepy

    base = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)  # before the mount hides it
    mfusepy.FUSE(passthrough(base, delay), directory, foreground=True, nothreads=False)


if __name__ == "__main__":
    main()
