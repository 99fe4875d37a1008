"""Issue items 3 and 8a on a real lab: what members say is not trusted blindly.

Item 3: one unusable client URL is that member's error, never a broken refresh. etcd 3.5.16
checks `--advertise-client-urls` only with Go's url.Parse and SplitHostPort: it starts and
advertises `https://h:237900`, `https://[::1]:99999`, `https://h:` (empty port), `https://h:0`
and percent-encoded garbage bytes (`https://%FF%FE:2379`), and refuses at startup IPv6 without
brackets, a URL without scheme or port, an empty host and control characters. So a real learner
advertising port 237900 is staged here; the forms etcd refuses are handed to a real Collector as
its endpoints (the config file refuses them on load, the client must not rely on that).

Item 8a: a guard judges a fresh snapshot, in which a frozen member is down once its deadline
passes, never healthy on the answer it gave before it froze.
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from actions.base import VerdictKind
from actions.registry import build_action
from cluster.collect import Collector
from cluster.config import Config
from cluster.etcd.client import EtcdClient, EtcdError, target_of
from cluster.etcd.proto import etcd_rpc_pb2 as pb
from cluster.etcd.source import EtcdSource
from cluster.model import Snapshot
from cluster.untrusted import printable
from lab import pki
from lab.control import Lab
from lab.layout import ETCD_CLIENT_PORT, find_etcd
from lab.network import LabNetwork
from tests.helpers import eventually, kcockpit, process_state, wait_until

BAD_NAME = "cp-badurl"
PR_SET_PDEATHSIG = 1


@pytest.fixture()
def frozen() -> Iterator[list[int]]:
    """Pids a test SIGSTOPs; every one is SIGCONTed afterwards, whatever happened."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        os.kill(pid, signal.SIGCONT)


def _die_with_parent() -> None:
    """Runs in the child before exec: the extra etcd dies with the test process."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def free_ipv6_loopback_port() -> int:
    with socket.socket(socket.AF_INET6) as probe:
        probe.bind(("::1", 0))
        return probe.getsockname()[1]


async def healthy_snapshot(collector: Collector, voting: int = 3) -> Snapshot:
    async def probe() -> Snapshot | None:
        snapshot = await collector.collect(fresh=True)
        etcd = snapshot.etcd
        return snapshot if etcd.leader and etcd.healthy_voting == voting else None

    return await eventually(probe, 30, f"{voting} healthy voting members and a leader")


# -- item 3: unusable URLs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://10.0.0.1:237900", "port out of range"),
        ("https://[::1]:99999", "port out of range"),
        ("https://fd00::10:2379", "IPv6 address without brackets"),
        ("10.0.0.1:2379", "not https://"),
        ("http://10.0.0.1:2379", "not https://"),
        ("https://10.0.0.1:", "no port to dial"),
        ("https://10.0.0.1:0", "no port to dial"),
        ("https://:2379", "no host"),
        ("https://[fd00::10:2379", "invalid IPv6 URL"),
        ("https://10.0.0.1:23a9", "could not be cast to integer"),
        ("https://10.0.0.1:2379\n", "control characters"),
        ("https://\x1b[31m:2379", "control characters"),
        ("https://10.0.0.1:2379\udcff", "control characters"),
    ],
)
def test_unusable_urls_are_etcd_errors_naming_the_url(url: str, why: str) -> None:
    with pytest.raises(EtcdError) as raised:
        target_of(url)
    assert raised.value.code == "BAD_URL"
    assert why in raised.value.detail and repr(url) in raised.value.detail


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("https://[fd00::10]:2379", "[fd00::10]:2379"),
        ("https://10.0.0.1:2379", "10.0.0.1:2379"),
        ("https://10.0.0.1", "10.0.0.1:2379"),
        ("https://user:secret@10.0.0.1:2379?x=1", "10.0.0.1:2379"),
    ],
)
def test_usable_urls_keep_their_target(url: str, target: str) -> None:
    assert target_of(url) == target


async def test_configured_endpoints_that_cannot_be_dialled_are_rows_not_a_broken_refresh(
    lab: Lab, config: Config
) -> None:
    """Only unusable endpoints: each is a row with its own error, and the findings and their
    etcdctl commands are built from them. Beside a good one: the real member list as usual."""
    bad = ("https://127.0.0.1:237900", "https://fd00::10:2379", "https://\x1b[2J:2379")
    only_bad = dataclasses.replace(config, etcd=dataclasses.replace(config.etcd, endpoints=bad))
    collector = Collector(only_bad)
    try:
        snapshot = await collector.collect(fresh=True)
    finally:
        await collector.close()
    assert snapshot.etcd.error and "BAD_URL" in snapshot.etcd.error
    shown = tuple(printable(url) for url in bad)  # as the snapshot holds them: data, inert
    rows = {m.endpoint: m.error or "" for m in snapshot.etcd.members}
    assert set(rows) == set(shown)
    assert "port out of range" in rows[shown[0]]
    assert "IPv6 address without brackets" in rows[shown[1]]
    assert "control characters" in rows[shown[2]] and "\x1b" not in rows[shown[2]]
    unreachable = [f for f in snapshot.findings if f.id == "etcd.member-unreachable"]
    assert {f.subject for f in unreachable} == set(shown)
    assert all(f.command and f"--endpoints={f.subject}" in f.command for f in unreachable)

    mixed = (*bad, *config.etcd.endpoints)
    client = EtcdClient(config.etcd.tls, config.etcd.timeout)
    source = EtcdSource(client, mixed)
    try:
        cluster = await source.read(fresh=True)
    finally:
        source.close()
        await client.close()
    assert cluster.error is None and cluster.healthy_voting == len(config.etcd.endpoints)


@dataclasses.dataclass
class ExtraMember:
    """A real etcd learner started beside the lab, advertising a client URL of the test's."""

    process: subprocess.Popen[bytes]
    member_id: int
    ipv6_url: str  # where it also listens: a bracketed IPv6 URL the cockpit can dial
    log: Path


