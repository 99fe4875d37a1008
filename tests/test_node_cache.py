"""The warm-refresh file cache must never show stale content: it re-reads a file as soon as
its listed size or mtime changes, and never trusts a file modified within its mtime granularity
or reached through a symlink."""

from __future__ import annotations

import os
from pathlib import Path

from cluster.nodes.local import LocalNodeAccess
from cluster.nodes.source import RACY_SECONDS, FileCache


async def listed_read(cache: FileCache, access: LocalNodeAccess, name: str) -> bytes:
    entry = next(e for e in await access.list_dir("/d") if e.name == name)
    content = (await cache.read(access, {f"/d/{name}": entry}))[f"/d/{name}"]
    assert isinstance(content, bytes)
    return content


def age(path: Path, seconds: float) -> None:
    stamp = path.stat().st_mtime - seconds
    os.utime(path, (stamp, stamp))


async def test_an_old_file_is_served_from_cache_until_its_mtime_or_size_changes(
    tmp_path: Path,
) -> None:
    access, cache = LocalNodeAccess("n", root=tmp_path), FileCache()
    (tmp_path / "d").mkdir()
    file = tmp_path / "d/a.crt"
    file.write_bytes(b"first")
    age(file, 10 * RACY_SECONDS)
    assert await listed_read(cache, access, "a.crt") == b"first"
    stat = file.stat()
    file.write_bytes(b"other")  # same size, same mtime: only the cache can answer "first"
    os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert await listed_read(cache, access, "a.crt") == b"first"
    file.write_bytes(b"second")  # a new size
    age(file, 10 * RACY_SECONDS)
    assert await listed_read(cache, access, "a.crt") == b"second"
    file.write_bytes(b"third!")  # the same size, a new mtime
    age(file, 5 * RACY_SECONDS)
    assert await listed_read(cache, access, "a.crt") == b"third!"


async def test_recent_files_and_symlinks_are_always_read_again(tmp_path: Path) -> None:
    access, cache = LocalNodeAccess("n", root=tmp_path), FileCache()
    (tmp_path / "d").mkdir()
    recent, target = tmp_path / "d/recent.crt", tmp_path / "target.crt"
    recent.write_bytes(b"one")
    target.write_bytes(b"one")
    age(target, 10 * RACY_SECONDS)
    (tmp_path / "d/link.crt").symlink_to(target)
    for name in ("recent.crt", "link.crt"):
        assert await listed_read(cache, access, name) == b"one"
    recent.write_bytes(b"two")  # within the racy window: mtime may not have moved
    target.write_bytes(b"two")  # behind an unchanged link
    for name in ("recent.crt", "link.crt"):
        assert await listed_read(cache, access, name) == b"two"
