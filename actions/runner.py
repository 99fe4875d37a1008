"""Runs one action the same way for the UI and the CLI: a fresh read, guard, confirm, lock,
audit, execute, verify (`run`; `perform` is all but the read, for a snapshot in hand).

The intent record is written (and fsync'd) before anything is sent; if it cannot be written the
action is refused, because a mutation nobody can read back afterwards is worse than none. The
cluster's action lock is held from the intent to the outcome, so a second operator is refused
at once (and told who is acting) instead of racing the first. A refusal is recorded too, so a
pair reading the trail sees what was attempted and why it was stopped.

The outcome says only what is known: a deadline that passed after the request was sent leaves
the cluster's state unknown (the request may have been applied), so it is recorded as such and
the cluster re-read; `failed` is kept for errors the server returned. An outcome record that
cannot be written is retried, then said in the result: it never becomes a traceback that hides
what the action did. Nothing here retries a mutation.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from actions.audit import (
    ActionLock,
    ActionRunning,
    AuditLog,
    AuditWriteError,
    holder_description,
    timestamp,
)
from actions.base import Action, ActionContext, Plan, Verdict, VerdictKind
from actions.specs import READ_ONLY_REASON
from cluster.etcd.client import EtcdError
from cluster.model import Snapshot

if TYPE_CHECKING:
    from cluster.collect import Collector

OUTCOME_WRITE_ATTEMPTS = 4  # with a short doubling pause: a full disk freed, an NFS hiccup


class Status(enum.Enum):
    VERIFIED = "verified"
    UNVERIFIED = "done, not verified"
    FAILED = "failed"
    REFUSED = "refused"
    INTERRUPTED = "interrupted, state unknown"
    UNKNOWN = "unknown: deadline passed after the request was sent"


@dataclass(frozen=True)
class Result:
    status: Status
    message: str
    verdict: Verdict
    plan: Plan | None = None
    duration: float = 0.0


def confirmation_problem(verdict: Verdict, typed: str | None, yes: bool) -> str | None:
    """Why the operator's confirmation does not suffice, or None when it does."""
    if verdict.kind is VerdictKind.CONFIRM:
        if typed != verdict.confirm_text:
            return f"typed confirmation required: type exactly {verdict.confirm_text!r}"
        return None
    if not (yes or typed):
        return "confirmation required (--yes)"
    return None


# etcd's own words when it gave up waiting on raft, not on the request: the change may still
# be applied after it answered (a leader transfer that "took too long" often completes).
ETCD_GAVE_UP = ("etcdserver: request timed out", "took too long")


def unanswered(exc: BaseException) -> bool:
    """True when the request went out and no answer came back in time, from the client's
    deadline or etcd's own: it may have been applied, so the result is unknown, not failed."""
    if isinstance(exc, TimeoutError):
        return True
    return isinstance(exc, EtcdError) and (
        exc.code == "DEADLINE_EXCEEDED" or any(words in exc.detail for words in ETCD_GAVE_UP)
    )


def refuse(audit: AuditLog, record: dict[str, Any], verdict: Verdict, refused_by: str) -> Result:
    """Records a refusal; a refusal the trail cannot take is still a refusal, said so."""
    message = "; ".join(verdict.reasons)
    try:
        audit.write({**record, "verdict": verdict.as_json(), "refused_by": refused_by})
    except AuditWriteError as exc:
        message = f"{message} (the refusal could not be recorded: {exc})"
    return Result(Status.REFUSED, message, verdict)


