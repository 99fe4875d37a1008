"""Restarting a DaemonSet's pod on one node (calico-node, cilium, kube-proxy), as the
etcd-rollback runbook does in its stages 2 and 3: delete the pod, let its DaemonSet re-create it.

Target `cp-2/calico-node`: exactly the one pod of that DaemonSet on that node is deleted, never a
label-selected batch; verify waits for a replacement (another pod UID) that is Running and Ready.
"""

from __future__ import annotations

from actions.base import Action, ActionContext, Plan, QuorumView, Verdict, Verification
from actions.specs import RESTART_DS_POD
from cluster.findings.kube import kubectl
from cluster.kube.model import KubePod, KubeView
from cluster.model import Snapshot

NAMESPACE = "kube-system"


class RestartDaemonSetPod(Action):
    spec = RESTART_DS_POD
    verify_timeout = 30.0

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.node, _, self.daemonset = target.partition("/")
        self.deleted_uid: str | None = None

    def pod(self, view: KubeView) -> KubePod | None:
        daemonset = view.daemonset(self.daemonset, NAMESPACE)
        if daemonset is None:
            return None
        return next((p for p in view.daemonset_pods(daemonset) if p.node == self.node), None)

    def guard(self, snapshot: Snapshot) -> Verdict:
        view = snapshot.kube
        if view is None:
            return Verdict.refused("no Kubernetes API configured ([kube] in the config)")
        if not view.reachable:
            return Verdict.refused(
                f"the Kubernetes API cannot be used: {view.config_error or view.error}"
            )
        if not self.daemonset:
            return Verdict.refused(f"name the pod as NODE/DAEMONSET, e.g. {self.node}/calico-node")
        if view.daemonset(self.daemonset, NAMESPACE) is None:
            names = ", ".join(d.name for d in view.daemonsets or ()) or "none"
            return Verdict.refused(
                f"no DaemonSet {self.daemonset!r} in {NAMESPACE} (DaemonSets: {names})"
            )
        pod = self.pod(view)
        if pod is None:
            return Verdict.refused(f"DaemonSet {self.daemonset} has no pod on node {self.node}")
        state = "not ready" if not pod.running else "ready"
        return Verdict.allowed(
            f"deletes {pod.name} ({state}) only; the DaemonSet re-creates it on {self.node}; "
            "pods on that node lose this agent for a few seconds"
        )

    def plan(self, snapshot: Snapshot, ctx: ActionContext) -> Plan:
        view = snapshot.kube
        assert view is not None
        pod = self.pod(view)
        assert pod is not None
        quorum = QuorumView.of(snapshot.etcd)
        return Plan(
            summary=f"Restart {self.daemonset} on {self.node}: delete pod {pod.name}",
            steps=(
                f"Delete pod {NAMESPACE}/{pod.name} (one DELETE, no retry)",
                f"Wait for the DaemonSet to run a new, Ready {self.daemonset} pod on {self.node}",
            ),
            commands=(
                kubectl(view, "-n", NAMESPACE, "delete", "pod", pod.name),
                kubectl(
                    view,
                    "-n",
                    NAMESPACE,
                    "get",
                    "pods",
                    "-o",
                    "wide",
                    "--field-selector",
                    f"spec.nodeName={self.node}",
                ),
            ),
            before=quorum,
            after=quorum,
        )

    async def execute(self, snapshot: Snapshot, ctx: ActionContext) -> str:
        assert snapshot.kube is not None and ctx.kube is not None
        seen = self.pod(snapshot.kube)
        assert seen is not None
        current = await ctx.kube.daemonset_pods_on_node(self.daemonset, self.node, NAMESPACE)
        if seen.uid not in {p.uid for p in current}:
            raise RuntimeError(f"{seen.name} is already gone from {self.node}: nothing deleted")
        await ctx.kube.delete_pod(NAMESPACE, seen.name)
        self.deleted_uid = seen.uid
        return f"deleted {NAMESPACE}/{seen.name} on {self.node}"

    async def verify(self, snapshot: Snapshot, ctx: ActionContext) -> Verification:
        def replaced(s: Snapshot) -> bool:
            pod = self.pod(s.kube) if s.kube is not None else None
            return bool(pod and pod.uid != self.deleted_uid and pod.running)

        return await ctx.until(
            replaced, self.verify_timeout, f"a new Ready {self.daemonset} pod on {self.node}"
        )


KUBE_ACTIONS: tuple[type[Action], ...] = (RestartDaemonSetPod,)
