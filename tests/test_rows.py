"""The row builders (widgets/rows) on hand-built snapshots: the keys and cells every pane, the
report and the tests share, and the etcd pane acting on the member whose row key is under the
cursor, not on what the row displays. No lab, no widget but the etcd pane's own."""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import sys
from dataclasses import replace

from textual.app import App, ComposeResult

from cluster.config import Thresholds
from cluster.kube.model import KubeDaemonSet, KubeEvent, KubeNode, KubePod, KubeView
from cluster.model import EtcdCluster, EtcdMember, Finding, Severity, Snapshot
from tests.helpers import PROJECT
from tests.test_node_snapshots import CP1, CP2, CP3, NOW
from tui.console import output_console
from tui.report_view import print_report
from widgets.etcd_pane import EtcdPane
from widgets.messages import ActionRequested
from widgets.rows import certificates, cni, etcd, findings, kube, static_pods
from widgets.rows.common import Column, Row

LEADER = EtcdMember(
    id=0x11,
    name="cp-1",
    endpoint="https://10.0.0.11:2379",
    reachable=True,
    version="3.5.16",
    db_size=25_000,
    leader_id=0x11,
    raft_term=2,
    raft_index=10,
    raft_applied_index=9,
)
FOLLOWER = EtcdMember(
    id=0x12,
    name="cp-2",
    endpoint="https://10.0.0.12:2379",
    reachable=True,
    version="3.5.16",
    leader_id=0x11,
    errors=("etcdserver: no space",),
)
# Two configured endpoints that answered without a member list: no name, no ID, and the same
# display text "(unstarted ?)".
NO_LIST = tuple(
    EtcdMember(id=0, name="", endpoint=f"https://10.0.0.{n}:2379", error="deadline exceeded")
    for n in (13, 14)
)
UNSTARTED = EtcdMember(id=0xABC, name="", endpoint=None, is_learner=True)
TWINS = tuple(EtcdMember(id=i, name="cp-9", endpoint=None) for i in (0x91, 0x92))

VIEW = KubeView(
    server="https://10.0.0.11:6443",
    collected_at=NOW,
    nodes=(
        KubeNode("cp-1", True, roles=("control-plane",), kubelet_version="v1.29.4"),
        KubeNode("cp-2", False, "KubeletNotReady", "PLEG is not healthy"),
    ),
    pods=(
        KubePod("kube-system", "etcd-cp-1", "cp-1", "Running", True, component="etcd", mirror=True),
        KubePod(
            "kube-system",
            "calico-node-x",
            "cp-2",
            "Running",
            False,
            status="CrashLoopBackOff",
            owner_kind="DaemonSet",
            owner_name="calico-node",
        ),
    ),
    daemonsets=(KubeDaemonSet("kube-system", "calico-node", 2, 2, 1, 2, 1),),
    events=(KubeEvent("kube-system", "Warning", "BackOff", "Pod/calico-node-x", "restarting"),),
)


def snapshot(*members: EtcdMember, **more: object) -> Snapshot:
    return Snapshot("test", NOW, EtcdCluster(members=members), **more)  # type: ignore[arg-type]


def texts(rows: list[Row]) -> dict[str, list[str]]:
    return {key: [str(cell) for cell in cells] for key, cells in rows}


def test_etcd_rows_are_keyed_by_what_an_action_takes_never_by_display_text() -> None:
    rows = etcd.rows(snapshot(LEADER, FOLLOWER, *NO_LIST, UNSTARTED, *TWINS))
    assert [key for key, _ in rows] == [
        "cp-1",
        "cp-2",
        "https://10.0.0.13:2379",
        "https://10.0.0.14:2379",
        "0000000000000abc",  # unstarted: its hex ID, as `member promote` takes it
        "0000000000000091",  # a shared name names neither: the IDs do
        "0000000000000092",
    ]
    shown = texts(rows)
    assert shown["cp-1"] == [
        "● up",
        "cp-1",
        "https://10.0.0.11:2379",
        "0000000000000011",
        "3.5.16",
        "25 kB",
        "★ leader",
        "",
        "2",
        "10",
        "9",
        "",
    ]
    assert shown["cp-2"][0] == "! errors" and shown["cp-2"][-1] == "etcdserver: no space"
    assert shown["https://10.0.0.13:2379"][:2] == ["✗ down", "(unstarted ?)"]
    assert shown["https://10.0.0.14:2379"][:2] == ["✗ down", "(unstarted ?)"]
    assert shown["0000000000000abc"][1:3] == ["(unstarted 0000000000000abc)", "-"]
    assert shown["0000000000000abc"][7] == "learner (progress unknown)"  # it does not answer


