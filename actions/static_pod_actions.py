"""Stopping, starting and restarting static pods by moving manifests, the way the runbooks do it.

Target `cp-2` moves the whole manifests directory (`mv manifests manifests-YYYYMMDD`, runbook
§2.1): every control-plane component of that node stops. Target `cp-2/etcd` moves one manifest
up next to the directory (`mv manifests/etcd.yaml etcd.yaml`). Start puts back exactly what the
node's files show was moved. Stopping a node's etcd lowers fault tolerance, so the guard asks
for the node's name, and refuses outright when it would cost quorum unless overridden.

Restart (`cp-2/etcd` only) is the two moves with the waits operators skip: out, until the
component has really stopped (its process and socket gone where the node's evidence can tell,
its etcd member silent, and, where the API showed its mirror pod, that gone, unless the node's
kubelet reports through the very component stopped: etcd, kube-apiserver) and at least the
kubelet's file-check period has passed (else the kubelet may never notice the file was away),
back, until it runs again (and its mirror pod is Ready). It is never `kubectl delete` of the mirror pod, which restarts
nothing. It refuses what no restart may do: take etcd below quorum, or stop the last running
kube-apiserver.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time

from actions.base import Action, ActionContext, Plan, QuorumView, Verdict, Verification
from actions.specs import RESTART_STATIC_POD, START_STATIC_POD, STOP_STATIC_POD
from cluster.commands import command_line, ssh_line
from cluster.kube.model import KubePod
from cluster.model import EtcdMember, Snapshot
from cluster.nodes.model import KUBERNETES_DIR, MANIFESTS_DIR, NodeState, StaticPod


class StaticPodAction(Action):
    """Shared parsing of `node[/component]` and lookups in the snapshot."""

    verify_timeout = 30.0

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.node_name, _, component = target.partition("/")
        self.component = component or None

    def node(self, snapshot: Snapshot) -> NodeState | None:
        return next((n for n in snapshot.nodes if n.name == self.node_name), None)

    def pods(self, node: NodeState) -> list[StaticPod]:
        return [p for p in node.static_pods if self.component in (None, p.component)]

    def touches_etcd(self) -> bool:
        return self.component in (None, "etcd")

    def etcd_member(self, snapshot: Snapshot) -> EtcdMember | None:
        node = self.node(snapshot)
        for member in snapshot.etcd.members:
            hosts = {url.split("//")[-1].rsplit(":", 1)[0] for url in member.peer_urls}
            if member.name == self.node_name or (node and node.address in hosts):
                return member
        return None

    def node_problem(self, snapshot: Snapshot) -> str | None:
        node = self.node(snapshot)
        if node is None:
            known = ", ".join(n.name for n in snapshot.nodes) or "none configured"
            return f"no node {self.node_name!r} (nodes: {known})"
        if not node.reachable:
            return f"{node.name} cannot be reached: {node.error}"
        if self.component and not self.pods(node):
            return f"{node.name} has no static pod {self.component!r}"
        if any(p.state == "denied" for p in self.pods(node)):
            return (
                f"{node.name}: {MANIFESTS_DIR} may not be read by the SSH user (permission "
                "denied): its manifests are unknown; set sudo for the node"
            )
        return None

    async def move(self, ctx: ActionContext, source: str, destination: str) -> None:
        """One rename on the node, never over something already there."""
        assert ctx.nodes is not None
        access = await ctx.nodes.get(self.node_name)
        if await access.exists(destination):
            raise RuntimeError(
                f"{destination} already exists on {self.node_name}: not overwriting it"
            )
        await access.rename(source, destination)

    async def until_running(
        self, snapshot: Snapshot, ctx: ActionContext, running: bool
    ) -> Verification:
        """Re-reads until the manifests are (not) in place and the node's etcd member agrees."""
        member = self.etcd_member(snapshot) if self.touches_etcd() else None

        def reached(s: Snapshot) -> bool:
            node = self.node(s)
            if not node or any((p.state == "present") != running for p in self.pods(node)):
                return False
            if member is None:
                return True
            now = s.etcd.member(member.ref)
            return (
                (now is not None and now.healthy) if running else (now is None or not now.reachable)
            )

        what = f"{self.target} {'running again' if running else 'stopped'}"
        return await ctx.until(reached, self.verify_timeout, what)

    def stops_healthy_voter(self, snapshot: Snapshot) -> bool:
        """Whether this stops (for a while) an etcd member that counts towards quorum now."""
        member = self.etcd_member(snapshot)
        return bool(self.touches_etcd() and member and member.healthy and not member.is_learner)

    def tolerance_drop(self, snapshot: Snapshot, how_long: str = "") -> Verdict:
        """The node's name to type: stopping its etcd costs one member of fault tolerance."""
        before, after = snapshot.etcd.tolerance, self.etcd_gone(snapshot).tolerance
        return Verdict.confirm(
            self.node_name, f"fault tolerance drops from {before} to {after}{how_long}"
        )

    def etcd_gone(self, snapshot: Snapshot) -> QuorumView:
        """Quorum after this node's etcd member stops (unchanged when it is already down)."""
        member = self.etcd_member(snapshot)
        cluster = snapshot.etcd
        healthy = cluster.healthy_voting
        if member and member.healthy and not member.is_learner and self.touches_etcd():
            healthy -= 1
        return QuorumView.after(len(cluster.voting), healthy)


