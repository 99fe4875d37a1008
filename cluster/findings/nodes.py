"""Rules over what each control-plane node's own files and processes show.

Manifests moved away or broken (mock scenarios §2.1), certificates copied from a peer or
about to expire (§2.3; network-certs notes §2.1-2.2), two CNIs at once (§3.3), a full disk, a
stranger on port 6443, a wrong clock. Each finding gives the concrete command that repairs it
on the node: the `rsync` that restores a manifests directory, the `kubeadm certs renew` line,
the `rm` of the second CNI's config. What the SSH user was refused (kubeadm's 0700 manifests/,
0600 kubeconfigs) is one finding with the sudoers fix, never a manifest "missing" or a
certificate "unreadable".
"""

from __future__ import annotations

import datetime as dt
import shlex
from collections import defaultdict

from cluster.commands import and_then, command_line, ssh_line
from cluster.config import Thresholds
from cluster.findings.registry import (
    CATALOG,
    DEFAULT_THRESHOLDS,
    MOCK,
    NETWORK_CERTS,
    ROLLBACK,
    Context,
    finding,
    rule,
)
from cluster.model import Finding, Severity, Snapshot
from cluster.nodes.model import (
    CNI_DIR,
    CONTROL_PLANE_PORTS,
    DENIED,
    KUBERNETES_DIR,
    MANIFESTS_DIR,
    PKI_DIR,
    Certificate,
    NodeState,
    StaticPod,
)
from cluster.nodes.parse import SERVING_CERTS

CHECK_EXPIRATION = "kubeadm certs check-expiration"
# `kubeadm certs renew <name>` names, by file under /etc/kubernetes.
RENEW_NAMES = {
    "pki/apiserver.crt": "apiserver",
    "pki/apiserver-kubelet-client.crt": "apiserver-kubelet-client",
    "pki/apiserver-etcd-client.crt": "apiserver-etcd-client",
    "pki/front-proxy-client.crt": "front-proxy-client",
    "pki/etcd/server.crt": "etcd-server",
    "pki/etcd/peer.crt": "etcd-peer",
    "pki/etcd/healthcheck-client.crt": "etcd-healthcheck-client",
    "admin.conf": "admin.conf",
    "super-admin.conf": "super-admin.conf",
    "controller-manager.conf": "controller-manager.conf",
    "scheduler.conf": "scheduler.conf",
}
# Which static pods read a certificate: they are restarted after it is renewed.
CERTIFICATE_USERS = {
    "pki/apiserver.crt": ("kube-apiserver",),
    "pki/apiserver-kubelet-client.crt": ("kube-apiserver",),
    "pki/apiserver-etcd-client.crt": ("kube-apiserver",),
    "pki/front-proxy-client.crt": ("kube-apiserver",),
    "pki/etcd/server.crt": ("etcd",),
    "pki/etcd/peer.crt": ("etcd",),
    "controller-manager.conf": ("kube-controller-manager",),
    "scheduler.conf": ("kube-scheduler",),
}
# `kubeadm init phase certs <name>` re-issues a serving certificate for *this* node.
REISSUE_PHASES = {
    f"{PKI_DIR}/apiserver.crt": "apiserver",
    f"{PKI_DIR}/etcd/server.crt": "etcd-server",
    f"{PKI_DIR}/etcd/peer.crt": "etcd-peer",
}
REGENERATE = {
    "etcd": "kubeadm init phase etcd local",
    "kube-apiserver": "kubeadm init phase control-plane apiserver",
    "kube-controller-manager": "kubeadm init phase control-plane controller-manager",
    "kube-scheduler": "kubeadm init phase control-plane scheduler",
}


def reachable_nodes(snapshot: Snapshot) -> list[NodeState]:
    return [n for n in snapshot.nodes if n.reachable]


