"""Runs one action the same way for the UI and the CLI: guard, confirm, audit, execute, verify.

The intent record is written (and fsync'd) before anything is sent; the outcome after. A
refusal is recorded too, so a pair reading the trail sees what was attempted and why it was
stopped. Nothing here retries a mutation.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass

from actions.audit import AuditLog, timestamp
from actions.base import Action, ActionContext, Plan, Verdict, VerdictKind
from cluster.model import Snapshot


class Status(enum.Enum):
    VERIFIED = "verified"
    UNVERIFIED = "done, not verified"
    FAILED = "failed"
    REFUSED = "refused"
    INTERRUPTED = "interrupted, state unknown"


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
    if read_only:
        verdict = Verdict.refused("read-only mode: actions are disabled (started with --read-only)")
    elif not verdict.is_refused and (problem := confirmation_problem(verdict, typed, yes)):
        verdict = Verdict.refused(problem, *verdict.reasons)
    record = audit.new_record("refused", ctx.config.name, action.name, action.target)
    if verdict.is_refused:
        audit.write({**record, "verdict": verdict.as_json()})
        return Result(Status.REFUSED, "; ".join(verdict.reasons), verdict)

    plan = action.plan(snapshot, ctx)
    audit.write({**record, "phase": "intent", "verdict": verdict.as_json(), "plan": plan.as_json()})
    if progress:
        progress(f"intent recorded; executing {action.describe()} (deadline {action.deadline:g} s)")
    started = time.monotonic()

    def outcome(status: Status, message: str) -> Result:
        duration = time.monotonic() - started
        result = {"status": status.value, "message": message}
        audit.write(
            {
                **record,
                "phase": "outcome",
                "time": timestamp(),
                "result": result,
                "duration_s": round(duration, 3),
            }
        )
        return Result(status, message, verdict, plan, duration)

    try:
        message = await asyncio.wait_for(action.execute(snapshot, ctx), action.deadline)
    except asyncio.CancelledError:
        # The cockpit is going away (terminal hung up, quit): say so before the task dies.
        outcome(Status.INTERRUPTED, "cockpit exited mid-action")
        raise
    except TimeoutError:
        return outcome(Status.FAILED, f"no result within the {action.deadline:g} s deadline")
    except Exception as exc:
        return outcome(Status.FAILED, str(exc) or type(exc).__name__)
    if progress:
        progress(f"{message}; verifying")
    try:
        check = await action.verify(snapshot, ctx)
    except asyncio.CancelledError:
        outcome(Status.INTERRUPTED, f"{message}; cockpit exited before verifying")
        raise
    except Exception as exc:
        return outcome(Status.UNVERIFIED, f"{message}; could not verify: {exc}")
    status = Status.VERIFIED if check.verified else Status.UNVERIFIED
    return outcome(status, f"{message}; {check.message}")