class StopStaticPod(StaticPodAction):
    spec = STOP_STATIC_POD

    def guard(self, snapshot: Snapshot) -> Verdict:
        if problem := self.node_problem(snapshot):
            return Verdict.refused(problem)
        node = self.node(snapshot)
        assert node
        running = [p for p in self.pods(node) if p.state == "present"]
        if not running or (self.component is None and not node.manifests_dir):
            return Verdict.refused(
                f"nothing to stop: no manifest of {self.target} in {MANIFESTS_DIR}"
            )
        cluster = snapshot.etcd
        if not self.stops_healthy_voter(snapshot):
            return Verdict.allowed("does not stop a healthy voting etcd member")
        if cluster.healthy_voting - 1 < cluster.quorum:
            return Verdict.confirm(
                f"override {self.node_name}",
                f"stopping {self.node_name}'s etcd loses quorum ({cluster.healthy_voting} healthy, "
                f"quorum {cluster.quorum}): the cluster becomes read-only",
            )
        return self.tolerance_drop(snapshot)

    def moves(self) -> tuple[str, str]:
        if self.component is None:
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
            return MANIFESTS_DIR, f"{KUBERNETES_DIR}/manifests-{stamp}"
        file = f"{self.component}.yaml"
        return f"{MANIFESTS_DIR}/{file}", f"{KUBERNETES_DIR}/{file}"

    def plan(self, snapshot: Snapshot, ctx: ActionContext) -> Plan:
        source, destination = self.moves()
        what = "every control-plane static pod" if self.component is None else self.component
        return Plan(
            summary=f"Stop {what} on {self.node_name} by moving its manifest(s) out of the kubelet's reach",
            steps=(
                f"On {self.node_name}: mv {source} {destination}",
                "The kubelet stops the pod(s)",
            ),
            commands=(ssh_line(self.node_name, "sudo", "mv", source, destination),),
            before=QuorumView.of(snapshot.etcd),
            after=self.etcd_gone(snapshot),
            follow_up=(f"to start again: kcockpit act start-static-pod {self.target}",),
        )

    async def execute(self, snapshot: Snapshot, ctx: ActionContext) -> str:
        source, destination = self.moves()
        await self.move(ctx, source, destination)
        return f"moved {source} to {destination} on {self.node_name}"

    async def verify(self, snapshot: Snapshot, ctx: ActionContext) -> Verification:
        return await self.until_running(snapshot, ctx, running=False)


