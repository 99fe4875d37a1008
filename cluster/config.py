"""The cockpit's configuration file (TOML), parsed into plain dataclasses.

Relative paths are resolved against the file's own directory so a config written by the lab
(or kept next to its certificates) works from any working directory.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from cluster.endpoints import endpoint_problem
from cluster.seams import Seams

DEFAULT_ETCD_TIMEOUT = 2.0
DEFAULT_KUBE_TIMEOUT = 3.0
# Seconds between two reads of the API: kubelets post node status every 10 s, and an API
# server in trouble is spared a list of everything per second from every open cockpit.
DEFAULT_KUBE_INTERVAL = 5.0
DEFAULT_REFRESH = 1.0
# Seconds between two scrapes of a member's /metrics: etcd's figures are rates over minutes,
# and a page is 160 kB to read and parse.
DEFAULT_METRICS_INTERVAL = 5.0
DEFAULT_NODE_TIMEOUT = 3.0
Sudo = bool | Literal["auto"]
# A read of a node or of the API unanswered this long is slow: the screen shows the part's
# previous answer (it never waits for it) and says how long the newer one has been awaited.
SLOW_ANSWER_SECONDS = 1.0
# The fleet's pace for a cluster not on screen (`[fleet]` in the cluster's table): etcd's
# membership is what flips a row to QUORUM LOST, the nodes and the API change slowly.
DEFAULT_FLEET_ETCD_INTERVAL = 5.0
DEFAULT_FLEET_NODES_INTERVAL = 30.0
DEFAULT_FLEET_API_INTERVAL = 30.0
# How many clusters the fleet reads at once (`fleet_reads` at the top of the file).
DEFAULT_FLEET_READS = 4


class ConfigError(Exception):
    """A configuration problem, with a message meant for the operator."""


@dataclass(frozen=True)
class TlsFiles:
    """Client TLS material: CA bundle to trust, and our client certificate and its key."""

    ca: Path
    cert: Path
    key: Path


@dataclass(frozen=True)
class EtcdConfig:
    endpoints: tuple[str, ...]
    tls: TlsFiles
    timeout: float = DEFAULT_ETCD_TIMEOUT
    metrics_interval: float = DEFAULT_METRICS_INTERVAL


@dataclass(frozen=True)
class NodeConfig:
    """A control-plane node reached over SSH, or this machine itself when `local`.

    Unset SSH fields fall back to ~/.ssh/config (ProxyJump included) and ~/.ssh/known_hosts;
    `ssh_config = []` and `agent = false` shut out the user's own SSH setup (the lab does).
    `root` maps a local node's paths below another directory (a mounted disk, a lab node).
    `sudo`: the SSH user reads (and actions move manifests) as root through `sudo -n`: always
    (True), never (False), or from the first read this user may not make ("auto").
    `role`: "control-plane" runs etcd, kube-apiserver, the controller-manager and the scheduler;
    "etcd" is an external etcd node (kubeadm's topology), whose only static pod is etcd.
    """

    name: str
    address: str
    port: int | None = None
    user: str | None = None
    identity: Path | None = None
    known_hosts: Path | None = None
    ssh_config: tuple[Path, ...] | None = None
    agent: bool = True
    timeout: float = DEFAULT_NODE_TIMEOUT
    local: bool = False
    root: Path = Path("/")
    sudo: Sudo = False
    role: str = "control-plane"  # or "etcd": an external etcd node, etcd's static pod alone


@dataclass(frozen=True)
class KubeConfig:
    """The Kubernetes API: a kubeconfig resolved like kubectl's when `kubeconfig` is unset."""

    kubeconfig: Path | None = None
    context: str | None = None
    timeout: float = DEFAULT_KUBE_TIMEOUT
    interval: float = DEFAULT_KUBE_INTERVAL


@dataclass(frozen=True)
class Thresholds:
    """When a trend or a size becomes a finding; defaults as in shared/FINDINGS.md.

    Set in the config's `[thresholds]` table under these names. Every number a findings rule
    compares with lives here, so an operator can tune any of them and `kcockpit findings`
    can name them. `raft_lag_entries` is both how far a voting member may trail the leader
    before `etcd.raft-lag` and how close a member must be to count as caught up (the
    promote and move-leader guards ask the same question, through one predicate).
    """

    raft_lag_entries: int = 1000
    # A member is worth defragmenting (the leader last) when this much of its file is free.
    fragmented_free_ratio: float = 0.20
    fragmented_free_min_bytes: int = 1_000_000
    db_size_divergence: float = 0.20
    db_size_divergence_min_bytes: int = 1024**2
    db_quota_ratio: float = 0.80
    default_quota_bytes: int = 2 * 1024**3
    election_terms: int = 3
    election_window: float = 600.0
    max_voting_members: int = 7
    disk_warning_percent: float = 85.0
    disk_error_percent: float = 95.0
    cert_expiring_days: float = 30.0
    cert_expiring_error_days: float = 7.0
    clock_skew_warning_seconds: float = 1.0
    clock_skew_error_seconds: float = 30.0
    # How long restart-static-pod keeps a manifest out: at least the kubelet's
    # --file-check-frequency (20 s by default), or the kubelet may never notice it was gone.
    static_pod_file_check_seconds: float = 20.0
    # preflight: how old the newest etcd snapshot may be (no certificate may expire within
    # cert_expiring_days).
    preflight_snapshot_hours: float = 24.0
    # etcd's own /metrics, as etcd's mixin (kube-prometheus) alerts on them: rates and p99s
    # over metrics_rate_window (its [5m]), counts over metrics_long_window (its [15m]).
    metrics_rate_window: float = 300.0
    metrics_long_window: float = 900.0
    fsync_note_seconds: float = 0.010  # etcd's hardware guidance: a healthy disk's p99
    fsync_warning_seconds: float = 0.5
    fsync_critical_seconds: float = 1.0
    commit_warning_seconds: float = 0.25
    peer_rtt_warning_seconds: float = 0.15
    leader_changes: int = 4
    failed_proposals_per_minute: float = 5.0
    grpc_failed_warning_ratio: float = 0.01
    grpc_failed_critical_ratio: float = 0.05
    db_fragmented_in_use_ratio: float = 0.5
    db_fragmented_min_bytes: int = 104_857_600
    db_growth_horizon_seconds: float = 4 * 3600.0


@dataclass(frozen=True)
class FleetPace:
    """How often the fleet reads a cluster that is not on screen (seconds), from the cluster's
    `[fleet]` table: `etcd_interval`, `nodes_interval`, `api_interval`."""

    etcd: float = DEFAULT_FLEET_ETCD_INTERVAL
    nodes: float = DEFAULT_FLEET_NODES_INTERVAL
    api: float = DEFAULT_FLEET_API_INTERVAL


@dataclass(frozen=True)
class Config:
    name: str
    etcd: EtcdConfig
    nodes: tuple[NodeConfig, ...] = field(default=())
    refresh: float = DEFAULT_REFRESH
    source: Path | None = None
    kube: KubeConfig | None = None
    seams: Seams = field(default_factory=Seams)  # help from outside, e.g. the lab's
    thresholds: Thresholds = field(default_factory=Thresholds)
    read_only: bool = False  # `read_only = true`: every action refused, as with --read-only
    fleet: FleetPace = field(default_factory=FleetPace)  # its pace while off screen


def load_config(path: Path, cluster: str | None = None) -> Config:
    """Reads and validates a config file; every problem raises ConfigError with the reason.

    A file holds one cluster (top-level [etcd], [[nodes]] …) or several as `[clusters.NAME]`
    tables; `cluster` picks one of those, else `default = "NAME"`, else the first.
    """
    return load_config_with_table(path, cluster)[0]


def load_config_with_table(path: Path, cluster: str | None = None) -> tuple[Config, dict[str, Any]]:
    """`load_config`, plus the chosen cluster's raw table: the tables the cockpit does not read
    (the lab's `[lab]`) belong to whoever plugs into it, and the file is read only once."""
    table = select_cluster(_read_toml(path), cluster, path)
    return parse_config(table, base=path.resolve().parent, source=path), table


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path} is not valid TOML: {exc}") from None