def test_node_rows_key_each_file_and_speak_for_an_unreachable_node_in_one_row() -> None:
    nodes = snapshot(nodes=(CP1, CP2, CP3))
    pods = texts(static_pods.rows(nodes))
    assert list(pods) == [
        "cp-1/etcd",
        "cp-1/kube-apiserver",
        "cp-1/kube-controller-manager",
        "cp-1/kube-scheduler",
        "cp-1/extra/kube-apiserver.yaml.20230310",
        "cp-2/etcd",
        "cp-2/kube-apiserver",
        "cp-2/kube-controller-manager",
        "cp-2/kube-scheduler",
        "cp-3",
    ]
    assert pods["cp-2/etcd"][2] == "↪ moved to manifests-20230310/etcd.yaml"
    assert pods["cp-1/extra/kube-apiserver.yaml.20230310"][1:3] == [
        "(kube-apiserver)",
        "▲ stray copy: kube-apiserver.yaml.20230310",
    ]
    assert pods["cp-3"][2].startswith("✗ unreachable: cp-3: host key unknown")
    assert pods["cp-1/etcd"][-1] == "-"  # no API configured

    certs = certificates.rows(nodes)
    assert [(key, str(cells[0])) for key, cells in certs][1:5] == [
        # after the unreachable node: the worst first, of equal ones the fewest days left
        ("cp-1:/etc/kubernetes/pki/front-proxy-client.crt", "‼ expired"),
        ("cp-2:/etc/kubernetes/pki/etcd/server.crt", "‼ san missing"),
        ("cp-1:/etc/kubernetes/pki/broken.crt", "✖ unreadable"),
        ("cp-1:/etc/kubernetes/pki/apiserver-kubelet-client.crt", "✖ wrong issuer"),
    ]
    assert texts(certs)["cp-1:/etc/kubernetes/pki/apiserver.crt"][0] == "▲ expiring (10 d)"

    files = texts(cni.rows(nodes))
    assert files["cp-1/05-cilium.conflist"][2] == "★ active"
    assert files["cp-1/10-calico.conflist"][2] == "▲ conflicting"
    assert files["cp-1/50-huge.conflist"][2:6] == ["✖ invalid", "", "50 MB", "too large (not read)"]
    assert files["cp-1/calico-kubeconfig"][2] == "kubeconfig"
    assert files["cp-3"][2].startswith("✗ unreachable")


def test_kube_rows_come_from_the_api_view_or_say_why_there_are_none() -> None:
    assert texts(kube.node_rows(snapshot())) == {
        "problem": ["- no Kubernetes API configured ([kube])", "", "", "", "", "", ""]
    }
    down = snapshot(kube=KubeView("https://10.0.0.11:6443", NOW, error="connection refused"))
    assert texts(kube.node_rows(down))["problem"][0] == "✗ unreachable: connection refused"
    assert kube.daemonset_rows(down) == [] and kube.event_rows(down) == []

    up = snapshot(nodes=(CP1, CP2), kube=VIEW)
    assert texts(kube.node_rows(up)) == {
        "cp-1": ["● Ready", "cp-1", "control-plane", "v1.29.4", "-", "etcd ●", ""],
        "cp-2": [
            "✗ NotReady",
            "cp-2",
            "<none>",
            "",
            "-",
            "-",
            "KubeletNotReady: PLEG is not healthy",
        ],
    }
    assert texts(kube.daemonset_rows(up)) == {
        "calico-node": [
            "✗ 1/2 ready",
            "calico-node",
            "2",
            "2",
            "1",
            "2",
            "1",
            "calico-node-x on cp-2",
        ]
    }
    assert texts(kube.event_rows(up)) == {
        "0": ["-", "▲ BackOff", "Pod/calico-node-x", "1", "restarting"]
    }
    # The node tables borrow the API's cells.
    assert texts(static_pods.rows(up))["cp-1/etcd"][-1] == "● running"
    assert texts(cni.rows(up))["cp-2/10-calico.conflist"][-1] == (
        "✗ calico-node-x CrashLoopBackOff, not ready"
    )


def test_findings_rows_are_keyed_by_id_and_subject_once_each() -> None:
    def finding(severity: Severity, subject: str, summary: str) -> Finding:
        return Finding("etcd.member-down", severity, subject, summary, "evidence", "next")

    worst = finding(Severity.CRITICAL, "cp-2", "down")
    found = (
        worst,
        finding(Severity.WARNING, "cp-2", "again"),
        finding(Severity.ERROR, "cp-3", "x"),
    )
    rows = findings.rows(snapshot(findings=found))
    assert texts(rows) == {
        "etcd.member-down|cp-2": ["‼ CRITICAL", "etcd.member-down", "cp-2", "down"],
        "etcd.member-down|cp-3": ["✖ ERROR", "etcd.member-down", "cp-3", "x"],
    }
    assert findings.by_key(found)["etcd.member-down|cp-2"] is worst


