"""`kcockpit config check`: validate a config and try every connection it names.

Each line says what was tried and what happened, in the words of the failing layer (TLS,
SSH host key, Kubernetes API), so a new config can be fixed before an incident needs it.
"""

from __future__ import annotations

import asyncio

from cluster.collect import Collector
from cluster.config import Config
from cluster.etcd.client import EtcdError
from cluster.untrusted import printable

OK, FAIL = "✔", "✖"


async def check_lines(config: Config) -> list[tuple[bool, str]]:
    collector = Collector(config)
    try:
        statuses = await asyncio.gather(
            *(collector.etcd_client.status(e) for e in config.etcd.endpoints),
            return_exceptions=True,
        )
        snapshot = await collector.collect(fresh=True)
    finally:
        await collector.close()
    lines: list[tuple[bool, str]] = []
    for endpoint, status in zip(config.etcd.endpoints, statuses, strict=True):
        if isinstance(status, EtcdError):
            lines.append((False, f"etcd {endpoint}: {status.short}"))
        elif isinstance(status, BaseException):
            lines.append((False, f"etcd {endpoint}: {status}"))
        else:
            lines.append(
                (
                    True,
                    f"etcd {endpoint}: etcd {status.version}, member {status.header.member_id:016x}",
                )
            )
    for node in snapshot.nodes:
        if node.reachable:
            lines.append(
                (
                    True,
                    f"node {node.name} ({node.address}): reachable, hostname {node.hostname or '?'}",
                )
            )
        else:
            lines.append((False, f"node {node.name} ({node.address}): {node.error}"))
    if snapshot.kube is not None:
        problem = snapshot.kube.config_error or snapshot.kube.error
        lines.append((problem is None, f"kubernetes API: {problem or 'reachable'}"))
    return lines


def run_config_check(config: Config) -> int:
    print(f"{OK} config {config.source or '(discovered)'}: cluster {config.name!r} is valid")
    lines = asyncio.run(check_lines(config))
    for ok, text in lines:
        print(f"{OK if ok else FAIL} {printable(text)}")  # etcd's and nodes' own words
    failures = sum(1 for ok, _ in lines if not ok)
    print(
        f"{len(lines) - failures} passed, {failures} failed" if failures else "all connections work"
    )
    return 1 if failures else 0
