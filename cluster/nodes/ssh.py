"""Node access over SSH (asyncssh): one connection per node, opened once and kept.

Files go over SFTP, commands over exec channels of the same connection, all multiplexed, so a
refresh costs round trips, not handshakes. The user's own SSH setup is honoured: ~/.ssh/config
(Host aliases, User, Port, IdentityFile, ProxyJump for bastions), the agent and
~/.ssh/known_hosts, unless the node config names its own (the lab does). A host key that is
unknown or changed is refused; the error carries the offered key's fingerprint so the operator
can compare it with the node's console before trusting it.

What the user's SSH setup cannot do is weaken that: kcockpit always hands asyncssh its own
known_hosts (so asyncssh never reads UserKnownHostsFile for the node), never forwards the agent
to a node whatever ForwardAgent says, and refuses to connect when the ssh_config that applies to
the node or its jump hosts asks for no host-key checking (`UserKnownHostsFile none` or
/dev/null, `StrictHostKeyChecking no`/`off`/`accept-new`): a config written to switch checking
off fails loudly, naming its file and line, instead of being quietly overridden.

With `sudo` the SSH user reads as root: the survey shell kept open is `sudo -n sh -s` (one sudo,
one auth-log line, per connection, not per refresh), reads and stats go to that shell instead of
SFTP (which reads as the user), and a move is `sudo -n mv`. `sudo = "auto"` starts as the user
and turns to root for good at the first read the user was refused. When sudo refuses (a password
wanted, not in sudoers, no sudo), its words are kept and the node is read as the user for the
rest of the connection: what that user may not read shows as permission denied, never missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import shlex
import stat as stat_module
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar, cast

import asyncssh
from asyncssh.config import SSHClientConfig, SSHConfig
from asyncssh.encryption import get_default_encryption_algs
from asyncssh.session import SSHTCPSessionFactory

from cluster.config import NodeConfig
from cluster.nodes.access import (
    MAX_READ_BYTES,
    CommandResult,
    DirEntry,
    ErrorKind,
    NodeAccess,
    NodeError,
    Survey,
    SurveyAnswer,
    Tree,
    bounded_text,
    not_regular,
    timed_out,
    too_large,
)
from cluster.nodes.local import entry_kind
from cluster.nodes.survey import (
    MAX_STDERR_BYTES,
    finished,
    new_nonce,
    parse,
    script,
    tool_error,
)

T = TypeVar("T")
KEEPALIVE_SECONDS = 10.0
# StrictHostKeyChecking values that would connect to a host whose key is unknown or changed.
UNCHECKED = frozenset({"no", "off", "accept-new"})
# AES-GCM first: one AEAD call per packet, where asyncssh's ChaCha20 builds two cipher contexts
# per packet (a third of a warm refresh's client CPU). The defaults stay as fallbacks.
ENCRYPTION_PREFERENCE = [
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    *(a.decode() for a in get_default_encryption_algs() if b"gcm" not in a),
]

SHELL = "sh -s"
ROOT_SHELL = "sudo -n sh -s"  # -n: a sudo that wants a password refuses instead of waiting
# What sudo (or the shell, when there is no sudo) says when it will not run a command.
SUDO_WORDS = ("sudo:", "sudoers", "may not run sudo")
SHELL_WORDS_SECONDS = 1.0

SFTP_KINDS = {
    asyncssh.FX_NO_SUCH_FILE: ErrorKind.NOT_FOUND,
    asyncssh.FX_NO_SUCH_PATH: ErrorKind.NOT_FOUND,
    asyncssh.FX_NOT_A_DIRECTORY: ErrorKind.NOT_FOUND,
    asyncssh.FX_PERMISSION_DENIED: ErrorKind.PERMISSION,
    asyncssh.FX_FILE_ALREADY_EXISTS: ErrorKind.EXISTS,
}


def user_known_hosts() -> Path:
    """~/.ssh/known_hosts, resolved when used: HOME is read at connect time, as asyncssh does."""
    return Path("~/.ssh/known_hosts").expanduser()


def _traced(setter: Callable[..., None]) -> Callable[..., None]:
    """asyncssh's setter for an option, also noting the file and line of the value that wins
    (the first one met, as ssh reads it), so a refusal can point at it."""

    def handler(config: _TrustConfig, option: str, args: list[str]) -> None:
        if option not in config._options:
            config.origins[option] = f"{config._path} line {config._line_no}"
        setter(config, option, args)

    return handler


class _TrustConfig(SSHClientConfig):
    """The ssh_config that applies to one host, read by asyncssh's own parser (Host and Match
    blocks, Include, tokens, first value wins) so kcockpit judges exactly what asyncssh would
    apply. It also keeps StrictHostKeyChecking, an option asyncssh skips as unknown: a config
    that sets it means to weaken checking, and kcockpit refuses it rather than ignore it."""

    _handlers = {
        **SSHClientConfig._handlers,
        "userknownhostsfile": ("UserKnownHostsFile", _traced(SSHConfig._set_string_list)),
        "stricthostkeychecking": ("StrictHostKeyChecking", _traced(SSHConfig._set_string)),
    }

    def __init__(self, *args: Any) -> None:
        self.origins: dict[str, str] = {}
        super().__init__(*args)

    def unchecked(self) -> str | None:
        """Where and how this config asks to connect without checking host keys, or None."""
        files = self.get("UserKnownHostsFile")
        if isinstance(files, list) and all(_null_device(f) for f in files):
            setting = f"UserKnownHostsFile {' '.join(files) or 'none'}"
            return f"{self.origins['UserKnownHostsFile']}: `{setting}`"
        strict = self.get("StrictHostKeyChecking")
        if isinstance(strict, str) and strict.lower() in UNCHECKED:
            return f"{self.origins['StrictHostKeyChecking']}: `StrictHostKeyChecking {strict}`"
        return None


def _judge(
    paths: list[Path], local_user: str, host: str, user: object, port: object
) -> tuple[str | None, list[str]]:
    """(where the ssh_config for `host` asks for no host-key checking, or None; its ProxyJump
    hops). `user` and `port` are () when unset, as asyncssh takes them. Both of asyncssh's
    passes are judged: the first, and the one it rereads the files with when a `Match
    canonical` or `Match final` block is present."""
    unchecked, jumps = None, []
    for again in (False, True):
        config = cast(
            _TrustConfig,
            _TrustConfig.load(None, paths, False, again, again, local_user, user, host, port),
        )
        unchecked = unchecked or config.unchecked()
        proxy = config.get("ProxyJump")
        if isinstance(proxy, str):
            jumps += [spec for spec in proxy.split(",") if spec not in jumps]
    return unchecked, jumps


def _jump(spec: str) -> tuple[str, object, object]:
    """(host, user, port) of one ProxyJump hop, split as asyncssh splits it; () is unset."""
    user, _, host = spec.rpartition("@")
    port: object = ()
    if ":" in host:
        host, _, number = host.rpartition(":")
        port = int(number)
    return host, user or (), port


def _null_device(path: str) -> bool:
    return os.path.realpath(os.path.expanduser(path)) == os.devnull


def _trusted(known_hosts: Path) -> str | asyncssh.SSHKnownHosts:
    """What asyncssh checks host keys against. A file not there yet trusts no key: passing its
    missing name would fail as an OSError, and an empty value would make asyncssh fall back to
    ~/.ssh/known_hosts, which is not what the node config names."""
    return str(known_hosts) if known_hosts.exists() else asyncssh.import_known_hosts("")


class _Hop:
    """One ProxyJump hop that kcockpit opens itself, so that it is closed with the attempt it
    serves. asyncssh's own ProxyJump leaves the jump host's connection open when the attempt is
    cancelled (the node's deadline) while the jump host is still opening its channel onwards:
    that cleanup catches Exception, which cancellation is not. Behind a bastion, a node that
    never answers cost one bastion connection per refresh. A hop is handed to asyncssh as the
    tunnel: it connects as asyncssh's own would (the same config files, through the hop before
    it, none of kcockpit's options), and `close` closes it and every hop before it."""

    def __init__(self, spec: str, config: object, before: _Hop | None) -> None:
        self.host, self.user, self.port = _jump(spec)
        self.config = config
        self.before = before
        self.connection: asyncssh.SSHClientConnection | None = None

    @classmethod
    def chain(cls, proxy_jump: object, config: object) -> _Hop | None:
        """The last hop of a ProxyJump value ("a,b": through a to b), None without one."""
        hop = None
        if isinstance(proxy_jump, str) and proxy_jump.lower() != "none":
            for spec in proxy_jump.split(","):
                hop = cls(spec, config, hop)
        return hop

    async def create_connection(
        self,
        session_factory: SSHTCPSessionFactory[bytes],
        remote_host: str,
        remote_port: int,
    ) -> tuple[asyncssh.SSHTCPChannel[bytes], asyncssh.SSHTCPSession[bytes]]:
        """What asyncssh calls to reach the node (or the next hop) through this one."""
        self.connection = await asyncssh.connect(
            self.host,
            cast(Any, self.port),
            username=cast(Any, self.user),
            tunnel=self.before or (),
            config=cast(Any, self.config),
        )
        return await self.connection.create_connection(session_factory, remote_host, remote_port)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.abort()
        if self.before is not None:
            self.before.close()

    async def wait_closed(self) -> None:
        """Until this hop's connection and every one before it has closed."""
        if self.connection is not None:
            await self.connection.wait_closed()
        if self.before is not None:
            await self.before.wait_closed()


class SshNodeAccess(NodeAccess):
    """A node reached over SSH; connects on first use and again after the link breaks."""

    def __init__(self, node: NodeConfig) -> None:
        self.node = node
        self.name = node.name
        self.address = node.address
        self.timeout = node.timeout
        self._connection: asyncssh.SSHClientConnection | None = None
        self._hop: _Hop | None = None  # the connection's last ProxyJump hop
        self._sftp: asyncssh.SFTPClient | None = None
        self._lock = asyncio.Lock()
        self._shell: asyncssh.SSHClientProcess[bytes] | None = None  # `sh -s` for surveys
        self._shell_lock = asyncio.Lock()  # one survey at a time per shell
        self._nonce = ""  # frames the shell's answers
        self._shell_refused = False  # this connection's shell cannot run the survey
        self._shell_as_root = False  # the open shell is ROOT_SHELL
        self._shell_answered = False  # the open shell answered once (so sudo let it run)
        self._root = node.sudo is True  # wants root; an "auto" node once refused a read
        self._sudo_refused: NodeError | None = None  # this connection's sudo said no

    @property
    def sudo(self) -> bool:
        """Whether reads and moves go through `sudo -n` now."""
        return self._root and self._sudo_refused is None

    @property
    def _root_shell(self) -> bool:
        """Whether reads go to the root shell (SFTP would read as the SSH user)."""
        return self.sudo and not self._shell_refused

    @property
    def target(self) -> str:
        port = f":{self.node.port}" if self.node.port else ""
        user = f"{self.node.user}@" if self.node.user else ""
        return f"{user}{self.address}{port}"

    def _options(self) -> dict[str, Any]:
        node = self.node
        options: dict[str, Any] = {
            "connect_timeout": self.timeout,
            "known_hosts": _trusted(self.known_hosts),
            "agent_forwarding": False,
        }
        if node.port:
            options["port"] = node.port
        if node.user:
            options["username"] = node.user
        if node.identity:
            options["client_keys"] = [str(node.identity)]
        if node.ssh_config is not None:
            options["config"] = [str(p) for p in node.ssh_config]
        if not node.agent:
            options["agent_path"] = None
        return options

    @property
    def known_hosts(self) -> Path:
        """The one known_hosts this node's host key is checked against."""
        return self.node.known_hosts or user_known_hosts()

    def _config_paths(self) -> list[Path]:
        """The ssh_config files asyncssh reads for this node: the node config's list, else
        ~/.ssh/config when it can be read (asyncssh's own rule)."""
        if self.node.ssh_config is not None:
            return list(self.node.ssh_config)
        default = Path("~/.ssh/config").expanduser()
        return [default] if os.access(default, os.R_OK) else []

    def _refuse_unchecked(self) -> None:
        """Raises when the ssh_config for the node, or for a jump host on its ProxyJump, asks
        for no host-key checking. asyncssh connects a jump host with the same config files but
        none of kcockpit's options, so only refusing keeps that hop checked."""
        paths = self._config_paths()
        try:
            local_user = getpass.getuser()
            user, port = self.node.user or (), self.node.port or ()
            unchecked, jumps = _judge(paths, local_user, self.address, user, port)
            for spec in jumps:
                if unchecked is None and (found := _judge(paths, local_user, *_jump(spec))[0]):
                    unchecked = f"{found} for jump host {spec}"
        except (OSError, ValueError, KeyError) as exc:  # unreadable, malformed, no local user
            raise NodeError(
                ErrorKind.UNREACHABLE, f"{self.name}: ssh {self.target}: ssh_config: {exc}"
            ) from None
        if unchecked is not None:
            raise NodeError(
                ErrorKind.UNREACHABLE,  # a connection kind: nothing on the node is read
                f"{self.name}: ssh {self.target}: refused: {unchecked} would turn host-key "
                f"checking off, which kcockpit never does (it checks against "
                f"{self.known_hosts}); remove it for this host, or set ssh_config = [] for "
                f"the node",
            )

    async def connect(self) -> None:
        await self._sftp_client()

    async def _sftp_client(self) -> asyncssh.SFTPClient:
        async with self._lock:
            if self._connection is not None and not self._connection.is_closed():
                assert self._sftp is not None
                return self._sftp
            self._drop()
            try:
                connection = await asyncio.wait_for(self._open(), self.timeout)
            except TimeoutError:
                raise timed_out(f"{self.name}: ssh {self.target}", self.timeout) from None
            self._connection = connection
            try:
                self._sftp = await asyncio.wait_for(connection.start_sftp_client(), self.timeout)
            except (TimeoutError, asyncssh.Error, OSError) as exc:
                self._drop()
                raise NodeError(
                    ErrorKind.UNREACHABLE, f"{self.name}: SFTP unavailable: {exc}"
                ) from None
            return self._sftp

    async def _open(self) -> asyncssh.SSHClientConnection:
        self._refuse_unchecked()
        options = {
            "keepalive_interval": KEEPALIVE_SECONDS,
            "keepalive_count_max": 2,
            "encryption_algs": ENCRYPTION_PREFERENCE,
            **self._options(),
        }
        try:
            hop = await self._hops(options)
            try:
                connection = await asyncssh.connect(self.address, tunnel=hop or (), **options)
            except BaseException:  # cancelled too: the hops opened for it close with it
                if hop is not None:
                    hop.close()
                raise
            self._hop = hop
            return connection
        except asyncssh.HostKeyNotVerifiable as exc:
            raise await self._host_key_error(str(exc)) from None
        except asyncssh.PermissionDenied as exc:
            raise NodeError(
                ErrorKind.AUTH,
                f"{self.name}: ssh {self.target}: authentication refused ({exc.reason}); "
                "check the user and identity (IdentityFile / agent)",
            ) from None
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise NodeError(
                ErrorKind.UNREACHABLE, f"{self.name}: ssh {self.target}: {reason}"
            ) from None
        except asyncssh.Error as exc:
            reason = exc.reason or str(exc)
            raise NodeError(
                ErrorKind.UNREACHABLE, f"{self.name}: ssh {self.target}: {reason}"
            ) from None

    async def _hops(self, options: dict[str, Any]) -> _Hop | None:
        """The node's ProxyJump hops (the last one), as asyncssh reads them for the node with
        these options, or None when it is reached directly."""
        resolved = await asyncssh.SSHClientConnectionOptions.construct(host=self.address, **options)
        return _Hop.chain(resolved.tunnel, options.get("config", ()))

    async def _host_key_error(self, reason: str) -> NodeError:
        """Unknown or changed: tells which, with the offered key's fingerprint."""
        options = {k: v for k, v in self._options().items() if k in ("port", "config")}
        hop = None
        try:
            hop = await self._hops(options)
            offered = await asyncio.wait_for(
                asyncssh.get_server_host_key(self.address, tunnel=hop or (), **options),
                self.timeout,
            )
        except (TimeoutError, asyncssh.Error, OSError):
            offered = None
        finally:
            if hop is not None:
                hop.close()
        fingerprint = offered.get_fingerprint() if offered else None
        known_hosts = self.known_hosts
        port = self.node.port or 22
        try:
            listed = asyncssh.read_known_hosts(str(known_hosts)).match(
                self.address, self.address, port
            )[0]
        except (OSError, ValueError, asyncssh.Error):
            listed = ()
        kind = ErrorKind.HOST_KEY_CHANGED if listed else ErrorKind.HOST_KEY_UNKNOWN
        entry = f"[{self.address}]:{port}" if port != 22 else self.address
        offered_text = f"the server offers {fingerprint}" if fingerprint else reason
        if kind is ErrorKind.HOST_KEY_CHANGED:
            what = (
                f"HOST KEY CHANGED for {entry}: {known_hosts} trusts another key, "
                f"{offered_text}. Someone may be intercepting, or the node was rebuilt: "
                f"compare with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on its "
                f"console, then `ssh-keygen -f {known_hosts} -R '{entry}'`"
            )
        else:
            what = (
                f"host key unknown for {entry} (not in {known_hosts}); {offered_text}. "
                f"Compare with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on its "
                f"console, then add it: `ssh-keyscan -p {port} {self.address} >> {known_hosts}`"
            )
        return NodeError(kind, f"{self.name}: {what}", fingerprint=fingerprint)

    def _drop(self) -> None:
        self._shell = None
        self._shell_refused = False  # a new connection may find another shell
        self._sudo_refused = None  # and sudo fixed meanwhile
        if self._connection is not None:
            self._connection.abort()
        if self._hop is not None:
            self._hop.close()
        self._connection, self._hop = None, None
        self._sftp = None

    async def _sftp_call(self, what: str, path: str, call: Awaitable[T]) -> T:
        try:
            return await asyncio.wait_for(call, self.timeout)
        except TimeoutError:
            self._drop()  # a frozen link: the next call reconnects under its own deadline
            raise timed_out(f"{self.name}: {what} {path}", self.timeout) from None
        except asyncssh.SFTPError as exc:
            kind = SFTP_KINDS.get(exc.code, ErrorKind.FAILED)
            raise NodeError(kind, f"{path}: {exc.reason}", path=path) from None
        except (asyncssh.Error, OSError) as exc:
            self._drop()
            raise NodeError(ErrorKind.UNREACHABLE, f"{self.name}: {what} {path}: {exc}") from None

    async def list_dir(self, path: str) -> tuple[DirEntry, ...]:
        sftp = await self._sftp_client()
        names = await self._sftp_call("list", path, sftp.readdir(path))
        entries = (
            DirEntry(str(n.filename), _kind(n.attrs), n.attrs.size, _mtime(n.attrs))
            for n in names
            if n.filename not in (".", "..")
        )
        return tuple(sorted(entries, key=lambda e: e.name))

    async def stat(self, path: str) -> DirEntry | None:
        if self._root_shell:
            tree = Tree(path, 0)
            listing = (await self._survey(Survey((tree,)))).trees[tree]
            if isinstance(listing, NodeError):
                if listing.kind is ErrorKind.NOT_FOUND:
                    return None
                raise listing
            return next(iter(listing.values()), None)
        sftp = await self._sftp_client()
        try:
            attrs = await self._sftp_call("stat", path, sftp.lstat(path))
        except NodeError as exc:
            if exc.kind is ErrorKind.NOT_FOUND:
                return None
            raise
        return DirEntry(
            path.rstrip("/").rpartition("/")[2], _kind(attrs), attrs.size, _mtime(attrs)
        )

    async def read_file(self, path: str, limit: int = MAX_READ_BYTES) -> bytes:
        if self._root_shell:
            content = (await self._survey(Survey(reads=(path,)))).files[path]
            if isinstance(content, NodeError):
                raise content
            if len(content) > limit:
                raise too_large(path, len(content), limit)
            return content
        sftp = await self._sftp_client()

        async def read() -> bytes:
            if not stat_module.S_ISREG((await sftp.stat(path)).permissions or 0):
                raise not_regular(path)  # opening a FIFO would hold the node's SFTP server
            handle = await sftp.open(path, "rb")
            try:
                size = (await handle.stat()).size
                if size is not None and size > limit:
                    raise too_large(path, size, limit)
                # Ask for what stat promised plus one byte: asyncssh splits a read into
                # parallel block requests, so asking for `limit` each time would send dozens.
                data = await handle.read(size + 1) if size is not None else b""
                if size is None or len(data) > size:  # size unknown, or it grew since stat
                    data = await handle.read(limit + 1, 0)
            finally:
                with contextlib.suppress(asyncssh.Error, OSError):  # a link lost mid-read
                    await handle.close()
            if len(data) > limit:
                raise too_large(path, len(data), limit)
            assert isinstance(data, bytes)  # opened "rb"
            return data

        return await self._sftp_call("read", path, read())

    async def rename(self, source: str, target: str) -> None:
        """Over SFTP as the user; with sudo a `sudo -n mv -T -n` (the user's SFTP may not touch
        root's 0700 manifests/), and a source still there afterwards means the target
        appeared meanwhile and `-n` kept it."""
        if await self.stat(target) is not None:
            raise NodeError(ErrorKind.EXISTS, f"{target}: already exists", path=target)
        if not self.sudo:
            sftp = await self._sftp_client()
            await self._sftp_call("rename", source, sftp.rename(source, target))
            return
        moved = await self.run(["mv", "-T", "-n", "--", source, target])
        words = moved.stderr.strip()
        if not moved.ok and _sudo_said(words):
            raise NodeError(ErrorKind.SUDO, f"{self.name}: sudo -n mv: {words}", path=source)
        if not moved.ok:
            raise tool_error(source, words, "mv")
        if await self.stat(source) is not None:
            raise NodeError(ErrorKind.EXISTS, f"{target}: already exists", path=target)

    async def run(self, argv: Sequence[str], timeout: float | None = None) -> CommandResult:
        """Runs `argv` (quoted for the node's shell), through `sudo -n` when reading as root."""
        command = shlex.join(("sudo", "-n", *argv) if self.sudo else argv)
        result = await self._exec(command, timeout or self.timeout)
        return CommandResult(
            result.exit_status if result.exit_status is not None else -1,
            bounded_text(_bytes(result.stdout)),
            bounded_text(_bytes(result.stderr)),
        )

    async def survey(self, survey: Survey) -> SurveyAnswer:
        """One exchange with a `sh -s` kept open on the node: the survey script goes in, its
        framed answer comes out. A node whose shell cannot run it is surveyed call by call; a
        tree its `find` cannot list or a file its `head` cannot read goes over SFTP. An "auto"
        node whose answer was refused a read asks again as root, once, and stays root."""
        answer = await self._survey(survey)
        if self.node.sudo == "auto" and not (self._root or self._shell_refused) and answer.denied:
            self._root = True
            answer = await self._survey(survey)
        refused = self._sudo_refused
        return replace(answer, sudo_refused=str(refused)) if refused else answer

    async def _survey(self, survey: Survey) -> SurveyAnswer:
        if self._shell_refused:
            return await super().survey(survey)
        async with self._shell_lock:
            try:
                nonce, output = await asyncio.wait_for(self._ask_shell(survey), self.timeout)
            except TimeoutError:
                self._close_shell()  # a half-read answer would desynchronise the next one
                raise timed_out(f"{self.name}: survey", self.timeout) from None
            except asyncio.CancelledError:  # the caller's deadline, or closing: same reason
                self._close_shell()
                raise
            except (asyncio.IncompleteReadError, asyncssh.Error, OSError) as exc:
                await self._shell_ended(exc)
                output = None
        if output is None:  # as the user now, or call by call
            return await self._survey(survey)
        try:
            answer = parse(survey, nonce, output)
        except NodeError:
            return await super().survey(survey)
        if self._root_shell:  # the user's SFTP could only see less than root did
            return answer
        unlisted = [tree for tree, listing in answer.trees.items() if _failed(listing)]
        unread = [path for path, content in answer.files.items() if _failed(content)]
        listings, contents = await asyncio.gather(
            asyncio.gather(*(self.list_tree(tree) for tree in unlisted)),
            asyncio.gather(*(self._read_or_error(path) for path in unread)),
        )
        answer.trees.update(zip(unlisted, listings, strict=True))
        answer.files.update(zip(unread, contents, strict=True))
        return answer

    async def _shell_ended(self, exc: Exception) -> None:
        """The shell ended without answering: the link is lost (raised), sudo refused (kept:
        the node is read as the user meanwhile) or the shell cannot run the survey (a nologin
        account says so in its own words)."""
        words = await self._shell_words()
        self._close_shell()
        if self._connection is None or self._connection.is_closed():
            self._drop()
            reason = "connection lost" if isinstance(exc, EOFError) else exc
            raise NodeError(ErrorKind.UNREACHABLE, f"{self.name}: survey: {reason}") from None
        if self._shell_as_root and not self._shell_answered and _sudo_said(words):
            self._sudo_refused = NodeError(ErrorKind.SUDO, f"{self.name}: {ROOT_SHELL}: {words}")
        else:
            self._shell_refused = True  # the link is fine: the shell exited or was refused

    async def _shell_words(self) -> str:
        """What the shell said on stderr before it ended (sudo's refusal), on one line."""
        if self._shell is None:
            return ""
        try:
            said = await asyncio.wait_for(
                self._shell.stderr.read(MAX_STDERR_BYTES), SHELL_WORDS_SECONDS
            )
        except (TimeoutError, asyncssh.Error, OSError):
            return ""
        return "; ".join(line.strip() for line in bounded_text(said).splitlines() if line.strip())

    async def _ask_shell(self, survey: Survey) -> tuple[str, bytes]:
        """(the session's nonce, the survey's answer). The nonce is drawn per session: output
        cannot forge what it never sees, and a fixed end marker keeps readuntil cheap."""
        await self._sftp_client()
        assert self._connection is not None
        if self._shell is None or self._shell.is_closing() or self._shell_as_root != self.sudo:
            self._close_shell()
            self._shell_as_root, self._shell_answered = self.sudo, False
            # stderr is read only once the shell has ended: the script silences it meanwhile.
            self._shell = await self._connection.create_process(
                ROOT_SHELL if self._shell_as_root else SHELL, encoding=None
            )
            self._nonce = new_nonce()
        self._shell.stdin.write(script(survey, self._nonce).encode())
        output = await self._shell.stdout.readuntil(finished(self._nonce))
        self._shell_answered = True
        return self._nonce, output

    def _close_shell(self) -> None:
        if self._shell is not None:
            self._shell.close()
        self._shell = None

    async def _exec(self, command: str, seconds: float) -> asyncssh.SSHCompletedProcess:
        await self._sftp_client()
        assert self._connection is not None
        try:
            return await asyncio.wait_for(
                self._connection.run(command, check=False, encoding=None), seconds
            )
        except TimeoutError:
            raise timed_out(f"{self.name}: {command}", seconds) from None
        except (asyncssh.Error, OSError) as exc:
            self._drop()
            raise NodeError(ErrorKind.UNREACHABLE, f"{self.name}: {command}: {exc}") from None

    async def close(self) -> None:
        connection, hop = self._connection, self._hop
        self._connection, self._hop = None, None
        self._sftp = None
        self._close_shell()
        if connection is not None:
            connection.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(connection.wait_closed(), self.timeout)
        if hop is not None:
            hop.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(hop.wait_closed(), self.timeout)


def _sudo_said(words: str) -> bool:
    """Whether these are sudo's words of refusal (or a shell's that has no sudo)."""
    return any(w in words for w in SUDO_WORDS)


def _failed(answer: object) -> bool:
    """The node's find or head failed for a reason SFTP may not have (busybox, a directory)."""
    return isinstance(answer, NodeError) and answer.kind is ErrorKind.FAILED


def _kind(attrs: asyncssh.SFTPAttrs) -> str:
    if attrs.permissions is None:
        return "other"
    return entry_kind(stat_module.S_IFMT(attrs.permissions))


def _mtime(attrs: asyncssh.SFTPAttrs) -> float | None:
    if attrs.mtime is None:
        return None
    return attrs.mtime + (attrs.mtime_ns or 0) / 1e9  # asyncssh splits seconds and nanoseconds


def _bytes(output: object) -> bytes:
    if isinstance(output, bytes):
        return output
    return str(output or "").encode()
