"""Issue 3 acceptance on a lab of its own with incidents staged on its real files.

The lab is created with `pki-copied` (cp-2 stopped, its pki/ replaced by cp-1's) and every
cp-1 scenario at once (certificates, CNI conflict, stray backup, image skew, bad files), so one
lab start covers every node finding; nothing here changes files, so nothing needs restoring.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cluster.model import Finding, Severity, Snapshot
from lab.control import Lab, lab_down, lab_up
from lab.layout import KUBE_VERSION
from lab.scenarios import SKEWED_VERSION
from tests.helpers import collect_once, kcockpit
from tests.test_app_etcd import until
from tui.app import CockpitApp
from widgets.certificates_pane import CertificatesPane
from widgets.cni_pane import CniPane
from widgets.static_pods_pane import StaticPodsPane

SCENARIOS = (
    "pki-copied",
    "cert-expiring",
    "cert-expired",
    "cert-wrong-issuer",
    "cert-not-yet-valid",
    "cni-conflict",
    "stray-manifest-backup",
    "image-skew",
    "bad-files",
)


@pytest.fixture(scope="module")
def scenario_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("scenario-lab")
    lab_up(root, nodes=3, scenarios=SCENARIOS)
    try:
        yield Lab(root)
    finally:
        lab_down(root)


@pytest.fixture(scope="module")
async def snapshot(scenario_lab: Lab) -> Snapshot:
    return await collect_once(scenario_lab.config())


def one(snapshot: Snapshot, finding_id: str, subject: str) -> Finding:
    found = [f for f in snapshot.findings if f.id == finding_id and f.subject == subject]
    assert len(found) == 1, [(f.id, f.subject) for f in snapshot.findings]
    return found[0]


def test_certificate_findings(snapshot: Snapshot) -> None:
    expiring = one(snapshot, "cert.expiring", "cp-1:pki/apiserver.crt")
    assert expiring.severity is Severity.WARNING and "10 days left" in expiring.evidence
    assert expiring.command == "kubeadm certs renew apiserver"
    expired = one(snapshot, "cert.expired", "cp-1:pki/front-proxy-client.crt")
    assert expired.severity is Severity.CRITICAL
    assert expired.command == "kubeadm certs renew front-proxy-client"
    wrong = one(snapshot, "cert.wrong-issuer", "cp-1:pki/apiserver-kubelet-client.crt")
    assert "not signed by /etc/kubernetes/pki/ca.crt" in wrong.evidence
    early = one(snapshot, "cert.not-yet-valid", "cp-1:pki/etcd/healthcheck-client.crt")
    assert "clock" in early.next
    for copied in ("pki/apiserver.crt", "pki/etcd/server.crt", "pki/etcd/peer.crt"):
        san = one(snapshot, "cert.san-missing-node-address", f"cp-2:{copied}")
        assert san.severity is Severity.CRITICAL
        assert "hostname cp-2" in san.evidence and "CN" in san.evidence
        assert "kubeadm init phase certs" in (san.command or "")
    assert not [
        f for f in snapshot.findings if f.id.startswith("cert.") and f.subject.startswith("cp-3")
    ]


def test_static_pod_findings(snapshot: Snapshot) -> None:
    missing = one(snapshot, "static-pod.manifest-missing", "cp-2")
    assert missing.command == "cd /etc/kubernetes && rsync -av manifests-20230310/ manifests/"
    stray = one(
        snapshot,
        "static-pod.stray-file",
        "cp-1:/etc/kubernetes/manifests/kube-apiserver.yaml.20230310",
    )
    assert stray.command and stray.command.startswith("mv /etc/kubernetes/manifests/")
    invalid = one(
        snapshot, "static-pod.invalid-manifest", "cp-1:/etc/kubernetes/manifests/kube-vip.yaml"
    )
    assert "not valid YAML" in invalid.evidence
    skew = one(snapshot, "static-pod.image-skew", "kube-scheduler")
    assert SKEWED_VERSION in skew.evidence and KUBE_VERSION in skew.evidence


def test_cni_findings(snapshot: Snapshot) -> None:
    multiple = one(snapshot, "cni.multiple-configs", "cp-1")
    assert "active: 05-cilium.conflist" in multiple.evidence
    assert multiple.command == (
        "rm -f /etc/cni/net.d/10-calico.conflist /etc/cni/net.d/calico-kubeconfig"
    )
    inconsistent = one(snapshot, "cni.inconsistent-across-nodes", "cni")
    assert "cilium-cni: cp-1" in inconsistent.evidence
    huge = one(snapshot, "cni.invalid-config", "cp-1:/etc/cni/net.d/50-huge.conflist")
    assert "not read" in huge.evidence and "50000000 bytes" in huge.evidence
    junk = one(snapshot, "cni.invalid-config", "cp-1:/etc/cni/net.d/99-junk.conf")
    assert junk.command == "rm /etc/cni/net.d/99-junk.conf"


def test_bad_inputs_are_findings_and_lose_nothing(snapshot: Snapshot) -> None:
    broken = one(snapshot, "cert.unreadable", "cp-1:pki/broken.crt")
    assert "malformed PEM" in broken.evidence
    loop = one(snapshot, "cert.unreadable", "cp-1:pki/loop.crt")
    assert "symbolic links" in loop.evidence
    cp1 = snapshot.node("cp-1")
    assert cp1 is not None and cp1.reachable
    assert len([c for c in cp1.certificates if c.error is None]) >= 15
    assert {p.component for p in cp1.static_pods if p.state == "present"} == {
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    }


async def test_panes_show_the_incidents(scenario_lab: Lab) -> None:
    app = CockpitApp(scenario_lab.config(), refresh=1.0)
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.press("2")
        pods = app.query_one(StaticPodsPane)
        await until(pilot, lambda: pods.row_count > 0, timeout=30)
        rows = pods.row_texts()
        cp2 = {r[1]: r for r in rows if r[0] == "cp-2"}
        assert cp2["etcd"][2] == "↪ moved to manifests-20230310/etcd.yaml"
        assert cp2["etcd"][3] == "✗ stopped"
        assert any("▲ stray copy: kube-apiserver.yaml.20230310" in r[2] for r in rows)

        await pilot.click("#panes Tab#--content-tab-pane-certificates")
        certs = app.query_one(CertificatesPane)
        rows = certs.row_texts()
        assert rows[0][0].startswith("‼")  # most urgent first
        urgencies = [r[0] for r in rows]
        assert urgencies.index("✔ ok") > max(
            i for i, u in enumerate(urgencies) if u.startswith("▲")
        )
        by_file = {(r[1], r[2]): r for r in rows}
        assert by_file[("cp-2", "pki/etcd/server.crt")][0] == "‼ san missing"
        assert by_file[("cp-1", "pki/apiserver.crt")][0] == "▲ expiring (10 d)"
        assert by_file[("cp-1", "pki/apiserver-kubelet-client.crt")][5] == "✖ NO"

        await pilot.click("#panes Tab#--content-tab-pane-cni")
        cni = {(r[0], r[1]): r for r in app.query_one(CniPane).row_texts()}
        assert cni[("cp-1", "05-cilium.conflist")][2] == "★ active"
        assert cni[("cp-1", "10-calico.conflist")][2] == "▲ conflicting"
        assert cni[("cp-1", "99-junk.conf")][2] == "✖ invalid"
        assert cni[("cp-2", "calico-kubeconfig")][5].startswith("server https://")
        await pilot.press("q")


def test_lab_scenarios_lists_each_with_a_description() -> None:
    result = kcockpit("lab", "scenarios")
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(None, 1) for line in result.stdout.splitlines())
    for name in (*SCENARIOS, "manifests-moved"):
        assert len(lines[name]) > 20


def test_human_report_shows_the_nodes(scenario_lab: Lab) -> None:
    result = kcockpit("report", "--config", str(scenario_lab.paths.config))
    assert "static pods" in result.stdout and "★ active" in result.stdout
    assert "↪ moved to" in result.stdout and "manifests-20230310" in result.stdout


def test_scenarios_that_leave_no_quorum_are_refused(tmp_path) -> None:
    result = kcockpit(
        "lab",
        "up",
        "--dir",
        str(tmp_path / "lab"),
        "--scenario",
        "pki-copied",
        "--scenario",
        "manifests-moved",
    )
    assert result.returncode == 1 and "no etcd quorum" in result.stderr
