"""Node access: one interface to a control-plane node's files and read-only commands.

Two implementations: over SSH (`cluster.nodes.ssh`) when the cockpit sits on a bastion, and on
the local filesystem (`cluster.nodes.local`) when it runs on the node itself. Collection reads
through it, and guarded actions (move a manifest out and back, `mv manifests manifests-DATE`)
act through it, so both see the same node the same way. Every call has a deadline; every
failure is a `NodeError` whose message an operator can act on.
"""

from __future__ import annotations

import asyncio
import enum
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from cluster.nodes.model import EXPECTED_COMPONENTS

DEFAULT_TIMEOUT = 3.0
MAX_READ_BYTES = 1024 * 1024
MAX_OUTPUT_BYTES = 1024 * 1024


class ErrorKind(enum.Enum):
    UNREACHABLE = "unreachable"
    HOST_KEY_UNKNOWN = "host key unknown"
    HOST_KEY_CHANGED = "host key changed"
    AUTH = "authentication failed"
    TIMEOUT = "timeout"
    PERMISSION = "permission denied"
    NOT_FOUND = "not found"
    EXISTS = "already exists"
    TOO_LARGE = "too large"
    NOT_REGULAR = "not a regular file"
    SUDO = "sudo refused"
    FAILED = "failed"


# Kinds that say the node itself cannot be reached (as opposed to one path on it).
CONNECTION_KINDS = frozenset(
    {
        ErrorKind.UNREACHABLE,
        ErrorKind.HOST_KEY_UNKNOWN,
        ErrorKind.HOST_KEY_CHANGED,
        ErrorKind.AUTH,
        ErrorKind.TIMEOUT,
    }
)


class NodeError(Exception):
    """A node operation failed; `str()` is the operator-readable message.

    `fingerprint` is the host key the server offered, for host key errors.
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        path: str | None = None,
        fingerprint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.path = path
        self.fingerprint = fingerprint

    @property
    def connection(self) -> bool:
        return self.kind in CONNECTION_KINDS


@dataclass(frozen=True)
class DirEntry:
    """A directory entry; `kind` is "file", "dir", "symlink" (not followed), "fifo",
    "socket", "block device", "character device" or "other".

    `mtime` (seconds since the epoch, node clock) lets a refresh skip re-reading a file whose
    size and modification time are unchanged.
    """

    name: str
    kind: str
    size: int | None = None
    mtime: float | None = None


class Listing(dict[str, DirEntry]):
    """Absolute path on the node -> its entry, sorted by path; read-only once built.

    `denied` names the directories below the top that this user may not enter (permission
    denied, as `find` goes on past them): what they hold is unknown, never absent.
    """

    denied: tuple[str, ...] = ()

    def __init__(
        self,
        entries: Mapping[str, DirEntry] | Iterable[tuple[str, DirEntry]] = (),
        denied: Iterable[str] = (),
    ) -> None:
        super().__init__(entries)
        if denied:
            self.denied = tuple(denied)

    def children(self, directory: str) -> dict[str, DirEntry]:
        """The entries directly in `directory`, by name, in order (indexed on first use: a
        refresh asks a listing for the same few directories many times)."""
        index: dict[str, dict[str, DirEntry]] | None = self.__dict__.get("_index")
        if index is None:
            index = {}
            for path, entry in self.items():
                index.setdefault(path.rpartition("/")[0], {})[entry.name] = entry
            self.__dict__["_index"] = index
        return index.get(directory, {})


@dataclass(frozen=True)
class Tree:
    """A directory and what lies up to `depth` levels below it; depth 0 is the path alone."""

    path: str
    depth: int


@dataclass(frozen=True)
class CommandResult:
    exit_status: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


@dataclass(frozen=True)
class Survey:
    """What one refresh wants of a node: trees to list, read-only commands to run and files
    to read (each up to MAX_READ_BYTES)."""

    trees: tuple[Tree, ...] = ()
    commands: tuple[tuple[str, ...], ...] = ()
    reads: tuple[str, ...] = ()


@dataclass(frozen=True)
class SurveyAnswer:
    """Per tree its listing, per file its bytes, or the NodeError that met them; per command
    its result. `sudo_refused` is sudo's refusal when root was wanted: then the answer is the
    SSH user's own."""

    trees: dict[Tree, Listing | NodeError]
    commands: dict[tuple[str, ...], CommandResult]
    files: dict[str, bytes | NodeError] = field(default_factory=dict)
    sudo_refused: str | None = None

    @property
    def denied(self) -> bool:
        """Whether this user was refused anything: a tree, a directory in one, a file."""
        return any(
            _denied(answer) or (isinstance(answer, Listing) and bool(answer.denied))
            for answer in (*self.trees.values(), *self.files.values())
        )


def _denied(answer: object) -> bool:
    return isinstance(answer, NodeError) and answer.kind is ErrorKind.PERMISSION