def load_fleet(path: Path) -> tuple[list[tuple[Config, dict[str, Any]]], int]:
    """Every cluster of a file (one, for a single-cluster file) with its raw table, and how
    many the fleet reads at once (`fleet_reads`, default DEFAULT_FLEET_READS)."""
    raw = _read_toml(path)
    base = path.resolve().parent
    reads = _positive(raw, "fleet_reads", DEFAULT_FLEET_READS, f"{path}:")
    if reads != int(reads):
        raise ConfigError(f"{path}: fleet_reads must be a whole number of clusters, not {reads}")
    names: list[str | None] = [*cluster_names(raw)] or [None]
    tables = [select_cluster(raw, name, path) for name in names]
    return [(parse_config(t, base=base, source=path), t) for t in tables], int(reads)


def cluster_names(raw: dict[str, Any]) -> list[str]:
    clusters = raw.get("clusters")
    return list(clusters) if isinstance(clusters, dict) else []


def select_cluster(raw: dict[str, Any], cluster: str | None, path: Path) -> dict[str, Any]:
    names = cluster_names(raw)
    if not names:
        if cluster is not None:
            raise ConfigError(f"{path} holds a single cluster, not a [clusters.{cluster}] table")
        return raw
    chosen = cluster or raw.get("default") or names[0]
    if chosen not in names:
        raise ConfigError(f"{path}: no cluster {chosen!r} (clusters: {', '.join(names)})")
    table = raw["clusters"][chosen]
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [clusters.{chosen}] must be a table")
    return {"name": chosen, **table}


