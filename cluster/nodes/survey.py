"""A node's whole refresh in one round trip: a POSIX shell script that lists the watched trees
and runs the read-only commands, answering in one framed stream.

Over SFTP and one exec channel per command, a warm refresh of a node was some thirty request /
reply exchanges (readdir is open, read, read, close per directory), each costing both ends CPU
for packet crypto; thirty nodes then cost ten times three. The survey is one exec: `find
-printf` lists the trees with size and mtime (enough for the file cache to skip unchanged
files), and each command's stdout, exit status and stderr come back framed by a per-call nonce
the commands cannot forge. Changed files are still read over SFTP, which is rare once warm.

The script needs a POSIX `sh` and GNU `find` (kubeadm's distributions have both). A tree whose
`find` fails for another reason than a missing or unreadable directory (busybox's `find` has no
`-printf`) is listed over SFTP instead; the caller cannot tell the difference. A directory `find`
may not enter (`find: 'PATH': Permission denied`, as a non-root user meets kubeadm's 0700
manifests/) is named in the listing's `denied`: its files are unknown, not missing.

The first line carries the request as JSON, so the lab's SSH server, which has no per-node
kernel to run the script on, answers it from the node's files in the same framing.
"""

from __future__ import annotations

import functools
import json
import re
import secrets
import shlex
from dataclasses import dataclass

from cluster.nodes.access import (
    MAX_READ_BYTES,
    CommandResult,
    DirEntry,
    ErrorKind,
    Listing,
    NodeError,
    Survey,
    SurveyAnswer,
    Tree,
    bounded_text,
    not_regular,
    too_large,
)

HEADER = "# kcockpit-survey v1 "
MAX_STDERR_BYTES = 4096
FIND_KINDS = {
    "f": "file",
    "d": "dir",
    "l": "symlink",
    "p": "fifo",
    "s": "socket",
    "b": "block device",
    "c": "character device",
}
KIND_LETTERS = {kind: letter for letter, kind in FIND_KINDS.items()}
# `%p` is the path as reached from the starting point, so it keeps any `root` prefix.
FIND_FORMAT = r"%y %s %T@ %p\0"


def find_argv(tree: Tree, root: str = "") -> list[str]:
    return [
        "find",
        root + tree.path,
        "-mindepth",
        "1" if tree.depth else "0",
        "-maxdepth",
        str(tree.depth),
        "-printf",
        FIND_FORMAT,
    ]


READ_FUNCTION = "read_regular"
NOT_REGULAR_WORDS = "not a regular file"


def read_argv(path: str, root: str = "") -> list[str]:
    """A file's bytes, one beyond the read limit so a file too large shows as such (through
    the script's READ_FUNCTION: only a regular file is opened)."""
    return [READ_FUNCTION, root + path]


@functools.lru_cache(maxsize=256)
def script(survey: Survey, nonce: str, root: str = "") -> str:
    """The shell text; `root` prefixes every path (tests run it on a directory of their own)."""
    request = {
        "nonce": nonce,
        "trees": [[t.path, t.depth] for t in survey.trees],
        "commands": [list(c) for c in survey.commands],
        "reads": list(survey.reads),
    }
    # `section N cmd...`: stdout goes straight out (fd 3), stderr is captured and follows the
    # exit status, so a command's warnings never mix into its JSON.
    # Every command's stdin is /dev/null, or it could read the rest of this script. A file is
    # read only if it is a regular one (or a link to one): `head` on a FIFO would wait for a
    # writer for ever, on a device it would read whatever the device gives.
    # The shell's own stderr is dropped once it runs (each command's is captured): what reaches
    # the caller's stderr is only what came before, sudo's refusal, bounded by construction.
    lines = [
        HEADER + json.dumps(request),
        "exec 3>&1 2>/dev/null",
        f"m='@@{nonce}'",
        "section() {",
        '  n=$1; shift; printf \'%s begin %s\\n\' "$m" "$n"',
        '  e=$("$@" 2>&1 >&3 3>&- </dev/null); r=$?',
        '  printf \'\\n%s end %s %s\\n\' "$m" "$n" "$r"',
        f"  printf '%s' \"$e\" | head -c {MAX_STDERR_BYTES}",
        "  printf '\\n%s done\\n' \"$m\"",
        "}",
        f"{READ_FUNCTION}() {{",
        '  if [ -e "$1" ] && [ ! -f "$1" ]; then',
        f"    printf '%s: {NOT_REGULAR_WORDS}\\n' \"$1\" >&2; return 1",
        "  fi",
        f'  head -c {MAX_READ_BYTES + 1} -- "$1"',
        "}",
    ]
    argvs = [find_argv(t, root) for t in survey.trees] + [list(c) for c in survey.commands]
    argvs += [read_argv(path, root) for path in survey.reads]
    lines += [f"section {i} {shlex.join(argv)}" for i, argv in enumerate(argvs)]
    lines.append("printf '%s finished\\n' \"$m\"")
    return "\n".join(lines) + "\n"


def finished(nonce: str) -> bytes:
    """The line that ends a survey's answer (the shell stays open for the next one)."""
    return f"@@{nonce} finished\n".encode()


def new_nonce() -> str:
    return f"kcockpit-{secrets.token_hex(8)}"


def read_request(command: str) -> tuple[str, Survey] | None:
    """(nonce, survey) of a survey script, None for any other command."""
    first, _, _ = command.partition("\n")
    if not first.startswith(HEADER):
        return None
    request = json.loads(first.removeprefix(HEADER))
    survey = Survey(
        tuple(Tree(str(path), int(depth)) for path, depth in request["trees"]),
        tuple(tuple(str(a) for a in argv) for argv in request["commands"]),
        tuple(str(path) for path in request.get("reads", ())),
    )
    return str(request["nonce"]), survey


