"""Rules over the Kubernetes API's view (snapshot.kube), and where it disagrees with the nodes.

They come from the etcd-rollback runbook (troubleshooting-case-etcd-rollback): after a bad
restore the API answers, but Endpoints are empty, calico-node is not Ready and kube-proxy has
to be recreated; and from the everyday "The connection to the server … was refused". Each rule
names what it saw and the kubectl command an operator would type next, with the cockpit's own
kubeconfig and context so it can be pasted as is.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from cluster.commands import command_line
from cluster.findings.registry import CATALOG, NETWORK_CERTS, ROLLBACK, Context, finding, rule
from cluster.kube.model import KUBE_PROXY, KubeDaemonSet, KubeView
from cluster.model import Finding, Severity, Snapshot

OWN = "kcockpit (not in the catalog)"


def kubectl(view: KubeView, *args: str) -> str:
    """The equivalent kubectl command line, with the kubeconfig and context kcockpit used."""
    flags = []
    if view.kubeconfig:
        flags.append(f"--kubeconfig={view.kubeconfig}")
    if view.context:
        flags.append(f"--context={view.context}")
    return command_line("kubectl", *flags, *args)


def host_port(server: str) -> str:
    parts = urlsplit(server)
    return parts.netloc or server


@rule(
    finding(
        "kube.api-unreachable",
        Severity.CRITICAL,
        "the Kubernetes API refuses or times out",
        f"{CATALOG} node; {NETWORK_CERTS} §1.3",
    )
)
def api_unreachable_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    """kubectl's "The connection to the server … was refused": nothing else can be read."""
    view = snapshot.kube
    if view is None or view.error is None:
        return []
    address = host_port(view.server)
    lowered = view.error.lower()
    if "refused" in lowered:
        summary = f"The connection to the server {address} was refused"
    elif "timed out" in lowered or "timeout" in lowered:
        summary = f"Unable to connect to the server {address}: timed out"
    elif any(word in lowered for word in ("certificate", "x509", "ssl", "tls")):
        summary = f"Unable to connect to the server {address}: TLS verification failed"
    else:
        summary = f"Unable to connect to the server {address}"
    evidence = view.error
    next_step = (
        f"kube-apiserver does not answer on {address}. On that node: is "
        "/etc/kubernetes/manifests/kube-apiserver.yaml there and its container running "
        "(`crictl ps -a --name kube-apiserver`)? It needs etcd: check the etcd quorum "
        "first. A TLS error points at the kubeconfig's CA or the serving certificate's "
        f"SANs (`openssl s_client -connect {address}`)."
    )
    if view.failed_checks:
        evidence += f"; its /readyz?verbose: {', '.join(view.failed_checks)}"
    if any(check.startswith("[-]etcd ") for check in view.failed_checks):
        summary += " (kube-apiserver runs, but fails its etcd readiness check)"
        next_step = (
            "kube-apiserver runs but cannot use etcd, so it serves nothing: restore the etcd "
            "quorum first (the etcd pane: which members are down, and why); the API comes back "
            "by itself once etcd has a leader."
        )
    return [
        Finding(
            id="kube.api-unreachable",
            severity=Severity.CRITICAL,
            subject=address,
            summary=summary,
            evidence=evidence,
            next=next_step,
            command=kubectl(view, "get", "--raw=/readyz?verbose"),
        )
    ]


@rule(
    finding(
        "kube.kubeconfig-invalid",
        Severity.ERROR,
        "the cockpit's kubeconfig/context cannot be used, so the API is not read",
        f"{OWN}: its [kube] config",
    )
)
def kubeconfig_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    view = snapshot.kube
    if view is None or view.config_error is None:
        return []
    return [
        Finding(
            id="kube.kubeconfig-invalid",
            severity=Severity.ERROR,
            subject=view.kubeconfig or "kubeconfig",
            summary="the kubeconfig cannot be used, so the Kubernetes API is not read",
            evidence=view.config_error,
            next=(
                "Fix [kube] kubeconfig/context in the cockpit config (or $KUBECONFIG); on a "
                "control-plane node /etc/kubernetes/admin.conf works when readable."
            ),
            command="kubectl config get-contexts",
        )
    ]