class StartStaticPod(StaticPodAction):
    spec = START_STATIC_POD

    def moved_back(self, snapshot: Snapshot) -> tuple[str, str] | None:
        """(where it is now, where it goes back) for exactly what was moved away."""
        node = self.node(snapshot)
        moved = [p for p in self.pods(node) if p.state == "moved" and p.moved_to] if node else []
        if not moved or not node:
            return None
        if self.component is None and not node.manifests_dir:
            parent = moved[0].moved_to.rsplit("/", 1)[0]  # type: ignore[union-attr]
            if parent != KUBERNETES_DIR:
                return parent, MANIFESTS_DIR
        if self.component is None:
            return None
        where = moved[0].moved_to or ""
        return where, f"{MANIFESTS_DIR}/{where.rsplit('/', 1)[-1]}"

    def guard(self, snapshot: Snapshot) -> Verdict:
        if problem := self.node_problem(snapshot):
            return Verdict.refused(problem)
        node = self.node(snapshot)
        assert node
        if self.moved_back(snapshot) is None:
            present = all(p.state == "present" for p in self.pods(node))
            if present:
                return Verdict.refused(f"{self.target} is not stopped: its manifest is in place")
            return Verdict.refused(
                f"cannot tell exactly what was moved for {self.target}: restore by hand "
                f"(e.g. rsync -av {KUBERNETES_DIR}/manifests-YYYYMMDD/ {MANIFESTS_DIR}/)"
            )
        return Verdict.allowed("puts back exactly the manifest(s) that were moved away")

    def plan(self, snapshot: Snapshot, ctx: ActionContext) -> Plan:
        source, destination = self.moved_back(snapshot) or ("?", "?")
        member = self.etcd_member(snapshot) if self.touches_etcd() else None
        before = QuorumView.of(snapshot.etcd)
        healthy = snapshot.etcd.healthy_voting + (1 if member and not member.healthy else 0)
        return Plan(
            summary=f"Start {self.target} again by moving its manifest(s) back",
            steps=(
                f"On {self.node_name}: mv {source} {destination}",
                "The kubelet starts the pod(s)",
            ),
            commands=(ssh_line(self.node_name, "sudo", "mv", source, destination),),
            before=before,
            after=QuorumView.after(before.voting, healthy),
        )

    async def execute(self, snapshot: Snapshot, ctx: ActionContext) -> str:
        move = self.moved_back(snapshot)
        assert move
        source, destination = move
        await self.move(ctx, source, destination)
        return f"moved {source} back to {destination} on {self.node_name}"

    async def verify(self, snapshot: Snapshot, ctx: ActionContext) -> Verification:
        return await self.until_running(snapshot, ctx, running=True)


