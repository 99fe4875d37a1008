"""Issue 18 acceptance on real labs: three etcd-only labs at once and one cluster nothing
answers for, in one fleet; two members of one lab frozen (SIGSTOP) lose its quorum.

One set of labs for the module; every test thaws what it froze.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from actions.audit import AuditLog
from cluster.fleet import FleetRow, Verdict
from cluster.model import Severity
from lab.control import Lab
from tests.helpers import kcockpit, running_lab, wait_until
from tests.test_app_etcd import screen_up, until
from tui.app import CockpitScreen
from tui.cli import resolve_fleet
from tui.fleet import FleetApp, FleetScreen
from widgets.confirm import ConfirmScreen
from widgets.etcd_pane import EtcdPane
from widgets.fleet_table import FleetTable
from widgets.header import ClusterHeader
from widgets.help import HelpScreen

LABS = ("east", "west", "north")
GONE = "gone"  # a loopback address nothing listens on
GONE_ENDPOINT = "https://127.0.0.77:23790"
# Every deadline of the fleet's labs (etcd, each node): three labs and the other worker's
# module share two cores; the verdicts tested here are not about a loaded host's latency.
LOADED_HOST_TIMEOUT = 10.0
# The fleet reads etcd every 5 s; a frozen member's read ends by its deadline.
QUORUM_LOST_WITHIN = 60.0
EPOCH = dt.datetime.min.replace(tzinfo=dt.UTC)


def cluster_table(name: str, lab: Lab) -> str:
    """The lab's own config as `[clusters.NAME]`, its relative paths made absolute."""
    root = lab.paths.root.resolve()
    lines = [f"[clusters.{name}]"]
    top = True  # before the first table: the lab's name and refresh are the fleet's to set
    for line in lab.paths.config.read_text().splitlines():
        top = top and not line.startswith("[")
        if top and line.startswith(("name =", "refresh =", "#")):
            continue
        if line.startswith("timeout ="):
            line = f"timeout = {LOADED_HOST_TIMEOUT}"
        if line.startswith("[["):
            line = f"[[clusters.{name}.{line.strip('[]')}]]\ntimeout = {LOADED_HOST_TIMEOUT}"
        elif line.startswith("["):
            line = f"[clusters.{name}.{line.strip('[]')}]"
        lines.append(line.replace('"cockpit/', f'"{root}/cockpit/').replace('"."', f'"{root}"'))
    return "\n".join(lines)


def write_fleet(path: Path, labs: dict[str, Lab], gone: bool) -> Path:
    tables = [cluster_table(name, lab) for name, lab in labs.items()]
    if gone:
        tls = labs[LABS[0]].paths.root.resolve() / "cockpit"
        tables.append(
            f'[clusters.{GONE}]\n[clusters.{GONE}.etcd]\nendpoints = ["{GONE_ENDPOINT}"]\n'
            f'ca = "{tls}/etcd-ca.crt"\ncert = "{tls}/etcd-client.crt"\n'
            f'key = "{tls}/etcd-client.key"\ntimeout = 2.0'
        )
    path.write_text("fleet_reads = 2\n\n" + "\n\n".join(tables) + "\n")
    return path


@pytest.fixture(scope="module")
def labs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Lab]]:
    with contextlib.ExitStack() as stack:
        yield {
            name: stack.enter_context(
                running_lab(tmp_path_factory.mktemp(name), control_plane=False)
            )
            for name in LABS
        }


