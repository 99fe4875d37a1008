"""The etcd actions and their guards (shared/FINDINGS.md, "Guards every action must honour").

Every guard starts from the runbook's hard lesson (§2.4, §2.5): without quorum nothing can be
changed, so membership changes and defragmentation are refused outright; and from §3.2: a dead
member is removed *before* its replacement is added, never the other way round.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from actions.base import Action, ActionContext, Plan, QuorumView, Verdict, Verification
from actions.specs import (
    DEFRAGMENT,
    MEMBER_ADD,
    MEMBER_PROMOTE,
    MEMBER_REMOVE,
    MOVE_LEADER,
    SNAPSHOT_SAVE,
)
from cluster.commands import command_line
from cluster.etcd.client import EtcdError, SnapshotFile
from cluster.findings.etcd import caught_up, etcdctl, fragmented
from cluster.model import EtcdCluster, EtcdMember, Snapshot
from cluster.seams import ProvisionError

BBOLT_MAGIC = 0xED0CDAED
SNAPSHOTS_DIR = "snapshots"  # under the state dir: where snapshot-save writes unless told
T = TypeVar("T")


def quorum_refusal(cluster: EtcdCluster) -> str | None:
    if cluster.error:
        return f"the cluster cannot be read: {cluster.error}"
    if not cluster.has_quorum:
        return (
            f"quorum lost ({cluster.healthy_voting} of {len(cluster.voting)} voting members "
            f"healthy, quorum {cluster.quorum}): etcd cannot commit membership changes; bring "
            "members back first (runbook §2.4, §2.5)"
        )
    return None


RECONFIG_HINT = (
    "etcd refuses membership changes until every member has been connected for about 5 s "
    "(after a leader change or a member restart): wait a few seconds and run it again"
)


class EtcdAction(Action):
    """Shared lookups for actions whose target is a registered member."""

    async def reconfigure(self, call: Awaitable[T]) -> T:
        """Sends a membership change; etcd's transient 'unhealthy cluster' refusal is explained."""
        try:
            return await call
        except EtcdError as exc:
            if "unhealthy cluster" in exc.detail:
                raise RuntimeError(f"{exc}. {RECONFIG_HINT}") from None
            raise

    needs_quorum: bool = True

    def guard(self, snapshot: Snapshot) -> Verdict:
        """The checks every member action starts with, then the action's own `check`."""
        target = self.member(snapshot)
        if target is None:
            return self.no_member(snapshot)
        if self.needs_quorum and (problem := quorum_refusal(snapshot.etcd)):
            return Verdict.refused(problem)
        return self.check(snapshot, target)

    def check(self, snapshot: Snapshot, target: EtcdMember) -> Verdict:
        raise NotImplementedError

    def member(self, snapshot: Snapshot) -> EtcdMember | None:
        return snapshot.etcd.member(self.target)

    def no_member(self, snapshot: Snapshot) -> Verdict:
        if snapshot.etcd.error:  # the membership is unknown: say why, not "no such member"
            return Verdict.refused(
                f"cannot tell whether {self.target!r} is a member: {snapshot.etcd.error}"
            )
        names = ", ".join(m.display_name for m in snapshot.etcd.members) or "none"
        return Verdict.refused(f"no etcd member named {self.target!r} (members: {names})")

    def same_quorum(self, snapshot: Snapshot) -> tuple[QuorumView, QuorumView]:
        view = QuorumView.of(snapshot.etcd)
        return view, view

    def any_healthy_endpoint(self, snapshot: Snapshot) -> str:
        leader = snapshot.etcd.leader
        if leader and leader.endpoint:
            return leader.endpoint
        for member in snapshot.etcd.members:
            if member.healthy and member.endpoint:
                return member.endpoint
        raise RuntimeError("no healthy member to send the request to")