def test_every_row_has_a_cell_for_each_column_and_every_table_a_column_never_hidden() -> None:
    full = snapshot(
        LEADER,
        *NO_LIST,
        nodes=(CP1, CP2, CP3),
        kube=VIEW,
        findings=(Finding("x.y", Severity.INFO, "s", "summary", "e", "n"),),
    )
    tables: list[tuple[tuple[Column, ...], list[Row]]] = [
        (etcd.COLUMNS, etcd.rows(full)),
        (static_pods.COLUMNS, static_pods.rows(full)),
        (certificates.COLUMNS, certificates.rows(full)),
        (cni.COLUMNS, cni.rows(full)),
        (kube.NODE_COLUMNS, kube.node_rows(full)),
        (kube.DAEMONSET_COLUMNS, kube.daemonset_rows(full)),
        (kube.EVENT_COLUMNS, kube.event_rows(full)),
        (findings.COLUMNS, findings.rows(full)),
    ]
    for columns, rows in tables:
        assert rows and all(len(cells) == len(columns) for _, cells in rows), columns
        assert len({key for key, _ in rows}) == len(rows)  # a DataTable refuses a repeated key
        assert len({c.key for c in columns}) == len(columns)
        assert any(c.priority == 1 for c in columns)


ROW_MODULES = ("common", "etcd", "static_pods", "certificates", "cni", "kube", "findings")


def test_the_report_prints_the_builders_rows_and_needs_no_textual() -> None:
    console = output_console()
    console.file = io.StringIO()
    print_report(snapshot(LEADER, *NO_LIST, nodes=(CP1, CP3), kube=VIEW), console=console)
    report = console.file.getvalue()
    for title in ("etcd members", "static pods", "certificates", "CNI", "DaemonSets", "Warning"):
        assert title in report
    assert "★ leader" in report and "(unstarted ?)" in report and "▲ stray copy" in report
    imports = ", ".join(f"widgets.rows.{name}" for name in ROW_MODULES)
    code = f"import sys, {imports}\nprint('textual' in sys.modules)"
    assert (
        subprocess.check_output([sys.executable, "-c", code], cwd=PROJECT, text=True) == "False\n"
    )


class EtcdApp(App[None]):
    """The etcd pane alone, recording the actions it asks for."""

    def __init__(self, shown: Snapshot) -> None:
        super().__init__()
        self.shown = shown
        self.asked: list[tuple[str, str | None]] = []

    def compose(self) -> ComposeResult:
        yield EtcdPane()

    def on_mount(self) -> None:
        self.query_one(EtcdPane).show_snapshot(self.shown)

    def on_action_requested(self, message: ActionRequested) -> None:
        self.asked.append((message.action, message.target))


async def test_the_etcd_pane_acts_on_the_row_key_under_the_cursor() -> None:
    """Two rows read "(unstarted ?)": the second one's key, not the first match of its text."""
    app = EtcdApp(snapshot(LEADER, *NO_LIST, UNSTARTED))
    async with app.run_test(size=(200, 20)) as pilot:
        pane = app.query_one(EtcdPane)
        pane.focus()
        pane.move_cursor(row=2)
        assert [row[1] for row in pane.row_texts()][1:3] == ["(unstarted ?)", "(unstarted ?)"]
        assert pane.selected_name == "https://10.0.0.14:2379"
        await pilot.press("x")
        pane.move_cursor(row=3)
        await pilot.press("p")
        await pilot.pause()
        assert app.asked == [
            ("member-remove", "https://10.0.0.14:2379"),
            ("member-promote", "0000000000000abc"),
        ]


def test_a_learners_row_shows_its_progress_and_caught_up_by_the_promote_guards_threshold() -> None:
    leader = replace(LEADER, raft_index=10_000, raft_applied_index=10_000)
    learner = EtcdMember(
        id=0x14, name="cp-4", endpoint="https://10.0.0.14:2379", is_learner=True,
        reachable=True, leader_id=0x11, raft_applied_index=4_000,
    )  # fmt: skip
    before = snapshot(leader, replace(learner, raft_applied_index=2_000))
    now = replace(snapshot(leader, learner), collected_at=NOW + dt.timedelta(seconds=1))
    cell = texts(etcd.rows(now, Thresholds(), before))["cp-4"][7]
    assert cell == "learner 40% (4000/10000) ETA 3s"  # 2000 entries a second, 6000 to go
    assert texts(etcd.rows(now))["cp-4"][7] == "learner 40% (4000/10000)"  # no pace yet
    # Within raft_lag_entries of the leader's index: what the finding and the guard call it.
    close = snapshot(leader, replace(learner, raft_applied_index=9_500))
    assert "caught up" in texts(etcd.rows(close, Thresholds(raft_lag_entries=1000)))["cp-4"][7]
    assert "caught up" not in texts(etcd.rows(close, Thresholds(raft_lag_entries=100)))["cp-4"][7]