def lab_route(net: LabNetwork, source: str) -> None:
    """This machine's route to the lab, speaking from `source`."""
    route = ["ip", "route", "replace", net.subnet, "dev", net.bridge, "src", source]
    subprocess.run(route, check=True)


async def start_extra_member(
    lab: Lab, config: Config, tmp_path: Path, advertise: str
) -> ExtraMember:
    """MemberAdd as a learner, then the etcd process for it: certificates from the lab's own
    etcd CA, the lab's TLS flags, listening on a new lab address and on [::1]."""
    peer_url = lab.peer_url_for(BAD_NAME)
    address = urlsplit(peer_url).hostname or ""
    kubernetes = tmp_path / "kubernetes"
    net = LabNetwork(lab.spec.subnet)
    cas = pki.load_cas(lab.paths.kubernetes_dir("cp-1"))
    pki.write_node_pki(kubernetes, cas, BAD_NAME, address, net.gateway)
    # This member runs on this machine: the bridge takes its address, and this machine speaks
    # to the lab from it meanwhile (peers check a peer's source address against its SANs).
    subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", net.bridge], check=True)
    lab_route(net, address)
    client = EtcdClient(config.etcd.tls, config.etcd.timeout)

    async def add() -> pb.MemberAddResponse | None:
        try:
            return await client.member_add(config.etcd.endpoints[0], [peer_url], learner=True)
        except EtcdError as exc:  # right after a leader change etcd refuses for ~5 s
            if "unhealthy cluster" in exc.detail:
                return None
            raise

    try:
        added = await eventually(add, 30, "etcd to accept the learner")
    finally:
        await client.close()
    initial = ",".join(f"{m.name or BAD_NAME}={m.peerURLs[0]}" for m in added.members)
    etcd_pki = kubernetes / "pki" / "etcd"
    ipv6_url = f"https://[::1]:{free_ipv6_loopback_port()}"
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    log = tmp_path / "etcd.log"
    command = [
        str(find_etcd()),
        f"--name={BAD_NAME}",
        f"--data-dir={data_dir}",
        f"--advertise-client-urls={advertise}",
        f"--listen-client-urls=https://{address}:{ETCD_CLIENT_PORT},{ipv6_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-cluster={initial}",
        "--initial-cluster-state=existing",
        f"--cert-file={etcd_pki / 'server.crt'}",
        f"--key-file={etcd_pki / 'server.key'}",
        f"--trusted-ca-file={etcd_pki / 'ca.crt'}",
        "--client-cert-auth=true",
        f"--peer-cert-file={etcd_pki / 'peer.crt'}",
        f"--peer-key-file={etcd_pki / 'peer.key'}",
        f"--peer-trusted-ca-file={etcd_pki / 'ca.crt'}",
        "--peer-client-cert-auth=true",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=out, preexec_fn=_die_with_parent)
    return ExtraMember(process, added.member.ID, ipv6_url, log)


async def remove_if_listed(config: Config, member_id: int) -> None:
    """Cleanup: the learner out of the member list, whatever the test got to."""
    client = EtcdClient(config.etcd.tls, config.etcd.timeout)
    try:
        listed = await client.member_list(config.etcd.endpoints[0])
        if member_id in {m.ID for m in listed.members}:
            await client.member_remove(config.etcd.endpoints[0], member_id)
    finally:
        await client.close()


