"""Issue 17 acceptance for `kcockpit preflight` on a real lab: green once a fresh snapshot
exists, and each no-go staged for real (a stopped member, an expiring certificate, a diverging
component version) turns its own line red and the exit code 1."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from actions.audit import AuditLog
from cluster.collect import Collector
from cluster.etcd.hashes import pinned_hashes
from cluster.preflight import hash_check
from lab.control import Lab
from lab.scenarios import SCENARIOS
from tests.helpers import kcockpit, report_json, running_lab, wait_until
from tests.test_app_etcd import until
from tui.app import CockpitApp
from widgets.preflight import PreflightScreen


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_lab(tmp_path_factory.mktemp("preflight-lab")) as lab:
        yield lab


@pytest.fixture(scope="module")
def state(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state dir whose audit trail records a verified snapshot-save of this lab."""
    state = tmp_path_factory.mktemp("preflight-state")
    member = lab.spec.nodes[0].name
    outcome: list[str] = []

    def save() -> bool:
        saved = kcockpit(
            "act", "--config", str(lab.paths.config), "snapshot-save", member, "--yes",
            env={"KCOCKPIT_STATE_DIR": str(state)},
        )  # fmt: skip
        outcome.append(saved.stdout + saved.stderr)
        return saved.returncode == 0

    # A lab just up on a loaded box can leave every member's answer past its deadline for a
    # moment (the action is then refused: it cannot read the membership); it is tried again.
    wait_until(save, 60, "a verified snapshot-save", explain=lambda: outcome[-1])
    return state


