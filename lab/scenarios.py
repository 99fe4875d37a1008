"""Lab scenarios: real incidents staged on a lab's real files when the lab is created.

Each one reproduces what an operator actually did (runbooks in shared/runbooks/), by the same
file operations, before the lab kubelet starts: so the cockpit finds them exactly as it would on
a real node, over SSH. `kcockpit lab scenarios` lists them; `kcockpit lab up --scenario NAME`
(repeatable) applies them. A scenario that keeps a member down says so (`stops`), and the lab
waits for the others only, refusing combinations that would leave no quorum.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509

from cluster.config import TlsFiles
from cluster.etcd.client import EtcdClient
from cluster.nodes.parse import describe_certificate
from lab import pki, running_scenarios
from lab.layout import KUBE_VERSION, LabError, LabPaths, LabSpec

MOVED_SUFFIX = "20230310"  # the runbook's date, so the restore commands read like the runbook
CILIUM_CONFLIST = {
    "cniVersion": "0.3.1",
    "name": "cilium",
    "plugins": [{"type": "cilium-cni", "enable-debug": False, "log-file": "/var/run/cilium.log"}],
}
SKEWED_VERSION = "v1.21.14"  # the next minor: what an upgrade half done leaves
HUGE_FILE_BYTES = 50 * 1000 * 1000
TINY_QUOTA = 1024 * 1024
SMALL_QUOTA = 64 * 1024 * 1024


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    apply: Callable[[LabPaths, LabSpec], None]
    min_nodes: int = 1
    stops: Callable[[LabSpec], tuple[str, ...]] = lambda spec: ()
    # Staged through etcd's API once the lab is healthy (lab/running_scenarios.py).
    on_running: Callable[[EtcdClient, LabSpec], Awaitable[object]] | None = None


def _nothing_on_disk(paths: LabPaths, spec: LabSpec) -> None:
    """For scenarios staged only once the cluster runs."""


def _unstarted_member(learner: bool) -> Callable[[EtcdClient, LabSpec], Awaitable[int]]:
    def stage(client: EtcdClient, spec: LabSpec) -> Awaitable[int]:
        return running_scenarios.add_unstarted_member(client, spec, learner=learner)

    return stage


def _quota(size: int) -> Callable[[LabPaths, LabSpec], None]:
    """Every member runs with a backend quota of `size` bytes (etcd's default is 2 GiB)."""

    def stage(paths: LabPaths, spec: LabSpec) -> None:
        for node in spec.nodes:
            manifest = paths.manifests(node.name) / "etcd.yaml"
            pod = yaml.safe_load(manifest.read_text())
            pod["spec"]["containers"][0]["command"].append(f"--quota-backend-bytes={size}")
            manifest.write_text(yaml.safe_dump(pod, sort_keys=False))

    return stage


def _first(spec: LabSpec) -> str:
    return spec.nodes[0].name


def _second(spec: LabSpec) -> str:
    return spec.nodes[1].name


def _last(spec: LabSpec) -> str:
    return spec.nodes[-1].name


def _pki_copied(paths: LabPaths, spec: LabSpec) -> None:
    """Runbook §2.3 up to its fatal last step: the node stopped, its pki/ replaced by cp-1's.

    Restoring the manifests now would start an etcd serving certificates that name cp-1;
    the cockpit has to say so before the operator runs that rsync.
    """
    target = paths.kubernetes_dir(_second(spec))
    (target / "manifests").rename(target / f"manifests-{MOVED_SUFFIX}")
    (target / "pki").rename(target / f"pki-{MOVED_SUFFIX}")
    shutil.copytree(paths.kubernetes_dir(_first(spec)) / "pki", target / "pki")


def _reissue(
    paths: LabPaths,
    node: str,
    stem: str,
    *,
    issuer: pki.Issued | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> None:
    """Re-issues pki/<stem>.crt of a node with the same names and usages, other dates/issuer."""
    pki_dir = paths.kubernetes_dir(node) / "pki"
    old = x509.load_pem_x509_certificate((pki_dir / f"{stem}.crt").read_bytes())
    info = describe_certificate(stem, old)
    cas = pki.load_cas(paths.kubernetes_dir(node))
    ca = cas.etcd if stem.startswith("etcd/") or stem == "apiserver-etcd-client" else cas.kubernetes
    if stem == "front-proxy-client":
        ca = cas.front_proxy
    issued = pki.issue(
        info.subject,
        issuer=issuer or ca,
        server=info.serving,
        client=True,
        sans=info.sans,
        not_before=not_before,
        not_after=not_after,
    )
    pki.write_pair((pki_dir / stem).parent, Path(stem).name, issued)


def _dated(stem: str, not_before: float, not_after: float) -> Callable[[LabPaths, LabSpec], None]:
    """Re-issues cp-1's pki/<stem>.crt valid from/until that many days from now."""

    def apply(paths: LabPaths, spec: LabSpec) -> None:
        now = dt.datetime.now(dt.UTC)
        _reissue(
            paths,
            _first(spec),
            stem,
            not_before=now + dt.timedelta(days=not_before),
            not_after=now + dt.timedelta(days=not_after),
        )

    return apply


def _cert_wrong_issuer(paths: LabPaths, spec: LabSpec) -> None:
    foreign = pki.issue("kubernetes", ca=True)  # another cluster's CA, same name
    _reissue(paths, _first(spec), "apiserver-kubelet-client", issuer=foreign)


def _net_d(paths: LabPaths, node: str) -> Path:
    return paths.node_root(node) / "etc" / "cni" / "net.d"


def _cni_conflict(paths: LabPaths, spec: LabSpec) -> None:
    (_net_d(paths, _first(spec)) / "05-cilium.conflist").write_text(
        json.dumps(CILIUM_CONFLIST, indent=2)
    )


def _manifests_moved(paths: LabPaths, spec: LabSpec) -> None:
    manifests = paths.manifests(_last(spec))
    manifests.rename(manifests.with_name(f"manifests-{MOVED_SUFFIX}"))


def _stray_manifest_backup(paths: LabPaths, spec: LabSpec) -> None:
    manifests = paths.manifests(_first(spec))
    shutil.copy2(
        manifests / "kube-apiserver.yaml", manifests / f"kube-apiserver.yaml.{MOVED_SUFFIX}"
    )


def _image_skew(paths: LabPaths, spec: LabSpec) -> None:
    manifest = paths.manifests(_first(spec)) / "kube-scheduler.yaml"
    manifest.write_text(manifest.read_text().replace(f":{KUBE_VERSION}", f":{SKEWED_VERSION}"))


def _bad_files(paths: LabPaths, spec: LabSpec) -> None:
    """Malformed PEM, binary junk, a 50 MB config, broken YAML and a symlink loop on cp-1."""
    node = _first(spec)
    pki_dir = paths.kubernetes_dir(node) / "pki"
    (pki_dir / "broken.crt").write_text(
        "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n"
    )
    os.symlink("loop.crt", pki_dir / "loop.crt")
    net_d = _net_d(paths, node)
    (net_d / "99-junk.conf").write_bytes(bytes(range(256)) * 4)
    with (net_d / "50-huge.conflist").open("wb") as huge:
        huge.truncate(HUGE_FILE_BYTES)  # sparse: 50 MB to a reader, no disk used
    (paths.manifests(node) / "kube-vip.yaml").write_text("apiVersion: v1\nkind: Pod\nspec: [\n")


def _drill(**staged: float) -> Callable[[LabPaths, LabSpec], None]:
    """An incident the last node stages for real when it starts (lab/node.py): its clock set
    off, its etcd disk filled, or its etcd port taken by another process."""

    def apply(paths: LabPaths, spec: LabSpec) -> None:
        drill = paths.drill(_last(spec))
        drill.parent.mkdir(parents=True, exist_ok=True)
        earlier = json.loads(drill.read_text()) if drill.exists() else {}
        drill.write_text(json.dumps({**earlier, **staged}))  # drills combine on one node

    return apply


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "pki-copied",
            "cp-2 stopped and its pki/ replaced by cp-1's, just before the failing restore (§2.3)",
            _pki_copied,
            min_nodes=3,
            stops=lambda spec: (_second(spec),),
        ),
        Scenario(
            "cert-expiring",
            "cp-1's apiserver certificate has 10 days left",
            _dated("apiserver", -1 / 24, 10 + 1 / 24),
        ),
        Scenario(
            "cert-expired",
            "cp-1's front-proxy-client certificate expired 3 days ago",
            _dated("front-proxy-client", -368, -3),
        ),
        Scenario(
            "cert-wrong-issuer",
            "cp-1's apiserver-kubelet-client signed by another cluster's CA",
            _cert_wrong_issuer,
        ),
        Scenario(
            "cert-not-yet-valid",
            "cp-1's etcd healthcheck-client valid only from the day after tomorrow",
            _dated("etcd/healthcheck-client", 2, 365),
        ),
        Scenario(
            "cni-conflict",
            "cp-1 has cilium's config beside calico's (runbook §3.3): two CNIs",
            _cni_conflict,
        ),
        Scenario(
            "manifests-moved",
            "the last node stopped the runbook way: mv manifests manifests-20230310 (§2.1)",
            _manifests_moved,
            min_nodes=3,
            stops=lambda spec: (_last(spec),),
        ),
        Scenario(
            "stray-manifest-backup",
            "cp-1 has kube-apiserver.yaml.20230310 inside manifests/ (the kubelet runs it)",
            _stray_manifest_backup,
        ),
        Scenario(
            "image-skew",
            f"cp-1's kube-scheduler manifest names {SKEWED_VERSION}, the others {KUBE_VERSION}",
            _image_skew,
        ),
        Scenario(
            "bad-files",
            "cp-1: malformed PEM, symlink loop in pki/, binary junk and a 50 MB file in net.d, "
            "broken YAML in manifests/",
            _bad_files,
        ),
        Scenario(
            "stale-member",
            "a voting member added (MemberAdd) whose node never starts: 4 voting, 3 healthy",
            _nothing_on_disk,
            on_running=_unstarted_member(learner=False),
        ),
        Scenario(
            "learner",
            "a learner added whose node never starts, left unpromoted",
            _nothing_on_disk,
            on_running=_unstarted_member(learner=True),
        ),
        Scenario(
            "db-divergence",
            "8 MB written, deleted and compacted, then one follower defragmented, not the others",
            _nothing_on_disk,
            min_nodes=2,
            on_running=running_scenarios.fragment_one_member,
        ),
        Scenario(
            "alarm",
            f"members run with --quota-backend-bytes={TINY_QUOTA}; writes fill it: NOSPACE",
            _quota(TINY_QUOTA),
            on_running=running_scenarios.fill_to_nospace,
        ),
        Scenario(
            "small-quota",
            f"members run with --quota-backend-bytes={SMALL_QUOTA}: steady writes show the "
            "database growing toward it (etcd.db-growth)",
            _quota(SMALL_QUOTA),
        ),
        Scenario(
            "clock-skew",
            "the last node's clock runs 45 s ahead (libfaketime in every process it starts)",
            _drill(clock_offset=45.0),
        ),
        Scenario(
            "port-conflict",
            "a process holds the last node's etcd peer port 2380 before etcd starts: "
            "etcd fails with 'address already in use'",
            _drill(hold_port=2380),
            min_nodes=3,
            stops=lambda spec: (_last(spec),),
        ),
        Scenario(
            "disk-pressure",
            "the last node's /var/lib/etcd is a 1 GiB filesystem filled to 97 % with ballast",
            _drill(etcd_disk_mb=1024, fill_percent=97.0),
        ),
    )
}


