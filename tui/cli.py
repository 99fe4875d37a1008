"""The `kcockpit` command line: the cockpit, `report`, and `lab up/down`.

Exit codes: 0 fine; 1 the cluster could not be reached at all (report), a finding at or above
`report --fail-on`, a no-go from `preflight`, or a lab problem; 2 usage or configuration errors; 3 an action refused;
143 an action interrupted by SIGTERM/SIGHUP (its outcome recorded as interrupted). Errors are
one clear line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cluster.config import Config, ConfigError, load_config_with_table, load_fleet
from cluster.model import Severity

if TYPE_CHECKING:
    from tui.app import CockpitApp

EXIT_UNREACHABLE = 1
EXIT_USAGE = 2
SCENARIO_HELP = "stage an incident (repeatable; `kcockpit lab scenarios` lists them)"


def default_config_path() -> Path | None:
    env = os.environ.get("KCOCKPIT_CONFIG")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    candidate = base / "kcockpit" / "config.toml"
    return candidate if candidate.exists() else None


def add_config_options(parser: argparse.ArgumentParser, after_command: bool = False) -> None:
    """--config/--cluster, accepted before or after the subcommand (argparse would otherwise
    let the subcommand's default overwrite a value given before it)."""
    default = argparse.SUPPRESS if after_command else None
    parser.add_argument("--config", type=Path, default=default, help="cockpit config (TOML)")
    parser.add_argument("--cluster", default=default, help="which [clusters.NAME] of the config")


READ_ONLY_HELP = "refuse every action (watchers); also `read_only = true` in the config"


def add_read_only_option(parser: argparse.ArgumentParser, after_command: bool = False) -> None:
    """The one --read-only: before the subcommand or after it, both spellings count (a
    subcommand's own default must never turn off what was given before it)."""
    default = argparse.SUPPRESS if after_command else False
    parser.add_argument("--read-only", action="store_true", default=default, help=READ_ONLY_HELP)


def is_read_only(args: argparse.Namespace, config: Config | None = None) -> bool:
    """Whether mutations are refused: any spelling of the flag, or the config's setting."""
    return bool(args.read_only or (config is not None and config.read_only))


def resolve_config(path: Path | None, cluster: str | None = None) -> Config:
    """--config, then $KCOCKPIT_CONFIG / ~/.config, then discovery on a kubeadm node.

    $KCOCKPIT_NODE_ROOT points discovery at a node's filesystem mounted elsewhere. A config
    with a `[lab]` table (one the lab wrote) gets the lab's seams (lab/plugin.py).
    """
    from cluster.nodes.discovery import can_discover, discover_config

    path = path or default_config_path()
    node_root = Path(os.environ.get("KCOCKPIT_NODE_ROOT") or "/")
    if path is None and can_discover(node_root):
        return discover_config(node_root)
    if path is None:
        raise ConfigError(
            "no config: pass --config FILE (or put one in ~/.config/kcockpit/config.toml), "
            "or run `kcockpit lab` for the built-in lab"
        )
    return plugged_in(*load_config_with_table(path, cluster))


def plugged_in(config: Config, table: dict[str, Any]) -> Config:
    """The config with the seams its raw table asks for (a `[lab]` table: the lab's)."""
    if "lab" not in table:
        return config
    from lab.plugin import plugged  # a config the lab wrote: the lab reads its own table

    return plugged(config, table)


def resolve_fleet(path: Path | None) -> tuple[list[Config], int] | None:
    """Every cluster of the config file (as `resolve_config` finds it) and how many the fleet
    reads at once; None when there is no file (discovery finds one cluster only)."""
    path = path or default_config_path()
    if path is None:
        return None
    clusters, reads = load_fleet(path)
    return [plugged_in(config, table) for config, table in clusters], reads


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kcockpit", description=__doc__.splitlines()[0])
    add_config_options(parser)
    parser.add_argument("--refresh", type=float, help="refresh interval in seconds (default 1)")
    add_read_only_option(parser)
    parser.add_argument("--bell", action="store_true", help="terminal bell on new criticals")
    commands = parser.add_subparsers(dest="command")

    report = commands.add_parser("report", help="print one snapshot and its findings")
    add_config_options(report, after_command=True)
    report.add_argument(
        "--all", action="store_true", help="every cluster of the config (JSON keyed by cluster)"
    )
    report.add_argument("--json", action="store_true", help="machine-readable output")
    report.add_argument(
        "--fail-on",
        choices=[s.label for s in Severity if s > Severity.INFO],
        help="exit 1 when a finding at or above this severity exists (cron / CI)",
    )

    act = commands.add_parser(
        "act", help="run one guarded action (same guards and audit as the UI)"
    )
    add_config_options(act, after_command=True)
    act.add_argument("action", help="move-leader, member-remove, member-add, member-promote, ...")
    act.add_argument("target", help="member, node or node/component, or etcd (the whole cluster)")
    act.add_argument("--yes", action="store_true", help="confirm an action that needs no typing")
    act.add_argument("--confirm", metavar="TEXT", help="the exact text the guard asks you to type")
    act.add_argument("--peer-url", help="member-add: the new member's peer URL")
    act.add_argument("--voting", action="store_true", help="member-add: voting, not a learner")
    act.add_argument("--file", type=Path, help="snapshot-save: the file to write")
    add_read_only_option(act, after_command=True)

    preflight = commands.add_parser(
        "preflight", help="go / no-go before maintenance: exit 0 only when every check passes"
    )
    add_config_options(preflight, after_command=True)
    preflight.add_argument("--json", action="store_true", help="machine-readable output")
    preflight.add_argument(
        "--snapshot-dir", type=Path, help="where etcd snapshots are (default: snapshot-save's)"
    )
    preflight.add_argument(
        "--snapshot-hours", type=float, help="newest snapshot at most this old (default 24)"
    )
    preflight.add_argument(
        "--cert-days", type=float, help="no certificate may expire sooner (default 30)"
    )

    config = commands.add_parser("config", help="check a config and every connection in it")
    config.add_argument("config_command", choices=["check"], help="check: validate and connect")
    add_config_options(config, after_command=True)

    serve = commands.add_parser("serve", help="serve the cockpit to a browser (textual-serve)")
    add_config_options(serve, after_command=True)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    add_read_only_option(serve, after_command=True)

    audit = commands.add_parser("audit", help="print the audit trail as an incident timeline")
    audit.add_argument("--markdown", action="store_true", help="Markdown, for tickets")

    findings = commands.add_parser("findings", help="list every finding id the rules can raise")
    findings.add_argument("--markdown", action="store_true", help="a Markdown table (docs)")

    lab = commands.add_parser("lab", help="the built-in lab: a real local control plane")
    lab.add_argument("--nodes", type=int, default=3, help="control-plane nodes (1-7, default 3)")
    lab.add_argument("--scenario", action="append", default=[], help=SCENARIO_HELP)
    add_read_only_option(lab, after_command=True)
    lab_commands = lab.add_subparsers(dest="lab_command")
    lab_commands.add_parser("scenarios", help="list the incidents a lab can stage")
    up = lab_commands.add_parser("up", help="start a lab in the background")
    up.add_argument("--dir", type=Path, required=True, help="lab directory")
    up.add_argument("--nodes", type=int, default=3, dest="up_nodes", help="1-7 (default 3)")
    up.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for health")
    up.add_argument(
        "--scenario", action="append", default=[], dest="up_scenarios", help=SCENARIO_HELP
    )
    up.add_argument(
        "--etcd-only",
        action="store_true",
        help="etcd-only nodes (kubeadm's external etcd topology): no Kubernetes API",
    )
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
    from lab.layout import LabError, LabNeedsRoot

    try:
        if args.command == "report":
            fail_on = Severity.parse(args.fail_on) if args.fail_on else None
            if args.all:  # no config file: the one cluster discovery finds, keyed all the same
                configs, reads = resolve_fleet(args.config) or ([resolve_config(None)], 1)
                return run_fleet_report(configs, reads, args.json, fail_on)
            config = resolve_config(args.config, args.cluster)
            return run_report(config, args.json, fail_on)
        if args.command == "act":
            return run_act(resolve_config(args.config, args.cluster), args)
        if args.command == "preflight":
            from tui.preflight import run_preflight

            config = resolve_config(args.config, args.cluster)
            return run_preflight(
                config, args.json, args.snapshot_dir, args.snapshot_hours, args.cert_days
            )
        if args.command == "audit":
            return run_audit(args.markdown)
        if args.command == "findings":
            from tui.findings_catalog import run_findings

            return run_findings(args.markdown)
        if args.command == "lab":
            return run_lab(args)
        if args.command == "config":
            from tui.config_check import run_config_check

            return run_config_check(resolve_config(args.config, args.cluster))
        if args.command == "serve":
            from tui.serve import run_serve

            return run_serve(args)
        fleet = None if args.cluster else resolve_fleet(args.config)
        if fleet is not None and len(fleet[0]) > 1:  # several clusters: the fleet first
            return run_fleet_app(*fleet, args.refresh, bool(args.read_only), args.bell)
        config = resolve_config(args.config, args.cluster)
        return run_app(config, args.refresh, is_read_only(args, config), args.bell)
    except LabError as exc:
        print(f"kcockpit lab: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, LabNeedsRoot) else EXIT_UNREACHABLE


def run_app(
    config: Config, refresh: float | None, read_only: bool = False, bell: bool = False
) -> int:
    cockpit_app(config, refresh=refresh, read_only=read_only, bell=bell).run()
    return 0


def cockpit_app(
    config: Config, refresh: float | None = None, read_only: bool = False, bell: bool = False
) -> CockpitApp:
    """The cockpit, set up for a quick first screen: no cyclic garbage collection until the
    first snapshot is shown. Every collection would walk all the objects the imports (Textual,
    gRPC, asyncssh, kubernetes) are making, a tenth of the launch; the app turns it back on,
    with what startup made frozen out of later walks (`calm_garbage_collector`)."""
    gc.disable()
    from tui.app import CockpitApp

    return CockpitApp(config, refresh=refresh, read_only=read_only, bell=bell)


def run_fleet_app(
    configs: list[Config],
    reads: int,
    refresh: float | None = None,
    read_only: bool = False,
    bell: bool = False,
) -> int:
    """The fleet first; each cluster read-only as asked or as its own config says."""
    from tui.fleet import FleetApp

    FleetApp(configs, reads, refresh=refresh, read_only=read_only, bell=bell).run()
    return 0


def run_fleet_report(
    configs: list[Config], reads: int, as_json: bool, fail_on: Severity | None = None
) -> int:
    """`report --all`: every cluster read once (a bounded number at once), JSON keyed by
    cluster. Exit 1 when a cluster cannot be read at all, or has a finding at or above
    `fail_on` (an unreachable cluster counts as critical)."""
    from cluster.fleet import Fleet, FleetRow, Verdict
    from cluster.report import snapshot_json

    async def collect() -> list[FleetRow]:
        fleet = Fleet(configs, reads)
        try:
            return await fleet.read_all(fresh=True)
        finally:
            await fleet.close()

    rows = asyncio.run(collect())
    if as_json:
        report = {
            row.name: {
                "verdict": row.verdict.word,
                "error": row.error,
                **(snapshot_json(row.snapshot) if row.snapshot else {}),
            }
            for row in rows
        }
        print(json.dumps(report, indent=2))
    else:
        from tui.report_view import print_fleet

        print_fleet(rows)
    unreached = any(row.verdict in (Verdict.UNREACHABLE, Verdict.CONNECTING) for row in rows)
    failing = fail_on is not None and any(row.fails(fail_on) for row in rows)
    return EXIT_UNREACHABLE if unreached or failing else 0


def run_report(config: Config, as_json: bool, fail_on: Severity | None = None) -> int:
    """Exit 1 when etcd cannot be reached at all, or a finding is at or above `fail_on`."""
    from cluster.collect import Collector
    from cluster.report import snapshot_json

    async def collect():
        collector = Collector(config)
        try:
            return await collector.collect(fresh=True)
        finally:
            await collector.close()

    snapshot = asyncio.run(collect())
    if as_json:
        print(json.dumps(snapshot_json(snapshot), indent=2))
    else:
        from tui.report_view import print_report

        print_report(snapshot, thresholds=config.thresholds)
    reached = any(m.reachable for m in snapshot.etcd.members)
    failing = fail_on is not None and any(f.severity >= fail_on for f in snapshot.findings)
    return 0 if reached and not failing else EXIT_UNREACHABLE


EXIT_REFUSED = 3
EXIT_INTERRUPTED = 143  # 128 + SIGTERM, as the shell reports a process it terminated


def run_act(config: Config, args: argparse.Namespace) -> int:
    """Exit 0 verified, 1 failed or not verified, 2 usage, 3 refused by the guard."""
    from actions.audit import AuditLog, state_dir
    from actions.registry import UnknownAction, build_action, context_for
    from actions.runner import Status, run
    from cluster.collect import Collector

    try:
        action = build_action(
            args.action,
            args.target,
            peer_url=args.peer_url,
            voting=args.voting,
            file=args.file,
            provisioner=config.seams.provisioner,
            thresholds=config.thresholds,
        )
    except UnknownAction as exc:
        raise ConfigError(str(exc)) from None

    def progress(line: str) -> None:
        print(line, flush=True)

    async def act():
        # SIGTERM / SIGHUP (the operator's session closing) cancel the action, which then
        # records its outcome as interrupted, instead of dying between intent and outcome.
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(signum, task.cancel)
        collector = Collector(config)
        try:
            return await run(
                action,
                collector,
                context_for(collector, state_dir()),
                AuditLog.default(),
                typed=args.confirm,
                yes=args.yes,
                read_only=is_read_only(args, config),
                progress=progress,
            )
        finally:
            await collector.close()

    try:
        result = asyncio.run(act())
    except asyncio.CancelledError:
        print(
            f"{action.describe()}: interrupted by a signal; see `kcockpit audit`", file=sys.stderr
        )
        return EXIT_INTERRUPTED
    if result.status is Status.REFUSED:
        print(f"refused: {action.describe()}", file=sys.stderr)
        for reason in result.verdict.reasons:
            print(f"  - {reason}", file=sys.stderr)
        return EXIT_REFUSED
    if result.plan:
        for command in result.plan.commands:
            print(f"equivalent: {command}")
    print(f"{result.status.value}: {result.message} ({result.duration:.2f} s)")
    return 0 if result.status is Status.VERIFIED else EXIT_UNREACHABLE


def run_audit(markdown: bool) -> int:
    from actions.audit import AuditLog, incident_records, timeline_markdown

    log = AuditLog.default()
    records = incident_records(log)  # with the leader changes cockpits saw
    if markdown:
        print(timeline_markdown(records), end="")
    else:
        from tui.audit_view import print_timeline

        print_timeline(records, log.path)
    return 0


def run_lab(args: argparse.Namespace) -> int:
    from lab.control import lab_down, lab_up

    if args.lab_command == "up":
        scenarios = tuple(args.up_scenarios)
        spec = lab_up(
            args.dir,
            nodes=args.up_nodes,
            timeout=args.timeout,
            scenarios=scenarios,
            control_plane=not args.etcd_only,
        )
        names = ", ".join(f"{n.name} {n.address}" for n in spec.nodes)
        print(f"lab up in {args.dir.resolve()}: {names}")
        print(f"config: {(args.dir / 'kcockpit.toml').resolve()}")
        return 0
    if args.lab_command == "down":
        lab_down(args.dir)
        print(f"lab in {args.dir.resolve()} stopped")
        return 0
    if args.lab_command == "scenarios":
        from lab.scenarios import SCENARIOS

        for scenario in SCENARIOS.values():
            print(f"{scenario.name:24} {scenario.description}")
        return 0
    return run_lab_foreground(args.nodes, tuple(args.scenario), args.read_only)


def run_lab_foreground(
    nodes: int, scenarios: tuple[str, ...] = (), watch_only: bool = False
) -> int:
    """`kcockpit lab`: a lab in a temp dir, the cockpit on it, everything gone on exit."""
    from lab.control import Lab, lab_down, lab_up
    from lab.layout import LabError

    root = Path(tempfile.mkdtemp(prefix="kcockpit-lab-"))

    def hang_up(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGHUP, hang_up)
    signal.signal(signal.SIGTERM, hang_up)
    try:
        print(f"starting a {nodes}-node lab in {root} …", flush=True)
        lab_up(root, nodes=nodes, owner=os.getpid(), remove_dir=True, scenarios=scenarios)
        return run_app(Lab(root).config(), None, watch_only)
    finally:
        with contextlib.suppress(LabError):
            lab_down(root)
        shutil.rmtree(root, ignore_errors=True)
