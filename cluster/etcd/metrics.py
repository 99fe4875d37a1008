"""etcd's own `/metrics` page, reduced to the few series the cockpit's rules and trends read.

A member's page is about 160 kB and 1,600 lines, most of them series no rule reads (every gRPC
method times every status code, Go runtime figures). The page is bounded before it is parsed
(the source caps its size), then cut to the wanted series line by line, and only those lines
go to `prometheus_client`'s text parser: the maintained parser reads every figure, this module
only chooses which lines it is given. A gRPC counter at 0 is among the lines left out: it adds
nothing to a rate, and etcd lists some 700 of them.

Label values (a peer's ID, a gRPC method) are the member's words: the sample keeps them as
strings and the collector makes them printable with the rest of the snapshot. How many peers
and methods a page may name is capped, so a hostile page cannot make the history grow.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

HAS_LEADER = "etcd_server_has_leader"
LEADER_CHANGES = "etcd_server_leader_changes_seen_total"
PROPOSALS_APPLIED = "etcd_server_proposals_applied_total"
PROPOSALS_FAILED = "etcd_server_proposals_failed_total"
DB_SIZE = "etcd_mvcc_db_total_size_in_bytes"
DB_IN_USE = "etcd_mvcc_db_total_size_in_use_in_bytes"
QUOTA = "etcd_server_quota_backend_bytes"
SCALARS = (
    HAS_LEADER,
    LEADER_CHANGES,
    PROPOSALS_APPLIED,
    PROPOSALS_FAILED,
    DB_SIZE,
    DB_IN_USE,
    QUOTA,
)

FSYNC = "etcd_disk_wal_fsync_duration_seconds"
COMMIT = "etcd_disk_backend_commit_duration_seconds"
PEER_RTT = "etcd_network_peer_round_trip_time_seconds"
HISTOGRAMS = (FSYNC, COMMIT, PEER_RTT)

GRPC_HANDLED = "grpc_server_handled_total"
# The codes etcd's mixin counts as failures (etcdHighNumberOfFailedGRPCRequests): a client's
# own mistakes (NotFound, InvalidArgument, Canceled…) are not the server's trouble.
GRPC_FAILURE_CODES = frozenset(
    {
        "Unknown",
        "FailedPrecondition",
        "ResourceExhausted",
        "Internal",
        "Unavailable",
        "DataLoss",
        "DeadlineExceeded",
    }
)
MAX_LABELLED = 256  # peers or gRPC methods one page may name

_SAMPLE_NAMES = frozenset(
    [*SCALARS, GRPC_HANDLED, *(f"{h}_bucket" for h in HISTOGRAMS)]
)  # a histogram's _sum and _count are not read: its +Inf bucket is its count
_FAMILIES = frozenset(
    [*(n.removesuffix("_total") for n in SCALARS), *HISTOGRAMS, GRPC_HANDLED.removesuffix("_total")]
)

Buckets = tuple[tuple[float, float], ...]  # (upper bound, cumulative count), by bound
Calls = tuple[float, dict[str, float]]  # (calls handled, {failing code: calls}) of one method


@dataclass(frozen=True)
class MetricsSample:
    """One scrape of one member: its scalars, its latency histograms and its gRPC counters.

    `at` is the wall-clock time (epoch seconds) the page was read; rates divide by the time
    between two samples' `at`. `histograms` holds the WAL fsync and backend commit buckets
    under their family names, `peers` the peer round trips by peer ID (as etcd writes it);
    `grpc` maps each unary gRPC method to the calls it handled since the member started and,
    per failing code (`GRPC_FAILURE_CODES`, so at most seven), how many of them failed. Streams
    (Watch, LeaseKeepAlive) are left out: a stream is counted when it ends, and one ends as
    `Unavailable` whenever its client goes away (an API server restarting, a watch it drops),
    which on a healthy control plane made Watch 100 % "failed".
    """

    at: float
    scalars: dict[str, float] = field(default_factory=dict)
    histograms: dict[str, Buckets] = field(default_factory=dict)
    peers: dict[str, Buckets] = field(default_factory=dict)
    grpc: dict[str, Calls] = field(default_factory=dict)


def wanted_lines(page: str) -> str:
    """The page's lines that describe or carry a wanted series (see the module docstring)."""
    kept = []
    for line in page.splitlines():
        if line.startswith("#"):
            words = line.split(" ", 3)
            if len(words) > 2 and words[1] == "TYPE" and words[2] in _FAMILIES:
                kept.append(line)
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in _SAMPLE_NAMES and not (name == GRPC_HANDLED and line.endswith(" 0")):
            kept.append(line)
    return "\n".join(kept) + "\n"


def parse_page(page: str, at: float) -> MetricsSample:
    """The wanted series of one `/metrics` page read at `at`; a malformed page raises
    ValueError (the parser's words), so the member's scrape says what was wrong."""
    scalars: dict[str, float] = {}
    buckets: dict[str, list[tuple[float, float]]] = {}
    peers: dict[str, list[tuple[float, float]]] = {}
    grpc: dict[str, Calls] = {}
    for family in text_string_to_metric_families(wanted_lines(page)):
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, float(sample.value)
            if name in SCALARS:
                scalars[name] = value
            elif name == GRPC_HANDLED and labels.get("grpc_type", "unary") == "unary":
                method = labels.get("grpc_method", "?")
                if method in grpc or len(grpc) < MAX_LABELLED:
                    handled, failed = grpc.get(method, (0.0, {}))
                    code = labels.get("grpc_code", "")
                    if code in GRPC_FAILURE_CODES:
                        failed[code] = failed.get(code, 0.0) + value
                    grpc[method] = (handled + value, failed)
            elif name == f"{PEER_RTT}_bucket" and "le" in labels:
                peer = labels.get("To", "?")
                if peer in peers or len(peers) < MAX_LABELLED:
                    peers.setdefault(peer, []).append((float(labels["le"]), value))
            elif "le" in labels:
                buckets.setdefault(name.removesuffix("_bucket"), []).append(
                    (float(labels["le"]), value)
                )
    return MetricsSample(at, scalars, _sorted(buckets), _sorted(peers), grpc)


def _sorted(histograms: dict[str, list[tuple[float, float]]]) -> dict[str, Buckets]:
    return {key: tuple(sorted(points)) for key, points in histograms.items()}