def preflight(lab: Lab, state: Path, *args: str) -> tuple[int, dict[str, dict]]:
    result = kcockpit(
        "preflight", "--config", str(lab.paths.config), "--json", *args,
        env={"KCOCKPIT_STATE_DIR": str(state)},
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr
    answer = json.loads(result.stdout)
    assert answer["go"] == (result.returncode == 0)
    return result.returncode, {c["name"]: c for c in answer["checks"]}


def failing(checks: dict[str, dict]) -> set[str]:
    return {name for name, check in checks.items() if not check["ok"]}


def went_wrong(checks: dict[str, dict]) -> dict[str, str]:
    """The failing checks' details: what an assertion shows when a go was expected."""
    return {name: check["detail"] for name, check in checks.items() if not check["ok"]}


def preflight_go(lab: Lab, state: Path, *args: str) -> dict[str, dict]:
    """The checks of a preflight that says go, run again until one does (30 s). A loaded box
    can leave a member's answer past its deadline for a moment, and preflight rightly calls
    that a no-go; a lab that stays red fails with what went wrong."""
    runs: list[tuple[int, dict[str, dict]]] = []

    def go() -> bool:
        runs.append(preflight(lab, state, *args))
        return runs[-1][0] == 0

    wait_until(go, 30, "a go", explain=lambda: went_wrong(runs[-1][1]))
    return runs[-1][1]


def healthy(lab: Lab) -> None:
    wait_until(lambda: report_json(lab.paths.config)["etcd"]["healthy"] == 3, 30, "3 healthy")


@pytest.mark.fresh_lab
def test_green_on_a_clean_lab_and_red_without_a_recent_snapshot(
    lab: Lab, state: Path, tmp_path: Path
) -> None:
    checks = preflight_go(lab, state)
    assert set(checks) == {
        "members", "fault-tolerance", "snapshot", "hashkv", "certificates", "versions",
        "disk", "alarms",
    }  # fmt: skip
    assert "agree at revision" in checks["hashkv"]["detail"]
    human = kcockpit("preflight", "--config", str(lab.paths.config), env={
        "KCOCKPIT_STATE_DIR": str(state)})  # fmt: skip
    assert human.returncode == 0 and "GO, every check passes" in human.stdout
    code, checks = preflight(lab, tmp_path)  # an empty trail, no snapshot directory
    assert code == 1 and failing(checks) == {"snapshot"}


def test_a_stopped_member_is_a_no_go(lab: Lab, state: Path) -> None:
    stopped = lab.spec.nodes[-1].name
    lab.stop_node(stopped)
    try:
        wait_until(lambda: report_json(lab.paths.config)["etcd"]["healthy"] == 2, 30, "2 healthy")
        code, checks = preflight(lab, state)
    finally:
        lab.start_node(stopped)
    assert code == 1
    assert {"members", "fault-tolerance"} <= failing(checks)
    assert stopped in checks["members"]["detail"]
    healthy(lab)


@contextlib.contextmanager
def staged(lab: Lab, scenario: str, files: list[Path]) -> Iterator[None]:
    """A file scenario staged on the running lab, its files put back afterwards."""
    saved = {path: path.read_bytes() for path in files}
    SCENARIOS[scenario].apply(lab.paths, lab.spec)
    try:
        yield
    finally:
        for path, content in saved.items():
            path.write_bytes(content)


def test_an_expiring_certificate_is_a_no_go(lab: Lab, state: Path) -> None:
    pki = lab.paths.kubernetes_dir(lab.spec.nodes[0].name) / "pki"
    with staged(lab, "cert-expiring", [pki / "apiserver.crt", pki / "apiserver.key"]):
        code, checks = preflight(lab, state)
        assert code == 1 and failing(checks) == {"certificates"}, went_wrong(checks)
        assert "pki/apiserver.crt" in checks["certificates"]["detail"]
        preflight_go(lab, state, "--cert-days", "5")  # 10 days left: fine for 5
    preflight_go(lab, state)


def test_a_diverging_component_version_is_a_no_go(lab: Lab, state: Path) -> None:
    manifest = lab.paths.manifests(lab.spec.nodes[0].name) / "kube-scheduler.yaml"
    with staged(lab, "image-skew", [manifest]):
        code, checks = preflight(lab, state)
        assert code == 1 and failing(checks) == {"versions"}, went_wrong(checks)
        assert "kube-scheduler" in checks["versions"]["detail"]
    healthy(lab)


async def test_the_palette_shows_the_list_in_the_cockpit(
    lab: Lab, state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KCOCKPIT_STATE_DIR", str(state))
    app = CockpitApp(lab.config(), refresh=0.5, audit=AuditLog(state / "audit.jsonl"))
    async with app.run_test(size=(160, 40)) as pilot:
        await until(pilot, lambda: app.snapshot is not None and len(app.snapshot.nodes) == 3)
        await pilot.press("ctrl+p")
        await pilot.press(*"Preflight")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, PreflightScreen), timeout=30)
        verdict = str(app.screen.query_one("#preflight-verdict").render())
        assert "GO, every check passes" in verdict
        assert "✔ GO" in str(app.screen.query_one("#check-hashkv").render())
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, PreflightScreen))


async def test_hashes_agree_at_one_pinned_revision_while_writes_and_a_compaction_go_on(
    lab: Lab,
) -> None:
    collector = Collector(lab.config())
    client = collector.etcd_client
    written = [0]

    async def writer(leader: str) -> None:
        while True:
            put = await client.put(leader, f"/pinned/{written[0] % 50}".encode(), b"x" * 100)
            written[0] += 1
            if written[0] == 20:  # a compaction lands mid-run too
                await client.compact(leader, put.header.revision - 10)

    try:
        snapshot = await collector.collect(fresh=True)
        assert snapshot.etcd.leader is not None and snapshot.etcd.leader.endpoint
        task = asyncio.ensure_future(writer(snapshot.etcd.leader.endpoint))
        checks = []
        while written[0] < 200 and not task.done():  # checks all along the writes
            hashes = await pinned_hashes(client, snapshot.etcd.members)
            checks.append(hash_check(snapshot, hashes))
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        await collector.close()
    assert written[0] >= 200, "the writer stopped"
    assert all(c.ok for c in checks), [c.detail for c in checks if not c.ok]
    assert len({c.detail for c in checks}) > 1  # pinned at other revisions as writes went on
