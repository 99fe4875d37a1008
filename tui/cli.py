"""The `kcockpit` command line: the cockpit, `report`, and `lab up/down`.

Exit codes: 0 fine; 1 the cluster could not be reached at all (report) or a lab problem;
2 usage or configuration errors. Errors are one clear line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from cluster.config import Config, ConfigError, load_config

EXIT_UNREACHABLE = 1
EXIT_USAGE = 2


def default_config_path() -> Path | None:
    env = os.environ.get("KCOCKPIT_CONFIG")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    candidate = base / "kcockpit" / "config.toml"
    return candidate if candidate.exists() else None


def resolve_config(path: Path | None) -> Config:
    path = path or default_config_path()
    if path is None:
        raise ConfigError(
            "no config: pass --config FILE (or put one in ~/.config/kcockpit/config.toml), "
            "or run `kcockpit lab` for the built-in lab"
        )
    return load_config(path)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kcockpit", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="cockpit config (TOML)")
    parser.add_argument("--refresh", type=float, help="refresh interval in seconds (default 1)")
    commands = parser.add_subparsers(dest="command")

    report = commands.add_parser("report", help="print one snapshot and its findings")
    report.add_argument("--config", type=Path, dest="report_config", help="cockpit config (TOML)")
    report.add_argument("--json", action="store_true", help="machine-readable output")

    lab = commands.add_parser("lab", help="the built-in lab: a real local control plane")
    lab.add_argument("--nodes", type=int, default=3, help="control-plane nodes (1-7, default 3)")
    lab_commands = lab.add_subparsers(dest="lab_command")
    up = lab_commands.add_parser("up", help="start a lab in the background")
    up.add_argument("--dir", type=Path, required=True, help="lab directory")
    up.add_argument("--nodes", type=int, default=3, dest="up_nodes", help="1-7 (default 3)")
    up.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for health")
    down = lab_commands.add_parser("down", help="stop the lab running in DIR")
    down.add_argument("--dir", type=Path, required=True, help="lab directory")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        code = _dispatch(args)
    except ConfigError as exc:
        print(f"kcockpit: {exc}", file=sys.stderr)
        code = EXIT_USAGE
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


def _dispatch(args: argparse.Namespace) -> int:
    from cluster.lab.layout import LabError

    try:
        if args.command == "report":
            return run_report(resolve_config(args.report_config or args.config), args.json)
        if args.command == "lab":
            return run_lab(args)
        return run_app(resolve_config(args.config), args.refresh)
    except LabError as exc:
        print(f"kcockpit lab: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE


def run_app(config: Config, refresh: float | None) -> int:
    from tui.app import CockpitApp

    CockpitApp(config, refresh=refresh).run()
    return 0


def run_report(config: Config, as_json: bool) -> int:
    from cluster.collect import Collector
    from cluster.report import snapshot_json

    async def collect():
        collector = Collector(config)
        try:
            return await collector.collect()
        finally:
            await collector.close()

    snapshot = asyncio.run(collect())
    if as_json:
        print(json.dumps(snapshot_json(snapshot), indent=2))
    else:
        from tui.report_view import print_report

        print_report(snapshot)
    reached = any(m.reachable for m in snapshot.etcd.members)
    return 0 if reached else EXIT_UNREACHABLE


def run_lab(args: argparse.Namespace) -> int:
    from cluster.lab.control import lab_down, lab_up

    if args.lab_command == "up":
        spec = lab_up(args.dir, nodes=args.up_nodes, timeout=args.timeout)
        names = ", ".join(f"{n.name} {n.address}" for n in spec.nodes)
        print(f"lab up in {args.dir.resolve()}: {names}")
        print(f"config: {(args.dir / 'kcockpit.toml').resolve()}")
        return 0
    if args.lab_command == "down":
        lab_down(args.dir)
        print(f"lab in {args.dir.resolve()} stopped")
        return 0
    return run_lab_foreground(args.nodes)


def run_lab_foreground(nodes: int) -> int:
    """`kcockpit lab`: a lab in a temp dir, the cockpit on it, everything gone on exit."""
    from cluster.lab.control import lab_down, lab_up
    from cluster.lab.layout import LabError, LabPaths

    root = Path(tempfile.mkdtemp(prefix="kcockpit-lab-"))

    def hang_up(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGHUP, hang_up)
    signal.signal(signal.SIGTERM, hang_up)
    try:
        print(f"starting a {nodes}-node lab in {root} …", flush=True)
        lab_up(root, nodes=nodes, owner=os.getpid(), remove_dir=True)
        return run_app(load_config(LabPaths(root).config), None)
    finally:
        with contextlib.suppress(LabError):
            lab_down(root)
        shutil.rmtree(root, ignore_errors=True)
