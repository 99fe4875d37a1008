"""Everything read from a cluster is data: hostile names and fields never become markup, control
codes or shell code, and never break a screen, a report or a refresh.

Two layers. Generated strings (hypothesis) are placed into every field the model carries, as a
source hands them over, and every printed surface is checked; then real hostile files on a real
lab node (a CNI file name carrying an OSC 52 clipboard write, a plugin type `calico[/]`, a
certificate whose CN is markup, a billion-laughs manifest, a FIFO) go through `report`,
`config check` and the cockpit itself.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import shlex
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from textual.widgets import DataTable, Static, TabbedContent

from actions.audit import readable, timeline_markdown
from cluster.config import Config, parse_config
from cluster.findings import FindingsEngine
from cluster.kube.model import KubeDaemonSet, KubeEvent, KubeNode, KubePod, KubeView
from cluster.model import EtcdCluster, EtcdMember, Snapshot
from cluster.nodes.model import (
    Certificate,
    CniFile,
    CniState,
    Filesystem,
    Listener,
    ManifestFile,
    NodeState,
    StaticPod,
)
from cluster.report import snapshot_json
from cluster.state import ClusterState
from cluster.untrusted import neutralized, printable
from lab import pki
from lab.control import Lab
from tests.helpers import eventually, kcockpit
from tui.audit_view import print_timeline
from tui.cli import cockpit_app
from tui.console import output_console
from tui.report_view import print_report

ESC = "\x1b"
# What a hostile name is made of: markup, escape sequences (OSC 52 writes the clipboard, OSC 8
# makes links, CSI clears the screen), C1 and bidi controls, an undecodable byte, emoji codes
# and shell metacharacters.
PIECES = (
    "[/]",
    "[link=https://evil.example]x[/link]",
    "[bold red]",
    "[fd00::10]",
    "\x1b]52;c;ZXZpbA==\x07",
    "\x1b]8;;https://evil.example\x1b\\",
    "\x1b[2J",
    "\x9b31m",
    "\x85",
    "\r",
    "\n",
    "\u202e",
    "\udcff",
    ":smile:",
    "$(reboot)",
    "'; rm -rf / #",
)
hostile_text = st.one_of(
    st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=12)), min_size=1, max_size=6).map(
        "".join
    ),
    st.sampled_from(PIECES).map(lambda piece: "x" * 3000 + piece),  # longer than any cell
)


def no_control_codes(text: str) -> None:
    """Nothing in `text` a terminal would act on: no ESC, CR, C1 or bidi control."""
    assert ESC not in text
    assert not any(c in text for c in "\r\x9b\x85\u202e"), ascii(text)


def config_for(tmp_path: Path) -> Config:
    return parse_config(
        {
            "name": "hostile",
            "etcd": {
                "endpoints": ["https://127.0.0.1:1"],
                "ca": "ca.crt",
                "cert": "c.crt",
                "key": "c.key",
            },
            "refresh": 3600,
        },
        base=tmp_path,
    )


def hostile_snapshot(value: str, config: Config, state: Path) -> Snapshot:
    """A snapshot whose every cluster-provided string is `value` (or made of it), made
    printable as the sources do, with the findings the engine draws from it."""
    now = dt.datetime.now(dt.UTC)
    members = (
        EtcdMember(
            id=1,
            name=value,
            endpoint=f"https://[fd00::10]:2379/{value}",
            peer_urls=(value,),
            reachable=True,
            version=value,
            leader_id=1,
            raft_term=2,
            raft_index=10,
            raft_applied_index=10,
            db_size=10,
            db_size_in_use=5,
            errors=(value,),
        ),
        EtcdMember(id=2, name=f"{value}-2", endpoint=value, error=value),
        EtcdMember(id=3, name="", endpoint=None, is_learner=True),
    )
    certificate = Certificate(
        path=f"/etc/kubernetes/pki/{value}.crt",
        subject=value,
        issuer=value,
        sans=(value, "10.0.0.1"),
        not_before=now - dt.timedelta(days=400),
        not_after=now + dt.timedelta(days=3),
        serving=True,
        ca_path=value,
        signed_by_ca=False,
    )
    cni = CniState(
        files=(
            CniFile(f"10-{value}.conflist", "file", 10, is_config=True, types=(value,)),
            CniFile(f"20-{value}.conf", "file", 10, is_config=True, error=value),
            CniFile(f"{value}-kubeconfig", "file", 10, server=value),
            CniFile(f"30-{value}.conflist", "file", 10, is_config=True, types=("calico",)),
        )
    )
    node = NodeState(
        name=value,
        address=value,
        reachable=True,
        hostname=value,
        addresses=(value,),
        clock_offset=30.0,
        static_pods=(
            StaticPod(
                "etcd",
                "present",
                value,
                image=value,
                version=value,
                flags=(("name", value),),
                running=False,
                evidence=value,
            ),
            StaticPod(
                "kube-apiserver",
                "moved",
                moved_to=f"/etc/kubernetes/manifests-{value}/kube-apiserver.yaml",
                running=None,
                evidence=value,
            ),
            StaticPod("kube-scheduler", "invalid", value, error=value, evidence=value),
        ),
        extra_manifests=(
            ManifestFile(f"{value}.yaml", stray=False, pod_name=value, error=value),
            ManifestFile(value, stray=True, pod_name=value),
        ),
        certificates=(certificate, Certificate(path=value, error=value)),
        cni=cni,
        filesystems=(Filesystem(value, value, 100, 99, 99.0),),
        listeners=(Listener(value, 2379, value, 7),),
        read_at=now,
    )
    down = NodeState(name=f"{value}-down", address=value, reachable=False, error=value)
    kube = KubeView(
        server=value,
        collected_at=now,
        context=value,
        user=value,
        kubeconfig=value,
        nodes=(KubeNode(value, False, value, value, (value,), value, (("InternalIP", value),)),),
        pods=(
            KubePod(
                "kube-system",
                value,
                value,
                value,
                False,
                3,
                value,
                value,
                owner_kind="DaemonSet",
                owner_name=value,
            ),
            KubePod(
                "kube-system",
                f"etcd-{value}",
                value,
                "Running",
                False,
                component="etcd",
                mirror=True,
            ),
        ),
        daemonsets=(KubeDaemonSet("kube-system", value, 2, 2, 1, 2, 1),),
        events=(KubeEvent("kube-system", "Warning", value, value, value, 2, now),),
    )
    snapshot = Snapshot(
        cluster_name=config.name,
        collected_at=now,
        etcd=EtcdCluster(members=members, cluster_id=7),
        nodes=(node, down),
        kube=kube,
    )
    engine = FindingsEngine(config, ClusterState(state))
    return engine.evaluate(neutralized(snapshot))


def printed(print_to: object, *args: object) -> str:
    """What a CLI view prints through the product's console, as text."""
    console = output_console()
    console.file = io.StringIO()
    print_to(*args, console=console)  # type: ignore[operator]
    return console.file.getvalue()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=hostile_text)