class MoveLeader(EtcdAction):
    spec = MOVE_LEADER

    def check(self, snapshot: Snapshot, target: EtcdMember) -> Verdict:
        leader = snapshot.etcd.leader
        reasons = []
        if leader is None:
            reasons.append("there is no leader to hand over from")
        elif leader.id == target.id:
            reasons.append(f"{target.display_name} is already the leader")
        if target.is_learner:
            reasons.append(f"{target.display_name} is a learner: only voting members can lead")
        if not target.healthy:
            reasons.append(f"{target.display_name} is not healthy: {target.error or target.errors}")
        elif leader and not target.is_learner and not caught_up(target, leader, self.thresholds):
            reasons.append(
                f"{target.display_name} is not caught up (applied {target.raft_applied_index}, "
                f"leader at {leader.raft_index})"
            )
        if reasons:
            return Verdict.refused(*reasons)
        return Verdict.allowed(f"{target.display_name} is a healthy, caught-up voting member")

    def plan(self, snapshot: Snapshot, ctx: ActionContext) -> Plan:
        target = self.member(snapshot)
        leader = snapshot.etcd.leader
        assert target and leader
        before, after = self.same_quorum(snapshot)
        return Plan(
            summary=f"Move etcd leadership from {leader.display_name} to {target.display_name}",
            steps=(
                f"Ask the current leader {leader.display_name} to transfer leadership",
                f"{target.display_name} campaigns and becomes leader in a new raft term",
                "Re-read the cluster until it reports the new leader",
            ),
            commands=(
                etcdctl(
                    ctx.config.etcd, "move-leader", target.id_hex, endpoints=[leader.endpoint or ""]
                ),
            ),
            before=before,
            after=after,
        )

    async def execute(self, snapshot: Snapshot, ctx: ActionContext) -> str:
        target = self.member(snapshot)
        leader = snapshot.etcd.leader
        assert target and leader and leader.endpoint
        await ctx.etcd.move_leader(leader.endpoint, target.id)
        return f"leader {leader.display_name} accepted the transfer to {target.display_name}"

    async def verify(self, snapshot: Snapshot, ctx: ActionContext) -> Verification:
        target_id = self.member(snapshot).id  # type: ignore[union-attr]
        return await ctx.until(
            lambda s: s.etcd.leader is not None and s.etcd.leader.id == target_id,
            self.verify_timeout,
            f"{self.target} is the leader",
        )


class MemberRemove(EtcdAction):
    spec = MEMBER_REMOVE

    def check(self, snapshot: Snapshot, target: EtcdMember) -> Verdict:
        cluster = snapshot.etcd
        if target.is_leader:
            return Verdict.refused(
                f"{target.display_name} is the leader: move leadership first "
                f"(kcockpit act move-leader <another member>)"
            )
        if target.is_learner:
            return Verdict.confirm(target.ref, "removing a learner does not change quorum")
        after = self.quorum_after(snapshot)
        if after.voting == 0:
            return Verdict.refused("it is the last voting member")
        healthy_after = cluster.healthy_voting - (1 if target.healthy else 0)
        if healthy_after < after.quorum:
            return Verdict.refused(
                f"after removal {healthy_after} healthy of {after.voting} voting members would "
                f"remain, below the new quorum {after.quorum}"
            )
        if len(cluster.voting) == 2:
            return Verdict.confirm(
                f"override {target.ref}",
                "going from 2 members to 1 leaves no redundancy at all: explicit override needed",
            )
        return Verdict.confirm(target.ref, f"removes {target.display_name} for good")

    def quorum_after(self, snapshot: Snapshot) -> QuorumView:
        cluster = snapshot.etcd
        target = self.member(snapshot)
        assert target
        if target.is_learner:
            return QuorumView.of(cluster)
        healthy = cluster.healthy_voting - (1 if target.healthy else 0)
        return QuorumView.after(len(cluster.voting) - 1, healthy)

    def plan(self, snapshot: Snapshot, ctx: ActionContext) -> Plan:
        target = self.member(snapshot)
        assert target
        return Plan(
            summary=f"Remove etcd member {target.display_name} ({target.id_hex}) from the cluster",
            steps=(
                f"Send MemberRemove for {target.id_hex} to the leader",
                "Re-read the member list until it is gone",
            ),
            commands=(etcdctl(ctx.config.etcd, "member", "remove", target.id_hex),),
            before=QuorumView.of(snapshot.etcd),
            after=self.quorum_after(snapshot),
            follow_up=(
                f"on {target.display_name}: stop its etcd for good "
                "(mv /etc/kubernetes/manifests/etcd.yaml /etc/kubernetes/etcd.yaml.removed) "
                "and clear /var/lib/etcd before it ever rejoins",
            ),
        )

    async def execute(self, snapshot: Snapshot, ctx: ActionContext) -> str:
        target = self.member(snapshot)
        assert target
        await self.reconfigure(
            ctx.etcd.member_remove(self.any_healthy_endpoint(snapshot), target.id)
        )
        return f"member {target.display_name} ({target.id_hex}) removed"

    async def verify(self, snapshot: Snapshot, ctx: ActionContext) -> Verification:
        target_id = self.member(snapshot).id  # type: ignore[union-attr]
        return await ctx.until(
            lambda s: not s.etcd.error and all(m.id != target_id for m in s.etcd.members),
            self.verify_timeout,
            f"{self.target} is gone from the member list",
        )