async def run(
    action: Action,
    collector: Collector,
    ctx: ActionContext,
    audit: AuditLog,
    *,
    typed: str | None = None,
    yes: bool = False,
    read_only: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Result:
    """The one way an action runs, in the cockpit and in `kcockpit act` alike: the cluster read
    anew through `collector`, then `perform`. The guard judges the present: every member's
    answer of now (or its deadline), never a screen's latest answers, which may be a frozen
    member's last words. Run it on the collector's loop: the action borrows its connections."""
    snapshot = await collector.collect(fresh=True)
    return await perform(
        action, snapshot, ctx, audit, typed=typed, yes=yes, read_only=read_only, progress=progress
    )


async def perform(
    action: Action,
    snapshot: Snapshot,
    ctx: ActionContext,
    audit: AuditLog,
    *,
    typed: str | None = None,
    yes: bool = False,
    read_only: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Result:
    verdict = action.guard(snapshot)
    refused_by = "guard"
    if read_only:
        verdict = Verdict.refused(READ_ONLY_REASON)
        refused_by = "read-only mode"
    elif not verdict.is_refused and (problem := confirmation_problem(verdict, typed, yes)):
        verdict = Verdict.refused(problem, *verdict.reasons)
    record = audit.new_record(
        "refused", ctx.config.name, action.name, action.target, snapshot.etcd.cluster_id
    )
    if verdict.is_refused:
        return refuse(audit, record, verdict, refused_by)

    plan = action.plan(snapshot, ctx)
    lock = ActionLock.beside(audit, ctx.config.name)
    try:
        lock.acquire(holder_description(record))
    except ActionRunning as exc:
        return refuse(audit, record, Verdict.refused(str(exc)), "another action")
    except OSError as exc:
        problem = f"cannot take the cluster's action lock {lock.path}: {exc}"
        return refuse(audit, record, Verdict.refused(problem), "the action lock")
    try:
        return await _locked(action, snapshot, ctx, audit, record, verdict, plan, progress)
    finally:
        lock.release()


async def _locked(
    action: Action,
    snapshot: Snapshot,
    ctx: ActionContext,
    audit: AuditLog,
    record: dict[str, Any],
    verdict: Verdict,
    plan: Plan,
    progress: Callable[[str], None] | None,
) -> Result:
    """Intent, execute, verify, outcome: run only while the cluster's action lock is held."""
    try:
        audit.write(
            {**record, "phase": "intent", "verdict": verdict.as_json(), "plan": plan.as_json()}
        )
    except AuditWriteError as exc:
        reason = f"the intent could not be recorded, so nothing was sent to the cluster: {exc}"
        return Result(Status.REFUSED, reason, Verdict.refused(reason), plan)
    if progress:
        progress(f"intent recorded; executing {action.describe()} (deadline {action.deadline:g} s)")
    started = time.monotonic()
    steps = itertools.count(1)

    def step(message: str, fields: dict[str, Any]) -> None:
        """A multi-step action's step: its own record under the attempt's id, then shown."""
        number = next(steps)
        audit.write(
            {**record, "phase": "step", "time": timestamp(), "step": number, "message": message}
            | {"detail": fields}
        )
        if progress:
            progress(f"step {number}: {message}")

    ctx = dataclasses.replace(ctx, step_sink=step)

    def outcome(status: Status, message: str) -> Result:
        duration = time.monotonic() - started
        result = {"status": status.value, "message": message}
        try:
            audit.write(
                {
                    **record,
                    "phase": "outcome",
                    "time": timestamp(),
                    "result": result,
                    "duration_s": round(duration, 3),
                },
                attempts=OUTCOME_WRITE_ATTEMPTS,
            )
        except AuditWriteError as exc:
            message = f"{message}; the outcome could not be recorded in the audit trail: {exc}"
        return Result(status, message, verdict, plan, duration)

    async def verified(message: str, otherwise: Status) -> Result:
        """Re-reads the cluster: verified when the intended state is seen, else `otherwise`."""
        try:
            check = await action.verify(snapshot, ctx)
        except asyncio.CancelledError:
            outcome(Status.INTERRUPTED, f"{message}; cockpit exited before verifying")
            raise
        except Exception as exc:
            return outcome(otherwise, f"{message}; could not verify: {exc}")
        return outcome(
            Status.VERIFIED if check.verified else otherwise, f"{message}; {check.message}"
        )

    try:
        message = await asyncio.wait_for(action.execute(snapshot, ctx), action.deadline)
    except asyncio.CancelledError:
        # The cockpit is going away (terminal hung up, quit): say so before the task dies.
        outcome(Status.INTERRUPTED, "cockpit exited mid-action")
        raise
    except Exception as exc:
        if not unanswered(exc):
            return outcome(Status.FAILED, str(exc) or type(exc).__name__)
        waited = f"no answer within the {action.deadline:g} s deadline"
        message = str(exc) if isinstance(exc, EtcdError) else waited
        if progress:
            progress(f"{message}; re-reading the cluster to see what happened")
        return await verified(message, Status.UNKNOWN)
    if progress:
        progress(f"{message}; verifying")
    return await verified(message, Status.UNVERIFIED)