@rule(
    finding(
        "node.unreachable",
        Severity.ERROR,
        "the node cannot be reached over SSH (the error shown verbatim)",
        f"{CATALOG} control plane",
    )
)
def node_unreachable_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    findings = []
    for node in snapshot.nodes:
        if node.reachable:
            continue
        error = node.error or "no answer"
        host_key = "host key" in error.lower()
        next_step = (
            "Do not trust a host key blindly: compare the fingerprint with the node's console, "
            "then update known_hosts as shown in the evidence."
            if host_key
            else "Check the node is up and its sshd answers; the rest of the cockpit keeps "
            "running without this node's files."
        )
        findings.append(
            Finding(
                id="node.unreachable",
                severity=Severity.ERROR,
                subject=node.name,
                summary=f"node {node.name} cannot be reached",
                evidence=error,
                next=next_step,
                command=None if host_key else ssh_line(node.address, "hostname"),
            )
        )
    return findings


# What kcockpit asks sudo for: the survey shell (read-only commands) and, in confirmed
# actions, `mv`. A file in /etc/sudoers.d with a dot in its name is ignored by sudo, so the
# draft lives in the home directory until visudo has checked it.
SUDOERS_RULE = "ALL=(root) NOPASSWD: /bin/sh -s, /bin/mv"
SUDOERS_FILE = "/etc/sudoers.d/kcockpit"
SUDOERS_DRAFT = "~/kcockpit.sudoers"
MAX_LISTED_PATHS = 5


def sudoers_command(node: NodeState, ctx: Context) -> str:
    """Writes the sudoers line for the node's SSH user (the config's, else whoever runs this
    on the node), checks it with `visudo -cf`, then installs it 0440 root."""
    configured = next(
        (n.user for n in (ctx.config.nodes if ctx.config else ()) if n.name == node.name), None
    )
    user = shlex.quote(configured) if configured else '"$(id -un)"'
    return and_then(
        f"printf '%s {SUDOERS_RULE}\\n' {user} > {SUDOERS_DRAFT}",
        f"sudo visudo -cf {SUDOERS_DRAFT}",
        f"sudo install -m 0440 -o root -g root {SUDOERS_DRAFT} {SUDOERS_FILE}",
    )


def _paths(paths: tuple[str, ...]) -> str:
    more = len(paths) - MAX_LISTED_PATHS
    return ", ".join(paths[:MAX_LISTED_PATHS]) + (f" and {more} more" if more > 0 else "")


SUDO_NEXT = (
    "kcockpit runs `sudo -n sh -s` (root-equivalent; it feeds it read-only commands only) and, "
    "in confirmed actions, `sudo -n mv`: allow exactly these without a password (the command "
    "writes the sudoers line, checks it with visudo, then installs it)"
)


@rule(
    finding(
        "node.sudo-failed",
        Severity.ERROR,
        "sudo -n refused (password wanted, not in sudoers, no sudo): the node is read as the "
        "SSH user (sudo's words shown verbatim)",
        f"{CATALOG} node",
    )
)
def sudo_failed_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    return [
        Finding(
            id="node.sudo-failed",
            severity=Severity.ERROR,
            subject=node.name,
            summary=f"{node.name}: sudo refused: what only root may read is not shown",
            evidence=node.sudo_refused
            + (f"; refused to the SSH user: {_paths(node.denied)}" if node.denied else ""),
            next=f"{SUDO_NEXT}; or set sudo = false for this node to read it as the SSH user.",
            command=sudoers_command(node, ctx),
        )
        for node in snapshot.nodes
        if node.sudo_refused
    ]


@rule(
    finding(
        "node.permission-denied",
        Severity.WARNING,
        "the SSH user may not read files the cockpit shows (kubeadm's 0700 manifests/, 0600 "
        "kubeconfigs): they show as permission denied, never as missing",
        f"{CATALOG} node",
    )
)
def permission_denied_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    findings = []
    for node in reachable_nodes(snapshot):
        if not node.denied or node.sudo_refused:  # a sudo refusal says it, with its fix
            continue
        manifests = any(p.state == "denied" for p in node.static_pods)
        what = "the static pod manifests" if manifests else f"{len(node.denied)} file(s)"
        if node.local:
            next_step, command = "Run kcockpit as root on this node: `sudo kcockpit`.", None
        else:
            next_step = (
                f'Read it as root: set sudo = true (or "auto") in its [[nodes]] entry. {SUDO_NEXT}.'
            )
            command = sudoers_command(node, ctx)
        findings.append(
            Finding(
                id="node.permission-denied",
                severity=Severity.WARNING,
                subject=node.name,
                summary=f"{node.name}: cannot read {what} (permission denied)",
                evidence=f"permission denied: {_paths(node.denied)}"
                + ("; the static pods' manifests are unknown, not missing" if manifests else ""),
                next=next_step,
                command=command,
            )
        )
    return findings