class MemberAdd(EtcdAction):
    """Adds a member, as a learner unless asked otherwise; where the config brings a node
    provisioner (the lab does, as kubeadm would) it also provisions and starts the node."""

    spec = MEMBER_ADD
    verify_timeout = 30.0

    def __init__(self, target: str, peer_url: str | None = None, voting: bool = False) -> None:
        super().__init__(target)
        self.peer_url = peer_url
        self.voting = voting

    def guard(self, snapshot: Snapshot) -> Verdict:
        cluster = snapshot.etcd
        if problem := quorum_refusal(cluster):
            return Verdict.refused(problem)
        reasons = []
        unhealthy = [m.display_name for m in cluster.members if not m.healthy]
        if unhealthy:
            reasons.append(
                f"registered member(s) not healthy: {', '.join(unhealthy)}. Remove the dead member "
                "before adding its replacement (runbook §3.2: add first, and a failed start "
                "loses quorum for good)"
            )
        if cluster.member(self.target):
            reasons.append(f"a member named {self.target!r} is already registered")
        if (
            not self.peer_url
            or urlsplit(self.peer_url).scheme != "https"
            or not urlsplit(self.peer_url).port
        ):
            reasons.append(
                f"the new member needs an https:// peer URL with a port (got {self.peer_url!r})"
            )
        elif any(self.peer_url in m.peer_urls for m in cluster.members):
            reasons.append(f"peer URL {self.peer_url} is already registered")
        if reasons:
            return Verdict.refused(*reasons)
        if self.voting:
            return Verdict.confirm(
                self.target,
                "a voting member raises the quorum before it has even started: "
                "fault tolerance drops until it is healthy",
            )
        return Verdict.allowed("added as a learner: quorum and fault tolerance do not change")

    def plan(self, snapshot: Snapshot, ctx: ActionContext) -> Plan:
        cluster = snapshot.etcd
        before = QuorumView.of(cluster)
        after = (
            QuorumView.after(len(cluster.voting) + 1, cluster.healthy_voting)
            if self.voting
            else before
        )
        args = ["member", "add", self.target, f"--peer-urls={self.peer_url}"]
        if not self.voting:
            args.append("--learner")
        start = (
            "the node is provisioned (PKI, manifest with --initial-cluster-state=existing) and started"
            if ctx.config.seams.provisioner
            else f"on {self.target}: start etcd with --initial-cluster-state=existing and the printed "
            "--initial-cluster (e.g. kubeadm join --control-plane)"
        )
        return Plan(
            summary=f"Add {self.target} ({self.peer_url}) as a {'voting member' if self.voting else 'learner'}",
            steps=(
                f"Send MemberAdd to the leader ({'voting' if self.voting else 'learner'})",
                start,
            ),
            commands=(etcdctl(ctx.config.etcd, *args),),
            before=before,
            after=after,
            follow_up=()
            if self.voting
            else (f"once caught up: kcockpit act member-promote {self.target}",),
        )

    async def execute(self, snapshot: Snapshot, ctx: ActionContext) -> str:
        assert self.peer_url
        answer = await self.reconfigure(
            ctx.etcd.member_add(
                self.any_healthy_endpoint(snapshot), [self.peer_url], learner=not self.voting
            )
        )
        added = f"{answer.member.ID:016x}"
        provisioner = ctx.config.seams.provisioner
        if provisioner is None:
            return f"member {added} registered; start etcd on {self.target} now"
        initial = [f"{m.name or self.target}={m.peerURLs[0]}" for m in answer.members if m.peerURLs]
        try:
            done = provisioner.provision(self.target, self.peer_url, ",".join(initial))
        except ProvisionError as exc:
            raise RuntimeError(
                f"partial: member {added} is registered, but {self.target} could not be "
                f"provisioned: {exc}. Remove it (member-remove {added}) before adding again."
            ) from None
        return f"member {added} registered and {done}"

    async def verify(self, snapshot: Snapshot, ctx: ActionContext) -> Verification:
        provisioned = ctx.config.seams.provisioner is not None  # then it must answer too

        def joined(s: Snapshot) -> bool:
            # Until it starts, a new member has no name: it is known by its peer URL.
            member = next((m for m in s.etcd.members if self.peer_url in m.peer_urls), None)
            return bool(
                member and (not provisioned or (member.reachable and member.name == self.target))
            )

        what = f"{self.target} registered" + (" and answering" if provisioned else "")
        return await ctx.until(joined, self.verify_timeout, what)