async def test_a_member_advertising_port_237900_is_its_own_error_and_can_be_removed(
    lab: Lab, config: Config, collector: Collector, tmp_path: Path
) -> None:
    await healthy_snapshot(collector)
    address = urlsplit(lab.peer_url_for(BAD_NAME)).hostname
    advertised = f"https://{address}:237900"
    extra = await start_extra_member(lab, config, tmp_path, advertised)
    try:

        async def joined() -> Snapshot | None:
            snapshot = await collector.collect()
            member = snapshot.etcd.member(BAD_NAME)
            return snapshot if member is not None and member.endpoint == advertised else None

        # a learner publishes its URLs once it has joined: slow on a loaded box
        snapshot = await eventually(joined, 60, f"{BAD_NAME} to advertise {advertised}")
        bad = snapshot.etcd.member(BAD_NAME)
        assert bad is not None and bad.is_learner and not bad.reachable
        assert bad.error == (
            f"BAD_URL: unusable client URL {advertised!r}: port out of range 0-65535"
        )
        assert snapshot.etcd.error is None and snapshot.etcd.healthy_voting == 3
        finding = next(
            f
            for f in snapshot.findings
            if f.id == "etcd.member-unreachable" and f.subject == BAD_NAME
        )
        assert advertised in finding.evidence and f"--endpoints={advertised}" in (
            finding.command or ""
        )

        # The other rows keep updating: a write moves their raft index on.
        before = {m.name: m.raft_index or 0 for m in snapshot.etcd.voting}
        leader = snapshot.etcd.leader
        assert leader is not None and leader.endpoint
        await collector.etcd_client.put(leader.endpoint, b"kcockpit-untrusted/write", b"1")
        after = await collector.collect(fresh=True)
        assert all((after.etcd.member(n).raft_index or 0) > i for n, i in before.items())  # type: ignore[union-attr]
        await collector.etcd_client.delete(leader.endpoint, b"kcockpit-untrusted/write")

        # The member itself is up: a bracketed IPv6 URL reaches it as a target.
        status = await collector.etcd_client.status(extra.ipv6_url)
        assert status.header.member_id == extra.member_id and status.isLearner

        result = kcockpit(
            "act",
            "member-remove",
            BAD_NAME,
            "--config",
            str(lab.paths.config),
            "--confirm",
            BAD_NAME,
            env={"KCOCKPIT_STATE_DIR": str(tmp_path / "state")},
            timeout=90,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        gone = await collector.collect(fresh=True)
        assert gone.etcd.member(BAD_NAME) is None and gone.etcd.healthy_voting == 3
    finally:
        extra.process.kill()
        extra.process.wait()
        net = LabNetwork(lab.spec.subnet)
        lab_route(net, net.gateway)
        subprocess.run(["ip", "addr", "del", f"{address}/32", "dev", net.bridge], check=False)
        await remove_if_listed(config, extra.member_id)


# -- item 8a: guards judge the present ----------------------------------------------------------


async def test_a_fresh_collection_never_counts_a_frozen_member_healthy_on_its_last_answer(
    lab: Lab, collector: Collector, frozen: list[int]
) -> None:
    warm = await healthy_snapshot(collector)
    leader = warm.etcd.leader
    assert leader is not None
    target, other = sorted(m.name for m in warm.etcd.voting if m.name != leader.name)
    pid = lab.freeze(target)
    frozen.append(pid)
    wait_until(lambda: process_state(pid) == "T", 5, f"etcd {pid} stopped")

    live = await collector.collect()  # the live screen: the silent member keeps its last answer
    assert live.etcd.member(target).healthy  # type: ignore[union-attr]
    remove_other = build_action("member-remove", other)
    assert remove_other.guard(live).kind is VerdictKind.CONFIRM  # what a stale view would allow

    fresh = await collector.collect(fresh=True)  # its call from `live` is not joined
    member = fresh.etcd.member(target)
    assert member is not None and not member.reachable and not member.healthy
    assert "DEADLINE_EXCEEDED" in (member.error or "")
    assert fresh.etcd.healthy_voting == 2
    verdict = remove_other.guard(fresh)
    assert verdict.kind is VerdictKind.REFUSED
    assert any("below the new quorum" in reason for reason in verdict.reasons), verdict
    move = build_action("move-leader", target).guard(fresh)
    assert move.kind is VerdictKind.REFUSED
    assert any("not healthy" in reason for reason in move.reasons), move

    os.kill(frozen.pop(), signal.SIGCONT)
    back = await healthy_snapshot(collector)
    assert back.etcd.member(target).healthy  # type: ignore[union-attr]