def parse_config(raw: dict[str, Any], base: Path, source: Path | None = None) -> Config:
    where = str(source or "config")
    etcd_raw = _table(raw, "etcd", where)
    endpoints = etcd_raw.get("endpoints")
    if not isinstance(endpoints, list) or not endpoints:
        raise ConfigError(f"{where}: [etcd] endpoints must be a non-empty list of https:// URLs")
    for endpoint in endpoints:
        _check_endpoint(endpoint, where)
    tls = TlsFiles(
        ca=_path(etcd_raw, "ca", base, where),
        cert=_path(etcd_raw, "cert", base, where),
        key=_path(etcd_raw, "key", base, where),
    )
    etcd = EtcdConfig(
        endpoints=tuple(endpoints),
        tls=tls,
        timeout=_positive(etcd_raw, "timeout", DEFAULT_ETCD_TIMEOUT, f"{where}: [etcd]"),
        metrics_interval=_positive(
            etcd_raw, "metrics_interval", DEFAULT_METRICS_INTERVAL, f"{where}: [etcd]"
        ),
    )
    nodes_raw = raw.get("nodes", [])
    if not isinstance(nodes_raw, list):
        raise ConfigError(f"{where}: nodes must be [[nodes]] tables")
    nodes = [_node(node_raw, index, base, where) for index, node_raw in enumerate(nodes_raw)]
    return Config(
        name=_string(raw, "name", f"{where}:") or "cluster",
        etcd=etcd,
        nodes=tuple(nodes),
        refresh=_positive(raw, "refresh", DEFAULT_REFRESH, f"{where}:"),
        source=source,
        kube=_kube(raw, base, where),
        thresholds=_thresholds(raw, where),
        read_only=_flag(raw, "read_only", False, f"{where}:"),
        fleet=_fleet(raw, where),
    )