class MemberPromote(EtcdAction):
    spec = MEMBER_PROMOTE

    def check(self, snapshot: Snapshot, target: EtcdMember) -> Verdict:
        cluster = snapshot.etcd
        if not target.is_learner:
            return Verdict.refused(f"{target.display_name} is already a voting member")
        if not target.reachable:
            return Verdict.refused(f"{target.display_name} does not answer: {target.error}")
        if not caught_up(target, cluster.leader, self.thresholds):
            leader_index = cluster.leader.raft_index if cluster.leader else None
            return Verdict.refused(
                f"{target.display_name} is not in sync with the leader yet (applied "
                f"{target.raft_applied_index}, leader at {leader_index}); wait and retry"
            )
        before, after = self.quorum_change(snapshot)
        if after.tolerance < before.tolerance:
            return Verdict.confirm(target.ref, "promotion lowers fault tolerance")
        return Verdict.allowed(f"{target.display_name} is in sync with the leader")

    def quorum_change(self, snapshot: Snapshot) -> tuple[QuorumView, QuorumView]:
        cluster = snapshot.etcd
        return QuorumView.of(cluster), QuorumView.after(
            len(cluster.voting) + 1, cluster.healthy_voting + 1
        )

    def plan(self, snapshot: Snapshot, ctx: ActionContext) -> Plan:
        target = self.member(snapshot)
        assert target
        before, after = self.quorum_change(snapshot)
        return Plan(
            summary=f"Promote learner {target.display_name} to a voting member",
            steps=("Send MemberPromote to the leader", "Re-read until it is a voting member"),
            commands=(etcdctl(ctx.config.etcd, "member", "promote", target.id_hex),),
            before=before,
            after=after,
        )

    async def execute(self, snapshot: Snapshot, ctx: ActionContext) -> str:
        target = self.member(snapshot)
        assert target
        await self.reconfigure(
            ctx.etcd.member_promote(self.any_healthy_endpoint(snapshot), target.id)
        )
        return f"{target.display_name} promoted"

    async def verify(self, snapshot: Snapshot, ctx: ActionContext) -> Verification:
        def voting(s: Snapshot) -> bool:
            member = s.etcd.member(self.target)
            return bool(member and not member.is_learner)

        return await ctx.until(voting, self.verify_timeout, f"{self.target} is a voting member")


class Defragment(EtcdAction):
    spec = DEFRAGMENT
    deadline = 90.0

    def check(self, snapshot: Snapshot, target: EtcdMember) -> Verdict:
        cluster = snapshot.etcd
        if not target.reachable:
            return Verdict.refused(f"{target.display_name} does not answer: {target.error}")
        if target.is_leader:
            pending = [
                m.display_name
                for m in cluster.members
                if m.id != target.id and fragmented(m, self.thresholds)
            ]
            if pending:
                return Verdict.refused(
                    f"defragment followers before the leader: {', '.join(pending)} still fragmented"
                )
        if cluster.tolerance == 0 and not target.is_learner:
            return Verdict.confirm(
                f"override {target.ref}",
                "quorum is at its edge (tolerance 0): the member blocks while defragmenting",
            )
        return Verdict.allowed("one member at a time; it blocks reads and writes while it runs")

    def plan(self, snapshot: Snapshot, ctx: ActionContext) -> Plan:
        target = self.member(snapshot)
        assert target
        before, after = self.same_quorum(snapshot)
        return Plan(
            summary=f"Defragment {target.display_name} (DB {target.db_size} bytes, {target.db_size_in_use} in use)",
            steps=(f"Send Defragment to {target.endpoint} only", "Re-read its DB size"),
            commands=(etcdctl(ctx.config.etcd, "defrag", endpoints=[target.endpoint or ""]),),
            before=before,
            after=after,
        )

    async def execute(self, snapshot: Snapshot, ctx: ActionContext) -> str:
        target = self.member(snapshot)
        assert target and target.endpoint
        await ctx.etcd.defragment(target.endpoint, timeout=self.deadline)
        return f"{target.display_name} defragmented"

    async def verify(self, snapshot: Snapshot, ctx: ActionContext) -> Verification:
        before = self.member(snapshot)
        assert before

        def smaller(s: Snapshot) -> bool:
            member = s.etcd.member(self.target)
            return bool(
                member and member.reachable and (member.db_size or 0) <= (before.db_size or 0)
            )

        return await ctx.until(
            smaller, self.verify_timeout, f"{self.target} answers with DB size ≤ before"
        )