@rule(
    finding(
        "static-pod.manifest-missing",
        Severity.ERROR,
        "an expected static pod manifest is absent (and where a moved copy lies)",
        f"{MOCK} §2.1 (mv manifests manifests-20230310)",
    )
)
def manifest_missing_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    """Runbook §2.1: `mv manifests manifests-20230310` stops a node; rsync brings it back."""
    findings = []
    for node in reachable_nodes(snapshot):
        absent = [p for p in node.static_pods if p.state in ("missing", "moved")]
        if not absent:
            continue
        names = ", ".join(p.component for p in absent)
        where = sorted({p.moved_to for p in absent if p.moved_to})
        evidence = "; ".join(
            f"{p.component}: " + (f"found in {p.moved_to}" if p.moved_to else "nowhere")
            for p in absent
        )
        if not node.manifests_dir:
            evidence = f"{MANIFESTS_DIR}/ does not exist; {evidence}"
        findings.append(
            Finding(
                id="static-pod.manifest-missing",
                severity=Severity.ERROR,
                subject=node.name,
                summary=f"{node.name}: static pod manifest missing: {names}",
                evidence=evidence,
                next=(
                    "Put the manifests back where the kubelet reads them (it starts the pods "
                    "within seconds): "
                    + ("restore them from " + ", ".join(where) if where else "regenerate them")
                    + "."
                ),
                command=_restore_command(absent),
            )
        )
    return findings


def _restore_command(absent: list[StaticPod]) -> str:
    """The runbook's `rsync` when one directory holds them all, else one `mv` per manifest."""
    homes = {p.moved_to.rsplit("/", 1)[0] if p.moved_to else None for p in absent}
    if len(homes) == 1 and (home := homes.pop()) not in (None, KUBERNETES_DIR):
        sibling = home.rpartition("/")[2]
        return and_then(
            command_line("cd", KUBERNETES_DIR),
            command_line("rsync", "-av", f"{sibling}/", "manifests/"),
        )
    steps = [
        command_line("mv", p.moved_to, f"{MANIFESTS_DIR}/{p.component}.yaml")
        if p.moved_to
        else REGENERATE[p.component]
        for p in absent
    ]
    return and_then(command_line("mkdir", "-p", MANIFESTS_DIR), *steps)


@rule(
    finding(
        "static-pod.stray-file",
        Severity.WARNING,
        "a backup copy inside manifests/: the kubelet runs every file there",
        f"{CATALOG} control plane",
    )
)
def stray_file_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    findings = []
    for node in reachable_nodes(snapshot):
        for extra in node.extra_manifests:
            if not extra.stray:
                continue
            path = f"{MANIFESTS_DIR}/{extra.name}"
            declares = f"; it declares pod {extra.pod_name}" if extra.pod_name else ""
            findings.append(
                Finding(
                    id="static-pod.stray-file",
                    severity=Severity.WARNING,
                    subject=f"{node.name}:{path}",
                    summary=f"{node.name}: backup copy inside manifests/: {extra.name}",
                    evidence=f"{path} is not an expected manifest{declares}",
                    next=(
                        "The kubelet runs every file in manifests/, backups included: move the "
                        "copy out of the directory."
                    ),
                    command=command_line("mv", path, f"{KUBERNETES_DIR}/{extra.name}"),
                )
            )
    return findings