def test_every_printed_surface_shows_hostile_values_as_inert_text(
    value: str, tmp_path: Path
) -> None:
    snapshot = hostile_snapshot(value, config_for(tmp_path), tmp_path / "state.json")
    shown = printable(value)
    assert snapshot.nodes[0].name == shown and snapshot.etcd.members[0].name == shown

    report = printed(print_report, snapshot)
    no_control_codes(report)
    as_json = json.dumps(snapshot_json(snapshot))
    no_control_codes(as_json)
    assert json.loads(as_json)["nodes"][0]["name"] == shown
    for finding in snapshot.findings:
        for text in (finding.subject, finding.summary, finding.evidence, finding.next):
            no_control_codes(text)
        if finding.command:
            shlex.split(finding.command)  # a well-formed line, whatever the names in it
    invalid = {f.command for f in snapshot.findings if f.id == "cni.invalid-config"}
    assert shlex.join(["rm", f"/etc/cni/net.d/20-{shown}.conf"]) in invalid


def test_a_short_hostile_value_is_shown_literally_in_the_report(tmp_path: Path) -> None:
    value = "calico[/]\x1b]52;c;ZXZpbA==\x07[link=https://evil.example]"
    snapshot = hostile_snapshot(value, config_for(tmp_path), tmp_path / "state.json")
    report = printed(print_report, snapshot)
    no_control_codes(report)
    assert "calico[/]␛]52;c;ZXZpbA==␇[link=https://evil.example]" in report.replace("\n", "")


@settings(max_examples=30, deadline=None)
@given(value=hostile_text)
def test_audit_records_are_read_back_as_inert_text(value: str) -> None:
    records = [
        {
            "id": "1",
            "time": value,
            "phase": "refused",
            "operator": {"user": value, "ssh_client": value},
            "cluster": value,
            "action": value,
            "target": value,
            "verdict": {"reasons": [value]},
        },
        {"id": "2", "time": 5, "phase": "intent", "action": value, "target": ["x"]},
        {"id": "2", "phase": "outcome", "result": {"status": value, "message": value}},
    ]
    shown = readable(records)
    markdown = timeline_markdown(shown)
    no_control_codes(markdown)
    assert all(len(row.split(" | ")) == 7 for row in markdown.splitlines() if row.startswith("| "))
    table = printed(print_timeline, shown, Path("audit.jsonl"))
    no_control_codes(table)


