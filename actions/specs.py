"""What every action is, in one table: its name, title, key, the kind of target it takes and
how much confirmation it asks for.

The panes' action keys, the help screen (built from those keys), the command palette and the
findings all read this table, so an action added here shows up in its pane, the help and the
palette without editing them. It imports no client (gRPC, SSH, Kubernetes): the panes build
their keys from it before the first frame, and those imports are kept off the UI's start.
The action classes (actions/registry.py `ACTIONS`) each carry their entry as `spec`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple

from cluster.model import CLUSTER_TARGET, Snapshot

READ_ONLY_REASON = (
    "read-only mode: actions are disabled (--read-only, or read_only = true in the config)"
)


class TargetKind(enum.Enum):
    """What an action is pointed at; a pane offers the actions of the kinds its rows are."""

    MEMBER = "etcd member"
    NODE_OR_COMPONENT = "node or node/component"
    DAEMONSET_POD = "node/daemonset"
    NEW_MEMBER = "new etcd member (the dialog asks for its name and peer URL)"
    CLUSTER = "the etcd cluster as a whole"
    COMPONENT = "node/component"


class Confirmation(enum.Enum):
    """How dangerous, as the guard answers it: the operator reads it before choosing."""

    YES = "asks for a yes"
    MAYBE_TYPED = "may ask for typed confirmation"
    TYPED = "needs typed confirmation"


@dataclass(frozen=True)
class ActionSpec:
    name: str  # the id: `kcockpit act NAME`, Finding.action, the audit trail
    title: str
    key: str  # unique within its target kind: one pane offers one kind's keys
    target: TargetKind
    confirmation: Confirmation
    # Several steps, each awaited and audited: the cockpit shows them as they happen.
    multi_step: bool = False


MOVE_LEADER = ActionSpec(
    "move-leader", "Move etcd leadership", "l", TargetKind.MEMBER, Confirmation.YES
)
MEMBER_REMOVE = ActionSpec(
    "member-remove", "Remove etcd member", "x", TargetKind.MEMBER, Confirmation.TYPED
)
MEMBER_ADD = ActionSpec(
    "member-add", "Add etcd member", "a", TargetKind.NEW_MEMBER, Confirmation.MAYBE_TYPED
)
MEMBER_PROMOTE = ActionSpec(
    "member-promote", "Promote learner", "p", TargetKind.MEMBER, Confirmation.MAYBE_TYPED
)
DEFRAGMENT = ActionSpec(
    "defragment", "Defragment member", "d", TargetKind.MEMBER, Confirmation.MAYBE_TYPED
)
SNAPSHOT_SAVE = ActionSpec(
    "snapshot-save", "Save etcd snapshot", "s", TargetKind.MEMBER, Confirmation.YES
)
STOP_STATIC_POD = ActionSpec(
    "stop-static-pod",
    "Stop static pod(s)",
    "S",
    TargetKind.NODE_OR_COMPONENT,
    Confirmation.MAYBE_TYPED,
)
START_STATIC_POD = ActionSpec(
    "start-static-pod", "Start static pod(s)", "T", TargetKind.NODE_OR_COMPONENT, Confirmation.YES
)
ROLLING_DEFRAGMENT = ActionSpec(
    "rolling-defragment",
    "Defragment every member (rolling)",
    "D",
    TargetKind.CLUSTER,
    Confirmation.MAYBE_TYPED,
    multi_step=True,
)
RESTART_STATIC_POD = ActionSpec(
    "restart-static-pod",
    "Restart static pod",
    "R",
    TargetKind.COMPONENT,
    Confirmation.MAYBE_TYPED,
    multi_step=True,
)
RESTART_DS_POD = ActionSpec(
    "restart-ds-pod", "Restart DaemonSet pod", "R", TargetKind.DAEMONSET_POD, Confirmation.YES
)

SPECS: dict[str, ActionSpec] = {
    spec.name: spec
    for spec in (
        MOVE_LEADER,
        MEMBER_REMOVE,
        MEMBER_ADD,
        MEMBER_PROMOTE,
        DEFRAGMENT,
        SNAPSHOT_SAVE,
        ROLLING_DEFRAGMENT,
        STOP_STATIC_POD,
        START_STATIC_POD,
        RESTART_STATIC_POD,
        RESTART_DS_POD,
    )
}


def of_kinds(*kinds: TargetKind) -> list[ActionSpec]:
    """The actions a pane offering these kinds of target binds, in the table's order."""
    return [spec for spec in SPECS.values() if spec.target in kinds]


class Target(NamedTuple):
    name: str | None  # what the action is given; None: the dialog asks (a new member)
    shown: str  # how the operator knows it


def targets(kind: TargetKind, snapshot: Snapshot | None) -> list[Target]:
    """Every target of a kind in the snapshot: what the palette offers each action for."""
    if kind is TargetKind.NEW_MEMBER:
        return [Target(None, "learner")]  # the cockpit adds a new member as a learner
    if snapshot is None:
        return []
    if kind is TargetKind.CLUSTER:
        return [Target(CLUSTER_TARGET, "etcd cluster")] if snapshot.etcd.members else []
    if kind is TargetKind.COMPONENT:
        names = [f"{node.name}/{p.component}" for node in snapshot.nodes for p in node.static_pods]
        return [Target(name, name) for name in names]
    if kind is TargetKind.MEMBER:
        return [Target(m.name, m.display_name) for m in snapshot.etcd.members]
    if kind is TargetKind.NODE_OR_COMPONENT:
        names = [
            name
            for node in snapshot.nodes
            for name in (node.name, *(f"{node.name}/{p.component}" for p in node.static_pods))
        ]
        return [Target(name, name) for name in names]
    pods = snapshot.kube.pods or () if snapshot.kube else ()
    names = [f"{p.node}/{p.owner_name}" for p in pods if p.owner_kind == "DaemonSet" and p.node]
    return [Target(name, name) for name in names]


def palette_label(spec: ActionSpec, target: Target) -> str:
    """`Remove etcd member: cp-3`; an action whose dialog asks for the target says what it
    makes instead (`Add etcd member (learner)`)."""
    if target.name is None:
        return f"{spec.title} ({target.shown})"
    return f"{spec.title}: {target.shown}"