class RestartStaticPod(StaticPodAction):
    spec = RESTART_STATIC_POD
    deadline = 300.0  # the whole restart; each wait has its own, shorter one
    phase_timeout = 90.0  # until stopped, and until running again

    def guard(self, snapshot: Snapshot) -> Verdict:
        if self.component is None:
            return Verdict.refused(f"name one component: {self.node_name}/etcd, …")
        if problem := self.node_problem(snapshot):
            return Verdict.refused(problem)
        node = self.node(snapshot)
        assert node
        pod = self.pods(node)[0]
        if pod.state != "present":
            return Verdict.refused(
                f"{self.target}'s manifest is not in place ({pod.state}): "
                f"start it instead (start-static-pod {self.target})"
            )
        if self.component == "kube-apiserver" and pod.running is not False:
            others = [
                n.name
                for n in snapshot.nodes
                if n.name != node.name
                and any(p.component == "kube-apiserver" and p.running for p in n.static_pods)
            ]
            if not others:
                return Verdict.refused(
                    f"{node.name}'s is the last running kube-apiserver: the API would be down "
                    "until it is back"
                )
        cluster = snapshot.etcd
        if not self.stops_healthy_voter(snapshot):
            return Verdict.allowed("does not stop a healthy voting etcd member")
        if cluster.healthy_voting - 1 < cluster.quorum:
            return Verdict.refused(
                f"restarting {self.node_name}'s etcd would take etcd below quorum "
                f"({cluster.healthy_voting} healthy, quorum {cluster.quorum}): bring the other "
                "members back first"
            )
        return self.tolerance_drop(snapshot, " until it is back")

    def paths(self) -> tuple[str, str]:
        file = f"{self.component}.yaml"
        return f"{MANIFESTS_DIR}/{file}", f"{KUBERNETES_DIR}/{file}"

    def plan(self, snapshot: Snapshot, ctx: ActionContext) -> Plan:
        inside, outside = self.paths()
        period = self.thresholds.static_pod_file_check_seconds
        mirror = (
            " and its mirror pod gone"
            if snapshot.kube is not None and self.component not in REPORTED_THROUGH
            else ""
        )
        ready = " and its mirror pod Ready" if snapshot.kube is not None else ""
        return Plan(
            summary=f"Restart {self.component} on {self.node_name} by moving its manifest out and back",
            steps=(
                f"On {self.node_name}: mv {inside} {outside}",
                f"Wait until {self.component} has stopped (process and socket gone{mirror})",
                f"Keep it out at least {period:g} s (the kubelet's file-check period)",
                f"mv {outside} {inside}",
                f"Wait until it runs again{ready}",
            ),
            commands=(
                ssh_line(self.node_name, "sudo", "mv", inside, outside),
                command_line("sleep", f"{period:g}"),
                ssh_line(self.node_name, "sudo", "mv", outside, inside),
            ),
            before=QuorumView.of(snapshot.etcd),
            after=QuorumView.of(snapshot.etcd),
        )

    def mirror(self, snapshot: Snapshot) -> KubePod | None:
        """The component's mirror pod on this node, where the API was read."""
        node, kube = self.node(snapshot), snapshot.kube
        if node is None or kube is None or not kube.reachable:
            return None
        component = self.component or ""
        return kube.mirror_pod(node.name, component) or (
            kube.mirror_pod(node.hostname, component) if node.hostname else None
        )

    def running(
        self, snapshot: Snapshot, member: EtcdMember | None, mirrored: bool, running: bool
    ) -> bool:
        """The node's evidence (where it can tell), its etcd member, and the mirror pod (when
        the API showed one before the restart, and answers now) all say it runs, or all say
        it is gone."""
        node = self.node(snapshot)
        pod = self.pods(node)[0] if node else None
        if pod is None or (pod.state == "present") != running:
            return False
        if pod.running is not None and pod.running is not running:
            return False
        if member is not None:
            now = snapshot.etcd.member(member.ref)
            if (now is not None and now.healthy) != running:
                return False
        kube = snapshot.kube
        if not mirrored or kube is None or not kube.reachable or kube.pods is None:
            return True  # no mirror pod to expect: the node's own evidence is the answer
        if not running and self.component in REPORTED_THROUGH:
            return True  # its mirror pod may stay: the kubelet's report of it needs it
        mirror = self.mirror(snapshot)
        return (mirror is not None and mirror.ready) if running else mirror is None

    async def execute(self, snapshot: Snapshot, ctx: ActionContext) -> str:
        inside, outside = self.paths()
        member = self.etcd_member(snapshot) if self.touches_etcd() else None
        mirrored = self.mirror(snapshot) is not None
        await self.move(ctx, inside, outside)
        moved_at = time.monotonic()
        ctx.step(f"moved {inside} to {outside} on {self.node_name}", phase="moved out")
        try:
            stopped = await ctx.until(
                lambda s: self.running(s, member, mirrored, running=False),
                self.phase_timeout,
                f"{self.target} stopped",
            )
            if not stopped.verified:
                raise RuntimeError(stopped.message)
            ctx.step(f"{self.target} has stopped", phase="stopped")
            period = self.thresholds.static_pod_file_check_seconds
            await asyncio.sleep(max(0.0, moved_at + period - time.monotonic()))
            ctx.step(
                f"kept out {time.monotonic() - moved_at:.0f} s (file-check period {period:g} s)"
            )
        except Exception as exc:  # never leave the manifest out: put it back, then say why
            await self.move(ctx, outside, inside)
            ctx.step(f"moved {outside} back after a failure: {exc}", phase="moved back")
            raise RuntimeError(f"{exc}; the manifest was moved back") from None
        await self.move(ctx, outside, inside)
        ctx.step(f"moved {outside} back to {inside}", phase="moved back")
        started = await ctx.until(
            lambda s: self.running(s, member, mirrored, running=True),
            self.phase_timeout,
            f"{self.target} running again",
        )
        if not started.verified:
            raise RuntimeError(f"manifest back in place, but {started.message}")
        ctx.step(f"{self.target} runs again", phase="running")
        return f"{self.target} restarted"

    async def verify(self, snapshot: Snapshot, ctx: ActionContext) -> Verification:
        member = self.etcd_member(snapshot) if self.touches_etcd() else None
        mirrored = self.mirror(snapshot) is not None
        return await ctx.until(
            lambda s: self.running(s, member, mirrored, running=True),
            self.verify_timeout,
            f"{self.target} running",
        )


# A kubelet reports to its own node's API server (kubeadm's local mode), which reads its own
# node's etcd member: while either is stopped, the node's mirror pods cannot change, so the
# stopped phase takes the node's evidence and etcd's word, not the mirror pod's going.
REPORTED_THROUGH = frozenset({"etcd", "kube-apiserver"})

STATIC_POD_ACTIONS: tuple[type[StaticPodAction], ...] = (
    StopStaticPod,
    StartStaticPod,
    RestartStaticPod,
)