def stopped_nodes(spec: LabSpec) -> set[str]:
    """Nodes whose etcd the lab's scenarios keep down."""
    return {name for s in spec.scenarios for name in SCENARIOS[s].stops(spec)}


def check_scenarios(spec: LabSpec) -> None:
    """Refuses unknown scenarios and combinations that cannot apply, before anything is written."""
    unknown = [name for name in spec.scenarios if name not in SCENARIOS]
    if unknown:
        raise LabError(
            f"unknown scenario {', '.join(unknown)} (`kcockpit lab scenarios` lists them)"
        )
    for name in spec.scenarios:
        if len(spec.nodes) < SCENARIOS[name].min_nodes:
            raise LabError(f"scenario {name} needs at least {SCENARIOS[name].min_nodes} nodes")
    down = stopped_nodes(spec)
    if len(spec.nodes) - len(down) < len(spec.nodes) // 2 + 1:
        raise LabError(
            f"scenarios {', '.join(spec.scenarios)} together stop {', '.join(sorted(down))}: "
            f"that leaves no etcd quorum; use more --nodes"
        )


async def stage_running_scenarios(spec: LabSpec, tls: TlsFiles) -> None:
    """The second half of the spec's scenarios, on the healthy lab (see running_scenarios)."""
    stages = [SCENARIOS[n].on_running for n in dict.fromkeys(spec.scenarios)]
    client = EtcdClient(tls, timeout=5.0)
    try:
        for stage in stages:
            if stage is not None:
                await stage(client, spec)
    finally:
        await client.close()


def apply_scenarios(paths: LabPaths, spec: LabSpec) -> None:
    """Stages the spec's scenarios on a freshly created lab's files."""
    check_scenarios(spec)
    for name in dict.fromkeys(spec.scenarios):
        SCENARIOS[name].apply(paths, spec)
