"""Issue 4 acceptance on a real lab of its own: every action performed and verified, every
guard refusal proven with the member list unchanged, and the audit trail surviving SIGKILL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from actions.audit import AuditLog, timeline
from lab.control import Lab
from lab.layout import etcdctl_for, find_etcd
from tests.helpers import PROJECT, fill_etcd, kcockpit, report_json, running_lab, wait_until


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """This module changes membership, so it gets a lab of its own."""
    with running_lab(tmp_path_factory.mktemp("actions-lab"), control_plane=False) as lab:
        yield lab


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("state")


def act(
    lab: Lab, state: Path, *args: str, config: Path | None = None
) -> subprocess.CompletedProcess[str]:
    config = config or lab.paths.config
    return kcockpit(
        "act", "--config", str(config), *args, env={"KCOCKPIT_STATE_DIR": str(state)}, timeout=90
    )


def act_settled(
    lab: Lab, state: Path, *args: str, config: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Membership changes right after a leader change or restart meet etcd's ~5 s 'unhealthy
    cluster' refusal; the test (not the product) tries again until etcd accepts."""

    def attempt() -> subprocess.CompletedProcess[str] | None:
        result = act(lab, state, *args, config=config)
        return None if "unhealthy cluster" in result.stdout else result

    return wait_until(attempt, 30, f"etcd to accept {args}")


def members(lab: Lab) -> list[tuple[str, str, bool]]:
    report = report_json(lab.paths.config)
    return sorted((m["name"], m["id"], m["is_learner"]) for m in report["etcd"]["members"])


def etcd(lab: Lab) -> dict:
    return report_json(lab.paths.config)["etcd"]


def refused(result: subprocess.CompletedProcess[str], why: str) -> None:
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert why in result.stderr, result.stderr


def healthy_voting(lab: Lab, count: int) -> dict:
    return wait_until(
        lambda: (e := etcd(lab))["healthy"] == count and e["leader"] and e,
        30,
        f"{count} healthy voting members",
    )