def _fleet(raw: dict[str, Any], where: str) -> FleetPace:
    if "fleet" not in raw:
        return FleetPace()
    table = _table(raw, "fleet", where)
    where = f"{where}: [fleet]"
    known = {"etcd_interval", "nodes_interval", "api_interval"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(
            f"{where} unknown {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    return FleetPace(
        etcd=_positive(table, "etcd_interval", DEFAULT_FLEET_ETCD_INTERVAL, where),
        nodes=_positive(table, "nodes_interval", DEFAULT_FLEET_NODES_INTERVAL, where),
        api=_positive(table, "api_interval", DEFAULT_FLEET_API_INTERVAL, where),
    )


def _check_endpoint(endpoint: Any, where: str) -> None:
    problem = endpoint_problem(endpoint) if isinstance(endpoint, str) else "is not a string"
    if problem:
        raise ConfigError(f"{where}: [etcd] endpoints: {endpoint!r}: {problem}")


def _thresholds(raw: dict[str, Any], where: str) -> Thresholds:
    table = raw.get("thresholds", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [thresholds] must be a table")
    defaults = Thresholds()
    unknown = sorted(set(table) - set(vars(defaults)))
    if unknown:
        names = ", ".join(vars(defaults))
        raise ConfigError(f"{where}: unknown [thresholds] {', '.join(unknown)} (known: {names})")
    values = {}
    for key in table:
        value = _positive(table, key, 0, f"{where}: [thresholds]")
        values[key] = type(getattr(defaults, key))(value)
    return Thresholds(**values)


def _kube(raw: dict[str, Any], base: Path, where: str) -> KubeConfig | None:
    if "kube" not in raw:
        return None
    kube_raw = _table(raw, "kube", where)
    where = f"{where}: [kube]"
    return KubeConfig(
        kubeconfig=_optional_path(kube_raw, "kubeconfig", base, where),
        context=_string(kube_raw, "context", where),
        timeout=_positive(kube_raw, "timeout", DEFAULT_KUBE_TIMEOUT, where),
        interval=_positive(kube_raw, "interval", DEFAULT_KUBE_INTERVAL, where),
    )


def _node(raw: Any, index: int, base: Path, where: str) -> NodeConfig:
    local = isinstance(raw, dict) and raw.get("local") is True
    if not isinstance(raw, dict) or not raw.get("name") or not (raw.get("address") or local):
        raise ConfigError(f"{where}: [[nodes]] #{index + 1} needs a name and an address")
    where = f"{where}: [[nodes]] #{index + 1}"
    ssh_config = raw.get("ssh_config")
    if ssh_config is not None and not (
        isinstance(ssh_config, list) and all(isinstance(p, str) for p in ssh_config)
    ):
        raise ConfigError(f"{where} ssh_config must be a list of paths")
    port = raw.get("port")
    if port is not None and not (
        isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536
    ):
        raise ConfigError(f"{where} port must be 1-65535")
    return NodeConfig(
        name=_string(raw, "name", where) or "",
        address=_string(raw, "address", where) or "localhost",
        port=port,
        user=_string(raw, "user", where),
        identity=_optional_path(raw, "identity", base, where),
        known_hosts=_optional_path(raw, "known_hosts", base, where),
        ssh_config=None if ssh_config is None else tuple(_resolve(p, base) for p in ssh_config),
        agent=_flag(raw, "agent", True, where),
        timeout=_positive(raw, "timeout", DEFAULT_NODE_TIMEOUT, where),
        local=local,
        root=_optional_path(raw, "root", base, where) or Path("/"),
        sudo=_sudo(raw, local, where),
        role=_role(raw, where),
    )


def _role(raw: dict[str, Any], where: str) -> str:
    value = raw.get("role", "control-plane")
    if value not in ("control-plane", "etcd"):
        raise ConfigError(f'{where} role must be "control-plane" or "etcd", not {value!r}')
    return str(value)


def _sudo(raw: dict[str, Any], local: bool, where: str) -> Sudo:
    value = raw.get("sudo", False)
    if value is not True and value is not False and value != "auto":
        raise ConfigError(f'{where} sudo must be true, false or "auto", not {value!r}')
    if value and local:
        raise ConfigError(f"{where} sudo is for SSH nodes: on a local node run kcockpit as root")
    return cast(Sudo, value)


def _table(raw: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = raw.get(key)
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: missing [{key}] table")
    return value


def _string(raw: dict[str, Any], key: str, where: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where} {key} must be a string, not {value!r}")
    return value


def _flag(raw: dict[str, Any], key: str, default: bool, where: str) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{where} {key} must be true or false, not {value!r}")
    return value


def _path(raw: dict[str, Any], key: str, base: Path, where: str) -> Path:
    path = _optional_path(raw, key, base, f"{where}: [etcd]")
    if path is None:
        raise ConfigError(f"{where}: [etcd] {key} (a file path) is required")
    return path


def _optional_path(raw: dict[str, Any], key: str, base: Path, where: str) -> Path | None:
    value = _string(raw, key, where)
    return None if value is None else _resolve(value, base)


def _resolve(value: str, base: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _positive(raw: dict[str, Any], key: str, default: float, where: str) -> float:
    """A finite number above zero: a timeout of 0, -1, nan or inf would mean no deadline or
    no wait at all, and TOML's `true` is not a number of seconds."""
    value = raw.get(key, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigError(f"{where} {key} must be a positive number of seconds, not {value!r}")
    return float(value)
