"""Defragmenting every member the way the runbooks say, one at a time: followers first, then
leadership moved to a defragmented follower, then the old leader.

A defragment blocks its member's reads and writes while it rewrites the file; on the leader it
stalls every write of the cluster, hence the order. Before each step the cluster is read anew
and every voting member must be healthy: the first that is not stops the run where it is,
with a report of what was done and what was not touched (nothing is undone, nothing more is
sent). After each defragment the member must answer Status again, be within
`raft_lag_entries` of the leader (the one `caught_up` predicate) and show its new DB size;
whether the file shrank, or why not, is said. Every step is a record of its own in the audit
trail (`ActionContext.step`), so the order is provable afterwards.
"""

from __future__ import annotations

from actions.base import Action, ActionContext, Plan, QuorumView, Verdict, Verification
from actions.etcd_actions import quorum_refusal
from actions.specs import ROLLING_DEFRAGMENT
from cluster.findings.etcd import caught_up, etcdctl, fragmented, member_node
from cluster.model import CLUSTER_TARGET, EtcdCluster, EtcdMember, Snapshot
from cluster.nodes.model import ETCD_DATA_DIR


class RollingAborted(RuntimeError):
    """The run stopped at an unhealthy step; the message is the report of what was done."""


class RollingDefragment(Action):
    spec = ROLLING_DEFRAGMENT
    deadline = 900.0  # the whole run; every step has its own, shorter one
    member_deadline = 120.0  # one member's Defragment call
    settle_timeout = 30.0  # until a defragmented member answers and is caught up again

    def guard(self, snapshot: Snapshot) -> Verdict:
        cluster = snapshot.etcd
        if self.target != CLUSTER_TARGET:
            return Verdict.refused(f"the target is the whole cluster: {CLUSTER_TARGET!r}")
        if problem := quorum_refusal(cluster):
            return Verdict.refused(problem)
        reasons = self.unready(cluster)
        other_alarms = sorted({alarm for _, alarm in cluster.alarms if alarm != "NOSPACE"})
        if other_alarms:
            reasons.append(
                f"alarm {', '.join(other_alarms)} is raised: find out why before any maintenance"
            )
        for member in cluster.voting:
            node = member_node(member, snapshot.nodes)
            free = node.free_bytes(ETCD_DATA_DIR) if node is not None and node.reachable else None
            if free is None:
                reasons.append(
                    f"free disk for {member.display_name}'s {ETCD_DATA_DIR} is unknown (no "
                    "node read): a defragment needs room for a copy of its DB"
                )
            elif member.db_size is not None and free < member.db_size:
                reasons.append(
                    f"{member.display_name}: {free} bytes free on {ETCD_DATA_DIR}, less "
                    f"than a copy of its DB ({member.db_size} bytes)"
                )
        if reasons:
            return Verdict.refused(*reasons)
        if cluster.tolerance == 0:
            return Verdict.confirm(
                f"override {CLUSTER_TARGET}",
                "no fault tolerance: each member blocks while it is defragmented",
            )
        waiting = [m.display_name for m in cluster.voting if fragmented(m, self.thresholds)]
        return Verdict.allowed(
            "every member healthy and caught up; one member at a time, the leader last",
            f"fragmented now: {', '.join(waiting) or 'none (each file is rewritten anyway)'}",
        )

    def unready(self, cluster: EtcdCluster) -> list[str]:
        """Why a step may not start: a voting member not healthy, or not caught up with the
        leader (a learner still syncing is no reason: it is left alone)."""
        leader = cluster.leader
        if leader is None:
            return ["no member reports a leader"]
        reasons = []
        for member in cluster.voting:
            if not member.healthy:
                why = member.error or "; ".join(member.errors) or "errors"
                reasons.append(f"{member.display_name} is not healthy: {why}")
            elif not caught_up(member, leader, self.thresholds):
                reasons.append(
                    f"{member.display_name} is not caught up (applied "
                    f"{member.raft_applied_index}, leader at {leader.raft_index})"
                )
        return reasons

    def order(self, cluster: EtcdCluster) -> list[EtcdMember]:
        """The voting followers one by one, the leader last; learners are left alone (promote
        them first: a learner still syncing would never settle)."""
        leader = cluster.leader
        return sorted(cluster.voting, key=lambda m: leader is not None and m.id == leader.id)

    def plan(self, snapshot: Snapshot, ctx: ActionContext) -> Plan:
        cluster = snapshot.etcd
        order = self.order(cluster)
        *followers, leader = order
        successor = next(iter(followers), None)
        steps = [
            f"Defragment follower {m.display_name}, wait until it is caught up" for m in followers
        ]
        commands = [
            etcdctl(ctx.config.etcd, "defrag", endpoints=[m.endpoint or ""]) for m in followers
        ]
        if successor is not None:
            steps.append(
                f"Move leadership from {leader.display_name} to the defragmented follower "
                f"{successor.display_name}"
            )
            commands.append(
                etcdctl(
                    ctx.config.etcd,
                    "move-leader",
                    successor.id_hex,
                    endpoints=[leader.endpoint or ""],
                )
            )
        steps.append(f"Defragment the old leader {leader.display_name} last")
        commands.append(etcdctl(ctx.config.etcd, "defrag", endpoints=[leader.endpoint or ""]))
        if cluster.learners:
            names = ", ".join(m.display_name for m in cluster.learners)
            steps.append(f"Learners are left alone ({names}): promote them first")
        view = QuorumView.of(cluster)
        return Plan(
            summary=f"Defragment all {len(order)} voting members one at a time, the leader last",
            steps=(
                *steps,
                "Before each step every voting member must be healthy: else stop there",
            ),
            commands=tuple(commands),
            before=view,
            after=view,
        )

    async def execute(self, snapshot: Snapshot, ctx: ActionContext) -> str:
        order = self.order(snapshot.etcd)
        *followers, old_leader = order
        done: list[str] = []
        left = [m.display_name for m in order]
        for member in followers:
            done.append(await self.defragment_one(member.id, "follower", ctx, done, left))
        if len(order) > 1:
            await self.move_leadership(old_leader.id, followers, ctx, done, left)
        done.append(await self.defragment_one(old_leader.id, "old leader", ctx, done, left))
        return f"defragmented {len(done)} voting members, the leader last: " + "; ".join(done)

    async def healthy_now(
        self, ctx: ActionContext, done: list[str], left: list[str], next_step: str
    ) -> Snapshot:
        """The cluster read anew; a RollingAborted report unless every member is ready."""
        snapshot = await ctx.collect()
        problems = quorum_refusal(snapshot.etcd)
        reasons = [problems] if problems else self.unready(snapshot.etcd)
        if reasons:
            report = (
                f"stopped before {next_step}: {'; '.join(reasons)}. "
                f"Done: {'; '.join(done) or 'nothing'}. Not touched: {', '.join(left) or 'none'}. "
                "The cluster is left as it is."
            )
            ctx.step(f"aborted: {report}", aborted=True, reasons=reasons)
            raise RollingAborted(report)
        return snapshot

    async def defragment_one(
        self, member_id: int, role: str, ctx: ActionContext, done: list[str], left: list[str]
    ) -> str:
        """One member: checked, defragmented, settled; what happened to its file, in words."""
        now = await self.healthy_now(ctx, done, left, f"defragmenting the {role}")
        member = next((m for m in now.etcd.members if m.id == member_id), None)
        leader = now.etcd.leader
        if member is None or member.endpoint is None or leader is None:
            raise RollingAborted(f"a member left the cluster mid-run; done: {'; '.join(done)}")
        name = member.display_name
        ctx.step(
            f"defragmenting {name} ({role}; leader {leader.display_name}), DB "
            f"{member.db_size} bytes, {member.db_size_in_use} in use",
            member=name,
            role=role,
            leader=leader.display_name,
            raft_term=leader.raft_term,
            db_size=member.db_size,
            db_size_in_use=member.db_size_in_use,
        )
        left.remove(name)
        try:
            await ctx.etcd.defragment(member.endpoint, timeout=self.member_deadline)
        except Exception as exc:
            raise RollingAborted(
                f"defragmenting {name} failed or got no answer ({exc}): its state is unknown. "
                f"Done: {'; '.join(done) or 'nothing'}. Not touched: {', '.join(left) or 'none'}."
            ) from None

        def settled(s: Snapshot) -> bool:
            again = s.etcd.member(member.ref)
            return bool(
                again and again.healthy and caught_up(again, s.etcd.leader, self.thresholds)
            )

        check = await ctx.until(settled, self.settle_timeout, f"{name} answers and is caught up")
        if not check.verified:
            raise RollingAborted(
                f"{name} was defragmented but {check.message}. Done: {'; '.join(done)}. "
                f"Not touched: {', '.join(left) or 'none'}."
            )
        after = await ctx.collect()
        again = after.etcd.member(member.ref) or member
        shrank = self.shrinkage(member, again)
        current = after.etcd.leader
        ctx.step(
            f"{name} defragmented: {shrank}; caught up (applied {again.raft_applied_index}, "
            f"leader at {current.raft_index if current else '?'})",
            member=name,
            role=role,
            leader=current.display_name if current else None,
            raft_term=current.raft_term if current else None,
            db_before=member.db_size,
            db_after=again.db_size,
        )
        return f"{name} {shrank}"

    def shrinkage(self, before: EtcdMember, after: EtcdMember) -> str:
        """Whether the file shrank, or why not."""
        old, new = before.db_size or 0, after.db_size or 0
        if new < old:
            return f"DB {old} bytes → {new} bytes"
        free = old - (before.db_size_in_use or old)
        return (
            f"DB did not shrink ({old} bytes → {new} bytes): only "
            f"{free} bytes of it was free (writes meanwhile fill the rewritten file)"
        )

    async def move_leadership(
        self,
        old_leader_id: int,
        followers: list[EtcdMember],
        ctx: ActionContext,
        done: list[str],
        left: list[str],
    ) -> None:
        """To the first defragmented voting follower caught up now: the old leader goes last."""
        now = await self.healthy_now(ctx, done, left, "moving leadership")
        leader = now.etcd.leader
        assert leader is not None  # healthy_now refuses a cluster without one
        if leader.id != old_leader_id:
            ctx.step(
                f"leadership already moved to {leader.display_name}", leader=leader.display_name
            )
            return
        ids = [m.id for m in followers]
        successor = next((m for m in now.etcd.voting if m.id in ids), None)
        if successor is None or leader.endpoint is None:
            raise RollingAborted(
                f"no defragmented voting follower to hand leadership to; done: {'; '.join(done)}"
            )
        ctx.step(
            f"moving leadership from {leader.display_name} to {successor.display_name}",
            leader=leader.display_name,
            successor=successor.display_name,
            raft_term=leader.raft_term,
        )
        try:
            await ctx.etcd.move_leader(leader.endpoint, successor.id)
        except Exception as exc:
            raise RollingAborted(
                f"moving leadership to {successor.display_name} failed ({exc}); done: "
                f"{'; '.join(done)}. Not touched: {', '.join(left)}."
            ) from None
        check = await ctx.until(
            lambda s: s.etcd.leader is not None and s.etcd.leader.id == successor.id,
            self.settle_timeout,
            f"{successor.display_name} leads",
        )
        if not check.verified:
            raise RollingAborted(
                f"{check.message}; done: {'; '.join(done)}. Not touched: {', '.join(left)}."
            )
        ctx.step(f"{successor.display_name} leads now", leader=successor.display_name)

    async def verify(self, snapshot: Snapshot, ctx: ActionContext) -> Verification:
        return await ctx.until(
            lambda s: not self.unready(s.etcd),
            self.settle_timeout,
            "every member healthy and caught up, with a leader",
        )
