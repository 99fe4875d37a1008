"""Whether a static pod runs, as the node itself shows it: the container runtime when `crictl`
answers, else the component's listening socket and process, and etcd's health endpoint.

Debian ships no `crictl`, and a node may lack it for other reasons; what every node gives is its
sockets. The survey runs `ss -Hltnp` anyway, and as root it names the process on each port. A
component counts as running when a process of its name (the kernel's, cut to 15 characters)
listens on its port, taken from its manifest's flags (kubeadm's defaults otherwise). Nothing on
the port means not running, and so does another process on it (static-pod.port-conflict names
it); a listener ss may not name (ss run as a user who does not own it) leaves it unknown.

Health is asked only where it needs no secret and no TLS shortcut: etcd's `--listen-metrics-urls`,
plain HTTP on the node's own loopback (kubeadm: http://127.0.0.1:2381), `/health` with a short
curl deadline. The apiserver's /livez and the controller-manager's and scheduler's /healthz are
HTTPS, the latter two with self-signed certificates, and the cockpit never skips TLS
verification: they are not asked. A node without curl gives no health evidence, not an error.
What is parsed here is the node's output, untrusted: nothing raises on it.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable

from cluster.nodes.access import CommandResult
from cluster.nodes.model import COMPONENT_PORTS, Listener
from cluster.nodes.parse import Manifest

Running = tuple[bool | None, str]  # (running, evidence); None: nothing could tell
RunningStates = dict[str, Running]  # component -> Running; "" for any component not listed

CRICTL_COMMAND = ("crictl", "ps", "-o", "json")
HEALTH_SECONDS = 2  # curl's whole deadline: a wedged etcd cannot hold the survey longer
# Asked before a node's manifests are known; an answer counts only when the manifest names it.
KUBEADM_HEALTH_URLS = {"etcd": "http://127.0.0.1:2381/health"}
NOT_RUN = (126, 127)  # the shell's "cannot execute" and "not found": no curl on the node
SHOWN_CHARS = 120  # of a flag's value or a tool's error, in evidence


def json_items(stdout: str, key: str) -> list[dict] | None:
    """The objects listed under `key` of a command's JSON output; None when it is not such JSON."""
    try:
        items = json.loads(stdout).get(key) or []
    except (ValueError, AttributeError, RecursionError):
        return None
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else None


def crictl_states(stdout: str) -> RunningStates:
    """component -> (running, evidence) from `crictl ps -o json`."""
    containers = json_items(stdout, "containers")
    if containers is None:
        return {"": (None, "unknown: crictl printed no JSON")}
    states: RunningStates = {"": (False, "crictl: no running container")}
    for container in containers:
        metadata = container.get("metadata")
        name = str(metadata.get("name", "")) if isinstance(metadata, dict) else ""
        if container.get("state") == "CONTAINER_RUNNING":
            states[name] = (True, "crictl: container running")
    return states


def _shown(value: str) -> str:
    return value if len(value) <= SHOWN_CHARS else value[:SHOWN_CHARS] + "…"


def _port(digits: str) -> int | None:
    """A TCP port from its decimal digits (never int() of thousands of them: that raises)."""
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 5):
        return None
    return int(digits) if 0 < int(digits) < 65536 else None


def _url_address(url: str) -> tuple[str, int] | None:
    """(IP address, port) of a `scheme://IP:port` listen URL (etcd takes no other host than
    `localhost`), None when it is not one."""
    _, sep, rest = url.strip().partition("://")
    host, colon, digits = rest.partition("/")[0].rpartition(":")
    port = _port(digits)
    if not sep or not colon or port is None:
        return None
    host = "127.0.0.1" if host == "localhost" else host.removeprefix("[").removesuffix("]")
    try:
        return str(ipaddress.ip_address(host)), port
    except ValueError:
        return None


def component_port(component: str, manifest: Manifest | None) -> int | str:
    """The TCP port `component` serves on, from its manifest's flags (etcd: the first of
    `--listen-client-urls`; the others: `--secure-port`), else kubeadm's; or why none can be
    looked for."""
    flag = "listen-client-urls" if component == "etcd" else "secure-port"
    value = manifest.flag(flag) if manifest else None
    if value is None:
        return COMPONENT_PORTS[component]
    if component == "etcd":
        address = _url_address(value.split(",")[0])
        port = address[1] if address else None
    else:
        port = _port(value)
    return port if port is not None else f"--{flag}={_shown(value)} names no port to look for"


def socket_running(component: str, port: int, listeners: Iterable[Listener]) -> Running:
    """From `ss -Hltnp`'s listeners: running when a process of `component`'s name listens on
    `port`; not running when nothing does or another process does; unknown when ss could not
    name the process."""
    on_port = [listener for listener in listeners if listener.port == port]
    own = [listener for listener in on_port if listener.held_by(component)]
    if own:
        where = ", ".join(f"{listener.address}:{port}" for listener in own)
        return True, f"ss: {own[0].process} (pid {own[0].pid}) listens on {where}"
    if not on_port:
        return False, f"ss: nothing listens on :{port}"
    unnamed = next((listener for listener in on_port if not listener.process), None)
    if unnamed is not None:
        return None, (
            f"ss: {unnamed.address}:{port} is listened on, but ss may not name the process "
            "(not root)"
        )
    stranger = on_port[0]
    return False, (
        f"ss: {stranger.process} (pid {stranger.pid}) listens on {stranger.address}:{port}, "
        f"not {component}"
    )


def health_url(component: str, manifest: Manifest | None) -> str | None:
    """etcd's `/health` on the first plain-http URL of its `--listen-metrics-urls` (a wildcard
    address is reached on the node's loopback); None for the HTTPS-only components, and for
    an etcd without such a URL."""
    if component != "etcd" or manifest is None:
        return None
    for url in (manifest.flag("listen-metrics-urls") or "").split(","):
        address = _url_address(url) if url.strip().startswith("http://") else None
        if address is None:
            continue
        host, port = address
        if ipaddress.ip_address(host).is_unspecified:
            host = "127.0.0.1" if ":" not in host else "::1"
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/health"
    return None


def health_command(url: str) -> tuple[str, ...]:
    """One bounded GET of `url` printing only the HTTP status: no config file (-q), no proxy,
    plain HTTP only, nothing but the status kept, at most HEALTH_SECONDS."""
    return (
        "curl",
        "-q",
        "-sS",
        "--max-time",
        str(HEALTH_SECONDS),
        "--noproxy",
        "*",
        "--proto",
        "=http",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        url,
    )


def health_words(result: CommandResult) -> str | None:
    """From health_command's result: `healthy`, `unhealthy: HTTP 503` or `unhealthy: <curl's
    error>`; None when there is no curl to ask with."""
    if result.exit_status in NOT_RUN:
        return None
    if not result.ok:
        error = next(iter(result.stderr.strip().splitlines()), "")
        return f"unhealthy: {_shown(error) or f'curl exited with {result.exit_status}'}"
    status = result.stdout.strip()
    if not (status.isascii() and status.isdigit() and len(status) == 3):
        return "unhealthy: curl printed no HTTP status"
    return "healthy" if status == "200" else f"unhealthy: HTTP {status}"


def observed(
    component: str, manifest: Manifest | None, listeners: Iterable[Listener], health: str | None
) -> Running:
    """Running and its evidence from the node's sockets, with the health endpoint's words
    (`url: healthy`) added when a listener says the component may run."""
    port = component_port(component, manifest)
    if isinstance(port, str):
        return None, f"ss: {port}"
    running, evidence = socket_running(component, port, listeners)
    if health and running is not False:
        evidence += f"; {health}"
    return running, evidence
