"""`kcockpit serve`: the cockpit in a browser for a colleague, via textual-serve.

Each browser tab runs its own cockpit process with the same config, and whoever reaches the
port could operate that cockpit. So the port is not an open door:
- it binds to loopback by default (reach it through `ssh -L 8000:127.0.0.1:8000 bastion`);
  binding elsewhere prints a clear warning;
- every request needs the random token printed once at start: the link carries it, and
  opening the link sets an HttpOnly, SameSite=Strict cookie that authorises the page's own
  assets and websocket;
- the websocket also needs a same-origin `Origin`, so another site open in the same browser
  cannot drive the cockpit with the operator's cookie.
Refusals are a 403 answered before textual-serve's handlers run, so no cockpit process starts.
"""

from __future__ import annotations

import argparse
import hmac
import ipaddress
import secrets
import shlex
import sys

from aiohttp import web
from aiohttp.typedefs import Handler
from textual_serve.server import Server

from cluster.config import ConfigError

WEBSOCKET_PATH = "/ws"  # textual-serve's route for the websocket that starts a cockpit


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cockpit_command(args: argparse.Namespace) -> str:
    command = [sys.executable, "-m", "tui"]
    if getattr(args, "config", None):
        command += ["--config", str(args.config.resolve())]
    if getattr(args, "cluster", None):
        command += ["--cluster", args.cluster]
    if args.read_only:
        command.append("--read-only")
    return shlex.join(command)


class GuardedServer(Server):
    """textual-serve's server behind a token (query or cookie) and, on the websocket, an
    Origin check: textual-serve itself lets anyone who reaches the port start a cockpit."""

    def __init__(self, command: str, host: str, port: int, token: str) -> None:
        super().__init__(command, host=host, port=port, title="kcockpit")
        self.token = token
        # Cookies are per host, not per port: two cockpits on one host keep separate cookies.
        self.cookie = f"kcockpit_token_{port}"

    def is_token(self, candidate: str) -> bool:
        return hmac.compare_digest(candidate.encode(), self.token.encode())

    @web.middleware
    async def guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        from_query = self.is_token(request.query.get("token", ""))
        if not (from_query or self.is_token(request.cookies.get(self.cookie, ""))):
            raise web.HTTPForbidden(text="forbidden: open the link `kcockpit serve` printed\n")
        if request.path == WEBSOCKET_PATH:
            origin = f"{request.scheme}://{request.host}"
            if request.headers.get("Origin") != origin:
                raise web.HTTPForbidden(text=f"forbidden: websocket origin must be {origin}\n")
        response = await handler(request)
        if from_query and not response.prepared:
            response.set_cookie(self.cookie, self.token, path="/", httponly=True, samesite="Strict")
        return response

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self.guard)
        return app


def run_serve(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be 1-65535 (got {args.port})")
    if not is_loopback(args.host):
        print(
            f"WARNING: serving on {args.host}: plain HTTP, so anyone who can reach port "
            f"{args.port} and sees the link can operate this cockpit. Prefer the default "
            "127.0.0.1 and `ssh -L`; add --read-only for watchers.",
            file=sys.stderr,
        )
    token = secrets.token_urlsafe(32)
    mode = " (read-only)" if args.read_only else ""
    print(f"serving kcockpit{mode} on http://{args.host}:{args.port}/?token={token}", flush=True)
    server = GuardedServer(cockpit_command(args), args.host, args.port, token)
    try:
        server.serve()
    except OSError as exc:  # address not ours, port taken: one clear line, not a traceback
        raise ConfigError(f"cannot serve on {args.host}:{args.port}: {exc.strerror}") from exc
    return 0