@pytest.fixture(scope="module")
def fleet_config(labs: dict[str, Lab], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The three labs and the cluster nothing answers for."""
    return write_fleet(tmp_path_factory.mktemp("fleet") / "fleet.toml", labs, gone=True)


@pytest.fixture(scope="module")
def labs_config(labs: dict[str, Lab], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The three labs alone."""
    return write_fleet(tmp_path_factory.mktemp("labs") / "labs.toml", labs, gone=False)


@contextlib.contextmanager
def quorum_lost(lab: Lab) -> Iterator[None]:
    """Two of the lab's three members frozen for the block, always thawed after."""
    frozen = [lab.freeze("cp-1")]
    try:
        frozen.append(lab.freeze("cp-2"))
        yield
    finally:
        for pid in frozen:
            lab.thaw(pid)


def report_all(config: Path, *extra: str) -> tuple[int, dict[str, dict]]:
    result = kcockpit("report", "--all", "--json", "--config", str(config), *extra, timeout=60)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def verdicts(app: FleetApp) -> dict[str, str]:
    return {row.name: row.verdict.word for row in app.fleet.rows()}


def why(rows: Iterable[FleetRow]) -> dict[str, list[str]]:
    """Each row's verdict and findings from warnings up: what a failed wait says."""
    return {
        row.name: [row.verdict.word, row.error or ""]
        + [
            f"{f.id}: {f.summary}"
            for f in (row.snapshot.findings if row.snapshot else ())
            if f.severity >= Severity.WARNING
        ]
        for row in rows
    }


async def test_the_fleet_shows_every_cluster_and_opens_its_cockpit(
    labs: dict[str, Lab], fleet_config: Path, tmp_path: Path
) -> None:
    found = resolve_fleet(fleet_config)
    assert found is not None
    configs, reads = found
    assert [c.name for c in configs] == [*LABS, GONE] and reads == 2
    app = FleetApp(configs, reads, read_only=True, audit=AuditLog(tmp_path / "audit.jsonl"))
    async with app.run_test(size=(120, 30)) as pilot:
        table = app.screen.query_one(FleetTable)
        healthy = {name: Verdict.OK.word for name in LABS} | {GONE: Verdict.UNREACHABLE.word}
        try:
            await until(pilot, lambda: verdicts(app) == healthy, timeout=60)
        except AssertionError:
            raise AssertionError(
                f"not the verdicts of healthy labs: {why(app.fleet.rows())}"
            ) from None
        on_screen = {name: f"{word}" for name, word in healthy.items()}
        await until(
            pilot, lambda: {r[0]: r[1].split(" ", 1)[1] for r in table.row_texts()} == on_screen
        )
        assert table.row_texts()[0][0] == GONE  # worst first
        assert all(row[2] == "3/3" for row in table.row_texts() if row[0] in LABS)

        with quorum_lost(labs["east"]):
            before = {row.name: row.read_at or EPOCH for row in app.fleet.rows()}
            await until(
                pilot,
                lambda: verdicts(app)["east"] == Verdict.QUORUM_LOST.word,
                timeout=QUORUM_LOST_WITHIN,
            )
            # The frozen lab held only its own row: the others were read again meanwhile.
            rows = {row.name: row for row in app.fleet.rows()}
            await until(
                pilot,
                lambda: all(
                    (r.read_at or EPOCH) > before[r.name]
                    for r in app.fleet.rows()
                    if r.name != "east"
                ),
                timeout=30,
            )
            assert verdicts(app)["west"] == verdicts(app)["north"] == Verdict.OK.word
            await until(pilot, lambda: table.row_texts()[0][0] == "east")
            assert "QUORUM LOST" in table.row_texts()[0][1]
            assert rows["east"].snapshot is not None
            # Its cockpit, while it is down, says the same; escape comes back.
            table.move_cursor(row=table.get_row_index("east"))
            await pilot.press("enter")
            cockpit = await screen_up(pilot, app, CockpitScreen, ClusterHeader)
            header = cockpit.query_one(ClusterHeader)
            await until(pilot, lambda: "QUORUM LOST" in str(header.render()), timeout=30)
            assert " east " in str(header.render())
            await pilot.press("escape")
            await until(pilot, lambda: isinstance(app.screen, FleetScreen))

        table.move_cursor(row=table.get_row_index("west"))
        await pilot.press("enter")
        cockpit = await screen_up(pilot, app, CockpitScreen, EtcdPane)
        assert app.config.name == "west"
        await until(pilot, lambda: app.snapshot is not None and app.snapshot.cluster_name == "west")
        members = cockpit.query_one(EtcdPane)
        await until(pilot, lambda: members.selected_name is not None)
        assert members.row_count == 3
        assert " west " in str(app.screen.query_one(ClusterHeader).render())
        await pilot.press("x")  # remove the member under the cursor: its dialog names the cluster
        dialog = await screen_up(pilot, app, ConfirmScreen, "#title")
        assert str(dialog.query_one("#title").render()).startswith("west · ")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, CockpitScreen))
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, FleetScreen))
        assert app.warm_clusters() == {"east", "west"}  # their collectors kept for a while
        # Back in: the warm collector is the one reused, and the cockpit refreshes again.
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, CockpitScreen))
        assert app.warm_clusters() == {"east"}
        count = app.refresh_count
        await until(pilot, lambda: app.refresh_count > count)
        await pilot.press("question_mark")  # the help lists the way back, as every key
        help_screen = await screen_up(pilot, app, HelpScreen, "#help-text")
        assert "Back to the fleet" in str(help_screen.query_one("#help-text").render())
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, CockpitScreen))
        await pilot.press("F")
        await until(pilot, lambda: isinstance(app.screen, FleetScreen))


@pytest.mark.fresh_lab  # before the fleet test's quorum loss, which east recovers from after
def test_report_all_fails_on_a_lost_quorum_and_passes_once_healed(
    labs: dict[str, Lab], fleet_config: Path, labs_config: Path
) -> None:
    code, report = report_all(fleet_config)
    assert set(report) == {*LABS, GONE}
    assert report[GONE]["verdict"] == "unreachable" and code == 1  # unreachable: exit 1
    assert all(report[name]["verdict"] == "OK" for name in LABS), {
        name: [report[name]["verdict"], [f["id"] for f in report[name]["findings"]]]
        for name in LABS
    }
    assert all(report[name]["cluster"] == name for name in LABS)
    assert report_all(labs_config, "--fail-on", "critical")[0] == 0
    with quorum_lost(labs["east"]):
        code, report = report_all(labs_config, "--fail-on", "critical")
        assert code == 1 and report["east"]["verdict"] == "QUORUM LOST"
        assert "etcd.quorum-lost" in {f["id"] for f in report["east"]["findings"]}
        assert report["west"]["verdict"] == "OK"
        assert report_all(fleet_config, "--fail-on", "critical")[0] == 1
    wait_until(
        lambda: report_all(labs_config, "--fail-on", "critical")[0] == 0,
        timeout=60,
        what="the healed lab to pass",
    )