@rule(
    finding(
        "static-pod.invalid-manifest",
        Severity.ERROR,
        "a manifest that is not valid YAML or not a Pod",
        f"{CATALOG} control plane",
    )
)
def invalid_manifest_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    findings = []
    for node in reachable_nodes(snapshot):
        broken = [
            (pod.file or "", pod.error or "", REGENERATE[pod.component])
            for pod in node.static_pods
            if pod.state == "invalid"
        ]
        broken += [
            (
                f"{MANIFESTS_DIR}/{e.name}",
                e.error,
                command_line("mv", f"{MANIFESTS_DIR}/{e.name}", f"{KUBERNETES_DIR}/"),
            )
            for e in node.extra_manifests
            if e.error not in (None, DENIED)
            and not e.stray
            and e.name.endswith((".yaml", ".yml", ".json"))
        ]
        for path, error, command in broken:
            findings.append(
                Finding(
                    id="static-pod.invalid-manifest",
                    severity=Severity.ERROR,
                    subject=f"{node.name}:{path}",
                    summary=f"{node.name}: invalid static pod manifest {path}",
                    evidence=f"{path}: {error}",
                    next=(
                        "The kubelet cannot run it. Fix it from a backup (a manifests-* "
                        "directory, another node's copy with its addresses changed) or "
                        "regenerate it."
                    ),
                    command=command,
                )
            )
    return findings


def component_images(snapshot: Snapshot) -> dict[str, dict[str, list[str]]]:
    """component -> image -> the nodes whose manifest runs it (the image-skew finding and
    preflight's version check read the same map)."""
    images: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for node in reachable_nodes(snapshot):
        for pod in node.static_pods:
            if pod.state == "present" and pod.image:
                images[pod.component][pod.image].append(node.name)
    return images


@rule(
    finding(
        "static-pod.image-skew",
        Severity.WARNING,
        "one component runs different images across control-plane nodes",
        f"{CATALOG} control plane",
    )
)
def image_skew_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    images = component_images(snapshot)
    findings = []
    for component, by_image in sorted(images.items()):
        if len(by_image) < 2:
            continue
        evidence = "; ".join(
            f"{', '.join(names)}: {image}" for image, names in sorted(by_image.items())
        )
        findings.append(
            Finding(
                id="static-pod.image-skew",
                severity=Severity.WARNING,
                subject=component,
                summary=f"{component} runs different images across control-plane nodes",
                evidence=evidence,
                next=(
                    "Finish the upgrade on the lagging nodes, one node at a time "
                    "(`kubeadm upgrade node`), or align the image in their manifests."
                ),
                command="kubeadm upgrade node",
            )
        )
    return findings