class NodeAccess(ABC):
    """Files and read-only commands of one node. Paths are the node's own absolute paths."""

    name: str
    address: str
    timeout: float
    components: tuple[str, ...] = EXPECTED_COMPONENTS  # the static pods the node should run

    @property
    def local(self) -> bool:
        return False

    @abstractmethod
    async def connect(self) -> None:
        """Opens (or re-checks) the connection; raises NodeError when the node is unreachable."""

    @abstractmethod
    async def list_dir(self, path: str) -> tuple[DirEntry, ...]:
        """Entries of a directory (not following symlinks), sorted by name."""

    @abstractmethod
    async def stat(self, path: str) -> DirEntry | None:
        """The entry at `path` (not following a final symlink), or None when nothing is there."""

    async def exists(self, path: str) -> bool:
        return await self.stat(path) is not None

    @abstractmethod
    async def read_file(self, path: str, limit: int = MAX_READ_BYTES) -> bytes:
        """A file's bytes; a file larger than `limit` is refused (TOO_LARGE) without reading it."""

    @abstractmethod
    async def rename(self, source: str, target: str) -> None:
        """Moves a file or directory; refuses (EXISTS) when `target` already exists."""

    @abstractmethod
    async def run(self, argv: Sequence[str], timeout: float | None = None) -> CommandResult:
        """Runs a read-only command; output beyond MAX_OUTPUT_BYTES is cut off."""

    @abstractmethod
    async def close(self) -> None:
        """Closes the connection; the object may connect again later."""

    async def survey(self, survey: Survey) -> SurveyAnswer:
        """Every tree listed and every command run. This does it call by call; an access whose
        calls are round trips does it in one (`SshNodeAccess`)."""
        trees, results, contents = await asyncio.gather(
            asyncio.gather(*(self.list_tree(t) for t in survey.trees)),
            asyncio.gather(*(self.run(list(c)) for c in survey.commands)),
            asyncio.gather(*(self._read_or_error(path) for path in survey.reads)),
        )
        return SurveyAnswer(
            dict(zip(survey.trees, trees, strict=True)),
            dict(zip(survey.commands, results, strict=True)),
            dict(zip(survey.reads, contents, strict=True)),
        )

    async def _read_or_error(self, path: str) -> bytes | NodeError:
        try:
            return await self.read_file(path)
        except NodeError as exc:
            if exc.connection:
                raise
            return exc

    async def list_tree(self, tree: Tree) -> Listing | NodeError:
        """The entries below `tree.path` by path, sorted (symlinked directories not followed),
        or the error that listing its top met; connection errors are raised."""
        try:
            if tree.depth == 0:
                entry = await self.stat(tree.path)
                if entry is None:
                    raise NodeError(
                        ErrorKind.NOT_FOUND,
                        f"{tree.path}: No such file or directory",
                        path=tree.path,
                    )
                return Listing({tree.path: entry})
            found, denied = await self._walk(tree.path, tree.depth)
            return Listing(sorted(found.items()), denied)
        except NodeError as exc:
            if exc.connection:
                raise
            return exc

    async def _walk(self, directory: str, depth: int) -> tuple[dict[str, DirEntry], list[str]]:
        """(the entries below `directory`, the directories among them it may not enter)."""
        found: dict[str, DirEntry] = {}
        denied: list[str] = []
        for entry in await self.list_dir(directory):
            path = f"{directory}/{entry.name}"
            found[path] = entry
            if entry.kind == "dir" and depth > 1:
                below = await self.list_tree(Tree(path, depth - 1))
                if isinstance(below, Listing):
                    found |= below
                    denied += below.denied
                elif _denied(below):  # as find goes on past an unreadable one, and says so
                    denied.append(path)
        return found, denied


# What may be opened to read: a FIFO would block the reader for ever, a device could answer
# without end, a socket cannot be opened at all. A symlink is read only when its target is a
# regular file (each access checks that as it opens).
READABLE_KINDS = ("file", "symlink")


def not_regular(path: str, kind: str = "") -> NodeError:
    """`kind` when the listing says what it is ("fifo"); a symlink's target does not say."""
    what = f"a {kind}, not a regular file" if kind and kind != "symlink" else "not a regular file"
    return NodeError(ErrorKind.NOT_REGULAR, f"{path}: {what}: never opened", path=path)


def too_large(path: str, size: int, limit: int) -> NodeError:
    return NodeError(
        ErrorKind.TOO_LARGE,
        f"{path}: {size} bytes, larger than the {limit} byte read limit (not read)",
        path=path,
    )


def timed_out(what: str, seconds: float) -> NodeError:
    return NodeError(ErrorKind.TIMEOUT, f"{what}: no answer within {seconds:g} s")


def bounded_text(data: bytes) -> str:
    return data[:MAX_OUTPUT_BYTES].decode("utf-8", errors="replace")
