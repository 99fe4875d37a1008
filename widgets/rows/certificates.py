"""The certificates table: every certificate of every node, the most urgent first, keyed
`node:path`.

Urgency is the worst problem the findings see in it (expired, SAN lacking the node, wrong
issuer, expiring, unreadable), always as symbol and word, never by colour alone.
"""

from __future__ import annotations

import datetime as dt

from rich.text import Text

from cluster.findings.nodes import certificate_problems
from cluster.model import Severity, Snapshot
from cluster.nodes.model import Certificate, NodeState
from widgets.format import SEVERITY_STYLE, SEVERITY_SYMBOL
from widgets.rows.common import Column, Row, node_cell, padded, unreachable_cell

COLUMNS = (
    Column("urgency", "URGENCY", 1),
    Column("node", "NODE", 1),
    Column("file", "CERTIFICATE", 1),
    Column("subject", "SUBJECT CN", 4),
    Column("issuer", "ISSUER", 5),
    Column("ca", "SIGNED BY CA", 3),
    Column("days", "DAYS LEFT", 2),
    Column("not_after", "NOT AFTER", 6),
    Column("sans", "SANS", 7),
)


def urgency(cert: Certificate, node: NodeState, now: dt.datetime) -> tuple[Severity | None, str]:
    problems = certificate_problems(cert, node, now)
    if not problems:
        return None, "ok"
    finding_id, severity, _ = problems[0]
    return severity, finding_id.removeprefix("cert.").replace("-node-address", "").replace("-", " ")


def urgency_cell(severity: Severity | None, word: str) -> Text:
    if severity is None:
        return Text(f"✔ {word}", style="green")
    return Text(f"{SEVERITY_SYMBOL[severity]} {word}", style=SEVERITY_STYLE[severity])


def signed_cell(cert: Certificate) -> Text:
    if cert.signed_by_ca is None:
        return Text("self/CA" if cert.is_ca else "-", style="dim")
    return Text("✔ yes") if cert.signed_by_ca else Text("✖ NO", style="bold red")


def days_cell(cert: Certificate, now: dt.datetime) -> str:
    days = cert.days_left(now)
    return "-" if days is None else f"{days:.0f}"


def rows(snapshot: Snapshot) -> list[Row]:
    """Unreachable nodes first, then certificates by severity, then by days left."""
    now = snapshot.collected_at
    found: list[Row] = []
    ranked = []
    for node in snapshot.nodes:
        if not node.reachable:
            found.append((node.name, padded((unreachable_cell(node.error), node.name), COLUMNS)))
            continue
        for cert in node.certificates:
            severity, word = urgency(cert, node, now)
            days = cert.days_left(now)
            rank = (-(severity if severity is not None else -1), days if days is not None else 0)
            ranked.append((rank, node, cert, severity, word))
    for _, node, cert, severity, word in sorted(ranked, key=lambda r: r[0]):
        cells = (
            urgency_cell(severity, word if severity is None else _with_days(word, cert, now)),
            node_cell(node),
            cert.name,
            cert.subject or "-",
            cert.issuer or "-",
            signed_cell(cert),
            days_cell(cert, now),
            cert.not_after.strftime("%Y-%m-%d") if cert.not_after else "-",
            cert.error or ", ".join(cert.sans),
        )
        found.append((f"{node.name}:{cert.path}", cells))
    return found


def _with_days(word: str, cert: Certificate, now: dt.datetime) -> str:
    days = cert.days_left(now)
    return f"{word} ({days:.0f} d)" if word == "expiring" and days is not None else word
