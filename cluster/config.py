"""The cockpit's configuration file (TOML), parsed into plain dataclasses.

Relative paths are resolved against the file's own directory so a config written by the lab
(or kept next to its certificates) works from any working directory.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_ETCD_TIMEOUT = 2.0
DEFAULT_REFRESH = 1.0


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


@dataclass(frozen=True)
class NodeConfig:
    """A control-plane node reached over SSH."""

    name: str
    address: str
    port: int = 22
    user: str | None = None
    identity: Path | None = None
    known_hosts: Path | None = None


@dataclass(frozen=True)
class Config:
    name: str
    etcd: EtcdConfig
    nodes: tuple[NodeConfig, ...] = field(default=())
    refresh: float = DEFAULT_REFRESH
    source: Path | None = None


def load_config(path: Path) -> Config:
    """Reads and validates a config file; every problem raises ConfigError with the reason."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path} is not valid TOML: {exc}") from None
    return parse_config(raw, base=path.resolve().parent, source=path)


def parse_config(raw: dict[str, Any], base: Path, source: Path | None = None) -> Config:
    where = str(source or "config")
    etcd_raw = _table(raw, "etcd", where)
    endpoints = etcd_raw.get("endpoints")
    if (
        not isinstance(endpoints, list)
        or not endpoints
        or not all(isinstance(e, str) and e.startswith(("https://", "http://")) for e in endpoints)
    ):
        raise ConfigError(f"{where}: [etcd] endpoints must be a non-empty list of https:// URLs")
    tls = TlsFiles(
        ca=_path(etcd_raw, "ca", base, where),
        cert=_path(etcd_raw, "cert", base, where),
        key=_path(etcd_raw, "key", base, where),
    )
    etcd = EtcdConfig(
        endpoints=tuple(endpoints),
        tls=tls,
        timeout=_positive(etcd_raw, "timeout", DEFAULT_ETCD_TIMEOUT, where),
    )
    nodes = []
    for index, node_raw in enumerate(raw.get("nodes", [])):
        if (
            not isinstance(node_raw, dict)
            or not node_raw.get("name")
            or not node_raw.get("address")
        ):
            raise ConfigError(f"{where}: [[nodes]] #{index + 1} needs a name and an address")
        nodes.append(
            NodeConfig(
                name=str(node_raw["name"]),
                address=str(node_raw["address"]),
                port=int(node_raw.get("port", 22)),
                user=node_raw.get("user"),
                identity=_optional_path(node_raw, "identity", base),
                known_hosts=_optional_path(node_raw, "known_hosts", base),
            )
        )
    return Config(
        name=str(raw.get("name", "cluster")),
        etcd=etcd,
        nodes=tuple(nodes),
        refresh=_positive(raw, "refresh", DEFAULT_REFRESH, where),
        source=source,
    )


def _table(raw: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = raw.get(key)
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: missing [{key}] table")
    return value


def _path(raw: dict[str, Any], key: str, base: Path, where: str) -> Path:
    path = _optional_path(raw, key, base)
    if path is None:
        raise ConfigError(f"{where}: [etcd] {key} (a file path) is required")
    return path


def _optional_path(raw: dict[str, Any], key: str, base: Path) -> Path | None:
    value = raw.get(key)
    if value is None:
        return None
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else base / path


def _positive(raw: dict[str, Any], key: str, default: float, where: str) -> float:
    value = raw.get(key, default)
    if not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{where}: {key} must be a positive number of seconds")
    return float(value)
