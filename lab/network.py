"""The lab's network: a bridge on this machine and, per node, a network namespace on it.

A control-plane node has its own non-loopback address, its own loopback and its own sockets:
the API server refuses loopback addresses as the `kubernetes` Service's endpoints, certificates
name node addresses, and `ss` on a node must show that node's listeners only. So each node gets
a network namespace with a veth pair onto one lab bridge, an address from a private /24 that
overlaps no route of this machine, and the bridge takes `.1`: the cockpit (on the host) reaches
every node through it, and no lab packet leaves the machine (nothing is routed or NATed out).
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lab.layout import LabError

ALIAS_PREFIX = "kcockpit lab "
SUBNET_ENV = "KCOCKPIT_LAB_SUBNET"  # e.g. 10.77.3.0/24: the lab takes this /24, no other
CANDIDATES = ipaddress.IPv4Network("10.213.0.0/16")  # searched /24 by /24 for a free one
FIRST_NODE_HOST = 11  # cp-1 is .11, cp-2 .12, …: the addresses read like a rack's


@dataclass(frozen=True)
class LabNetwork:
    """One lab's /24: the bridge's name and address, and each node's namespace and link names
    (derived from the subnet, so two labs on one machine never share a name)."""

    subnet: str

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet)

    @property
    def gateway(self) -> str:
        """The bridge's address on this machine: where the cockpit talks to the nodes from."""
        return str(self.network.network_address + 1)

    @property
    def tag(self) -> str:
        return f"kcl{zlib.crc32(self.subnet.encode()) % 100000}"  # short: links are ≤ 15 chars

    @property
    def bridge(self) -> str:
        return self.tag

    def address(self, index: int) -> str:
        """The address of the `index`-th node (0-based)."""
        host = FIRST_NODE_HOST + index
        if host >= self.network.num_addresses - 1:
            raise LabError(f"no address left in {self.subnet} for node {index + 1}")
        return str(self.network.network_address + host)

    def host_number(self, address: str) -> int:
        return int(ipaddress.IPv4Address(address)) - int(self.network.network_address)

    def namespace(self, address: str) -> str:
        return f"{self.tag}-{self.host_number(address)}"

    def veth(self, address: str) -> str:
        return f"{self.tag}v{self.host_number(address)}"


def choose_network() -> LabNetwork:
    """$KCOCKPIT_LAB_SUBNET when set, else the first /24 of 10.213.0.0/16 that overlaps no
    route or address of this machine (another lab's bridge included)."""
    taken = _routed_networks()
    wanted = os.environ.get(SUBNET_ENV)
    if wanted:
        try:
            subnet = ipaddress.IPv4Network(wanted, strict=True)
        except ValueError as exc:
            raise LabError(f"${SUBNET_ENV}: {exc}") from None
        if subnet.prefixlen != 24:
            raise LabError(f"${SUBNET_ENV} must be a /24, not {wanted}")
        clash = next((n for n in taken if n.overlaps(subnet)), None)
        if clash:
            raise LabError(f"${SUBNET_ENV}={wanted} overlaps {clash}, routed on this machine")
        return LabNetwork(str(subnet))
    for subnet in CANDIDATES.subnets(new_prefix=24):
        if not any(n.overlaps(subnet) for n in taken):
            return LabNetwork(str(subnet))
    raise LabError(f"every /24 of {CANDIDATES} is routed here; set ${SUBNET_ENV}")


def _routed_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 destination of every routing table, and every address's network, except
    the default route (which overlaps everything and is what the lab must not use)."""
    routes = _ip_json("-4", "route", "show", "table", "all")
    addresses = _ip_json("-4", "addr", "show")
    networks = []
    for route in routes:
        destination = str(route.get("dst", ""))
        if destination and destination != "default":
            networks.append(ipaddress.IPv4Network(destination, strict=False))
    for link in addresses:
        for info in link.get("addr_info", ()):
            networks.append(
                ipaddress.IPv4Network(f"{info['local']}/{info['prefixlen']}", strict=False)
            )
    return networks


def _ip_json(*args: str) -> list[dict]:
    return json.loads(_ip("-j", *args) or "[]")


def _ip(*args: str, check: bool = True) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise LabError(f"ip {' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def create_bridge(net: LabNetwork, owner: Path) -> None:
    """The bridge with `.1`, labelled with the lab directory that owns it (see sweep)."""
    remove_bridge(net)
    _ip("link", "add", net.bridge, "type", "bridge")
    _ip("link", "set", net.bridge, "alias", f"{ALIAS_PREFIX}{owner}")
    _ip("addr", "add", f"{net.gateway}/24", "dev", net.bridge)
    _ip("link", "set", net.bridge, "up")


def remove_bridge(net: LabNetwork) -> None:
    _ip("link", "del", net.bridge, check=False)


def sweep(alive: Callable[[Path], bool]) -> None:
    """Removes the bridges and namespaces of labs whose daemon was killed (SIGKILL leaves no
    time to clean up; their nodes are gone with it): `alive(lab_dir)` says which still run."""
    for link in _ip_json("link", "show", "type", "bridge"):
        alias = str(link.get("ifalias", ""))
        if not alias.startswith(ALIAS_PREFIX) or alive(Path(alias.removeprefix(ALIAS_PREFIX))):
            continue
        tag = str(link["ifname"])
        for namespace in _ip("netns", "list").split():
            if namespace.startswith(f"{tag}-"):
                _ip("netns", "del", namespace, check=False)
        _ip("link", "del", tag, check=False)


def add_node(net: LabNetwork, address: str) -> str:
    """A namespace for the node at `address`, linked to the bridge; returns the namespace's
    name (its file is /run/netns/NAME)."""
    namespace, veth = net.namespace(address), net.veth(address)
    remove_node(net, address)
    _ip("netns", "add", namespace)
    _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", namespace)
    _ip("link", "set", veth, "master", net.bridge, "up")
    _ip("-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
    _ip("-n", namespace, "link", "set", "eth0", "up")
    _ip("-n", namespace, "link", "set", "lo", "up")
    _ip("-n", namespace, "route", "add", "default", "via", net.gateway)
    return namespace


def remove_node(net: LabNetwork, address: str) -> None:
    """Deleting the namespace deletes its end of the veth pair, and so the pair."""
    _ip("netns", "del", net.namespace(address), check=False)
    _ip("link", "del", net.veth(address), check=False)