@rule(
    finding(
        "kube.node-not-ready",
        Severity.ERROR,
        "a node's Ready condition is False or Unknown",
        f"{NETWORK_CERTS} §1.4",
    )
)
def node_not_ready_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    view = snapshot.kube
    if view is None:
        return []
    findings = []
    for node in view.nodes or ():
        if node.ready:
            continue
        state = "Unknown" if node.ready is None else "False"
        findings.append(
            Finding(
                id="kube.node-not-ready",
                severity=Severity.ERROR,
                subject=node.name,
                summary=f"node {node.name} is NotReady",
                evidence=f"Ready={state} {node.ready_reason}: {node.ready_message}".strip(": "),
                next=(
                    "Check the node's kubelet (`systemctl status kubelet`, `journalctl -u "
                    "kubelet`) and its network: a missing CNI config makes the kubelet report "
                    "NetworkPluginNotReady."
                ),
                command=kubectl(view, "describe", "node", node.name),
            )
        )
    return findings


@rule(
    finding(
        "static-pod.not-running",
        Severity.ERROR,
        "a control-plane component's mirror pod is missing on one node or not running",
        f"{CATALOG} control plane",
        action="restart-static-pod",
    )
)
def static_pod_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    """A control-plane component whose mirror pod is missing on one node (while the others
    have it) or is not running and ready."""
    view = snapshot.kube
    if view is None or view.pods is None:
        return []
    mirror = view.mirror_pods
    control_plane = {n.name for n in view.nodes or () if n.is_control_plane} or {
        p.node for p in mirror if p.node
    }
    components = sorted({p.component for p in mirror if p.component and p.node in control_plane})
    findings = []
    for node in sorted(control_plane):
        for component in components:
            pod = view.mirror_pod(node, component)
            if pod is not None and pod.running:
                continue
            subject = f"{node}/{component}"
            if pod is None:
                others = sorted(p.node or "?" for p in mirror if p.component == component)
                evidence = (
                    f"no mirror pod for {component} on {node} in the API "
                    f"(there is one on {', '.join(others)})"
                )
                command = kubectl(
                    view, "-n", "kube-system", "get", "pods", "-l", f"component={component}"
                )
            else:
                evidence = (
                    f"{pod.name}: phase {pod.phase}, status {pod.status}, ready {pod.ready}, "
                    f"restarts {pod.restarts}" + (f": {pod.message}" if pod.message else "")
                )
                command = kubectl(view, "-n", "kube-system", "describe", "pod", pod.name)
            findings.append(
                Finding(
                    id="static-pod.not-running",
                    severity=Severity.ERROR,
                    subject=subject,
                    summary=f"{component} on {node} is not running (per the API)",
                    evidence=evidence,
                    next=(
                        f"On {node}: is /etc/kubernetes/manifests/{component}.yaml there (not "
                        "moved to manifests-<date>/)? Is its container running (`crictl ps -a "
                        f"--name {component}`)? Restore the manifest rather than re-creating it."
                    ),
                    command=command,
                    # With its manifest in place on the node, restarting it is the next step.
                    action="restart-static-pod"
                    if manifest_present(snapshot, node, component)
                    else None,
                )
            )
    return findings


def manifest_present(snapshot: Snapshot, node: str, component: str) -> bool:
    """Whether the node's own files show the component's manifest in place."""
    state = snapshot.node(node)
    return bool(
        state and any(p.component == component and p.state == "present" for p in state.static_pods)
    )