class SnapshotSave(EtcdAction):
    """Streams one member's backend to a file; size and SHA-256 are reported and audited.

    The file holds every secret in the cluster: it is private to its owner (0600, in
    directories kcockpit creates 0700) and never replaces an existing file, which may be the
    only good backup there is.
    """

    spec = SNAPSHOT_SAVE
    deadline = 300.0

    def __init__(self, target: str, path: Path | None = None) -> None:
        super().__init__(target)
        self.path = path
        self.saved: SnapshotFile | None = None

    def destination(self, ctx: ActionContext) -> Path:
        """The operator's file, or one under the state dir named once (plan and execute agree)."""
        if self.path is None:
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
            name = f"{ctx.config.name}-{self.target}-{stamp}.db"
            self.path = ctx.state_dir / SNAPSHOTS_DIR / name
        return self.path

    needs_quorum = False  # a snapshot of one member is how you save data when quorum is gone

    def check(self, snapshot: Snapshot, target: EtcdMember) -> Verdict:
        if not target.reachable:
            return Verdict.refused(f"{target.display_name} does not answer: {target.error}")
        if self.path and self.path.exists():
            return Verdict.refused(f"{self.path} exists: name a new file")
        return Verdict.allowed("read-only for the cluster: streams the backend to a file")

    def plan(self, snapshot: Snapshot, ctx: ActionContext) -> Plan:
        target = self.member(snapshot)
        assert target
        before, after = self.same_quorum(snapshot)
        destination = self.destination(ctx)
        return Plan(
            summary=f"Save a snapshot of {target.display_name} to {destination}",
            steps=(
                f"Stream the backend of {target.endpoint}",
                "Check the file is a complete bbolt DB",
            ),
            commands=(
                etcdctl(
                    ctx.config.etcd,
                    "snapshot",
                    "save",
                    str(destination),
                    endpoints=[target.endpoint or ""],
                ),
                command_line("etcdutl", "snapshot", "status", str(destination), "-w", "table"),
            ),
            before=before,
            after=after,
        )

    async def execute(self, snapshot: Snapshot, ctx: ActionContext) -> str:
        target = self.member(snapshot)
        assert target and target.endpoint
        # The client makes missing directories 0700 and the file 0600: a snapshot is a secret.
        saved = await ctx.etcd.snapshot(
            target.endpoint, self.destination(ctx), timeout=self.deadline
        )
        self.saved = saved
        return f"saved {saved.size} bytes to {saved.path} (sha256 {saved.sha256})"

    async def verify(self, snapshot: Snapshot, ctx: ActionContext) -> Verification:
        saved = self.saved
        if saved is None:  # the deadline passed mid-stream: the partial file was removed
            return Verification(False, f"no complete snapshot was written to {self.path}")
        try:
            with saved.path.open("rb") as db:
                header = db.read(4096 + 32)
        except OSError as exc:
            return Verification(False, f"cannot read {saved.path}: {exc}")
        magic = int.from_bytes(header[16:20], "little") if len(header) >= 20 else 0
        if saved.path.stat().st_size != saved.size or magic != BBOLT_MAGIC:
            return Verification(False, f"{saved.path} is not a complete bbolt database")
        return Verification(True, f"verified: {saved.path} is a complete bbolt database")


ETCD_ACTIONS: tuple[type[EtcdAction], ...] = (
    MoveLeader,
    MemberRemove,
    MemberAdd,
    MemberPromote,
    Defragment,
    SnapshotSave,
)