async def test_every_pane_renders_hostile_values_literally(tmp_path: Path) -> None:
    value = "calico[/]\x1b]52;c;ZXZpbA==\x07[fd00::10][bold]"
    shown = printable(value)
    config = config_for(tmp_path)
    snapshot = hostile_snapshot(value, config, tmp_path / "state.json")
    app = cockpit_app(config, refresh=3600)
    async with app.run_test(size=(200, 60)) as pilot:

        async def refreshed() -> bool:
            return app.refresh_count >= 1

        await eventually(refreshed, what="the first refresh")
        app.show(snapshot)
        panes = app.query_one("#panes", TabbedContent)
        for pane_id in app.pane_ids:
            panes.active = pane_id
            await pilot.pause()
            app.bring_up_to_date(pane_id)
            await pilot.pause()
            cells = [
                str(cell)
                for table in app.query(DataTable)
                for row in range(table.row_count)
                for cell in table.get_row_at(row)
            ]
            for cell in cells:
                no_control_codes(cell)
            assert any(shown in cell for cell in cells), pane_id
        app.notify(f"notified {value}")
        status = app.query_one("#status-line", Static)
        status.update(f"refresh failed: {value}")  # an exception's words can be the cluster's
        no_control_codes(str(status.content))
        app.request_action("member-remove", snapshot.etcd.members[0].name)
        await pilot.pause()
        screen_text = app.export_screenshot()
        assert ESC not in screen_text
        assert app.return_code is None  # still running: nothing raised
        await pilot.press("escape")


# ---- real hostile files on a real lab node ----------------------------------------------

HOSTILE_CNI_NAME = "10-evil\x1b]52;c;ZXZpbA==\x07[bold red].conflist"  # no "/" in a name
HOSTILE_TYPE = "calico[/]\x1b[2J"
HOSTILE_CN = "x[/]\x1b]8;;https://evil.example\x1b\\"
LAUGHS = "\n".join(
    [
        "apiVersion: v1",
        "kind: Pod",
        "metadata:",
        "  name: laughs",
        "  annotations:",
        '    l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
        *(f"    l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)),
        "spec:",
        "  containers: [{name: c, image: x, command: *l9}]",
    ]
).encode()  # nine lines that expand to 9**10 strings


@pytest.fixture(scope="module")
def hostile_node(lab: Lab) -> Iterator[Path]:
    """cp-2 with hostile files in its CNI, PKI and manifest directories; removed after."""
    root = lab.paths.node_root("cp-2")
    net_d = root / "etc/cni/net.d"
    manifests = lab.paths.manifests("cp-2")
    ca = pki.issue("evil-ca", ca=True)
    made = [
        net_d / HOSTILE_CNI_NAME,
        root / "etc/kubernetes/pki/evil.crt",
        manifests / "laughs.yaml",
        manifests / "pipe.yaml",
    ]
    made[0].write_text(json.dumps({"cniVersion": "0.4.0", "name": "x", "type": HOSTILE_TYPE}))
    made[1].write_bytes(
        pki.cert_pem(pki.issue(HOSTILE_CN, issuer=ca, sans=("[link=x]", "10.9.9.9")).cert)
    )
    made[2].write_bytes(LAUGHS)
    os.mkfifo(made[3])
    try:
        yield root
    finally:
        for path in made:
            path.unlink(missing_ok=True)


def test_report_shows_hostile_files_literally_and_flags_laughs_and_fifo(
    lab: Lab, hostile_node: Path
) -> None:
    prlimit = shutil.which("prlimit")
    assert prlimit, "prlimit is in util-linux"
    limited = [prlimit, f"--as={2 * 1024**3}", "--"]
    result = kcockpit(
        "report", "--config", str(lab.paths.config), "--json", timeout=60, wrapper=limited
    )
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr  # etcd up
    report = json.loads(result.stdout)
    nodes = {n["name"]: n for n in report["nodes"]}
    assert all(n["reachable"] for n in nodes.values())  # the other nodes are read as ever
    findings = {(f["id"], f["subject"]): f for f in report["findings"]}
    laughs = findings[("static-pod.invalid-manifest", "cp-2:/etc/kubernetes/manifests/laughs.yaml")]
    assert "aliases" in laughs["evidence"]
    pipe = findings[("static-pod.invalid-manifest", "cp-2:/etc/kubernetes/manifests/pipe.yaml")]
    assert "fifo" in pipe["evidence"] and "never opened" in pipe["evidence"]
    cp2 = nodes["cp-2"]
    cni = {f["name"]: f for f in cp2["cni"]["files"]}
    assert cni[printable(HOSTILE_CNI_NAME)]["types"] == [printable(HOSTILE_TYPE)]
    subjects = {c["path"]: c["subject"] for c in cp2["certificates"]}
    assert subjects["/etc/kubernetes/pki/evil.crt"] == printable(HOSTILE_CN)

    human = kcockpit("report", "--config", str(lab.paths.config), timeout=60, wrapper=limited)
    assert human.returncode == 0 and "Traceback" not in human.stderr, human.stderr
    no_control_codes(human.stdout)
    assert "calico[/]␛[2J" in human.stdout and "x[/]␛" in human.stdout  # cells may wrap

    check = kcockpit("config", "check", "--config", str(lab.paths.config), timeout=60)
    # Hostile files change no connection: every one still works.
    assert check.returncode == 0 and "Traceback" not in check.stderr, check.stdout
    assert check.stdout.splitlines()[-1] == "all connections work", check.stdout
    no_control_codes(check.stdout)
