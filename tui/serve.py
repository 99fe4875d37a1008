"""`kcockpit serve`: the cockpit in a browser for a colleague, via textual-serve.

Each browser tab runs its own cockpit process with the same config. It binds to loopback by
default (reach it through `ssh -L 8000:127.0.0.1:8000 bastion`); binding elsewhere prints a
clear warning, because whoever reaches the port can operate the cockpit unless --read-only.
"""

from __future__ import annotations

import argparse
import ipaddress
import shlex
import sys

from cluster.config import ConfigError


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


def run_serve(args: argparse.Namespace) -> int:
    from textual_serve.server import Server

    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be 1-65535 (got {args.port})")
    if not is_loopback(args.host):
        print(
            f"WARNING: serving on {args.host}: anyone who can reach port {args.port} can "
            "operate this cockpit. Prefer the default 127.0.0.1 and `ssh -L`; add --read-only "
            "for watchers.",
            file=sys.stderr,
        )
    mode = " (read-only)" if args.read_only else ""
    print(f"serving kcockpit{mode} on http://{args.host}:{args.port}/", flush=True)
    server = Server(cockpit_command(args), host=args.host, port=args.port, title="kcockpit")
    try:
        server.serve()
    except OSError as exc:  # address not ours, port taken: one clear line, not a traceback
        raise ConfigError(f"cannot serve on {args.host}:{args.port}: {exc.strerror}") from exc
    return 0
