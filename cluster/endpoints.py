"""Whether an etcd endpoint can be dialled: one answer for the config and for the client.

A configured endpoint and a client URL a member advertises are checked alike: kcockpit talks TLS
only, and etcd itself checks advertised URLs only with Go's url.Parse (a port beyond 65535,
port 0 or an empty port pass it), so a URL that names no dialable address must be said, not
dialled and not left to raise deep in a refresh.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def endpoint_problem(endpoint: str) -> str | None:
    """Why `endpoint` cannot be dialled, or None. Python's urlsplit silently drops tabs and
    newlines and raises ValueError on a bad port or bracket, so neither is left to it."""
    if any(c.isspace() or not c.isprintable() for c in endpoint):
        return "control characters or spaces"
    if not endpoint.startswith("https://"):
        return "not https:// (kcockpit only talks TLS to etcd)"
    try:
        parts = urlsplit(endpoint)
        host_port = parts.netloc.rpartition("@")[2]
        if not host_port.startswith("[") and host_port.count(":") > 1:
            return "IPv6 address without brackets (write https://[address]:port)"
        port = parts.port
    except ValueError as exc:
        return str(exc)[:1].lower() + str(exc)[1:]
    if not parts.hostname:
        return "no host"
    if port == 0 or host_port.endswith(":"):
        return "no port to dial (0 or empty)"
    return None