def section(nonce: str, index: int, stdout: bytes, status: int, stderr: bytes) -> bytes:
    """One section exactly as the script frames it."""
    mark = f"@@{nonce}".encode()
    return (
        mark + f" begin {index}\n".encode() + stdout
        + b"\n" + mark + f" end {index} {status}\n".encode()
        + stderr.rstrip(b"\n")[:MAX_STDERR_BYTES]
        + b"\n" + mark + b" done\n"
    )  # fmt: skip


def find_record(kind: str, size: int, mtime: float, path: str) -> bytes:
    """One entry as `find -printf FIND_FORMAT` prints it (`path` may carry surrogate escapes
    of a file name that is not UTF-8)."""
    return f"{KIND_LETTERS.get(kind, 'o')} {size} {mtime:.10f} {path}\0".encode(
        errors="surrogateescape"
    )


def parse(survey: Survey, nonce: str, output: bytes, root: str = "") -> SurveyAnswer:
    """Splits the stream into sections; a section missing from it raises NodeError."""
    mark = f"@@{nonce}".encode()
    trees: dict[Tree, Listing | NodeError] = {}
    commands: dict[tuple[str, ...], CommandResult] = {}
    files: dict[str, bytes | NodeError] = {}
    rest = output
    reads = tuple(Read(path) for path in survey.reads)
    for index, item in enumerate((*survey.trees, *survey.commands, *reads)):
        begin = mark + f" begin {index}\n".encode()
        end = b"\n" + mark + f" end {index} ".encode()
        start = rest.find(begin)
        stop = rest.find(end, start)
        done = rest.find(b"\n" + mark + b" done\n", stop)
        if start < 0 or stop < 0 or done < 0:
            raise NodeError(ErrorKind.FAILED, f"survey output cut short before section {index}")
        stdout = rest[start + len(begin) : stop]
        status_line, _, stderr = rest[stop + len(end) : done].partition(b"\n")
        rest = rest[done:]
        if not status_line.isdigit():
            raise NodeError(ErrorKind.FAILED, f"survey section {index}: no exit status")
        status = int(status_line)
        if isinstance(item, Tree):
            trees[item] = _listing(item, status, stdout, stderr, root)
        elif isinstance(item, Read):
            files[item.path] = _content(item.path, status, stdout, stderr)
        else:
            assert isinstance(item, tuple)  # a command's argv
            commands[item] = CommandResult(status, bounded_text(stdout), bounded_text(stderr))
    return SurveyAnswer(trees, commands, files)


@dataclass(frozen=True)
class Read:
    """A file to read, as a survey section (a bare path would pass for a command)."""

    path: str


def _content(path: str, status: int, stdout: bytes, stderr: bytes) -> bytes | NodeError:
    if status == 0:
        return (
            too_large(path, len(stdout), MAX_READ_BYTES) if len(stdout) > MAX_READ_BYTES else stdout
        )
    return tool_error(path, bounded_text(stderr).strip(), "head")


def _listing(
    tree: Tree, status: int, stdout: bytes, stderr: bytes, root: str
) -> Listing | NodeError:
    entries = _entries(stdout, root)
    if status == 0 or entries:  # a subdirectory find could not enter leaves the rest listed
        denied = find_denied(stderr, root)
        return Listing(entries, denied) if denied else entries
    return tool_error(tree.path, bounded_text(stderr).strip(), "find")


# GNU find's words for a directory it may not enter; the path is quoted 'so' in the C locale,
# ‘so’ in a UTF-8 one.
FIND_DENIED = re.compile(r"^find: (.+): Permission denied$", re.MULTILINE)
QUOTES = "'\"‘’"


def find_denied(stderr: bytes, root: str = "") -> tuple[str, ...]:
    """The paths `find` said it may not enter, as the node names them (`root` taken off)."""
    text = bounded_text(stderr)
    quoted = (match.group(1) for match in FIND_DENIED.finditer(text))
    return tuple(
        path[1:-1].removeprefix(root)
        for path in quoted
        if len(path) > 1 and path[0] in QUOTES and path[-1] in QUOTES
    )


def tool_error(path: str, reason: str, tool: str) -> NodeError:
    """A failed find, head or mv as the NodeError an SFTP call on `path` would have raised."""
    if NOT_REGULAR_WORDS in reason:
        return not_regular(path)
    for words, kind in (
        ("No such file or directory", ErrorKind.NOT_FOUND),
        ("Not a directory", ErrorKind.NOT_FOUND),
        ("Permission denied", ErrorKind.PERMISSION),
    ):
        if words in reason:
            return NodeError(kind, f"{path}: {words}", path=path)
    return NodeError(ErrorKind.FAILED, f"{path}: {tool}: {reason[:200]}", path=path)


@functools.lru_cache(maxsize=512)
def _entries(stdout: bytes, root: str) -> Listing:
    """find's records by path, sorted; memoised, as a warm refresh lists the same trees again
    (callers only read a listing)."""
    entries: dict[str, DirEntry] = {}
    for record in stdout.split(b"\0"):
        letter, _, rest = record.partition(b" ")
        size, _, rest = rest.partition(b" ")
        mtime, _, raw_path = rest.partition(b" ")
        if not raw_path:
            continue
        try:
            size_bytes, modified = int(size), float(mtime)
        except ValueError:
            continue  # not find's record: nothing a listing can use
        path = raw_path.decode("utf-8", errors="replace").removeprefix(root)
        kind = FIND_KINDS.get(letter.decode(errors="replace"), "other")
        entries[path] = DirEntry(path.rpartition("/")[2], kind, size_bytes, modified)
    return Listing(sorted(entries.items()))
