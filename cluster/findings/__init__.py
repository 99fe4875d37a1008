"""Findings: pure rules that turn a snapshot into "what is wrong, the evidence, what to do next".

One package, one rule shape (`(Snapshot, Context) -> Iterable[Finding]`), one registry: the
rules live by subject (etcd, nodes, kube, trends over the past) and register themselves with
the ids they produce (registry.py); the engine runs them all and sorts once. Importing the
package imports every rule module, so the registry is complete whoever asks for it.
Rules never do I/O, and nothing here imports actions or Textual.
"""

from cluster.findings import etcd, kube, metrics, nodes, trends
from cluster.findings.engine import FindingsEngine, evaluate, sort_findings
from cluster.findings.etcd import sizes_diverge
from cluster.findings.registry import RULES, Context, FindingSpec, RuleSpec, catalog

__all__ = [
    "RULES",
    "Context",
    "FindingSpec",
    "FindingsEngine",
    "RuleSpec",
    "catalog",
    "etcd",
    "evaluate",
    "kube",
    "metrics",
    "nodes",
    "sizes_diverge",
    "sort_findings",
    "trends",
]
