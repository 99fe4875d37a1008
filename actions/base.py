"""The shape every guarded action has: guard → plan → (confirm) → execute → verify.

An action is built for one target with its options; `guard` and `plan` read only a Snapshot
(testable without I/O), `execute` does the one mutation with a deadline and never retries, and
`verify` re-reads the cluster until the intended state is seen or its own deadline passes.
"""

from __future__ import annotations

import asyncio
import enum
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from actions.specs import ActionSpec
from cluster.config import Config, Thresholds
from cluster.etcd.client import EtcdClient
from cluster.kube.source import KubeSource
from cluster.model import EtcdCluster, Snapshot
from cluster.nodes.pool import NodePool

VERIFY_POLL_SECONDS = 0.3


class VerdictKind(enum.Enum):
    ALLOWED = "allowed"
    CONFIRM = "needs typed confirmation"
    REFUSED = "refused"


@dataclass(frozen=True)
class Verdict:
    """The guard's answer. CONFIRM carries the exact text the operator must type."""

    kind: VerdictKind
    reasons: tuple[str, ...] = ()
    confirm_text: str | None = None

    @classmethod
    def allowed(cls, *reasons: str) -> Verdict:
        return cls(VerdictKind.ALLOWED, reasons)

    @classmethod
    def refused(cls, *reasons: str) -> Verdict:
        return cls(VerdictKind.REFUSED, reasons)

    @classmethod
    def confirm(cls, text: str, *reasons: str) -> Verdict:
        return cls(VerdictKind.CONFIRM, reasons, text)

    @property
    def is_refused(self) -> bool:
        return self.kind is VerdictKind.REFUSED

    def as_json(self) -> dict[str, Any]:
        return {
            "verdict": self.kind.value,
            "reasons": list(self.reasons),
            "confirm": self.confirm_text,
        }


@dataclass(frozen=True)
class QuorumView:
    voting: int
    quorum: int
    tolerance: int

    @classmethod
    def of(cls, cluster: EtcdCluster) -> QuorumView:
        return cls(len(cluster.voting), cluster.quorum, cluster.tolerance)

    @classmethod
    def after(cls, voting: int, healthy: int) -> QuorumView:
        quorum = voting // 2 + 1
        return cls(voting, quorum, max(0, healthy - quorum))

    def describe(self) -> str:
        return f"{self.voting} voting, quorum {self.quorum}, tolerance {self.tolerance}"


@dataclass(frozen=True)
class Plan:
    """What will happen, in words and as the commands an operator could type instead."""

    summary: str
    steps: tuple[str, ...]
    commands: tuple[str, ...]
    before: QuorumView
    after: QuorumView
    follow_up: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "steps": list(self.steps),
            "commands": list(self.commands),
            "quorum_before": self.before.describe(),
            "quorum_after": self.after.describe(),
            "follow_up": list(self.follow_up),
        }


@dataclass(frozen=True)
class Verification:
    verified: bool
    message: str


@dataclass
class ActionContext:
    """What actions may use: the config, the open etcd channels, a way to re-read the cluster."""

    config: Config
    etcd: EtcdClient
    collect: Callable[[], Awaitable[Snapshot]]
    state_dir: Path
    nodes: NodePool | None = None
    kube: KubeSource | None = None
    # Set by the runner while an action executes: where `step` records go (the audit trail and
    # the operator's progress display).
    step_sink: Callable[[str, dict[str, Any]], None] | None = None

    def step(self, message: str, **fields: Any) -> None:
        """One step of a multi-step action, said as it happens: audited (a record of its own,
        fsync'd; an AuditWriteError stops the action) and shown to the operator."""
        if self.step_sink is not None:
            self.step_sink(message, fields)

    async def until(
        self, reached: Callable[[Snapshot], bool], timeout: float, what: str
    ) -> Verification:
        """Re-reads the cluster until `reached` holds; never waits past `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            snapshot = await self.collect()
            if reached(snapshot):
                return Verification(True, f"verified: {what}")
            if time.monotonic() >= deadline:
                return Verification(False, f"not verified within {timeout:g} s: {what}")
            await asyncio.sleep(VERIFY_POLL_SECONDS)


class Action(ABC):
    """One guarded operation on one target; what it is (name, title, key, target kind) is its
    entry in the one table of actions (actions/specs.py), which the UI reads without it."""

    spec: ClassVar[ActionSpec]
    deadline: ClassVar[float] = 30.0
    verify_timeout: ClassVar[float] = 15.0

    # The config's thresholds: a guard and the finding that advertises its action judge with
    # the same numbers (set by `actions.registry.build_action`; the defaults otherwise).
    thresholds: Thresholds = Thresholds()

    def __init__(self, target: str) -> None:
        self.target = target

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def title(self) -> str:
        return self.spec.title

    @abstractmethod
    def guard(self, snapshot: Snapshot) -> Verdict:
        """Allowed, refused with reasons, or allowed after typing the target's name."""

    @abstractmethod
    def plan(self, snapshot: Snapshot, ctx: ActionContext) -> Plan:
        """Human steps and the equivalent commands with the real endpoints and cert flags."""

    @abstractmethod
    async def execute(self, snapshot: Snapshot, ctx: ActionContext) -> str:
        """Performs the mutation once; returns what happened in one line."""

    @abstractmethod
    async def verify(self, snapshot: Snapshot, ctx: ActionContext) -> Verification:
        """Re-reads the cluster to check the intended state was reached."""

    def describe(self) -> str:
        return f"{self.name} {self.target}"