def _daemonset_finding(view: KubeView, ds: KubeDaemonSet, finding_id: str, next_: str) -> Finding:
    unready = [p for p in view.daemonset_pods(ds) if not p.running]
    described = "; ".join(
        f"{p.name} on {p.node or '?'}: {p.status}" + (f" ({p.message})" if p.message else "")
        for p in unready
    )
    evidence = (
        f"desired {ds.desired}, ready {ds.ready}, updated {ds.updated}, available {ds.available}"
        + (f"; not ready: {described}" if described else "")
    )
    command = (
        kubectl(view, "-n", ds.namespace, "delete", "pod", unready[0].name)
        if len(unready) == 1
        else kubectl(view, "-n", ds.namespace, "get", "pods", "-o", "wide", "-l", ds.label_selector)
    )
    restartable = len(unready) == 1 and unready[0].node
    return Finding(
        id=finding_id,
        severity=Severity.ERROR,
        subject=ds.name,
        summary=f"DaemonSet {ds.name}: {ds.ready} of {ds.desired} pods ready",
        evidence=evidence,
        next=next_,
        command=command,
        action="restart-ds-pod" if restartable else None,
        action_target=f"{unready[0].node}/{ds.name}" if restartable else None,
    )


@rule(
    finding(
        "cni.daemonset-not-ready",
        Severity.ERROR,
        "the CNI DaemonSet (calico-node, cilium…) has unready pods",
        f"{ROLLBACK} 阶段 3",
        action="restart-ds-pod",
    ),
    finding(
        "kube-proxy.not-ready",
        Severity.ERROR,
        "kube-proxy has unready pods: Services do not reach their pods from those nodes",
        f"{ROLLBACK} 阶段 2",
        action="restart-ds-pod",
    ),
)
def daemonset_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    """Runbook stage 3 (calico-node not Ready) and stage 2 (kube-proxy recreated)."""
    view = snapshot.kube
    if view is None:
        return []
    findings = [
        _daemonset_finding(
            view,
            ds,
            "cni.daemonset-not-ready",
            (
                "Pods on the listed nodes have no working pod network. Check the node's CNI "
                "config and the API address it uses (/etc/cni/net.d/10-calico.conflist, "
                "calico-kubeconfig) and the agent's log (`kubectl -n kube-system logs -l "
                f"{ds.label_selector}`), then restart the agent pod on that node (runbook: "
                f"`kubectl delete pod -n kube-system -l {ds.label_selector}`)."
            ),
        )
        for ds in view.cni_daemonsets
        if not ds.is_ready
    ]
    proxy = view.daemonset(KUBE_PROXY)
    if proxy is not None and not proxy.is_ready:
        findings.append(
            _daemonset_finding(
                view,
                proxy,
                "kube-proxy.not-ready",
                (
                    "Services do not reach their pods from the listed nodes (iptables/IPVS rules "
                    "missing: `iptables-save | grep KUBE`, `ipvsadm -L -n`). Restart the "
                    f"kube-proxy pod on that node (runbook: `kubectl delete pod -n kube-system "
                    f"-l {proxy.label_selector}`)."
                ),
            )
        )
    return findings


@rule(
    finding(
        "kube.endpoints-empty",
        Severity.ERROR,
        "the kubernetes Service has no ready endpoints: in-cluster clients cannot reach the API",
        f"{NETWORK_CERTS} §1.2; {ROLLBACK}",
    )
)
def endpoints_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    view = snapshot.kube
    if view is None or view.endpoints is None or view.endpoints.ready:
        return []
    endpoints = view.endpoints
    evidence = (
        "the Endpoints object default/kubernetes does not exist"
        if not endpoints.exists
        else "no ready addresses"
        + (f" (not ready: {', '.join(endpoints.not_ready)})" if endpoints.not_ready else "")
    )
    return [
        Finding(
            id="kube.endpoints-empty",
            severity=Severity.ERROR,
            subject="default/kubernetes",
            summary="the kubernetes Service has no endpoints: in-cluster clients cannot reach the API",
            evidence=evidence,
            next=(
                "calico-node, kube-proxy and controllers reach the API through this Service "
                "(the runbook's `dial tcp 10.96.0.1:443: i/o timeout`). kube-apiserver "
                "maintains these endpoints itself: restart kube-apiserver, and after an etcd "
                "restore recreate kube-proxy and CNI pods (runbook troubleshooting-case-etcd-"
                "rollback)."
            ),
            command=kubectl(view, "get", "endpoints", "-n", "default", "kubernetes"),
        )
    ]


