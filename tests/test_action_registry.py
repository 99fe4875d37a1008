"""The one table of actions (actions/specs.py) is what the classes, the panes' keys and the
palette are made from: each check here fails when one of them drifts from it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from actions.base import VerdictKind
from actions.registry import ACTIONS, build_action
from actions.specs import SPECS, Confirmation, TargetKind, palette_label, targets
from cluster.kube.model import KubePod, KubeView
from cluster.model import Snapshot
from tests.helpers import eventually
from tests.test_guards import (
    HEALTHY,
    ONE_DOWN,
    PARKED,
    RUNNING,
    TWO_DOWN,
    member,
    node,
    snap,
    with_nodes,
)
from tests.test_hostile_input import config_for
from tui.app import CockpitApp
from tui.cli import cockpit_app
from tui.commands import CockpitCommands
from widgets.filter import FilterableTable
from widgets.table_pane import TablePane

NODES = (node("cp-1", RUNNING), node("cp-2", PARKED), node("cp-3", RUNNING, reachable=False))
SNAPSHOTS = (
    with_nodes(HEALTHY, *NODES),
    with_nodes(ONE_DOWN, *NODES),
    with_nodes(TWO_DOWN, *NODES),
    snap(member(1), member(2)),
    snap(member(1), member(2), member(3), member(4, learner=True)),
)


def hand_built() -> Snapshot:
    """Members, nodes with static pods, and DaemonSet pods besides a pod nothing owns."""
    calico = {"owner_kind": "DaemonSet", "owner_name": "calico-node"}
    pods = (
        KubePod("kube-system", "calico-node-a", "cp-1", "Running", True, **calico),
        KubePod("kube-system", "calico-node-b", "cp-2", "Running", False, **calico),
        KubePod("kube-system", "coredns-x", "cp-1", "Running", True, owner_kind="ReplicaSet"),
    )
    view = KubeView("https://127.0.0.1:6443", dt.datetime.now(dt.UTC), pods=pods)
    base = with_nodes(SNAPSHOTS[4], *NODES)
    return Snapshot(base.cluster_name, base.collected_at, base.etcd, nodes=base.nodes, kube=view)


def test_every_action_has_a_key_unique_within_its_target_kind() -> None:
    for kind in TargetKind:
        keys = [spec.key for spec in SPECS.values() if spec.target is kind]
        assert len(keys) == len(set(keys)), (kind, keys)


def test_the_classes_are_the_table_entries_and_nothing_else() -> None:
    assert set(ACTIONS) == set(SPECS)
    for name, cls in ACTIONS.items():
        assert cls.spec is SPECS[name]


def table_panes() -> list[type[TablePane]]:
    """Every pane class there is (tui.app imports them all)."""
    found, pending = [], list(TablePane.__subclasses__())
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending += cls.__subclasses__()
    return found


def test_each_pane_binds_exactly_the_actions_of_its_target_kinds() -> None:
    """A hand-written action key, or one lost, shows here; so does an action key that would
    shadow a key every table or the app has."""
    reserved = {
        b.key for b in (*FilterableTable.BINDINGS, *CockpitApp.BINDINGS) if hasattr(b, "key")
    }
    offered: set[TargetKind] = set()
    for pane in table_panes():
        bound = [
            (b.key, b.action, b.description)
            for b in vars(pane).get("BINDINGS", ())
            if b.action.startswith("request(")
        ]
        wanted = [
            (spec.key, f"request('{spec.name}')", spec.title)
            for spec in SPECS.values()
            if spec.target in pane.TARGETS
        ]
        assert bound == wanted, pane.__name__
        assert not {key for key, _, _ in bound} & reserved, pane.__name__
        offered.update(pane.TARGETS)
    # A DaemonSet pod is a node's pod: no table lists them per node, the palette and the
    # findings offer its action.
    assert offered == set(TargetKind) - {TargetKind.DAEMONSET_POD}


def test_targets_of_each_kind_in_a_hand_built_snapshot() -> None:
    snapshot = hand_built()
    assert [t.name for t in targets(TargetKind.MEMBER, snapshot)] == [
        "cp-1", "cp-2", "cp-3", "cp-4"
    ]  # fmt: skip
    assert [t.name for t in targets(TargetKind.NODE_OR_COMPONENT, snapshot)] == [
        "cp-1", "cp-1/etcd", "cp-2", "cp-2/etcd", "cp-3", "cp-3/etcd"
    ]  # fmt: skip
    assert [t.name for t in targets(TargetKind.DAEMONSET_POD, snapshot)] == [
        "cp-1/calico-node", "cp-2/calico-node"
    ]  # fmt: skip
    assert [t.name for t in targets(TargetKind.NEW_MEMBER, snapshot)] == [None]


async def test_the_palette_offers_each_action_for_each_target_of_its_kind(
    tmp_path: Path,
) -> None:
    snapshot = hand_built()
    app = cockpit_app(config_for(tmp_path), refresh=3600)
    async with app.run_test(size=(120, 40)):

        async def refreshed() -> bool:
            return app.refresh_count >= 1

        await eventually(refreshed, what="the first refresh")
        app.show(snapshot)
        palette = {
            text: (call, hint) for text, call, hint in CockpitCommands(app.screen).commands()
        }
    expected = 0
    for spec in SPECS.values():
        for target in targets(spec.target, snapshot):
            call, hint = palette[palette_label(spec, target)]
            assert call.args == (spec.name, target.name)  # type: ignore[attr-defined]
            assert hint == f"action: {spec.confirmation.value}"
            expected += 1
    # member actions on 4 members, stop/start on 3 nodes and their etcd, a DaemonSet pod's
    # restart on 2 nodes, member-add, the rolling defragment, 3 etcds' restart
    assert expected == 4 * 5 + 6 * 2 + 2 + 1 + 1 + 3
    assert "Defragment every member (rolling): etcd cluster" in palette
    assert "Restart static pod: cp-2/etcd" in palette
    assert "Remove etcd member: cp-3" in palette and "Add etcd member (learner)" in palette
    assert "Restart DaemonSet pod: cp-1/coredns" not in palette  # not a DaemonSet's pod


def test_what_the_table_says_of_confirmation_is_what_the_guards_ask() -> None:
    """`asks for a yes` never meets a typed confirmation, `needs typed confirmation` is never
    allowed without one, on snapshots where the guards give each of their answers."""
    for snapshot in SNAPSHOTS:
        for spec in SPECS.values():
            for target in targets(spec.target, snapshot):
                action = build_action(
                    spec.name, target.name or "cp-9", peer_url="https://127.0.0.19:2380"
                )
                kind = action.guard(snapshot).kind
                if spec.confirmation is Confirmation.YES:
                    assert kind is not VerdictKind.CONFIRM, (spec.name, target)
                if spec.confirmation is Confirmation.TYPED:
                    assert kind is not VerdictKind.ALLOWED, (spec.name, target)