def certificate_problems(
    cert: Certificate,
    node: NodeState,
    now: dt.datetime,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> list[tuple[str, Severity, str]]:
    """(finding id, severity, evidence) for every problem of one certificate, worst first.

    Shared by the certificate rule and the views that rank certificates (the certificates
    pane, the JSON report), so they call a certificate what its finding calls it."""
    problems: list[tuple[str, Severity, str]] = []
    if cert.error == DENIED:  # unknown, not broken: node.permission-denied says so
        return []
    if cert.error:
        return [("cert.unreadable", Severity.ERROR, cert.error)]
    days = cert.days_left(now)
    if days is not None and days < 0:
        problems.append(
            (
                "cert.expired",
                Severity.CRITICAL,
                f"expired {_date(cert.not_after)} ({-days:.0f} days ago)",
            )
        )
    elif days is not None and days < thresholds.cert_expiring_days:
        severity = (
            Severity.ERROR if days < thresholds.cert_expiring_error_days else Severity.WARNING
        )
        problems.append(
            ("cert.expiring", severity, f"expires {_date(cert.not_after)}: {days:.0f} days left")
        )
    if cert.not_before is not None and cert.not_before > now:
        skew = (
            f"; node clock offset {node.clock_offset:+.1f} s"
            if node.clock_offset is not None
            else ""
        )
        problems.append(
            (
                "cert.not-yet-valid",
                Severity.ERROR,
                f"valid only from {_date(cert.not_before)}{skew}",
            )
        )
    missing = missing_node_names(cert, node)
    if missing:
        problems.append(
            (
                "cert.san-missing-node-address",
                Severity.CRITICAL,
                f"SANs {', '.join(cert.sans) or 'none'} lack this node's {', '.join(missing)} "
                f"(CN {cert.subject}): copied from another node?",
            )
        )
    if cert.signed_by_ca is False:
        problems.append(
            (
                "cert.wrong-issuer",
                Severity.ERROR,
                f"issued by {cert.issuer!r}, not signed by {cert.ca_path}",
            )
        )
    return sorted(problems, key=lambda p: -p[1])


def missing_node_names(cert: Certificate, node: NodeState) -> list[str]:
    """The node's hostname / address absent from a serving certificate's SANs."""
    if cert.path not in SERVING_CERTS or cert.error:
        return []
    sans = {s.lower() for s in cert.sans}
    missing = []
    if node.hostname and node.hostname.lower() not in sans:
        missing.append(f"hostname {node.hostname}")
    if node.addresses and not sans & set(node.addresses):
        missing.append(f"address {node.addresses[0]}")
    return missing


@rule(
    finding(
        "cert.expired",
        Severity.CRITICAL,
        "a certificate's not_after is past",
        f"{NETWORK_CERTS} §2.1, §2.2",
    ),
    finding(
        "cert.expiring",
        (Severity.WARNING, Severity.ERROR),
        "fewer than cert_expiring_days left (error under cert_expiring_error_days)",
        f"{NETWORK_CERTS} §2.1, §2.2",
    ),
    finding(
        "cert.not-yet-valid",
        Severity.ERROR,
        "not_before is in the future (often clock skew)",
        f"{CATALOG} certificates",
    ),
    finding(
        "cert.san-missing-node-address",
        Severity.CRITICAL,
        "a serving certificate lacks the node's own IP or hostname: pki/ copied from a peer",
        f"{MOCK} §2.3",
    ),
    finding(
        "cert.wrong-issuer",
        Severity.ERROR,
        "a leaf is not signed by the CA next to it",
        f"{CATALOG} certificates",
    ),
    finding(
        "cert.unreadable",
        Severity.ERROR,
        "a file in pki/ that is not a parseable certificate",
        f"{CATALOG} certificates",
    ),
)
def certificate_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    findings = []
    for node in reachable_nodes(snapshot):
        for cert in node.certificates:
            for finding_id, severity, evidence in certificate_problems(
                cert, node, ctx.now, ctx.thresholds
            ):
                findings.append(_certificate_finding(finding_id, severity, evidence, cert, node))
    return findings


def _certificate_finding(
    finding_id: str, severity: Severity, evidence: str, cert: Certificate, node: NodeState
) -> Finding:
    renew = RENEW_NAMES.get(cert.name)
    if finding_id == "cert.san-missing-node-address":
        phase = REISSUE_PHASES[cert.path]
        stem = cert.path.removesuffix(".crt")
        next_step = (
            "This node serves a certificate made for another node (runbook §2.3: pki/ copied "
            "from a peer). `kubeadm certs renew` keeps the wrong SANs: move the pair away and "
            "re-issue it on this node."
        )
        command = (
            f"mkdir -p /root/pki-copied && mv {stem}.crt {stem}.key /root/pki-copied/ && "
            f"kubeadm init phase certs {phase}"
        )
    elif finding_id == "cert.not-yet-valid":
        next_step = "Check the node's clock (NTP) before anything else; re-issue only if the clock is right."
        command = "timedatectl status"
    elif cert.is_ca:
        next_step = (
            "kubeadm does not renew CAs: plan a CA rotation "
            "(kubernetes.io: manual rotation of CA certificates)."
        )
        command = CHECK_EXPIRATION
    elif cert.name == "kubelet.conf":
        next_step = (
            "The kubelet's client certificate: let it rotate (rotateCertificates) or regenerate "
            "kubelet.conf on this node; never copy another node's."
        )
        command = "kubeadm init phase kubeconfig kubelet"
    elif renew:
        users = [f"{node.name}/{c}" for c in CERTIFICATE_USERS.get(cert.name, ())]
        restart = " and ".join(f"`kcockpit act restart-static-pod {u}`" for u in users)
        next_step = (
            f"Renew it on {node.name}, then restart the static pods that use it "
            f"({restart or 'move their manifests out and back'}: out past the kubelet's "
            "file-check period and back)."
        )
        command = f"kubeadm certs renew {renew}"
    else:
        next_step = (
            f"Inspect it (`openssl x509 -in {cert.path} -noout -text`) and restore or re-issue it."
        )
        command = CHECK_EXPIRATION
    if finding_id == "cert.unreadable":
        next_step = "Not a readable certificate: restore it from a backup (pki-* directory) " + (
            f"or re-issue it (`kubeadm certs renew {renew}`)." if renew else "or re-issue it."
        )
    return Finding(
        id=finding_id,
        severity=severity,
        subject=f"{node.name}:{cert.name}",
        summary=f"{node.name}: {cert.name}: {finding_id.removeprefix('cert.').replace('-', ' ')}",
        evidence=evidence,
        next=next_step,
        command=command,
    )


@rule(
    finding(
        "cni.invalid-config",
        Severity.ERROR,
        "a CNI config that is unparseable JSON or names no plugin type",
        f"{CATALOG} CNI",
    ),
    finding(
        "cni.config-missing",
        Severity.CRITICAL,
        "no CNI config on a node: new pods get no network",
        f"{CATALOG} CNI",
    ),
    finding(
        "cni.multiple-configs",
        Severity.ERROR,
        "more than one primary CNI config: the kubelet uses the first, the others fight it",
        f"{MOCK} §3.3",
    ),
)
def cni_rules(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    findings = []
    for node in reachable_nodes(snapshot):
        cni = node.cni
        for file in cni.files:
            path = f"{CNI_DIR}/{file.name}"
            if file.is_config and not file.valid:
                findings.append(
                    Finding(
                        id="cni.invalid-config",
                        severity=Severity.ERROR,
                        subject=f"{node.name}:{CNI_DIR}/{file.name}",
                        summary=f"{node.name}: invalid CNI config {file.name}",
                        evidence=f"{CNI_DIR}/{file.name}: {file.error or 'no plugin type'}",
                        next=(
                            "The runtime skips it (or fails pod sandboxes): check it with "
                            f"`{command_line('python3', '-m', 'json.tool', path)}`, then fix or "
                            "remove it."
                        ),
                        command=command_line("rm", path),
                    )
                )
        primaries = cni.primaries
        if not primaries:
            findings.append(
                Finding(
                    id="cni.config-missing",
                    severity=Severity.CRITICAL,
                    subject=node.name,
                    summary=f"{node.name}: no CNI network config: new pods get no network",
                    evidence=cni.error or f"no valid .conf/.conflist/.json in {CNI_DIR}",
                    next="Restore the CNI's config (restart its DaemonSet pod on this node, it writes it).",
                    command=f"ls -l {CNI_DIR}",
                )
            )
        elif len(primaries) > 1:
            active, others = primaries[0], primaries[1:]
            removals = [f"{CNI_DIR}/{f.name}" for f in others]
            removals += [
                f"{CNI_DIR}/{f.name}"
                for f in cni.files
                if f.server and any(t in f.name for o in others for t in o.types)
            ]
            findings.append(
                Finding(
                    id="cni.multiple-configs",
                    severity=Severity.ERROR,
                    subject=node.name,
                    summary=f"{node.name}: {len(primaries)} CNI configs; the kubelet uses {active.name}",
                    evidence=f"active: {active.name} ({', '.join(active.types)}); also: "
                    + "; ".join(f"{f.name} ({', '.join(f.types)})" for f in others),
                    next=(
                        "Two CNIs fight over pod IPs and routes (runbook §3.3). Keep the one whose "
                        f"DaemonSet should run; to keep {active.name}, remove the others."
                    ),
                    command=command_line("rm", "-f", *removals),
                )
            )
    return findings


@rule(
    finding(
        "cni.inconsistent-across-nodes",
        Severity.WARNING,
        "nodes have different active CNIs",
        f"{MOCK} §3.3",
    )
)
def cni_consistency_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    by_cni: dict[str, list[str]] = defaultdict(list)
    for node in reachable_nodes(snapshot):
        active = node.cni.active
        if active is not None:
            by_cni[active.types[0]].append(f"{node.name} ({active.name})")
    if len(by_cni) < 2:
        return []
    return [
        Finding(
            id="cni.inconsistent-across-nodes",
            severity=Severity.WARNING,
            subject="cni",
            summary="nodes use different CNIs",
            evidence="; ".join(
                f"{cni}: {', '.join(names)}" for cni, names in sorted(by_cni.items())
            ),
            next="Pods on different nodes cannot reach each other reliably: settle on one CNI.",
            command=f"ls -l {CNI_DIR}",
        )
    ]


@rule(
    finding(
        "node.clock-skew",
        (Severity.WARNING, Severity.ERROR),
        "node clock off by > clock_skew_warning_seconds (error > clock_skew_error_seconds)",
        f"{CATALOG} node",
    )
)
def clock_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    findings = []
    for node in reachable_nodes(snapshot):
        offset = node.clock_offset
        if offset is None or abs(offset) <= ctx.thresholds.clock_skew_warning_seconds:
            continue
        findings.append(
            Finding(
                id="node.clock-skew",
                severity=Severity.ERROR
                if abs(offset) > ctx.thresholds.clock_skew_error_seconds
                else Severity.WARNING,
                subject=node.name,
                summary=f"{node.name}: clock off by {offset:+.1f} s",
                evidence=f"node clock differs from the cockpit's by {offset:+.3f} s",
                next="Fix time sync (chrony/ntpd): certificates and etcd leases depend on it.",
                command="timedatectl status",
            )
        )
    return findings


@rule(
    finding(
        "node.disk-pressure",
        (Severity.WARNING, Severity.ERROR),
        "a filesystem above disk_warning_percent (error above disk_error_percent)",
        f"{ROLLBACK} (image GC removed the apiserver image)",
    )
)
def disk_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    findings = []
    for node in snapshot.nodes:
        for fs in node.filesystems:
            if fs.percent <= ctx.thresholds.disk_warning_percent:
                continue
            severity = (
                Severity.ERROR
                if fs.percent > ctx.thresholds.disk_error_percent
                else Severity.WARNING
            )
            findings.append(
                Finding(
                    "node.disk-pressure",
                    severity,
                    node.name,
                    f"{node.name}: {fs.path} {fs.percent:.0f}% full",
                    evidence=f"{fs.path} on {fs.mount}: {fs.used} of {fs.size} KiB used",
                    next="Free space before the kubelet's image GC deletes control-plane images "
                    "and etcd runs out of room.",
                    command=ssh_line(node.address, "df", "-h", fs.path),
                )
            )
    return findings


@rule(
    finding(
        "static-pod.port-conflict",
        Severity.ERROR,
        "something else holds a control-plane port (e.g. a hostPort 6443 mapping)",
        f"{NETWORK_CERTS} §1.9",
    )
)
def port_conflict_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    """A stranger on a control-plane port (a hostPort 6443 mapping, a stray haproxy): the
    component's static pod then crash-loops with "address already in use"."""
    findings = []
    for node in snapshot.nodes:
        for listener in node.listeners:
            component = CONTROL_PLANE_PORTS.get(listener.port)
            if component is None or not listener.process or listener.held_by(component):
                continue
            findings.append(
                Finding(
                    "static-pod.port-conflict",
                    Severity.ERROR,
                    node.name,
                    f"{node.name}: port {listener.port} ({component}) held by {listener.process}",
                    evidence=f"{listener.address}:{listener.port} listened on by "
                    f"{listener.process} (pid {listener.pid})",
                    next=f"Free the port for {component}: remove the hostPort mapping or stop "
                    f"the process holding it, then let the kubelet restart {component}.",
                    command=ssh_line(
                        node.address, "ss", "-ltnp", "sport", "=", f":{listener.port}"
                    ),
                )
            )
    return findings


def _date(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "?"