def test_move_leader_moves_it_and_verifies(lab: Lab, state: Path) -> None:
    before = etcd(lab)
    target = next(m["name"] for m in before["members"] if not m["is_leader"])
    result = act(lab, state, "move-leader", target, "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verified" in result.stdout and "etcdctl move-leader" in result.stdout
    assert etcd(lab)["leader"] == target


def test_refusals_with_one_member_down_change_nothing(lab: Lab, state: Path) -> None:
    leader = etcd(lab)["leader"]
    down, other = [m["name"] for m in etcd(lab)["members"] if m["name"] != leader]
    lab.stop_node(down)
    try:
        wait_until(lambda: etcd(lab)["tolerance"] == 0, 15, f"{down} down")
        before = members(lab)
        refused(act(lab, state, "move-leader", down, "--yes"), "not healthy")
        refused(
            act(lab, state, "member-add", "cp-9", "--yes"), "Remove the dead member before adding"
        )
        refused(act(lab, state, "member-remove", other, "--confirm", other), "below the new quorum")
        refused(act(lab, state, "member-remove", leader, "--confirm", leader), "is the leader")
        assert members(lab) == before
    finally:
        lab.start_node(down)
    healthy_voting(lab, 3)


def test_no_membership_change_without_quorum(lab: Lab, state: Path) -> None:
    names = [m["name"] for m in etcd(lab)["members"]]
    stopped = names[:2]
    for name in stopped:
        lab.stop_node(name)
    try:
        wait_until(lambda: etcd(lab)["healthy"] == 1, 15, "quorum lost")
        before = members(lab)
        survivor = names[2]
        for args in (
            ("member-remove", stopped[0], "--confirm", stopped[0]),
            ("member-add", "cp-9", "--yes"),
            ("defragment", survivor, "--confirm", f"override {survivor}"),
            ("move-leader", survivor, "--yes"),
        ):
            refused(act(lab, state, *args), "quorum lost")
        assert members(lab) == before
    finally:
        for name in stopped:
            lab.start_node(name)
    healthy_voting(lab, 3)


def test_remove_then_add_a_learner_then_promote(lab: Lab, state: Path) -> None:
    """Runbook §3.2 done right: remove the old member first, add its replacement as a learner,
    let it catch up, promote it."""
    cluster = etcd(lab)
    victim = next(m["name"] for m in cluster["members"] if not m["is_leader"])
    refused(act(lab, state, "member-remove", victim, "--yes"), f"type exactly '{victim}'")
    result = act_settled(lab, state, "member-remove", victim, "--confirm", victim)
    assert result.returncode == 0, result.stdout + result.stderr
    assert victim not in {m[0] for m in members(lab)}
    lab.stop_node(victim)  # its etcd exits once removed; keep the lab kubelet from retrying it

    newcomer = f"cp-{len(lab.spec.nodes) + 1}"
    result = act_settled(lab, state, "member-add", newcomer, "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "--learner" in result.stdout
    added = next(m for m in etcd(lab)["members"] if m["name"] == newcomer)
    assert added["is_learner"] and added["reachable"]
    assert (lab.paths.manifests(newcomer) / "etcd.yaml").exists()

    refused(act(lab, state, "move-leader", newcomer, "--yes"), "learner")
    result = act_settled(lab, state, "member-promote", newcomer, "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    healthy_voting(lab, 3)
    assert not next(m for m in etcd(lab)["members"] if m["name"] == newcomer)["is_learner"]


def test_unstarted_learner_cannot_be_promoted_and_blocks_adds(
    lab: Lab, state: Path, tmp_path: Path
) -> None:
    """A member added whose node never starts (a real cluster: no lab to start it)."""
    outside_lab = tmp_path / "kcockpit.toml"
    text = lab.paths.config.read_text().replace('dir = "."', "")
    outside_lab.write_text(text.replace('"cockpit/', f'"{lab.paths.cockpit}/'))
    ghost_url = lab.peer_url_for("ghost").replace(":2380", ":2390")
    result = act_settled(
        lab, state, "member-add", "ghost", "--peer-url", ghost_url, "--yes", config=outside_lab
    )
    assert result.returncode == 0, result.stdout + result.stderr
    ghost = next(m for m in etcd(lab)["members"] if m["peer_urls"] == [ghost_url])
    assert ghost["is_learner"] and not ghost["reachable"] and ghost["name"] == ""
    try:
        refused(act(lab, state, "member-promote", ghost["id"], "--yes"), "does not answer")
        refused(
            act(lab, state, "member-add", "cp-9", "--yes", config=outside_lab),
            "Remove the dead member",
        )
    finally:
        result = act_settled(lab, state, "member-remove", ghost["id"], "--confirm", ghost["id"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_defragment_a_follower_and_save_a_restorable_snapshot(
    lab: Lab, state: Path, tmp_path: Path
) -> None:
    follower = next(m["name"] for m in etcd(lab)["members"] if not m["is_leader"])
    result = act(lab, state, "defragment", follower, "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    snapshot = tmp_path / "etcd.db"
    result = act(lab, state, "snapshot-save", follower, "--yes", "--file", str(snapshot))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sha256" in result.stdout and snapshot.stat().st_size > 0
    etcdutl = etcdctl_for(find_etcd()).with_name("etcdutl")  # type: ignore[union-attr]
    status = subprocess.run(
        [str(etcdutl), "snapshot", "status", str(snapshot), "-w", "json"],
        capture_output=True,
        text=True,
    )
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["totalKey"] > 0


def test_the_intent_record_survives_sigkill_during_execution(
    lab: Lab, state: Path, tmp_path: Path
) -> None:
    cluster = etcd(lab)
    target = cluster["leader"]
    endpoint = next(m["endpoint"] for m in cluster["members"] if m["name"] == target)
    asyncio.run(
        fill_etcd(lab.paths.config, endpoint, 40)
    )  # big enough to be mid-stream when killed
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tui",
            "act",
            "--config",
            str(lab.paths.config),
            "snapshot-save",
            target,
            "--yes",
            "--file",
            str(tmp_path / "big.db"),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=PROJECT,
        env={**os.environ, "KCOCKPIT_STATE_DIR": str(state)},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    assert line.startswith("intent recorded"), line
    entries = [
        e
        for e in timeline(AuditLog(state / "audit.jsonl").read())
        if e["action"] == "snapshot-save"
    ]
    killed = entries[-1]
    assert killed["phase"] == "intent" and killed["outcome"] is None
    assert killed["target"] == target and killed["plan"]["commands"]
    assert not (tmp_path / "big.db").exists()  # a partial stream is never left under the real name


# Runs one action in a process of its own that SIGKILLs itself the moment the intent is on
# disk: an attempt with no outcome, made at a known point (never a race with the action).
KILLED_AT_INTENT = """
import asyncio, os, signal, sys
from pathlib import Path
from actions.audit import AuditLog
from actions.registry import build_action, context_for
from actions.runner import perform
from cluster.collect import Collector
from lab.control import Lab

async def main(root: str, state: str, action: str, target: str) -> None:
    collector = Collector(Lab(Path(root)).config())
    snapshot = await collector.collect(fresh=True)

    def progress(line: str) -> None:
        if line.startswith("intent recorded"):
            os.kill(os.getpid(), signal.SIGKILL)

    audit = AuditLog(Path(state) / "audit.jsonl")
    ctx = context_for(collector, Path(state))
    await perform(build_action(action, target), snapshot, ctx, audit, yes=True, progress=progress)

asyncio.run(main(*sys.argv[1:]))
"""


def killed_at_intent(lab: Lab, state: Path, action: str, target: str) -> None:
    process = subprocess.run(
        [sys.executable, "-c", KILLED_AT_INTENT, str(lab.paths.root), str(state), action, target],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        timeout=60,
    )
    assert process.returncode == -signal.SIGKILL, process.stderr


def timeline_rows(markdown: str) -> list[tuple[str, str, str]]:
    """(action, target, result) of each row of `kcockpit audit --markdown`'s table."""
    table = markdown.split("## Equivalent commands")[0]
    rows = [line for line in table.splitlines() if line.startswith("| ")][1:]
    cells = [[c.strip() for c in row.strip("|").split(" | ")] for row in rows]
    return [(c[3], c[4], c[5]) for c in cells]


def test_audit_timeline_reads_back_every_attempt(lab: Lab, tmp_path: Path) -> None:
    """Self-contained: one attempt of each kind in a state dir of its own (whatever ran
    before, in any order), each read back as the row it must be."""
    state = tmp_path / "state"
    cluster = healthy_voting(lab, 3)
    old_leader = cluster["leader"]
    new_leader = next(m["name"] for m in cluster["members"] if not m["is_leader"])
    attempts = [  # (act's arguments, its exit code, the start of the row's result)
        (("move-leader", new_leader, "--yes"), 0, "verified: "),
        (("member-remove", new_leader, "--confirm", new_leader), 3, "refused: "),
        (("member-add", "cp-9"), 3, "refused: "),  # no confirmation given
        (("member-promote", old_leader, "--yes"), 3, "refused: "),  # not a learner
        (("defragment", old_leader, "--yes"), 0, "verified: "),
        (("snapshot-save", old_leader, "--yes", "--file", str(tmp_path / "s.db")), 0, "verified: "),
    ]
    for args, code, _ in attempts:
        result = act(lab, state, *args)
        assert result.returncode == code, (args, result.stdout, result.stderr)
    killed_at_intent(lab, state, "defragment", old_leader)

    result = kcockpit("audit", "--markdown", env={"KCOCKPIT_STATE_DIR": str(state)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# kcockpit audit: incident timeline")
    rows = timeline_rows(result.stdout)
    expected = [(args[0], args[1], outcome) for args, _, outcome in attempts]
    expected.append(("defragment", old_leader, "no outcome recorded (interrupted?)"))
    assert len(rows) == len(expected), rows
    for (action, target, outcome), (want_action, want_target, want_outcome) in zip(
        rows, expected, strict=True
    ):
        assert (action, target) == (want_action, want_target), rows
        assert outcome.startswith(want_outcome), (action, outcome)
    records = AuditLog(state / "audit.jsonl").read()
    intents = [r for r in records if r["phase"] == "intent"]
    assert len(intents) == 4  # move-leader, defragment, snapshot-save, the killed defragment
    assert all(r["operator"]["user"] and r["cluster"] and r["plan"] for r in intents)
    outcomes = [r for r in records if r["phase"] == "outcome"]
    assert len(outcomes) == 3
    assert all("duration_s" in r and r["result"]["status"] == "verified" for r in outcomes)


def test_stop_and_start_static_pods_the_runbook_way(lab: Lab, state: Path) -> None:
    cluster = healthy_voting(lab, 3)
    follower, other = [m["name"] for m in cluster["members"] if not m["is_leader"]][:2]
    refused(
        act(lab, state, "stop-static-pod", f"{follower}/etcd", "--yes"),
        f"type exactly '{follower}'",
    )
    result = act(lab, state, "stop-static-pod", follower, "--confirm", follower)
    assert result.returncode == 0, result.stdout + result.stderr
    manifests = lab.paths.manifests(follower)
    parked = [p for p in manifests.parent.iterdir() if p.name.startswith("manifests-")]
    assert not manifests.exists() and len(parked) == 1 and (parked[0] / "etcd.yaml").exists()
    wait_until(lambda: lab.etcd_pid(follower) is None, 15, f"{follower}'s etcd stopped")
    try:
        before = members(lab)
        refused(
            act(lab, state, "stop-static-pod", f"{other}/etcd", "--confirm", other),
            f"type exactly 'override {other}'",
        )
        assert lab.etcd_pid(other) is not None and members(lab) == before
    finally:
        result = act(lab, state, "start-static-pod", follower, "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert manifests.is_dir() and not parked[0].exists()
    healthy_voting(lab, 3)

    result = act(lab, state, "stop-static-pod", f"{other}/etcd", "--confirm", other)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (lab.paths.kubernetes_dir(other) / "etcd.yaml").exists()
    result = act(lab, state, "start-static-pod", f"{other}/etcd", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (lab.paths.manifests(other) / "etcd.yaml").exists()
    healthy_voting(lab, 3)