@rule(
    finding(
        "kube.rbac-denied",
        Severity.WARNING,
        "the API denied a read the cockpit needs (403): that part of the view is missing",
        f"{OWN}: its own API reads",
    ),
    finding(
        "kube.read-failed",
        Severity.WARNING,
        "the API answered a read with an error other than 403",
        f"{OWN}: its own API reads",
    ),
)
def read_error_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    """A 403 names the verb and resource the cockpit needed; other API errors say what failed."""
    view = snapshot.kube
    if view is None:
        return []
    findings = []
    for error in view.read_errors:
        namespace = ["-n", error.namespace] if error.namespace else []
        if error.status == 403:
            findings.append(
                Finding(
                    id="kube.rbac-denied",
                    severity=Severity.WARNING,
                    subject=error.request,
                    summary=f"the API denied {error.request} to {view.user or 'this user'}",
                    evidence=error.message,
                    next=(
                        "The cockpit cannot see this part of the cluster. Grant its user "
                        f"{error.verb} on {error.resource} (e.g. bind the `view` ClusterRole and "
                        "allow listing nodes), or point [kube] at a kubeconfig that has it."
                    ),
                    command=kubectl(view, "auth", "can-i", error.verb, error.resource, *namespace),
                )
            )
        else:
            findings.append(
                Finding(
                    id="kube.read-failed",
                    severity=Severity.WARNING,
                    subject=error.request,
                    summary=f"the API answered {error.request} with an error",
                    evidence=f"{error.status} {error.reason}: {error.message}",
                    next="Check kube-apiserver's log; the rest of the view is still current.",
                    command=kubectl(view, "get", error.resource, *namespace),
                )
            )
    return findings


@rule(
    finding(
        "static-pod.api-disagrees",
        Severity.WARNING,
        "a static pod's state on its node and its mirror pod in the API disagree",
        f"{OWN}: the node's files against the API",
    )
)
def api_disagreement_rule(snapshot: Snapshot, ctx: Context) -> list[Finding]:
    """The node's own evidence (its manifest and process) against the API's mirror pod."""
    view = snapshot.kube
    if view is None or not view.reachable or view.pods is None:
        return []
    in_api = {n.name for n in view.nodes or ()}
    findings = []
    for node in snapshot.nodes:
        if not node.reachable or node.name not in in_api:
            continue
        for pod in node.static_pods:
            mirror = view.mirror_pod(node.name, pod.component)
            if pod.running is None or pod.running == (mirror is not None and mirror.running):
                continue
            api = f"{mirror.name} {mirror.status}" if mirror else "no mirror pod"
            on_node = f"--field-selector=spec.nodeName={node.name}"
            findings.append(
                Finding(
                    id="static-pod.api-disagrees",
                    severity=Severity.WARNING,
                    subject=f"{node.name}/{pod.component}",
                    summary=f"{pod.component} on {node.name}: the node and the API disagree",
                    evidence=(
                        f"on the node: manifest {pod.state}, "
                        f"{'running' if pod.running else 'not running'} ({pod.evidence}); "
                        f"per the API: {api}"
                    ),
                    next=(
                        "The kubelet mirrors every static pod it runs into the API; a lasting "
                        "difference means it cannot update the API (its kubeconfig or client "
                        f"certificate) or is stuck: check `journalctl -u kubelet` on {node.name}."
                    ),
                    command=kubectl(
                        view, "-n", "kube-system", "get", "pods", "-o", "wide", on_node
                    ),
                )
            )
    return findings
