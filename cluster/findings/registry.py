"""What a findings rule is, and the one list of them with what each finding means.

A rule has one shape, `(Snapshot, Context) -> Iterable[Finding]`, whatever part of the control
plane it reads, so the engine runs them all alike and a test can run any one of them on a
hand-built snapshot. Each rule is registered (`@rule(...)`) beside its code with the findings it
may produce: their id, severity, a one-line meaning, the runbook or catalog section it comes
from, and the guarded action it advertises. `kcockpit findings` prints this catalog and
docs/findings.md is generated from it, so the documentation cannot drift from the code.

This module knows nothing of actions or Textual (cluster/ never imports them): action names
are plain strings here, and a test checks each one against the actions' registry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cluster.config import Config, EtcdConfig, Thresholds
from cluster.model import Finding, Severity, Snapshot

DEFAULT_THRESHOLDS = Thresholds()

# Where findings come from (files in shared/runbooks/, and the catalog shared/FINDINGS.md).
MOCK = "runbook-etcd-mock-scenarios.md"
MAINTENANCE = "runbook-control-plane-maintenance.md"
NETWORK_CERTS = "troubleshooting-notes-network-certs.md"
ROLLBACK = "troubleshooting-case-etcd-rollback.md"
CATALOG = "FINDINGS.md"


@dataclass(frozen=True)
class Context:
    """What a rule may read besides the snapshot: the config and its thresholds, the recent
    past (for trends), the highest revision ever seen (from the state file) and the time of
    the snapshot (`now`), so certificates expire relative to when the cluster was read."""

    now: dt.datetime
    config: Config | None = None
    history: tuple[Snapshot, ...] = ()
    max_revision: int | None = None
    state_path: str = ""

    @property
    def thresholds(self) -> Thresholds:
        return self.config.thresholds if self.config is not None else DEFAULT_THRESHOLDS

    @property
    def etcd(self) -> EtcdConfig | None:
        return self.config.etcd if self.config is not None else None


Rule = Callable[[Snapshot, Context], Iterable[Finding]]


@dataclass(frozen=True)
class FindingSpec:
    """One finding id of the catalog.

    `severities` lists every severity the rule may give it (some escalate: a certificate
    expiring in 20 days warns, in 5 days errs); `source` names the runbook file and section,
    or the catalog (FINDINGS.md) line, it comes from; `action` is the name of the guarded
    action its findings link to, if any.
    """

    id: str
    severities: tuple[Severity, ...]
    meaning: str
    source: str
    action: str | None = None

    @property
    def severity_text(self) -> str:
        return " / ".join(s.name.lower() for s in self.severities)


@dataclass(frozen=True)
class RuleSpec:
    """A registered rule and the finding ids it may produce."""

    rule: Rule
    findings: tuple[FindingSpec, ...]

    @property
    def name(self) -> str:
        return f"{self.rule.__module__}.{self.rule.__name__}"


RULES: list[RuleSpec] = []


def rule(*findings: FindingSpec) -> Callable[[Rule], Rule]:
    """Registers the decorated function as a rule producing `findings`."""

    def register(function: Rule) -> Rule:
        known = {f.id for spec in RULES for f in spec.findings}
        clashes = sorted(known & {f.id for f in findings})
        if clashes:
            raise ValueError(f"finding ids registered twice: {', '.join(clashes)}")
        RULES.append(RuleSpec(function, findings))
        return function

    return register


def finding(
    id: str,
    severity: Severity | tuple[Severity, ...],
    meaning: str,
    source: str,
    action: str | None = None,
) -> FindingSpec:
    """A FindingSpec; `severity` may be one severity or the escalation it may go through."""
    severities = severity if isinstance(severity, tuple) else (severity,)
    return FindingSpec(id, severities, meaning, source, action)


def catalog() -> tuple[FindingSpec, ...]:
    """Every finding id the rules may produce, by id (so etcd's trend rules sit with etcd's)."""
    return tuple(sorted((f for spec in RULES for f in spec.findings), key=lambda f: f.id))
